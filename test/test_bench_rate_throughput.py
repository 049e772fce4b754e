"""The rate and throughput benchmarks run and write JSON of the documented shape.

Smoke runs with small parameters into a temporary results directory (no timing asserted).
Figures checked against the seeds:
* airtimes from the SX1276 formula (datasheet 4.1.1.7, thesis file ~14396): 29 bytes at
  SF7/125 kHz = (8 + 4.25 + 53) x 1.024 ms = 66.816 ms; at SF12 (LDRO on) = (12.25 + 38) x
  32.768 ms = 1646.592 ms; 255 bytes at SF7 = (12.25 + 378) x 1.024 ms = 399.616 ms;
* duty cycles: 868.1 MHz 1 % and 869.525 MHz 10 % (thesis lines 2676-2682), EU433 10 % (same
  lines) and LoRaWAN EU433 1 % (spec 7.4.2);
* thesis Table 4.5.2 DR5 cadences 2.28 s / 2.24 s (lines 2538 / 2552) and Table 4.5.6 DR5
  445.80 / 445.71 bit/s at a 4.50 s cadence (lines 2710 / 2724).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import bench_rate, bench_throughput  # noqa: E402

DC = {"eu868_868.1_g1": 0.01, "eu868_869.525_g3": 0.10, "eu433_433.175_etsi": 0.10,
      "eu433_433.175_lorawan": 0.01}


def run_bench(script: str, results: Path, *args: str) -> dict:
    env = dict(os.environ, LORA_TELEMETRY_BENCH_RESULTS=str(results))
    out = subprocess.run([sys.executable, f"bench/{script}.py", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    name = script.removeprefix("bench_")
    assert "wrote" in out.stdout and f"{name}.json" in out.stdout
    return json.loads((results / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def rate(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # 0.05 h = 180 s: below one hour, so only T_off binds and the cadence must equal it.
    return run_bench("bench_rate", tmp_path_factory.mktemp("rate"), "--hours", "0.05",
                     "--jobs", "1")


@pytest.fixture(scope="module")
def throughput(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Two whole hours: the hour window binds and the run holds whole steady-state periods.
    return run_bench("bench_throughput", tmp_path_factory.mktemp("tp"), "--hours", "2")


def row(data: dict, channel: str, dr: int, **match) -> dict:
    found = [r for r in data["rows"] if r["channel"] == channel and r["dr"] == dr
             and all(r[k] == v for k, v in match.items())]
    assert len(found) == 1
    return found[0]


def test_rate_json_shape(rate: dict) -> None:
    assert rate["benchmark"] == "rate" and "machine" in rate
    assert {"rows", "rows[].measured.mean_interval_s"} <= set(rate["keys"])
    assert rate["frame_bytes"] == 29 and rate["payload_bytes"] == 16
    assert {c["key"]: c["duty_cycle"] for c in rate["channels"]} == DC
    # 4 channels x LoRa DR0-DR6 (DR7 is FSK, LoRaWAN Tables 14/31).
    assert len(rate["rows"]) == 28
    assert {(r["channel"], r["dr"]) for r in rate["rows"]} == {
        (c, dr) for c in DC for dr in range(7)}
    for r in rate["rows"]:
        assert r["duty_cycle"] == DC[r["channel"]]
        assert {"frames", "mean_interval_s", "min_interval_s", "updates_per_s",
                "airtime_fraction_worst_hour", "mean_sample_age_s"} == set(r["measured"])


def test_rate_figures(rate: dict) -> None:
    g1 = row(rate, "eu868_868.1_g1", 5)
    assert g1["airtime_ms"] == 66.816
    assert g1["toff_interval_s"] == pytest.approx(6.6816)  # 66.816 ms / 1 %
    assert row(rate, "eu433_433.175_lorawan", 0)["airtime_ms"] == 1646.592
    assert row(rate, "eu868_869.525_g3", 5)["toff_interval_s"] == pytest.approx(0.66816)
    assert row(rate, "eu868_869.525_g3", 5)["thesis_4_5_2_interval_s"] == 2.24
    assert row(rate, "eu433_433.175_etsi", 5)["thesis_4_5_2_interval_s"] == 2.28
    assert row(rate, "eu868_868.1_g1", 5)["thesis_4_5_2_interval_s"] is None
    for r in rate["rows"]:
        m = r["measured"]
        # Never more airtime than the sub-band allows, in any hour window.
        assert m["airtime_fraction_worst_hour"] <= r["duty_cycle"] + 1e-9
        if m["frames"] >= 2:
            # Under an hour only T_off binds: the runtime must reach it, not just respect it.
            # AlohaPolicy adds a uniform jitter of up to one frame time after T_off (so that
            # duty-cycle-bound nodes never stay in lockstep): mean T/2 above the limit.
            assert m["min_interval_s"] >= r["toff_interval_s"] - 1e-4
            air = r["airtime_ms"] / 1000.0
            assert r["toff_interval_s"] <= m["mean_interval_s"] <= r["toff_interval_s"] + air
            # The newest 10 Hz state goes out: never older than one vehicle period.
            assert 0 <= m["mean_sample_age_s"] <= 0.1
    # 180 s at DR5 10 %: one frame every 0.668 s plus at most one frame time of jitter.
    assert row(rate, "eu433_433.175_etsi", 5)["measured"]["frames"] >= 180 / (0.66816 + 0.066816) - 1


def test_rate_is_the_same_with_worker_processes(tmp_path: Path) -> None:
    one = run_bench("bench_rate", tmp_path / "a", "--hours", "0.01", "--jobs", "1")
    two = run_bench("bench_rate", tmp_path / "b", "--hours", "0.01", "--jobs", "2")
    assert one["rows"] == two["rows"]


def test_throughput_json_shape(throughput: dict) -> None:
    assert throughput["benchmark"] == "throughput" and "machine" in throughput
    assert "rows[].measured.goodput_bps" in throughput["keys"]
    assert len(throughput["rows"]) == 2 * 28  # both payload tables
    for r in throughput["rows"]:
        assert r["frame_bytes"] == r["app_payload_bytes"] + 13
        assert set(r["measured"]) == {"frames", "mean_interval_s", "min_interval_s",
                                      "goodput_bps", "frame_bps", "airtime_fraction_worst_hour"}
        assert (r["thesis"] is None) == (r["channel"] in ("eu868_868.1_g1",
                                                            "eu433_433.175_lorawan")
                                         or r["dr"] == 6)


def test_throughput_figures(throughput: dict) -> None:
    # Max application payload N: LoRaWAN 1.0 Table 16 (222 at DR5) and Table 17 (242).
    rep = row(throughput, "eu868_869.525_g3", 5, payload_table="repeater")
    assert (rep["app_payload_bytes"], rep["frame_bytes"]) == (222, 235)
    norep = row(throughput, "eu433_433.175_etsi", 5, payload_table="no_repeater")
    assert (norep["app_payload_bytes"], norep["frame_bytes"]) == (242, 255)
    assert norep["airtime_ms"] == 399.616
    assert norep["toff_interval_s"] == pytest.approx(3.99616)
    th = norep["thesis"]
    assert th["message_bytes"] == 255 == norep["frame_bytes"]  # thesis Table 4.5.1, line 2384
    assert th["table_4_5_6"]["bitrate_bps"] == 445.80
    assert th["table_4_5_6"]["adjusted_interval_s"] == 4.50
    assert row(throughput, "eu868_869.525_g3", 5,
               payload_table="no_repeater")["thesis"]["table_4_5_6"]["bitrate_bps"] == 445.71
    for r in throughput["rows"]:
        m = r["measured"]
        assert m["airtime_fraction_worst_hour"] <= r["duty_cycle"] + 1e-9
        assert m["mean_interval_s"] >= r["toff_interval_s"] - 1e-6
        # Two whole hours of steady state: the scheduler reaches the computed limit, plus the
        # policy's anti-lockstep jitter of at most one frame time.
        air = r["airtime_ms"] / 1000.0
        assert r["computed_interval_s"] - 1e-6 <= m["mean_interval_s"] <= r["computed_interval_s"] + air
        assert m["goodput_bps"] == pytest.approx(r["app_payload_bytes"] * 8
                                                 / m["mean_interval_s"], rel=1e-3)


def test_thesis_transcription_is_self_consistent() -> None:
    # bitrate x time / received = bits per message, for every row of Tables 4.5.6 and 4.5.5.
    for rows in bench_throughput.THESIS_TABLE_4_5_6.values():
        for dr, (received, _cadence, total_s, bps) in rows.items():
            n = int(received.split("/")[0])
            bits = bps * total_s / n
            assert bits == pytest.approx(8 * bench_throughput.THESIS_MESSAGE_BYTES[dr], rel=2e-3)
    for band, rows in bench_throughput.THESIS_TABLE_4_5_5.items():
        for dr, (received, total_s, cadence, bps) in rows.items():
            if (band, dr) == ("868", 4):
                continue  # printed time 193.56 s: 39 x 7.53 s = 293.7 s (a typo in the thesis)
            assert bps * total_s / received == pytest.approx(
                8 * bench_throughput.THESIS_MESSAGE_BYTES[dr], rel=2e-3)
            assert total_s / received == pytest.approx(cadence, abs=0.01)


def test_steady_interval_and_worst_window() -> None:
    # 29 bytes at DR0 on 1 %: K = floor(36 / 1.646592) = 21 frames per period of
    # 3600 x 0.99 + 21 x 1.646592 s.
    a = 1.646592
    assert bench_rate.steady_interval(a, 0.01) == pytest.approx((3564 + 21 * a) / 21)
    assert bench_rate.steady_interval(0.36, 0.01) == pytest.approx(36.0)  # 100 frames fit
    assert bench_rate.worst_window_airtime([0.0, 10.0, 3605.0], [1.0, 1.0, 1.0]) == 2.0
    # The last frame is cut by the window's end: 1 s + 0.5 s.
    assert bench_rate.worst_window_airtime([0.0, 3599.5], [1.0, 1.0]) == pytest.approx(1.5)
