"""The device side of an emulated serial module: a pseudo-terminal with a stable path.

The emulator holds the pty's master end; the driver under test opens the slave end (or the
stable symlink, e.g. /tmp/lora_sim/uav1.tty) with pyserial exactly as it would open
/dev/ttyUSB0. `unplug()`/`replug()` emulate pulling the USB adapter out and back in.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from pathlib import Path

DEFAULT_PTY_DIR = Path(os.environ.get("LORA_TELEMETRY_SIM_DIR", "/tmp/lora_sim"))


class PtyPort:
    """A raw-mode pseudo-terminal whose slave is reachable at `link` (a symlink)."""

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.slave_path: str | None = None
        self.dropped_bytes = 0
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
        if not ready:
            return b""
        try:
            return os.read(self.master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:  # EIO: no process has the slave open at the moment
            return b""

    def write(self, data: bytes, timeout: float = 0.5) -> int:
        """Send bytes to the host; returns how many were dropped.

        Dropped while unplugged, like a real wire, and after `timeout` seconds if the host
        stops reading and the pty buffer is full (a UART overruns; it never blocks forever).
        """
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view and self.master_fd is not None:
            try:
                n = os.write(self.master_fd, view)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.dropped_bytes += len(view)
                    return len(view)
                select.select([], [self.master_fd], [], min(0.1, remaining))
                continue
            except OSError:
                break
            view = view[n:]
        self.dropped_bytes += len(view)
        return len(view)

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
