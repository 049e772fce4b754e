"""Starting and stopping the simulation's processes: one implementation for the swarm
command, the tests and the benchmarks.

Each child runs in its own session (process group), its output goes to a log file that a
reader thread also scans for a "ready" line, and `ProcessGroup.stop()` ends them in reverse
start order: SIGINT (what Ctrl-C sends; ROS nodes shut down cleanly on it), then SIGTERM,
then SIGKILL for the whole group, so no orphan is ever left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping, Sequence

from lora_telemetry.core.errors import LoraTelemetryError


class ProcessError(LoraTelemetryError):
    """A simulation process failed to start or died."""


@dataclass
class Child:
    name: str
    argv: list[str]
    popen: subprocess.Popen
    log_path: Path
    lines: list[str] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _pattern: re.Pattern[str] | None = None
    match: re.Match[str] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 15) -> str:
        return "".join(self.lines[-n:])


class ProcessGroup:
    """Children started in order and stopped in reverse order."""

    def __init__(self, log_dir: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ if env is None else env)
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], *, ready: str | None = None,
              ready_timeout_s: float = 30.0, env: Mapping[str, str] | None = None) -> Child:
        """Start a child; with `ready` (a regex), wait until a line of its output matches."""
        child = self.spawn(name, argv, ready=ready, env=env)
        if ready:
            self.wait_ready(child, ready_timeout_s)
        return child

    def spawn(self, name: str, argv: Sequence[str], *, ready: str | None = None,
              env: Mapping[str, str] | None = None) -> Child:
        """Start a child without waiting (see `wait_ready`)."""
        log_path = self.log_dir / f"{name}.log"
        merged = {**self.env, **(env or {})}
        popen = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=merged, start_new_session=True, text=True, bufsize=1, errors="replace",
        )
        child = Child(name, list(argv), popen, log_path,
                      _pattern=re.compile(ready) if ready else None)
        self.children.append(child)
        threading.Thread(target=self._pump, args=(child,), name=f"log-{name}", daemon=True).start()
        return child

    @staticmethod
    def wait_ready(child: Child, timeout_s: float = 30.0) -> None:
        """Wait for the child's ready line; ProcessError (with its log tail) if it dies first."""
        deadline = time.monotonic() + timeout_s
        while not child._ready.wait(0.1):
            if not child.alive():
                time.sleep(0.2)  # let the reader thread catch the last lines
                raise ProcessError(f"{child.name} exited with {child.popen.returncode} before it "
                                   f"was ready; its log ({child.log_path}) ends with:\n{child.tail()}")
            if time.monotonic() > deadline:
                raise ProcessError(f"{child.name} not ready after {timeout_s:g} s; its log "
                                   f"({child.log_path}) ends with:\n{child.tail()}")

    @staticmethod
    def _pump(child: Child) -> None:
        out: IO[str] | None = child.popen.stdout
        assert out is not None
        with open(child.log_path, "w") as log:
            for line in out:
                log.write(line)
                log.flush()
                child.lines.append(line)
                if len(child.lines) > 2000:
                    del child.lines[:1000]
                if child._pattern is not None and not child._ready.is_set():
                    m = child._pattern.search(line)
                    if m:
                        child.match = m
                        child._ready.set()

    def dead(self) -> list[Child]:
        return [c for c in self.children if not c.alive()]

    def stop(self, child: Child, timeout_s: float = 8.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL to the child's whole process group."""
        for sig, wait in ((signal.SIGINT, timeout_s * 0.6), (signal.SIGTERM, timeout_s * 0.4),
                          (signal.SIGKILL, 5.0)):
            if not child.alive():
                break
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            try:
                child.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        # Whatever the child left in its group (e.g. a node's helper process) goes too.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return child.popen.returncode

    def stop_all(self, timeout_s: float = 8.0) -> None:
        for child in reversed(self.children):
            self.stop(child, timeout_s)

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def python_module(module: str, *args: str) -> list[str]:
    """argv running one of our modules with this interpreter."""
    return [sys.executable, "-m", module, *args]
