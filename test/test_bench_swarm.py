"""bench/bench_swarm.py: the JSON it writes, and that the simulated swarm behaves like ALOHA.

The benchmark runs as a subprocess with small parameters (N <= 4) into a temporary results
directory; no timing is asserted. Figures:

* 29-byte frame at SF7/125 kHz/CR 4/5, 8-symbol preamble, explicit header, CRC on: 66.816 ms
  (SX1276 datasheet 4.1.1.7 "Time on air", thesis file ~lines 14356-14396; the same figure is
  asserted in test_bench_smoke.py and test_cli_core.py): 12.25 preamble symbols + 8 + 9 * 5
  payload symbols = 65.25 symbols of 1.024 ms.
* Unslotted ALOHA with n periodic senders: success (1 - 2T/P)^(n-1) (Abramson; see
  lora_telemetry/core/aloha.py and test_core_aloha.py's Monte Carlo check). N = 4, T = 66.816 ms,
  P = 2 s: 81.26 %.
* 433 MHz sub-band duty cycle 10 % (2006/771/EC annex, thesis file ~line 3283): T / dc =
  668.16 ms between frames when the period asks for more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lora_telemetry.core.aloha import finite_aloha_success, pure_aloha_success

REPO = Path(__file__).resolve().parent.parent
AIRTIME_S = 0.066816
ROW_KEYS = {
    "n", "offered_load", "sent", "delivered", "delivery_ratio", "finite_aloha", "poisson_aloha",
    "updates_per_s_mean", "updates_per_s_min", "mean_interval_s", "collisions",
    "below_sensitivity", "overlapped", "captured", "replaced",
}
# 120 simulated minutes: for N = 4 the run-to-run spread of the measured delivery is ~0.6
# points (standard deviation over 40 seeds); 3 points is ~5 of them.
MINUTES = 120
TOLERANCE = 0.03


def run_bench(out_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LORA_TELEMETRY_BENCH_RESULTS=str(out_dir))
    return subprocess.run([sys.executable, "bench/bench_swarm.py", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=240, env=env)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("bench_swarm")
    proc = run_bench(out_dir, "--max-uavs", "4", "--minutes", str(MINUTES), "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads((out_dir / "swarm.json").read_text())


def rows(data: dict[str, Any], geometry: str) -> dict[int, dict[str, Any]]:
    return {r["n"]: r for r in data["geometries"][geometry]["rows"]}


def test_json_shape(bench_run: tuple[str, dict[str, Any]]) -> None:
    _, data = bench_run
    assert data["benchmark"] == "swarm" and "machine" in data and "command" in data
    s = data["settings"]
    assert s["frequency_hz"] == 433_175_000 and s["sf"] == 7 and s["bandwidth_hz"] == 125_000
    assert s["frame_bytes"] == 29
    assert s["airtime_s"] == pytest.approx(AIRTIME_S, abs=1e-9)
    assert s["period_s"] == 2.0 and s["effective_period_s"] == 2.0
    assert s["duty_cycle"] == 0.10
    assert s["minutes"] == MINUTES and s["seed"] == 1 and s["max_uavs"] == 4
    assert s["gateway_position_m"] == [0.0, -500.0, 10.0]
    assert set(data["geometries"]) == {"equal", "formation"}
    for geometry in ("equal", "formation"):
        g = data["geometries"][geometry]
        assert set(g) == {"description", "runtime_s", "max_n", "rows"}
        assert set(g["max_n"]) == {"measured", "finite_aloha", "poisson_aloha"}
        assert [r["n"] for r in g["rows"]] == [1, 2, 3, 4]
        for r in g["rows"]:
            n = r["n"]
            assert set(r) == ROW_KEYS
            assert r["offered_load"] == pytest.approx(n * AIRTIME_S / 2.0)
            assert r["finite_aloha"] == pytest.approx(finite_aloha_success(n, AIRTIME_S, 2.0))
            assert r["poisson_aloha"] == pytest.approx(pure_aloha_success(n * AIRTIME_S / 2.0))
            assert r["delivery_ratio"] == pytest.approx(r["delivered"] / r["sent"])
            # Every frame not delivered is a loss the medium counted.
            assert r["sent"] - r["delivered"] == r["collisions"] + r["below_sensitivity"]
            assert r["below_sensitivity"] == 0  # 350-650 m at 10 dBm is far above SF7's limit
            assert r["updates_per_s_mean"] == pytest.approx(r["delivered"] / (n * MINUTES * 60))
            assert 0 < r["updates_per_s_min"] <= r["updates_per_s_mean"]
            # One frame per UAV per period on average (AlohaPolicy's jitter is symmetric).
            assert r["mean_interval_s"] == pytest.approx(2.0, rel=0.01)
            # A new state every 0.1 s, one frame per ~2 s: ~19 states replaced per frame.
            assert r["replaced"] > 15 * r["sent"]


def test_equal_geometry_matches_finite_pure_aloha(bench_run: tuple[str, dict[str, Any]]) -> None:
    _, data = bench_run
    equal = rows(data, "equal")
    # Alone on the channel, every frame arrives: nothing to collide with.
    assert equal[1]["delivery_ratio"] == 1.0 and equal[1]["collisions"] == 0
    expected = finite_aloha_success(4, AIRTIME_S, 2.0)
    assert expected == pytest.approx(0.8126, abs=1e-4)
    assert equal[4]["sent"] > 14_000  # 4 UAVs x 3600 periods: enough for a small error
    assert equal[4]["delivery_ratio"] == pytest.approx(expected, abs=TOLERANCE)
    # The finite-population model, not the Poisson one, is the right reference for 4 UAVs
    # (e^(-2G) = 76.5 % would be 5 points off).
    assert abs(equal[4]["delivery_ratio"] - expected) < abs(
        equal[4]["delivery_ratio"] - equal[4]["poisson_aloha"])


def test_equal_geometry_every_overlap_is_a_loss(bench_run: tuple[str, dict[str, Any]]) -> None:
    # Equal powers: a frame is never 6 dB above an interferer, so the medium's collision
    # count equals the overlaps found independently from the start times.
    _, data = bench_run
    for r in rows(data, "equal").values():
        assert r["captured"] == 0
        assert r["collisions"] == r["overlapped"]


def test_formation_differs_from_equal_only_by_capture(
        bench_run: tuple[str, dict[str, Any]]) -> None:
    # The same seed gives both geometries the same send times; only reception differs.
    _, data = bench_run
    equal, formation = rows(data, "equal"), rows(data, "formation")
    for n in (1, 2, 3, 4):
        assert formation[n]["sent"] == equal[n]["sent"]
        assert formation[n]["overlapped"] == equal[n]["overlapped"]
        assert formation[n]["delivered"] == equal[n]["delivered"] + formation[n]["captured"]


def test_table_is_printed(bench_run: tuple[str, dict[str, Any]]) -> None:
    stdout, data = bench_run
    assert "[equal]" in stdout and "[formation]" in stdout
    assert "finite %" in stdout and "Poisson %" in stdout and "collisions" in stdout
    assert "delivery >= 50%" in stdout
    # No row is under 50 % for N <= 4, so every size is marked as meeting it.
    assert data["geometries"]["equal"]["max_n"] == {
        "measured": 4, "finite_aloha": 4, "poisson_aloha": 4}


def test_duty_cycle_bound_period_is_flagged(tmp_path: Path) -> None:
    proc = run_bench(tmp_path, "--period", "0.5", "--max-uavs", "2", "--minutes", "1",
                     "--geometry", "equal")
    assert proc.returncode == 0, proc.stderr
    assert "note: period 0.5 s < T/duty cycle" in proc.stdout
    data = json.loads((tmp_path / "swarm.json").read_text())
    assert set(data["geometries"]) == {"equal"}
    assert data["settings"]["effective_period_s"] == pytest.approx(AIRTIME_S / 0.10)
    for r in data["geometries"]["equal"]["rows"]:
        # T_off paces the frames: one every T / 10 %, whatever the period asks for, plus the
        # policy's jitter of up to one frame time that keeps nodes out of lockstep.
        assert AIRTIME_S / 0.10 <= r["mean_interval_s"] <= AIRTIME_S / 0.10 + AIRTIME_S


@pytest.mark.parametrize("args", [
    ("--max-uavs", "0"), ("--max-uavs", "many"), ("--geometry", "ring"), ("--period", "-1"),
    ("--minutes", "0.1"), ("--min-delivery", "1.5"), ("--period", "nan"),
])
def test_bad_arguments_are_refused_cleanly(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = run_bench(tmp_path, *args)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "swarm.json").exists()
