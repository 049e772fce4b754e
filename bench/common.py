"""Shared by the benchmarks: result files with the machine they ran on, and plain tables."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
# Tests point this elsewhere so a smoke run never rewrites the committed results.
RESULTS = Path(os.environ.get("LORA_TELEMETRY_BENCH_RESULTS", REPO / "bench" / "results"))


def testdata_dir() -> Path:
    """The vectors and logs shared with the project's other repositories: beside the clone
    (../shared/testdata), or where LORA_TELEMETRY_TESTDATA says."""
    env = os.environ.get("LORA_TELEMETRY_TESTDATA")
    path = Path(env) if env else REPO.parent / "shared" / "testdata"
    if not (path / "seed_vectors.json").is_file():
        raise RuntimeError(
            f"test data not found at {path}: clone next to ../shared or set LORA_TELEMETRY_TESTDATA"
        )
    return path


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json (atomically) with the command and machine added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {"benchmark": name, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)
