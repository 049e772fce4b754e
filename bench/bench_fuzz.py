"""Benchmark: the long fuzz campaign over every decoder of outside bytes (bench/fuzz/).

Each target gets ``--count`` inputs or ``--time-limit`` seconds, whichever comes first: under
atheris (coverage-guided, one subprocess per target) when it is installed, otherwise with the
seeded mutator of bench/fuzz/mutator.py (``--engine`` forces one). Prints a table (target,
engine, inputs, seconds, inputs/s, defects, coverage where known, retained memory of stateful
targets) and writes bench/results/fuzz.json (a run of some targets replaces only their rows,
each of which records the command that produced it). Every defect's input goes to ``--crash-dir``
(default bench/results/fuzz-crashes/<target>/) with its traceback; ``--replay FILE...`` runs
such files again. Exit status 1 when any defect was found.

Usage: python bench/bench_fuzz.py [--target NAME ...] [--count N] [--time-limit S] [--seed N]
       [--engine auto|atheris|mutator] [--crash-dir DIR] [--replay FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, machine, print_table, write_result  # noqa: E402
from bench.fuzz.engine import Report, fuzz, replay  # noqa: E402
from bench.fuzz.targets import SLOW_TARGETS, TARGETS, make_target  # noqa: E402


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(name: str, count: int, time_limit: float, seed: int, crash_dir: Path) -> Report:
    with tempfile.TemporaryDirectory(prefix="lora_telemetry_fuzz_") as tmp:
        summary, log = Path(tmp) / "summary.json", Path(tmp) / "libfuzzer.log"
        # libFuzzer ends the runner with exit(), so nothing in it cleans up: its temporary
        # files (corpus, the targets' files) go into this directory, removed here.
        env = dict(os.environ, TMPDIR=tmp)
        with open(log, "wb") as out:
            subprocess.run(
                [sys.executable, "-m", "bench.fuzz.atheris_runner", "--target", name,
                 "--runs", str(count), "--max-time", str(time_limit), "--seed", str(seed),
                 "--crash-dir", str(crash_dir), "--summary", str(summary)],
                cwd=Path(__file__).resolve().parent.parent, stdout=out, stderr=subprocess.STDOUT,
                timeout=time_limit + 300, check=False, env=env)
        text = log.read_text(errors="replace")
        data = json.loads(summary.read_text()) if summary.exists() else {}
    report = Report(name, engine="atheris", inputs=data.get("inputs", 0),
                    seconds=data.get("seconds", 0.0), defects=data.get("defects", 0),
                    outcomes=data.get("outcomes", {}),
                    signatures=data.get("defect_signatures", {}),
                    memory_growth_bytes=data.get("memory_growth_bytes"))
    # The summary may lag by up to 2 s; libFuzzer's final statistics do not.
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    if executed:
        report.inputs = max(report.inputs, int(executed.group(1)))
    done = re.search(r"Done \d+ runs in (\d+) second", text)
    if done:
        report.seconds = max(report.seconds, float(done.group(1)))
    coverage = re.findall(r"\bcov: (\d+)", text)
    report.coverage = int(coverage[-1]) if coverage else None
    if report.inputs == 0:  # the runner died before fuzzing (an import error, a bad target)
        print(text[-3000:], file=sys.stderr)
        report.defects += 1
        report.signatures["atheris runner failed before the first input"] = 1
    crash = re.search(r"==\d+== ERROR: libFuzzer: (.*)", text)
    if crash:  # libFuzzer itself stopped (out of memory, a crash in native code)
        report.defects += 1
        report.signatures[f"libFuzzer: {crash.group(1)}"] = 1
    return report


def _previous_targets() -> list[dict]:
    try:
        return json.loads((RESULTS / "fuzz.json").read_text()).get("targets", [])
    except (OSError, ValueError):
        return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", action="append", choices=sorted(TARGETS),
                    help="target to fuzz (repeatable; default: all)")
    ap.add_argument("--count", type=int, default=1_000_000, help="inputs per target (1000000)")
    ap.add_argument("--time-limit", type=float, default=600.0,
                    help="seconds per target (600)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the mutator (0)")
    ap.add_argument("--engine", choices=("auto", "atheris", "mutator"), default="auto")
    ap.add_argument("--crash-dir", type=Path, default=RESULTS / "fuzz-crashes",
                    help="where defect inputs are written (bench/results/fuzz-crashes)")
    ap.add_argument("--replay", type=Path, nargs="+", metavar="FILE",
                    help="run crash files again (their directory names the target)")
    args = ap.parse_args(argv)

    if args.replay:
        failed = 0
        for path in args.replay:
            outcome, defect = replay(path)
            failed += defect is not None
            print(f"{path}: {defect.signature + ': ' + defect.message if defect else outcome}")
        return 1 if failed else 0

    engine = args.engine
    if engine == "auto":
        engine = "atheris" if atheris_available() else "mutator"
    names = args.target or list(TARGETS)
    reports = []
    for name in names:
        print(f"fuzzing {name} ({engine}, up to {args.count} inputs / {args.time_limit:g} s)...",
              flush=True)
        if engine == "atheris":
            report = run_atheris(name, args.count, args.time_limit, args.seed, args.crash_dir)
        else:
            report = fuzz(make_target(name), count=args.count, time_limit_s=args.time_limit,
                          seed=args.seed, crash_dir=args.crash_dir, watch_memory=True)
        reports.append(report)
        for signature, n in report.signatures.items():
            print(f"  defect x{n}: {signature}")

    rows = [(r.target, r.engine, r.inputs, r.seconds, r.inputs_per_s, r.defects,
             len(r.signatures), "-" if r.coverage is None else r.coverage,
             "-" if r.memory_growth_bytes is None else f"{r.memory_growth_bytes / 1024:.1f} KiB")
            for r in reports]
    print_table(("target", "engine", "inputs", "seconds", "inputs/s", "defects", "distinct",
                 "coverage", "memory kept"), rows)
    run = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "seed": args.seed,
           "count": args.count, "time_limit_s": args.time_limit, "when_utc": machine()["when_utc"]}
    entries = {t["target"]: t for t in _previous_targets()}  # a --target run updates its rows
    entries.update({r.target: {**r.as_dict(), "run": run} for r in reports})
    targets = [entries[n] for n in TARGETS if n in entries]
    path = write_result("fuzz", {
        "slow_targets": sorted(SLOW_TARGETS), "crash_dir": str(args.crash_dir),
        "targets": targets, "total_defects": sum(t["defects"] for t in targets),
    })
    print(f"wrote {path}")
    return 1 if any(r.defects for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
