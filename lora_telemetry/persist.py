"""State that must survive a crash: atomic JSON files and the frame counters of both ends.

A LoRaWAN device must never reuse a frame counter with the same session keys: the gateway
would drop the frame as a replay, and reused counters leak keystream. So the drone node
*reserves* counters in blocks and writes the end of the block to disk (atomically, fsync'd)
before it uses the first counter of the block. After a crash or `kill -9` it resumes at the
end of the last reservation: some counters are skipped (the gateway counts them as lost
frames), none is ever repeated.

The ground keeps the other half (:class:`GroundCounterStore`): per device, the last accepted
32-bit FCntUp, written durably before the frame is published, so that no frame accepted
before a restart, a `kill -9` or a power cut is ever accepted again. LoRaWAN network servers
keep FCntUp per device in a database for the same reason (LoRaWAN 1.0 section 4.3.1.5: the
receiver tracks the counter and drops frames that do not advance it).

Both stores remember the *session* they belong to, a fingerprint of the session keys
(:func:`session_fingerprint`). New keys (``lora-telemetry keys rotate``) start a new session:
counters start over at 0 on both ends, which is safe because frames of the old session do
not verify under the new keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lora_telemetry.core.errors import ConfigError

_U32_MAX = 0xFFFFFFFF


def session_fingerprint(nwkskey: bytes, appskey: bytes) -> str:
    """16 hex digits naming one set of session keys: SHA-256 over both keys, truncated.

    It tells a state file which session its counters belong to without holding the keys
    (the keys are 256 random bits; 64 bits of their hash reveal nothing usable)."""
    digest = hashlib.sha256(b"lora_telemetry session\0" + bytes(nwkskey) + bytes(appskey))
    return digest.hexdigest()[:16]


def default_state_dir() -> Path:
    """Where state that must survive restarts goes by default: $XDG_STATE_HOME/lora_telemetry
    (~/.local/state/lora_telemetry), as the XDG base directory specification suggests."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lora_telemetry"


class StateFileError(ConfigError):
    """A state file that cannot be read or written."""


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, mode: int = 0o600,
                      durable: bool = True) -> None:
    """Write JSON so that readers see the old or the new content, never a torn file.

    `durable` also fsyncs the file and its directory, so the content survives a power cut
    (state that must never go back, such as frame counters); status files can skip it.
    """
    p = Path(path)
    # A directory created for an owner-only file is owner-only too.
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if not mode & 0o077 else 0o755)
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

    def __init__(self, path: str | os.PathLike[str], devaddr: str, *, block: int = 32,
                 session: str | None = None) -> None:
        if not 1 <= block <= 1024:
            raise ConfigError(f"frame-counter reservation block {block} must be 1..1024")
        self.path = Path(path)
        self.devaddr = devaddr.upper()
        self.session = session
        self.block = block
        fresh = {"next_unreserved": 0, "devaddr": self.devaddr}
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            data = fresh
        if not isinstance(data, dict) or not isinstance(data.get("next_unreserved"), int) \
                or not isinstance(data.get("devaddr", ""), str):
            raise StateFileError(f"{self.path}: not a frame-counter state file")
        if data.get("devaddr", self.devaddr).upper() != self.devaddr:
            # New session (another DevAddr): counters restart, as after an ABP re-provisioning.
            data = fresh
        elif session is not None and data.get("session", session) != session:
            # New session keys for the same DevAddr (keys rotate): counters restart too.
            data = fresh
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
            state: dict[str, Any] = {"next_unreserved": until, "devaddr": self.devaddr}
            if self.session is not None:
                state["session"] = self.session
            atomic_write_json(self.path, state)
            self._reserved_until = until
        value = self._next
        self._next += 1
        return value

    def skip_to(self, counter: int) -> None:
        """Never hand out anything below `counter` (e.g. a module reports a higher upctr)."""
        if counter > self._next:
            self._next = counter


# ------------------------------------------------------------------------------ ground side


@dataclass(frozen=True)
class DeviceCounters:
    """What the ground must remember about one device's session across restarts."""

    session: str
    #: last accepted 32-bit FCntUp; None before the session's first frame
    fcnt_up: int | None = None
    #: the next FCntDown the gateway may use (downlinks; every lower value may have been used)
    fcnt_down_next: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "fcnt_up": self.fcnt_up,
                "fcnt_down_next": self.fcnt_down_next}


class GroundCounterStore:
    """The gateway's frame counters per device (by DevAddr), durable across restarts.

    The file is JSON, owner-only, rewritten atomically (temporary file, fsync, rename, fsync
    of the directory) on every change::

        {"format": 1, "devices": {"260B0001": {"session": "9f2c...", "fcnt_up": 1234,
                                              "fcnt_down_next": 0}}}

    Entries are never dropped, also not for devices no longer registered: a device that comes
    back must not be replayable. A file that cannot be read, is not of this format or may be
    changed by other users is an error at start-up naming the file and the way out; it is
    never silently reset (that would re-open every recorded frame to replay).
    """

    FORMAT = 1

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._devices: dict[int, DeviceCounters] = {}
        self.writes = 0
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            data = None
        except StateFileError as exc:
            raise StateFileError(f"{exc}. {self._way_out()}") from None
        if data is not None:
            self._check_permissions()
            self._devices = self._parse(data)

    def _way_out(self) -> str:
        return (f"Restore {self.path} from a backup, or move it away to start over (every UAV's "
                "next frame then sets its counter, so frames recorded before could be replayed "
                "once; rotating the keys with `lora-telemetry keys rotate` closes that)")

    def _check_permissions(self) -> None:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise StateFileError(
                f"frame-counter state file {self.path}: permissions {stat.filemode(mode)} let "
                f"other users change the counters (and so replay frames); run: chmod 600 {self.path}")

    def _parse(self, data: Any) -> dict[int, DeviceCounters]:
        bad = f"frame-counter state file {self.path} is not a ground counter file"
        if not isinstance(data, dict) or data.get("format") != self.FORMAT \
                or not isinstance(data.get("devices"), dict):
            raise StateFileError(f"{bad} (format {self.FORMAT}). {self._way_out()}")
        devices: dict[int, DeviceCounters] = {}
        for key, entry in data["devices"].items():
            try:
                addr = int(key, 16)
                if len(key) != 8 or not isinstance(entry, dict) or set(entry) - {
                        "session", "fcnt_up", "fcnt_down_next"}:
                    raise ValueError
                session = entry["session"]
                up = entry.get("fcnt_up")
                down = entry.get("fcnt_down_next", 0)
                if not isinstance(session, str) or not (up is None or _is_u32(up)) \
                        or not (_is_u32(down) or down == _U32_MAX + 1):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise StateFileError(f"{bad}: entry {key!r} is damaged. {self._way_out()}") from None
            devices[addr] = DeviceCounters(session, up, down)
        return devices

    def restore(self, devaddr: int, session: str) -> DeviceCounters:
        """The stored counters of this device if they belong to this session, else a new
        session's (nothing is written until the first frame of that session)."""
        stored = self._devices.get(devaddr)
        if stored is not None and stored.session == session:
            return stored
        return DeviceCounters(session)

    def known(self, devaddr: int) -> DeviceCounters | None:
        return self._devices.get(devaddr)

    def record_uplinks(self, accepted: Mapping[int, tuple[str, int]]) -> None:
        """Durably record the last accepted FCntUp of each device ({devaddr: (session,
        fcnt32)}), in one write. Raises StateFileError (nothing is lost in memory)."""
        changed = False
        for addr, (session, fcnt) in accepted.items():
            old = self._devices.get(addr)
            if old is not None and old.session == session:
                if old.fcnt_up is not None and fcnt <= old.fcnt_up:
                    continue  # counters never go back
                new = DeviceCounters(session, fcnt, old.fcnt_down_next)
            else:
                new = DeviceCounters(session, fcnt)
            self._devices[addr] = new
            changed = True
        if changed:
            self._write()

    def reserve_fcnt_down(self, devaddr: int, session: str) -> int:
        """Reserve the next FCntDown of a device durably and return it.

        ``fcnt_down_next`` is advanced and written (atomic, fsync'd) *before* the counter is
        returned, so a frame built with it may go on the air: after a restart, a crash or a
        power cut the ground continues above it and never reuses a downlink counter with the
        same keys (LoRaWAN 1.0 section 4.3.1.5: the end-device follows the counter only if it
        has incremented). A new session (other keys) starts at 0. Raises StateFileError when
        the counter cannot be stored (nothing may be sent then; the counter stays skipped in
        memory, never reused) or is exhausted (2**32 frames).
        """
        old = self._devices.get(devaddr)
        if old is not None and old.session == session:
            value, up = old.fcnt_down_next, old.fcnt_up
        else:
            value, up = 0, None
        if value > _U32_MAX:
            raise StateFileError(
                f"FCntDown of {devaddr:08X} exhausted (2^32 frames): new session keys needed")
        self._devices[devaddr] = DeviceCounters(session, up, value + 1)
        self._write()
        return value

    def _write(self) -> None:
        body = {"format": self.FORMAT,
                "devices": {f"{a:08X}": c.to_json() for a, c in sorted(self._devices.items())}}
        try:
            atomic_write_json(self.path, body, mode=0o600)
        except OSError as exc:
            raise StateFileError(f"cannot write frame-counter state file {self.path}: {exc}") from None
        self.writes += 1


def _is_u32(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U32_MAX



class DownlinkCounterStore:
    """The drone's last accepted FCntDown, durable across restarts (one small JSON file).

    ``{"devaddr": "26011CA2", "session": "9f2c...", "last_fcnt_down": 17}``. The command
    verifier (``core.command.DownlinkVerifier``) calls :meth:`record` after a downlink's MIC
    verified and before the command is acted on (check, then accept), so a recorded command
    frame stays a replay after a restart. Another DevAddr or session starts over (None).
    """

    def __init__(self, path: str | os.PathLike[str], devaddr: str, *,
                 session: str | None = None) -> None:
        self.path = Path(path)
        self.devaddr = devaddr.upper()
        self.session = session
        self.writes = 0
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            data = {"devaddr": self.devaddr, "last_fcnt_down": None}
        if not isinstance(data, dict) or not isinstance(data.get("devaddr"), str) \
                or not (data.get("last_fcnt_down") is None or _is_u32(data["last_fcnt_down"])):
            raise StateFileError(f"{self.path}: not a downlink-counter state file")
        last = data.get("last_fcnt_down")
        if data["devaddr"].upper() != self.devaddr or (
                session is not None and data.get("session", session) != session):
            last = None  # new session: the ground's FCntDown restarts at 0 too
        self._last: int | None = last

    @property
    def last_fcnt32(self) -> int | None:
        """The last accepted 32-bit FCntDown of this session (None before the first)."""
        return self._last

    def record(self, fcnt32: int) -> None:
        """Durably store an accepted FCntDown; it never goes back."""
        if not _is_u32(fcnt32):
            raise StateFileError(f"FCntDown {fcnt32!r} is not a 32-bit counter")
        if self._last is not None and fcnt32 <= self._last:
            raise StateFileError(f"FCntDown {fcnt32} does not advance {self._last}")
        state: dict[str, Any] = {"devaddr": self.devaddr, "last_fcnt_down": fcnt32}
        if self.session is not None:
            state["session"] = self.session
        try:
            atomic_write_json(self.path, state)
        except OSError as exc:
            raise StateFileError(f"cannot write downlink-counter file {self.path}: {exc}") from None
        self._last = fcnt32
        self.writes += 1
