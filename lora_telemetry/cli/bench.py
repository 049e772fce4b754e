"""`lora-telemetry bench NAME`: run one benchmark of the source checkout's bench/ directory.

Benchmarks print a table and write bench/results/NAME.json; they are not part of the
installed library (`pip install .`), so this needs a checkout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import lora_telemetry
from lora_telemetry.core.errors import ConfigError

NAMES = ("codec", "rate", "swarm", "latency", "gateway", "throughput", "sx1276", "state",
         "module_timing", "tdma_capacity", "fuzz")
#: What "all" runs: the fuzz campaign (up to 10 min per target) is its own command, make fuzz.
ALL = tuple(n for n in NAMES if n != "fuzz")


def bench_dir() -> Path:
    # With colcon's symlink install the package files link back into the checkout.
    return Path(lora_telemetry.__file__).resolve().parent.parent / "bench"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("bench", help="run a benchmark (checkout only): " + ", ".join(NAMES),
                              description=__doc__.splitlines()[0])
    p.add_argument("name", choices=NAMES + ("all",), help="benchmark to run")
    p.add_argument("bench_args", nargs=argparse.REMAINDER,
                   help="options passed to the benchmark (see its --help)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    directory = bench_dir()
    names = ALL if args.name == "all" else (args.name,)
    for name in names:
        script = directory / f"bench_{name}.py"
        if not script.is_file():
            raise ConfigError(f"{script} not found: benchmarks live in the source checkout's bench/")
        rc = subprocess.call([sys.executable, str(script), *args.bench_args], cwd=directory.parent)
        if rc != 0:
            return rc
    return 0
