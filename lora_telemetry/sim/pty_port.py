"""The device side of an emulated serial module: a pseudo-terminal with a stable path.

The emulator holds the pty's master end; the driver under test opens the slave end (or the
stable symlink, e.g. /tmp/lora_sim/uav1.tty) with pyserial exactly as it would open
/dev/ttyUSB0. `unplug()`/`replug()` emulate pulling the USB adapter out and back in.

Two ways to use it: `read`/`write` wait (bounded) for a script or test playing the device;
`read_available`/`queue_write`/`flush` never block, for the device loop (sim/device_loop.py),
which flushes queued bytes when the fd is writable, so a host that stops reading can never
stall the device; what it leaves unread for 0.5 s is lost and counted.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from pathlib import Path

DEFAULT_PTY_DIR = Path(os.environ.get("LORA_TELEMETRY_SIM_DIR", "/tmp/lora_sim"))
#: How long bytes may wait for a host that stopped reading before they are lost.
HOST_WRITE_TIMEOUT_S = 0.5
#: Bytes that may wait at most (far more than any answer; a UART's FIFO is smaller still).
MAX_PENDING_BYTES = 65536


class PtyPort:
    """A raw-mode pseudo-terminal whose slave is reachable at `link` (a symlink)."""

    def __init__(self, link: str | os.PathLike[str] | None = None, *,
                 write_timeout_s: float = HOST_WRITE_TIMEOUT_S,
                 max_pending: int = MAX_PENDING_BYTES) -> None:
        self.link = Path(link) if link is not None else None
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.slave_path: str | None = None
        self.write_timeout_s = write_timeout_s
        self.max_pending = max_pending
        self._pending = bytearray()
        self._blocked_since = 0.0
        #: bytes lost because the host did not read them in time / while unplugged
        self.overrun_bytes = 0
        self.unplugged_bytes = 0
        self.dropped_bytes = 0  # by the blocking write()
        self.plug()

    def plug(self) -> None:
        """Create a fresh pty and point the link at it."""
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # lflag: never echo the host's commands back
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd = master, slave
        self.slave_path = os.ttyname(slave)
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link.with_name(self.link.name + ".new")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            os.replace(tmp, self.link)  # atomic: readers see the old or the new pty, never none

    def unplug(self) -> None:
        """Close both ends: the driver's reads and writes fail as on a pulled USB adapter."""
        self.unplugged_bytes += len(self._pending)
        self._pending.clear()
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master_fd = self._slave_fd = None

    def replug(self) -> None:
        self.unplug()
        self.plug()

    @property
    def path(self) -> str:
        """What a driver should open: the stable link if there is one, else the slave path."""
        return str(self.link) if self.link is not None else str(self.slave_path)

    def read(self, timeout: float) -> bytes:
        """Bytes the host wrote, waiting up to `timeout` for the first; b"" if none."""
        if self.master_fd is None:
            return b""
        ready, _, _ = select.select([self.master_fd], [], [], max(0.0, timeout))
        return self.read_available() if ready else b""

    def write(self, data: bytes, timeout: float = 0.5) -> int:
        """Send bytes to the host, waiting at most `timeout` for it to read; returns how many
        were dropped (while unplugged, like a real wire, or because the host stopped reading:
        a UART overruns, it never blocks forever)."""
        lost_before = self.overrun_bytes + self.unplugged_bytes
        start = time.monotonic()
        self._enqueue(data, start)
        while self.wants_write:
            now = time.monotonic()
            if now - start >= timeout:
                self._give_up()
                break
            select.select([], [self.master_fd], [], min(0.1, start + timeout - now))
            self._send_pending(time.monotonic())
        lost = self.overrun_bytes + self.unplugged_bytes - lost_before
        self.dropped_bytes += lost
        return lost

    # -- the device loop's side: never blocks --

    def read_available(self) -> bytes:
        """What the host wrote (non-blocking); b"" if nothing or unplugged."""
        if self.master_fd is None:
            return b""
        try:
            return os.read(self.master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:  # EIO: no process has the slave open at the moment
            return b""

    def queue_write(self, data: bytes, now: float) -> None:
        """Queue bytes for the host and send what the pty takes now; never blocks.

        Like a UART without flow control, bytes the host does not read are lost: when the
        pty stays full for ``write_timeout_s`` (or more than ``max_pending`` bytes wait), the
        waiting bytes are dropped and counted in ``overrun_bytes``. Unplugged: dropped at
        once (``unplugged_bytes``).
        """
        self._enqueue(data, now)
        self.flush(now)

    def flush(self, now: float) -> None:
        """Send what the pty takes of the queued bytes; drop them after the write timeout."""
        self._send_pending(now)
        if self._pending and now - self._blocked_since >= self.write_timeout_s:
            self._give_up()

    def _enqueue(self, data: bytes, now: float) -> None:
        if self.master_fd is None:
            self.unplugged_bytes += len(data)
            return
        if not self._pending:
            self._blocked_since = now
        self._pending += data
        if len(self._pending) > self.max_pending:
            self.overrun_bytes += len(self._pending) - self.max_pending
            del self._pending[:len(self._pending) - self.max_pending]
        self._send_pending(now)

    def _send_pending(self, now: float) -> None:
        while self._pending and self.master_fd is not None:
            try:
                n = os.write(self.master_fd, self._pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.unplugged_bytes += len(self._pending)
                self._pending.clear()
                return
            del self._pending[:n]
            self._blocked_since = now

    def _give_up(self) -> None:
        self.overrun_bytes += len(self._pending)
        self._pending.clear()

    @property
    def wants_write(self) -> bool:
        """Bytes are waiting for the pty to drain (select it for writing)."""
        return bool(self._pending) and self.master_fd is not None

    def flush_deadline(self) -> float | None:
        """When waiting bytes are given up, if any wait."""
        return self._blocked_since + self.write_timeout_s if self.wants_write else None

    def fileno(self) -> int:
        if self.master_fd is None:
            raise OSError("pty is unplugged")
        return self.master_fd

    def close(self) -> None:
        """Unplug and remove the link (no stray pseudo-terminals or links left behind)."""
        self.unplug()
        if self.link is not None and self.link.is_symlink():
            try:
                self.link.unlink()
            except OSError:
                pass
