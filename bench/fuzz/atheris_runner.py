"""One target under atheris (coverage-guided libFuzzer); run by bench_fuzz.py as a subprocess.

libFuzzer owns the process (it exits when ``-runs`` or ``-max_total_time`` is reached), so the
counts are written to ``--summary`` as the run goes (at every defect and every 2 s)
and libFuzzer's final statistics (executed units, ``cov:``) are read from its log by the
parent. The target function is wrapped in :func:`bench.fuzz.engine.execute`, which never
raises: a defect is recorded and written to the crash directory and fuzzing goes on, so one
run counts every defect instead of stopping at the first. libFuzzer's own timeout is off
(``-timeout=0``) because execute's per-input alarm uses the same signal.

Usage: python -m bench.fuzz.atheris_runner --target NAME --runs N --max-time S --seed N
       --crash-dir DIR --summary FILE
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.fuzz.engine import (  # noqa: E402
    Defect, Recorder, Report, check_memory, execute, retained_project_bytes,
)
from bench.fuzz.mutator import NUMBER_TEXTS  # noqa: E402
from bench.fuzz.targets import make_target  # noqa: E402


def dictionary_line(token: bytes) -> str:
    body = "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in '"\\' else f"\\x{b:02X}"
                   for b in token)
    return f'"{body}"'


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--max-time", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crash-dir", type=Path, required=True)
    ap.add_argument("--summary", type=Path, required=True)
    args = ap.parse_args(argv)

    import atheris

    target = make_target(args.target)
    report = Report(target.name, engine="atheris")
    recorder = Recorder(report, args.crash_dir)
    work = Path(tempfile.mkdtemp(prefix=f"lora_telemetry_atheris_{target.name}_"))
    corpus = work / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(target.seeds()):
        (corpus / f"seed-{i:04d}").write_bytes(seed[: target.max_len])
    dictionary = work / "tokens.dict"  # the target's tokens and the mutator's numbers
    dictionary.write_text("".join(dictionary_line(t) + "\n"
                                  for t in (*target.tokens, *NUMBER_TEXTS) if t))
    clock = {"start": 0.0, "written": 0.0}  # set by the first input (after instrumenting)
    memory = {"watching": False, "done": not target.stateful}

    def watch_memory(elapsed: float) -> None:
        """Stateful targets: trace allocations over the second half, measure near the end
        (libFuzzer gives no end-of-run callback, so "the end" is the last input or 5 s before
        the time limit)."""
        if not memory["watching"] and (elapsed >= args.max_time / 2 or report.inputs >= args.runs // 2):
            tracemalloc.start()
            memory["watching"] = True
        elif memory["watching"] and (elapsed >= args.max_time - 5 or report.inputs >= args.runs - 1):
            report.memory_growth_bytes = retained_project_bytes(tracemalloc.take_snapshot())
            tracemalloc.stop()
            memory["done"] = True
            check_memory(report)
            write_summary()

    def write_summary() -> None:
        now = time.monotonic()
        report.seconds = now - clock["start"] if clock["start"] else 0.0
        clock["written"] = now
        tmp = args.summary.with_suffix(".tmp")
        tmp.write_text(json.dumps(report.as_dict()))
        os.replace(tmp, args.summary)

    def test_one_input(data: bytes) -> None:
        if not clock["start"]:
            clock["start"] = time.monotonic()
        outcome, defect = execute(target, data)
        if defect is None:
            try:
                target.check_state()
            except AssertionError as exc:
                outcome, defect = "defect", Defect(target.name, data, type(exc).__name__,
                                                   str(exc), "check_state", repr(exc))
        recorder.record(outcome, defect)
        if not memory["done"]:
            watch_memory(time.monotonic() - clock["start"])
        if defect is not None or time.monotonic() - clock["written"] >= 2.0:
            write_summary()

    write_summary()
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", f"-max_total_time={max(1, int(args.max_time))}",
                   f"-seed={args.seed + 1}", "-timeout=0", f"-max_len={target.max_len}",
                   f"-dict={dictionary}", "-print_final_stats=1", str(corpus)], test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
