"""The swarm summary's analytic expectations: pure ALOHA, and ALOHA with capture."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lora_telemetry.core.aloha import finite_aloha_success
from lora_telemetry.sim.swarm_report import summarize

T, P = 0.066816, 2.0  # 29-byte frame at SF7/125 kHz; default period


def record(rssi: float, sent: int = 100, got: int = 80):
    fcnts = range(sent)
    return SimpleNamespace(
        sent={f: 10.0 + f for f in fcnts},
        received={f: SimpleNamespace(latency_s=0.1, lat=0, lon=0, alt_amsl=0,
                                     sample_time=10.0 + f, rx_time=10.1 + f)
                  for f in list(fcnts)[:got]},
        link=SimpleNamespace(mean_rssi_dbm=rssi, tdma_slot=0), latest=None)


def test_capture_model_for_a_mixed_power_swarm() -> None:
    # Two RN2483 at 10 dBm and two EByte at 30 dBm, 500 m away: -113 vs -92 dBm at the
    # gateway (the demo's medium). An RN2483 frame loses to every other frame; an EByte frame
    # only to the other EByte's (the RN2483s are >= 6 dB weaker: captured).
    records = {"uav1": record(-113), "uav2": record(-92), "uav3": record(-113), "uav4": record(-92)}
    s = summarize(records, radios={}, window=(0, 1e9), period_s=P, airtime_s=T, truth=None,
                  duration_s=300)
    v = 2 * T / P
    assert s["aloha_expected_delivery_ratio"] == pytest.approx(finite_aloha_success(4, T, P), abs=1e-4)
    assert s["aloha_with_capture_delivery_ratio"] == pytest.approx(((1 - v) ** 3 + (1 - v)) / 2, abs=1e-4)
    assert s["delivery_ratio"] == 0.8


def test_equal_power_capture_model_is_pure_aloha() -> None:
    records = {f"uav{i}": record(-110.0 + i) for i in range(4)}  # within 6 dB: no capture
    s = summarize(records, radios={}, window=(0, 1e9), period_s=P, airtime_s=T, truth=None,
                  duration_s=300)
    assert s["aloha_with_capture_delivery_ratio"] == s["aloha_expected_delivery_ratio"]


def test_a_run_that_died_early_reports_an_empty_window_not_a_negative_one(capsys) -> None:
    from lora_telemetry.cli.sim_swarm import _print_summary

    # Processes died 0.2 s after start-up: the window runs from start + warm-up (8 s, the
    # default --warmup) to the end minus sim swarm's 3 s closing margin, (108.0, 97.2).
    started, ended, warmup, margin = 100.0, 100.2, 8.0, 3.0
    records = {"uav1": record(-100.0, sent=1, got=1)}
    records["uav1"].sent = {0: 100.1}  # its one frame, sent before it died
    s = summarize(records, radios={}, window=(started + warmup, ended - margin),
                  period_s=P, airtime_s=T, truth=None, duration_s=ended - started)
    assert s["measurement_window_s"] == 0.0 and s["measurement_window_empty"] is True
    assert s["per_uav"]["uav1"]["frames_sent"] == 0 and s["delivery_ratio"] is None
    assert s["per_uav"]["uav1"]["updates_per_s"] is None
    _print_summary(s)
    out = capsys.readouterr().out
    assert "summary: empty measurement window" in out and "summary over -" not in out


def test_a_full_window_is_not_empty() -> None:
    records = {"uav1": record(-100.0)}
    s = summarize(records, radios={}, window=(0, 1e9), period_s=P, airtime_s=T, truth=None,
                  duration_s=300)
    assert s["measurement_window_empty"] is False and s["measurement_window_s"] == 1e9


def test_state_age_is_arrival_minus_sample_time_and_the_worst_uav_is_named() -> None:
    records = {"uav1": record(-100.0, sent=10, got=10), "uav2": record(-100.0, sent=10, got=5)}
    s = summarize(records, radios={}, window=(0, 100), period_s=P, airtime_s=T, truth=None,
                  duration_s=100, access="tdma")
    assert s["access"] == "tdma"
    assert s["state_age_p95_s"] == pytest.approx(0.1)
    assert s["updates_per_s_min"] == pytest.approx(5 / 100)
