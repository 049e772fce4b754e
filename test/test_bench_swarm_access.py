"""bench/bench_swarm.py --access: ALOHA and GPS-time TDMA side by side (bench/swarm_access.py).

The benchmark runs as a subprocess with small parameters (N <= 12, a few simulated minutes)
into a temporary results directory; no timing is asserted. Figures:

* 29-byte frame at SF7/125 kHz/CR 4/5: 66.816 ms (SX1276 datasheet 4.1.1.7, as in
  test_bench_swarm.py); the 17-byte beacon: 51.456 ms. Slot = frame + 2 guards of 5 ms
  (core/tdma.py DEFAULT_GUARD_S): 12 UAV slots and the beacon's use 983.2 ms, so 12 UAVs fit a
  1 s superframe and 13 do not (the benchmark then stretches the period to 1.061 s).
* 433 MHz sub-band duty cycle 10 % (2006/771/EC annex, thesis file ~line 3283): one 66.8 ms
  frame per 1 s superframe is 6.7 %, so plan_schedule gives every UAV every superframe.
* TDMA's state age is reception end - the codec's first 20 ms grid point at or after the
  planned frame start (core/tdma.sample_time_for) = airtime + timing error - 0..20 ms; the
  timing error budget (RN2483 tx jitter +-1 ms, radios/rn2483/timing.py; host lateness 0-1 ms;
  the TimeKeeper's residual) is a couple of ms, so within 20 ms of the airtime is generous and
  still fails for a frame that missed its slot by a whole one.
* Unslotted ALOHA with n periodic senders: success (1 - 2T/P)^(n-1) (core/aloha.py): N = 12,
  P = 1 s: 20.64 %. Tolerance: 4 binomial standard errors sqrt(p (1 - p) / sent), times sqrt(2)
  because a collision destroys frames in pairs (the loss count's variance is at most about
  twice binomial). With 5 minutes (~3600 frames at N = 12) that is +-3.8 points; over 40 seeds
  the measured spread was 0.68 points (standard deviation), the largest deviation 1.6 points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from test_bench_swarm import run_bench  # the same benchmark script, run the same way

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core.aloha import finite_aloha_success

REPO = Path(__file__).resolve().parent.parent
AIRTIME_S = 0.066816
MAX_UAVS = 12
MINUTES = 5
NAMED_KEYS = {"access", "n", "period_s", "delivery_ratio", "updates_per_s_min",
              "state_age_p95_s"}


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("bench_swarm_access")
    proc = run_bench(out_dir, "--access", "aloha", "--access", "tdma", "--period", "1",
                     "--max-uavs", str(MAX_UAVS), "--minutes", str(MINUTES))
    assert proc.returncode == 0, proc.stderr
    assert not (out_dir / "swarm.json").exists()  # the ALOHA study did not run
    return proc.stdout, json.loads((out_dir / "swarm_access.json").read_text())


def rows(data: dict[str, Any], access: str) -> dict[int, dict[str, Any]]:
    return {r["n"]: r for r in data["rows"] if r["access"] == access}


def test_json_shape(bench_run: tuple[str, dict[str, Any]]) -> None:
    _, data = bench_run
    assert data["benchmark"] == "swarm_access" and "machine" in data and "command" in data
    s = data["settings"]
    assert s["frequency_hz"] == 433_175_000 and s["sf"] == 7 and s["bandwidth_hz"] == 125_000
    assert s["frame_bytes"] == 29 and s["airtime_s"] == pytest.approx(AIRTIME_S, abs=1e-9)
    assert s["guard_s"] == 0.005 and s["period_s"] == 1.0 and s["duty_cycle"] == 0.10
    assert s["minutes"] == MINUTES and s["seed"] == 1 and s["warmup_s"] == 10.0
    assert s["clock"]["offset_s"] == [-2.0, 2.0] and s["clock"]["drift_ppm"] == [-50.0, 50.0]
    assert s["clock"]["system_time_hz"] == 4.0
    assert s["modules"]["rn2483"]["baud"] == 57600
    assert s["accesses"] == ["aloha", "tdma"]
    assert isinstance(data["rows"], list)
    assert [(r["n"], r["access"]) for r in data["rows"]] == [
        (n, a) for n in range(1, MAX_UAVS + 1) for a in ("aloha", "tdma")]
    for r in data["rows"]:
        assert NAMED_KEYS <= set(r)
        assert r["delivery_ratio"] == pytest.approx(r["delivered"] / r["sent"])
        assert 0 < r["updates_per_s_min"] <= r["updates_per_s_mean"]
        # The state is never newer than its frame's first symbol plus one 20 ms codec step
        # (core/tdma.sample_time_for), so its age at reception end is more than this:
        assert r["state_age_p95_s"] > AIRTIME_S - tcodec.TIME_STEP_S
        assert r["period_s"] == 1.0  # 12 UAVs still fit a 1 s superframe
    for n, r in rows(data, "aloha").items():
        assert r["finite_aloha"] == pytest.approx(finite_aloha_success(n, AIRTIME_S, 1.0))


def test_tdma_twelve_uavs_at_one_second(bench_run: tuple[str, dict[str, Any]]) -> None:
    _, data = bench_run
    tdma = rows(data, "tdma")
    r = tdma[12]
    assert r["slots"] == 12 and r["uplink_every"] == 1 and not r["period_stretched"]
    assert r["sent"] >= 12 * (MINUTES * 60 - 1)  # every UAV in (nearly) every superframe
    assert r["delivery_ratio"] >= 0.99
    assert r["updates_per_s_min"] >= 0.95
    assert r["state_age_p95_s"] == pytest.approx(AIRTIME_S, abs=0.020)
    # The frames start inside their slots: the gateway's own measure of the timing.
    assert r["timing_error_p95_s"] < 0.005 and r["outside_slot"] == 0
    # The gateway's beacon went out (and took its air) in every superframe.
    assert r["beacons"] >= MINUTES * 60 and r["beacons_skipped"] == 0
    # The TimeKeeper became usable within the warm-up the measurement skips.
    assert r["time_usable_after_s"] < data["settings"]["warmup_s"]


def test_aloha_in_the_same_run_follows_the_analytic_curve(
        bench_run: tuple[str, dict[str, Any]]) -> None:
    _, data = bench_run
    aloha = rows(data, "aloha")
    assert aloha[1]["delivery_ratio"] == 1.0  # alone on the channel
    r = aloha[12]
    p = finite_aloha_success(12, AIRTIME_S, 1.0)
    assert p == pytest.approx(0.2064, abs=1e-4)
    assert r["sent"] > 3000
    tolerance = 4 * math.sqrt(2 * p * (1 - p) / r["sent"])
    assert tolerance < 0.05
    assert r["delivery_ratio"] == pytest.approx(p, abs=tolerance)
    # Side by side: TDMA delivers what ALOHA loses.
    assert rows(data, "tdma")[12]["delivered"] > 4 * r["delivered"]


def test_table_is_printed(bench_run: tuple[str, dict[str, Any]]) -> None:
    stdout, _ = bench_run
    assert "ALOHA del %" in stdout and "finite %" in stdout and "timing p95 ms" in stdout
    assert "swarm_access.json" in stdout


def test_a_wrong_lead_makes_tdma_collapse(tmp_path: Path) -> None:
    # Negative control: every other UAV's module is 20 ms slower than its model, so its frame
    # lands 20 ms late, 10 ms into the next slot's frame: the same checks must then fail.
    proc = run_bench(tmp_path, "--access", "tdma", "--period", "1", "--max-uavs",
                     str(MAX_UAVS), "--minutes", "1", "--lead-error-ms", "20")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "swarm_access.json").read_text())
    tdma = rows(data, "tdma")
    assert data["settings"]["lead_error_s"] == pytest.approx(0.020)
    assert tdma[1]["delivery_ratio"] == 1.0  # alone, a late frame hits nobody
    assert tdma[12]["delivery_ratio"] < 0.1
    assert tdma[12]["updates_per_s_min"] < 0.95


def test_aloha_study_unchanged_without_access(tmp_path: Path) -> None:
    proc = run_bench(tmp_path, "--max-uavs", "1", "--minutes", "1", "--geometry", "equal")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "swarm.json").exists() and not (tmp_path / "swarm_access.json").exists()


@pytest.mark.parametrize("args", [
    ("--access", "csma"), ("--access", "tdma", "--geometry", "formation"),
    ("--access", "tdma", "--min-delivery", "0.5"), ("--radios", "mix"),
    ("--lead-error-ms", "5"), ("--access", "tdma", "--guard-ms", "0"),
    ("--access", "tdma", "--lead-error-ms", "-50"), ("--access", "tdma", "--warmup-s", "-1"),
    ("--access", "tdma", "--minutes", "0.1"),
])
def test_bad_arguments_are_refused_cleanly(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = run_bench(tmp_path, *args)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "swarm_access.json").exists()
    assert not (tmp_path / "swarm.json").exists()
