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
        received={f: SimpleNamespace(latency_s=0.1, lat=0, lon=0, alt_amsl=0, sample_time=0)
                  for f in list(fcnts)[:got]},
        link=SimpleNamespace(mean_rssi_dbm=rssi), latest=None)


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
