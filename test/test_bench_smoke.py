"""The benchmarks run and write JSON of the documented shape (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rostest_support import require_ros

REPO = Path(__file__).resolve().parent.parent


def test_codec_benchmark_shape(tmp_path: Path) -> None:
    env = dict(os.environ, LORA_TELEMETRY_BENCH_RESULTS=str(tmp_path))
    out = subprocess.run([sys.executable, "bench/bench_codec.py", "--iterations", "50"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "codec.json").read_text())
    names = [c["name"] for c in data["codecs"]]
    assert names == ["lora_telemetry", "thesis_text", "mavlink_high_latency2"]
    ours = data["codecs"][0]
    assert ours["payload_bytes"] <= 16 and ours["frame_bytes"] == ours["payload_bytes"] + 13
    assert set(ours["airtime_ms"]) == {f"SF{sf}" for sf in range(7, 13)}
    # 29 bytes at SF7/125 kHz/CR4/5: 66.816 ms (see test_cli_core); 47-byte sentence: 60 bytes.
    assert ours["airtime_ms"]["SF7"] == 66.816
    assert data["codecs"][1]["payload_bytes"] == 47


def _run_bench(tmp_path: Path, name: str, *args: str) -> dict:
    env = dict(os.environ, LORA_TELEMETRY_BENCH_RESULTS=str(tmp_path))
    out = subprocess.run([sys.executable, f"bench/bench_{name}.py", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads((tmp_path / f"{name}.json").read_text())


@pytest.mark.slow
def test_latency_benchmark_shape(tmp_path: Path) -> None:
    require_ros()
    data = _run_bench(tmp_path, "latency", "--uavs", "1", "--duration", "12", "--period", "1")
    parts = data["latency"]
    assert {"total (state -> ROS message)", "wait (scheduling, encode, secure)",
            "air (serial, module, airtime, SPI)", "ground (verify, decode, DDS)"} <= set(parts)
    assert data["frames"] >= 3
    air = parts["air (serial, module, airtime, SPI)"]
    # The air part contains the frame's whole time on air: 66.816 ms at SF7 for 29 bytes.
    assert air["p50_ms"] >= 66.8


@pytest.mark.slow
def test_gateway_benchmark_shape(tmp_path: Path) -> None:
    require_ros()
    data = _run_bench(tmp_path, "gateway", "--minutes", "0.2", "--idle-seconds", "2", "--uavs", "2")
    for key in ("idle_cpu_percent", "cpu_ms_per_frame", "rss_mib_start", "rss_mib_end",
                "rss_slope_mib_per_min_second_half", "frame_rate_hz", "frames_delivered_to_gateway"):
        assert key in data, key
    # Back to back at SF7: at most one 66.8 ms frame at a time (< 15 frames/s).
    assert 5 < data["frame_rate_hz"] < 1 / 0.066816


def test_state_benchmark_shape(tmp_path: Path) -> None:
    data = _run_bench(tmp_path, "state", "--writes", "20", "--slow-ms", "0,100", "--seconds", "1",
                      "--dir", str(tmp_path))
    assert [r["where"] for r in data["write_cost"]][0] == "disk"
    for row in data["slow_disk"]:
        # Group commit: a slow disk delays publication but loses no frame.
        assert row["delivered"] == row["frames"] > 0
        assert 0 < row["writes_per_frame"] <= 1
