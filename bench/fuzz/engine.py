"""Running a target: per-input time bound, defect records, crash files, replay, the run loop.

A *defect* is one input, the target, and what went wrong (the exception and where it was
raised). Defects are grouped by *signature* (exception type and the innermost frame of project
code), so a million inputs that hit one bug count as one distinct defect; each input is still
written (up to ``MAX_FILES_PER_SIGNATURE``) to ``<crash_dir>/<target>/<sha1>.bin`` with the
traceback beside it, and :func:`replay` runs such a file again.

The time bound is ``SIGALRM`` (``setitimer``), so it only applies on the main thread; the
exception it raises inside the target becomes a "hang" defect and the target's state is rebuilt.
The loop: every seed once, then mutants of the corpus; an input that produced an outcome not
seen before joins the corpus (cheap feedback without coverage). In the long run the memory that
stateful targets keep is watched with tracemalloc over the second half.
"""

from __future__ import annotations

import hashlib
import random
import signal
import threading
import time
import traceback
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fuzz.base import Target
from bench.fuzz.mutator import Mutator

MAX_FILES_PER_SIGNATURE = 20
MAX_CORPUS = 4096
#: Retained memory (allocated by project code in the watched half, still alive at the end)
#: above which a stateful target counts as leaking.
MEMORY_GROWTH_LIMIT_BYTES = 1 << 20


class Hang(BaseException):
    """Raised by the alarm inside an input that exceeded its time bound (BaseException, so
    an over-broad handler in the code under test cannot swallow it)."""


@dataclass
class Defect:
    target: str
    data: bytes
    kind: str  # exception type name, "Hang" included
    message: str
    where: str  # innermost frame of project code: path:line in function
    trace: str

    @property
    def signature(self) -> str:
        return f"{self.kind} at {self.where}"


@dataclass
class Report:
    """One target's run."""

    target: str
    engine: str = "mutator"
    inputs: int = 0
    seconds: float = 0.0
    defects: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    signatures: dict[str, int] = field(default_factory=dict)
    coverage: int | None = None
    memory_growth_bytes: int | None = None
    first_defects: list[Defect] = field(default_factory=list)

    @property
    def inputs_per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "engine": self.engine, "inputs": self.inputs,
            "seconds": round(self.seconds, 2), "inputs_per_s": round(self.inputs_per_s, 1),
            "defects": self.defects, "distinct_defects": len(self.signatures),
            "defect_signatures": self.signatures, "coverage": self.coverage,
            "memory_growth_bytes": self.memory_growth_bytes,
            "outcomes": dict(sorted(self.outcomes.items(), key=lambda kv: -kv[1])[:40]),
        }


def _alarm(signum: int, frame: Any) -> None:
    raise Hang("input exceeded its time bound")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "lora_telemetry" in f.filename] or frames
    if not ours:
        return "?"
    f = ours[-1]
    path = f.filename.split("lora_telemetry/", 1)[-1] if "lora_telemetry/" in f.filename else f.filename
    return f"{path}:{f.lineno} in {f.name}"


def execute(target: Target, data: bytes) -> tuple[str, Defect | None]:
    """Run one input: (outcome, None) or ("defect", the defect)."""
    timed = threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, target.timeout_s)
    try:
        return target.run(data), None
    except (Exception, Hang) as exc:  # the harness's job: anything the target lets out
        defect = Defect(target.name, bytes(data), type(exc).__name__, str(exc)[:500],
                        _where(exc), "".join(traceback.format_exception(exc))[-4000:])
        target.reset()
        return "defect", defect
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def write_defect(defect: Defect, crash_dir: Path) -> Path:
    directory = crash_dir / defect.target
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(defect.data).hexdigest()[:16]
    path = directory / f"{digest}.bin"
    path.write_bytes(defect.data)
    (directory / f"{digest}.txt").write_text(f"{defect.signature}\n{defect.message}\n\n{defect.trace}")
    return path


def replay(path: Path, target: Target | None = None) -> tuple[str, Defect | None]:
    """Run a crash file again; its directory names the target."""
    from bench.fuzz.targets import make_target

    target = target or make_target(path.parent.name)
    try:
        return execute(target, path.read_bytes())
    finally:
        target.close()


class Recorder:
    """Counts outcomes and defects of one target; writes crash files when given a directory."""

    def __init__(self, report: Report, crash_dir: Path | None) -> None:
        self.report = report
        self.crash_dir = crash_dir

    def record(self, outcome: str, defect: Defect | None) -> bool:
        """True when the outcome was new."""
        r = self.report
        r.inputs += 1
        new = outcome not in r.outcomes
        r.outcomes[outcome] = r.outcomes.get(outcome, 0) + 1
        if defect is not None:
            r.defects += 1
            seen = r.signatures.get(defect.signature, 0)
            r.signatures[defect.signature] = seen + 1
            if seen == 0 and len(r.first_defects) < 50:
                r.first_defects.append(defect)
            if self.crash_dir is not None and seen < MAX_FILES_PER_SIGNATURE:
                write_defect(defect, self.crash_dir)
        return new


def retained_project_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still allocated by project code (lora_telemetry/...) in a tracemalloc snapshot."""
    return sum(stat.size for stat in snapshot.statistics("filename")
               if "lora_telemetry" in (stat.traceback[0].filename or ""))


def fuzz(target: Target, *, count: int, time_limit_s: float, seed: int = 0,
         crash_dir: Path | None = None, watch_memory: bool = False) -> Report:
    """Seeds, then mutants, until ``count`` inputs or ``time_limit_s`` seconds."""
    rng = random.Random(f"{seed}:{target.name}")
    mutator = Mutator(rng, tokens=target.tokens, max_len=target.max_len)
    seeds = [s[: target.max_len] for s in target.seeds()]
    corpus = list(seeds) or [b""]
    report = Report(target.name)
    recorder = Recorder(report, crash_dir)
    watch = watch_memory and target.stateful
    watching = False
    start = time.monotonic()
    deadline = start + time_limit_s
    i = 0
    try:
        while i < count:
            data = seeds[i] if i < len(seeds) else mutator.mutate(rng.choice(corpus), corpus)
            outcome, defect = execute(target, data)
            if defect is None:
                try:
                    target.check_state()
                except AssertionError as exc:
                    outcome, defect = "defect", Defect(
                        target.name, data, type(exc).__name__, str(exc), "check_state",
                        "".join(traceback.format_exception(exc)))
            if recorder.record(outcome, defect) and defect is None and len(corpus) < MAX_CORPUS:
                corpus.append(data)
            i += 1
            if i % 256 == 0:
                now = time.monotonic()
                if now >= deadline:
                    break
                if watch and not watching and (now - start >= time_limit_s / 2 or i >= count // 2):
                    tracemalloc.start()
                    watching = True
    finally:
        report.seconds = time.monotonic() - start
        if watching:
            report.memory_growth_bytes = retained_project_bytes(tracemalloc.take_snapshot())
            tracemalloc.stop()
        target.close()
    check_memory(report)
    return report


def check_memory(report: Report) -> None:
    """Count retained memory above MEMORY_GROWTH_LIMIT_BYTES as a defect."""
    if report.memory_growth_bytes is not None and report.memory_growth_bytes > MEMORY_GROWTH_LIMIT_BYTES:
        report.defects += 1
        report.signatures[f"memory growth {report.memory_growth_bytes} B"] = 1
