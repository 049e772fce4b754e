"""Bounded, seeded fuzzing of every decoder of outside bytes (the harness is bench/fuzz/).

Each target runs a fixed number of mutants of its seeds (seed 0, so a failure repeats
exactly) with the invariants of bench/fuzz/__init__.py; the long campaign is
``make fuzz`` / ``lora-telemetry bench fuzz``. The engine itself is tested too: it must
record a planted defect and a hang, write the input, and replay it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.fuzz.base import Target, lorawan_vectors  # noqa: E402
from bench.fuzz.engine import Hang, fuzz, replay  # noqa: E402
from bench.fuzz.mutator import Mutator  # noqa: E402
from bench.fuzz.targets import TARGETS, make_target  # noqa: E402
from bench.fuzz.targets.lorawan import GatewayTarget, unknown_devaddr_stream  # noqa: E402
from lora_telemetry.core import gateway as gw  # noqa: E402
from lora_telemetry.core import lorawan as lw  # noqa: E402

#: Inputs per target: about one to two seconds each on the 2-core development machine.
BOUNDED_INPUTS = {
    "lorawan": 20_000, "gateway": 30_000, "codec": 40_000, "rn2483": 30_000, "ebyte": 15_000,
    "sx1276": 30_000, "keyfile": 4_000, "params": 6_000, "mavlink": 1_000, "cli": 800,
}


def test_every_target_has_a_bounded_budget() -> None:
    assert set(BOUNDED_INPUTS) == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_bounded_seeded_run_finds_no_defect(name: str, tmp_path: Path) -> None:
    target = make_target(name)
    seeds = len(target.seeds())
    report = fuzz(target, count=BOUNDED_INPUTS[name], time_limit_s=30.0, seed=0,
                  crash_dir=tmp_path)
    found = "\n".join(f"{d.signature}: {d.message} (input {d.data[:120]!r})"
                      for d in report.first_defects)
    assert report.defects == 0, f"{report.signatures}\n{found}"
    assert report.inputs >= seeds + 1  # every seed, then mutants
    assert "defect" not in report.outcomes


REGRESSIONS = sorted((REPO / "test" / "fuzz_regressions").glob("*/*.bin"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inputs_of_fixed_defects_replay_clean(path: Path) -> None:
    # Inputs of defects the harness found (crash files of bench/results/fuzz-crashes/ copied
    # here once fixed); each failed before its fix (see the commit that added it).
    outcome, defect = replay(path)
    assert defect is None, f"{defect.signature}: {defect.message}"
    assert outcome != "skipped"


def test_mutator_is_deterministic_per_seed() -> None:
    import random

    corpus = [bytes.fromhex(v["phy_hex"]) for v in lorawan_vectors()]

    def run(seed: int) -> list[bytes]:
        m = Mutator(random.Random(seed), tokens=(b"\x40",), max_len=64)
        return [m.mutate(corpus[i % len(corpus)], corpus) for i in range(200)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert all(len(x) <= 64 for x in run(3))


class _Planted(Target):
    """A target with a bug (ValueError on b"boom"), a hang (b"hang") and a documented error."""

    name = "planted"
    timeout_s = 0.2

    def seeds(self) -> list[bytes]:
        return [b"fine", b"boom!", b"hang", b"error"]

    def run(self, data: bytes) -> str:
        if data.startswith(b"boom"):
            raise ValueError("planted bug")
        if data.startswith(b"hang"):
            time.sleep(5)
        if data.startswith(b"error"):
            from lora_telemetry.core.errors import MalformedFrameError
            try:
                raise MalformedFrameError("documented")
            except MalformedFrameError:
                return "MalformedFrameError"
        return "ok"


def test_engine_records_defects_and_hangs_and_replays_them(tmp_path: Path) -> None:
    started = time.monotonic()
    report = fuzz(_Planted(), count=4, time_limit_s=30.0, crash_dir=tmp_path)
    assert time.monotonic() - started < 3.0  # the hang was cut at its 0.2 s bound
    kinds = sorted(s.split(" at ")[0] for s in report.signatures)
    assert kinds == ["Hang", "ValueError"] and report.defects == 2
    assert report.outcomes["ok"] == 1 and report.outcomes["MalformedFrameError"] == 1
    files = sorted((tmp_path / "planted").glob("*.bin"))
    assert sorted(f.read_bytes() for f in files) == [b"boom!", b"hang"]
    assert all(f.with_suffix(".txt").read_text().startswith(("ValueError", "Hang")) for f in files)
    for f in files:
        outcome, defect = replay(f, _Planted())
        assert outcome == "defect" and defect is not None and defect.data == f.read_bytes()
    assert issubclass(Hang, BaseException) and not issubclass(Hang, Exception)


def test_gateway_table_of_unknown_devaddrs_stays_bounded() -> None:
    # core/gateway.py: MAX_UNKNOWN_DEVADDRS (256), least recently heard forgotten first.
    gateway = gw.Gateway(GatewayTarget().registry)
    unknown_devaddr_stream(gateway, 3 * gw.MAX_UNKNOWN_DEVADDRS)
    assert len(gateway.unknown_devaddrs) == gw.MAX_UNKNOWN_DEVADDRS
    assert gateway.unknown_devaddrs_forgotten == 2 * gw.MAX_UNKNOWN_DEVADDRS
    assert gateway.totals[gw.UNKNOWN_DEVADDR] == 3 * gw.MAX_UNKNOWN_DEVADDRS


def test_no_single_bit_flip_of_an_authentic_frame_passes_the_mic() -> None:
    # lorawan_vectors.json: every frame the vectors give a NwkSKey and a valid MIC for.
    checked = 0
    for v in lorawan_vectors():
        if not (v.get("nwkskey") and v["expected"].get("mic_valid")):
            continue
        phy, key = bytes.fromhex(v["phy_hex"]), bytes.fromhex(v["nwkskey"])
        assert lw.verify_mic(phy, key)
        for bit in range(8 * len(phy)):
            flipped = bytearray(phy)
            flipped[bit // 8] ^= 1 << (bit % 8)
            try:
                assert not lw.verify_mic(bytes(flipped), key), (v["id"], bit)
            except lw.LoRaWANFrameError:
                pass
            checked += 1
    assert checked > 500


def test_long_run_command_writes_results_and_crash_files(tmp_path: Path) -> None:
    env = dict(os.environ, LORA_TELEMETRY_BENCH_RESULTS=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "bench/bench_fuzz.py", "--engine", "mutator", "--target", "codec",
         "--target", "rn2483", "--count", "300", "--time-limit", "20",
         "--crash-dir", str(tmp_path / "crashes")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "inputs/s" in out.stdout and "coverage" in out.stdout
    data = json.loads((tmp_path / "fuzz.json").read_text())
    assert [t["target"] for t in data["targets"]] == ["codec", "rn2483"]
    assert all(t["inputs"] == 300 and t["defects"] == 0 for t in data["targets"])
    assert data["total_defects"] == 0


def test_atheris_engine_runs_a_target_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    env = dict(os.environ, LORA_TELEMETRY_BENCH_RESULTS=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "bench/bench_fuzz.py", "--engine", "atheris", "--target", "codec",
         "--count", "2000", "--time-limit", "30", "--crash-dir", str(tmp_path / "crashes")],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    (target,) = json.loads((tmp_path / "fuzz.json").read_text())["targets"]
    assert target["engine"] == "atheris" and target["inputs"] == 2000
    assert target["coverage"] and target["coverage"] > 0 and target["defects"] == 0
