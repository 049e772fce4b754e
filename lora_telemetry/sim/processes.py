"""Starting and stopping the simulation's processes: one implementation for the swarm
command, the tests and the benchmarks.

Each child runs in its own session (process group) and its output goes to a log file (for
humans: nothing here reads meaning into it). `ProcessGroup.stop()` ends them in reverse start
order: SIGINT (what Ctrl-C sends; ROS nodes shut down cleanly on it), then SIGTERM, then
SIGKILL for the whole group, so no orphan is ever left behind.

Readiness comes as data: a child started with ``ready=KIND`` gets a pipe of its own (see
lora_telemetry/readiness.py for the format and when each kind announces) and is ready when it
writes its announcement there; `Child.ready` then holds what it reported (e.g. the medium's
port). A child that reports a failure, writes a malformed line, exits or stays silent for the
bounded wait gives a ProcessError naming it, with the reason and the end of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping, Sequence

from lora_telemetry import readiness
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
    #: what the child announced once it was ready (None until then, or if not waited for)
    ready: readiness.Announcement | None = None
    #: the read end of the child's ready channel until it has been read
    ready_fd: int | None = None
    expected_kind: str | None = None
    log_reader: threading.Thread | None = None

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
        """Start a child; with `ready` (the kind it announces, e.g. "medium"), wait until it
        has announced itself ready (`Child.ready` has what it reported)."""
        child = self.spawn(name, argv, ready=ready, env=env)
        if ready:
            self.wait_ready(child, ready_timeout_s)
        return child

    def spawn(self, name: str, argv: Sequence[str], *, ready: str | None = None,
              env: Mapping[str, str] | None = None) -> Child:
        """Start a child without waiting (see `wait_ready`); with `ready`, give it a ready
        channel on which it is to announce itself as that kind."""
        log_path = self.log_dir / f"{name}.log"
        merged = {**self.env, **(env or {})}
        merged.pop(readiness.ENV_VAR, None)  # never a channel this process was given itself
        read_fd = write_fd = None
        if ready:
            read_fd, write_fd = os.pipe()
            merged[readiness.ENV_VAR] = readiness.channel_value(write_fd)
        try:
            popen = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=merged, start_new_session=True, text=True,
                bufsize=1, errors="replace", pass_fds=() if write_fd is None else (write_fd,),
            )
        except BaseException:
            if read_fd is not None:
                os.close(read_fd)
            raise
        finally:
            if write_fd is not None:
                os.close(write_fd)  # the child has its copy; its exit then ends the channel
        child = Child(name, list(argv), popen, log_path, ready_fd=read_fd, expected_kind=ready)
        self.children.append(child)
        child.log_reader = threading.Thread(target=self._pump, args=(child,), name=f"log-{name}",
                                            daemon=True)
        child.log_reader.start()
        return child

    @staticmethod
    def wait_ready(child: Child, timeout_s: float = 30.0) -> readiness.Announcement:
        """Wait at most `timeout_s` for the child's announcement; ProcessError (with the
        reason and its log tail) if it fails, exits, writes nonsense or stays silent."""
        if child.ready is not None:
            return child.ready
        if child.ready_fd is None:
            raise ProcessError(f"{child.name} has no ready channel to wait on (started "
                               "without ready=, or already waited for)")
        try:
            child.ready = readiness.read_announcement(
                child.ready_fd, timeout_s, still_running=child.alive, kind=child.expected_kind)
            return child.ready
        except readiness.NotReady as exc:
            reason = str(exc)
            if isinstance(exc, readiness.ChannelClosed):
                try:
                    child.popen.wait(2.0)
                    reason = f"exited with {child.popen.returncode} before it was ready"
                except subprocess.TimeoutExpired:
                    pass
            if not child.alive() and child.log_reader is not None:
                child.log_reader.join(1.0)  # so the tail has its last lines
            raise ProcessError(f"{child.name} {reason}; its log ({child.log_path}) ends "
                               f"with:\n{child.tail()}") from None
        finally:
            os.close(child.ready_fd)
            child.ready_fd = None

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
        if child.ready_fd is not None:  # spawned with a channel nobody waited on
            os.close(child.ready_fd)
            child.ready_fd = None
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
