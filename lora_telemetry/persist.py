"""State that must survive a crash: atomic JSON files and the reserved frame counter.

A LoRaWAN device must never reuse a frame counter with the same session keys: the gateway
would drop the frame as a replay, and reused counters leak keystream. So the drone node
*reserves* counters in blocks and writes the end of the block to disk (atomically, fsync'd)
before it uses the first counter of the block. After a crash or `kill -9` it resumes at the
end of the last reservation: some counters are skipped (the gateway counts them as lost
frames), none is ever repeated.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lora_telemetry.core.errors import ConfigError

_U32_MAX = 0xFFFFFFFF


class StateFileError(ConfigError):
    """A state file that cannot be read or written."""


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, mode: int = 0o600,
                      durable: bool = True) -> None:
    """Write JSON so that readers see the old or the new content, never a torn file.

    `durable` also fsyncs the file and its directory, so the content survives a power cut
    (state that must never go back, such as frame counters); status files can skip it.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.write("\n")
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
        if durable:  # make the rename itself durable
            dir_fd = os.open(p.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise StateFileError(f"state file {p} is unreadable: {exc}") from None


class FrameCounterStore:
    """Hands out strictly increasing 32-bit uplink frame counters that survive crashes.

    The file holds ``{"next_unreserved": N, "devaddr": "26011CA2"}``: every counter below N may
    have been used. `take()` returns the next counter, first extending the on-disk reservation
    by `block` when the current block is used up.
    """

    def __init__(self, path: str | os.PathLike[str], devaddr: str, *, block: int = 32) -> None:
        if not 1 <= block <= 1024:
            raise ConfigError(f"frame-counter reservation block {block} must be 1..1024")
        self.path = Path(path)
        self.devaddr = devaddr.upper()
        self.block = block
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            data = {"next_unreserved": 0, "devaddr": self.devaddr}
        if not isinstance(data, dict) or not isinstance(data.get("next_unreserved"), int):
            raise StateFileError(f"{self.path}: not a frame-counter state file")
        if data.get("devaddr", self.devaddr).upper() != self.devaddr:
            # New session (another DevAddr): counters restart, as after an ABP re-provisioning.
            data = {"next_unreserved": 0, "devaddr": self.devaddr}
        self._next = data["next_unreserved"]  # first counter not known to be unused... resumed
        self._reserved_until = self._next
        if not 0 <= self._next <= _U32_MAX + 1:
            raise StateFileError(f"{self.path}: counter {self._next} out of range")

    @property
    def next_counter(self) -> int:
        """The counter `take()` will return next."""
        return self._next

    def take(self) -> int:
        """Reserve (durably) and return the next unused counter."""
        if self._next > _U32_MAX:
            raise StateFileError(
                f"frame counter of {self.devaddr} exhausted (2^32 frames): new session keys needed"
            )
        if self._next >= self._reserved_until:
            until = min(self._next + self.block, _U32_MAX + 1)
            atomic_write_json(self.path, {"next_unreserved": until, "devaddr": self.devaddr})
            self._reserved_until = until
        value = self._next
        self._next += 1
        return value

    def skip_to(self, counter: int) -> None:
        """Never hand out anything below `counter` (e.g. a module reports a higher upctr)."""
        if counter > self._next:
            self._next = counter
