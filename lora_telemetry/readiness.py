"""Readiness as data: a child process tells whoever started it that it is up, on a pipe made
for that, never through the wording of a log line (log lines are for humans and change).

The channel. `ProcessGroup` (sim/processes.py) opens one pipe per child it waits for, hands
the child the write end (``pass_fds``) and names it in ``LORA_TELEMETRY_READY_FD`` as
``FD:INODE``. The child writes one line, a JSON object, and closes its end:

    {"ready": "<kind>", "pid": 123, ...what the kind reports}     e.g. the medium's "port"
    {"failed": "<reason>", "pid": 123}                              it gives up before being up

Only the first announcement of a process counts; later ones do nothing (a ground node whose
radio reopens does not announce twice). Without the variable (a process started by
``ros2 launch`` or from a shell), or when the variable names a descriptor that is not that
pipe (a grandchild that inherited the environment but not the descriptor), announcing does
nothing: the inode check keeps a stray variable from writing into an unrelated file.

When each kind announces (its caller says the same):

  medium   the hub's UDP socket is bound (cli/sim_medium.py): host, port, seed
  module   the emulated module's pty link exists and it starts serving (cli/sim_module.py):
           path, type, name; a driver opening the link now is answered
  vehicle  the simulator is built: every MAVLink output opened once (cli/sim_vehicle.py):
           vehicles (system ids), out
  drone    parameters validated, keys and counters loaded, and the uplink loop has made its
           first pass, which tries to open the radio (nodes/drone_node.py): uav, radio_open,
           radio_error. An open radio is *not* required: the node is built to wait for a
           radio that is unplugged or rebooting and retries it with back-off, so a missing
           module is a state it reports (here and in /diagnostics), not a failed start.
  ground   the gateway radio is configured and listening (nodes/ground_node.py): listening,
           radio, frequency_hz, sf. Here the radio is required: listening is the ground
           node's whole job, and frames sent before it would be lost.

The reader, `read_announcement`, waits at most its timeout and returns the parsed
`Announcement`, or raises `NotReady` with a reason for humans: the child reported a failure,
wrote a malformed line, closed the channel or exited without announcing, or the time ran out.
The caller adds the process's name and log tail.
"""

from __future__ import annotations

import json
import os
import select
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lora_telemetry.core.errors import LoraTelemetryError

ENV_VAR = "LORA_TELEMETRY_READY_FD"
#: An announcement is one short line; anything longer is not one.
MAX_LINE_BYTES = 16384
_POLL_S = 0.1

_announce_lock = threading.Lock()
_announced = False


# -- the child's side -----------------------------------------------------------------------
def announce_ready(kind: str, **fields: Any) -> bool:
    """Say "up" to the parent, with what it needs to know (JSON-serialisable values).
    Returns whether a line was written (False without a channel or after a first call)."""
    return _announce({"ready": kind, "pid": os.getpid(), **fields})


def announce_failed(reason: str) -> bool:
    """Say "not coming up, because ..." to the parent (before exiting with an error)."""
    return _announce({"failed": reason, "pid": os.getpid()})


def _announce(message: dict[str, Any]) -> bool:
    global _announced
    with _announce_lock:
        if _announced:
            return False
        fd = _channel_fd()
        if fd is None:
            return False
        _announced = True
        os.environ.pop(ENV_VAR, None)  # a process this one starts has no channel
        data = (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:  # the parent is gone: nobody waits for the line any more
            pass
        finally:
            os.close(fd)
        return True


def channel_value(fd: int) -> str:
    """The variable's value naming pipe end `fd` (for the parent to put in the child's env)."""
    return f"{fd}:{os.fstat(fd).st_ino}"


def _channel_fd() -> int | None:
    value = os.environ.get(ENV_VAR, "")
    fd_text, _, inode_text = value.partition(":")
    try:
        fd, inode = int(fd_text), int(inode_text)
        st = os.fstat(fd)
    except (ValueError, OSError):
        return None
    if not stat.S_ISFIFO(st.st_mode) or st.st_ino != inode:
        return None
    return fd


# -- the parent's side ----------------------------------------------------------------------
class NotReady(LoraTelemetryError):
    """The child did not become ready; the message says why (without the process's name)."""


class MalformedAnnouncement(NotReady):
    """The child wrote something on its ready channel that is not an announcement."""


class ReportedFailure(NotReady):
    """The child said it failed (its reason is the message)."""


class ChannelClosed(NotReady):
    """The channel closed, or the child exited, with no announcement."""


class ReadyTimeout(NotReady):
    """No announcement within the wait."""


@dataclass(frozen=True)
class Announcement:
    kind: str
    pid: int
    fields: dict[str, Any] = field(default_factory=dict)  # everything else the child reported

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


def parse_announcement(line: bytes) -> Announcement:
    """One line from a ready channel; MalformedAnnouncement unless it is a well-formed ready
    line, ReportedFailure for a well-formed failure line."""
    if len(line) > MAX_LINE_BYTES:
        raise MalformedAnnouncement(f"wrote a ready line longer than {MAX_LINE_BYTES} bytes")
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise _malformed("that is not UTF-8", line) from None
    except ValueError:
        raise _malformed("that is not JSON", line) from None
    if not isinstance(message, dict):
        raise _malformed("that is not a JSON object", line)
    if ("ready" in message) == ("failed" in message):
        raise _malformed('with neither or both of "ready" and "failed"', line)
    pid = message.pop("pid", None)
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise _malformed('without a valid "pid"', line)
    if "failed" in message:
        reason = message["failed"]
        if not isinstance(reason, str):
            raise _malformed('whose "failed" is not a string', line)
        raise ReportedFailure(f"reported that it failed: {reason}")
    kind = message.pop("ready")
    if not isinstance(kind, str) or not kind:
        raise _malformed('whose "ready" is not a kind name', line)
    return Announcement(kind, pid, message)


def read_announcement(fd: int, timeout_s: float, *, still_running: Callable[[], bool],
                      kind: str | None = None) -> Announcement:
    """Read the first line from ready channel `fd` (the read end) within `timeout_s`.

    `still_running()` is asked between reads, so an exit is noticed even when a descendant
    keeps the channel open. With `kind`, an announcement of another kind is refused (the
    wrong program was started)."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while b"\n" not in data:
        if len(data) > MAX_LINE_BYTES:
            raise MalformedAnnouncement(f"wrote a ready line longer than {MAX_LINE_BYTES} bytes")
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReadyTimeout(f"not ready after {timeout_s:g} s")
        running = still_running()  # asked before the look, so a line written before exit counts
        readable, _, _ = select.select([fd], [], [], min(_POLL_S, left) if running else 0.0)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
        elif not running:
            break
    line, newline, _ = data.partition(b"\n")
    if not newline:
        if data:
            raise _malformed("cut short", data)
        raise ChannelClosed("closed its ready channel without announcing")
    announcement = parse_announcement(line)
    if kind is not None and announcement.kind != kind:
        raise MalformedAnnouncement(
            f"announced itself ready as {announcement.kind!r}, expected {kind!r}")
    return announcement


def _malformed(what: str, line: bytes) -> MalformedAnnouncement:
    return MalformedAnnouncement(f"wrote a ready line {what}: {_excerpt(line)}")


def _excerpt(data: bytes, limit: int = 80) -> str:
    text = data.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
