"""The benchmarks run and write JSON of the documented shape (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
