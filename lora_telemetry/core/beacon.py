"""The TDMA beacon: the ground's first downlink, in slot 0 of a superframe (core/tdma.py).

Wire format (17 bytes, little-endian like LoRaWAN; docs/wire-format.md "Beacon")::

    MHDR    1   0xE0: MType 111 "Proprietary", Major 0 (LoRaWAN 1.0 section 4.2.1), so a
                LoRaWAN gateway or network server never takes it for a data frame
    version 1   0x01 (this format)
    epoch   1   the schedule's epoch (TdmaSchedule.epoch): nodes configured with another
                schedule refuse to follow this one
    number  4   the superframe number m: the superframe starts at m * period (Unix time)
    heard   3   bit s-1 set: the gateway received the frame of slot s in superframe m - 1
    pending 3   bit s-1 set: a downlink waits for the UAV of slot s (it listens after its slot)
    MIC     4   AES-CMAC(beacon key, "LTB1" | MHDR ... pending)[0:4]

Decisions worth knowing:

* **Authenticated, counter-protected.** The MIC uses a network-wide beacon key from the key
  file (never from parameters); the superframe number is the counter: a node accepts a beacon
  only with a number above the last one it accepted (which it persists across restarts), and,
  when it knows the time already, only for the superframe its clock says it is in (within
  ``max_skew`` superframes). A forged beacon fails the MIC; a recorded one is a replay. So
  nobody can shift the schedule with beacons. Every drone holds the beacon key: a captured
  drone could forge beacons (not telemetry), which the superframe check limits to drones
  that have lost GPS time.
* **The time is implied, not sent.** The number names a superframe whose start is known to
  the microsecond on both ends; the beacon's first symbol goes out one guard after it, so
  its reception time gives a receiver the phase of its clock too (core/timesync.py).
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass

from lora_telemetry.core.errors import ConfigError, MalformedFrameError
from lora_telemetry.core.lorawan import cmac4
from lora_telemetry.core.tdma import MAX_SLOTS

MHDR_PROPRIETARY = 0xE0
VERSION = 1
BEACON_BYTES = 17
_MIC_LEN = 4
_MIC_PREFIX = b"LTB1"
_BITMAP_BYTES = 3
_U32 = 0xFFFFFFFF


class BeaconError(MalformedFrameError):
    """Bytes that are not a beacon of this format."""


@dataclass(frozen=True)
class Beacon:
    """What one beacon says (see the module docstring)."""

    superframe: int
    epoch: int = 0
    heard: frozenset[int] = frozenset()
    pending: frozenset[int] = frozenset()


def _bitmap(slots: frozenset[int], what: str) -> bytes:
    bits = 0
    for slot in slots:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= MAX_SLOTS:
            raise ConfigError(f"beacon {what} slot {slot!r} must be 1..{MAX_SLOTS}")
        bits |= 1 << (slot - 1)
    return bits.to_bytes(_BITMAP_BYTES, "little")


def _slots(raw: bytes) -> frozenset[int]:
    bits = int.from_bytes(raw, "little")
    return frozenset(i + 1 for i in range(8 * len(raw)) if bits >> i & 1)


def _mic(key: bytes, body: bytes) -> bytes:
    return cmac4(key, _MIC_PREFIX + body)


def _key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ConfigError("the beacon key must be 16 bytes")
    return bytes(key)


def encode_beacon(beacon: Beacon, key: bytes) -> bytes:
    """The 17 bytes on the air."""
    if not 0 <= beacon.superframe <= _U32:
        raise ConfigError(f"superframe number {beacon.superframe} is not a 32-bit number")
    if not 0 <= beacon.epoch <= 255:
        raise ConfigError(f"schedule epoch {beacon.epoch} must be 0..255")
    body = (bytes([MHDR_PROPRIETARY, VERSION, beacon.epoch])
            + beacon.superframe.to_bytes(4, "little")
            + _bitmap(beacon.heard, "heard") + _bitmap(beacon.pending, "pending"))
    return body + _mic(_key(key), body)


def decode_beacon(data: bytes, key: bytes) -> Beacon:
    """The beacon in ``data`` if it is one with a valid MIC; BeaconError (format) or
    BeaconMicError otherwise."""
    data = bytes(data)
    if len(data) != BEACON_BYTES or data[0] != MHDR_PROPRIETARY:
        raise BeaconError(f"not a beacon: {len(data)} bytes, MHDR 0x{data[0]:02X}" if data
                          else "not a beacon: empty frame")
    if data[1] != VERSION:
        raise BeaconError(f"beacon format version {data[1]} is not {VERSION}")
    body, mic = data[:-_MIC_LEN], data[-_MIC_LEN:]
    if not hmac.compare_digest(_mic(_key(key), body), mic):
        raise BeaconMicError("beacon MIC does not verify: forged, or another network's key")
    return Beacon(superframe=int.from_bytes(body[3:7], "little"), epoch=body[2],
                  heard=_slots(body[7:10]), pending=_slots(body[10:13]))


class BeaconMicError(BeaconError):
    """A beacon-shaped frame whose MIC does not verify."""


class BeaconStatus(str, enum.Enum):
    """One verdict per received frame that may be a beacon."""

    ACCEPTED = "accepted"
    NOT_BEACON = "not_beacon"  # some other frame (an uplink heard by a neighbour)
    MIC_FAILED = "mic_failed"
    REPLAY = "replay"  # superframe number not above the last accepted one
    WRONG_TIME = "wrong_time"  # authentic and new, but not the superframe our clock says
    WRONG_EPOCH = "wrong_epoch"  # another schedule: do not follow it


@dataclass(frozen=True)
class BeaconVerdict:
    status: BeaconStatus
    beacon: Beacon | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is BeaconStatus.ACCEPTED


class BeaconTracker:
    """Check, then accept (the FrameCounterTracker shape): one verdict per frame, counted.

    ``last_superframe`` restores the persisted counter; ``epoch`` is the schedule this node
    follows; ``max_skew`` how many superframes a beacon may be off the receiver's own clock
    when it has one."""

    def __init__(self, key: bytes, *, epoch: int = 0, last_superframe: int | None = None,
                 max_skew: int = 1) -> None:
        self._key = _key(key)
        self.epoch = epoch
        self.last_superframe = last_superframe
        self.max_skew = max_skew
        self.counts: dict[str, int] = {s.value: 0 for s in BeaconStatus}

    def process(self, data: bytes, *, expected_superframe: int | None = None) -> BeaconVerdict:
        """Judge one received frame. ``expected_superframe``: the superframe the receiver's
        own (GPS) clock puts the reception in, or None when it has no time of its own."""
        verdict = self._judge(data, expected_superframe)
        self.counts[verdict.status.value] += 1
        if verdict.accepted:
            assert verdict.beacon is not None
            self.last_superframe = verdict.beacon.superframe
        return verdict

    def _judge(self, data: bytes, expected: int | None) -> BeaconVerdict:
        try:
            beacon = decode_beacon(data, self._key)
        except BeaconMicError as exc:
            return BeaconVerdict(BeaconStatus.MIC_FAILED, detail=str(exc))
        except BeaconError as exc:
            return BeaconVerdict(BeaconStatus.NOT_BEACON, detail=str(exc))
        if self.last_superframe is not None and beacon.superframe <= self.last_superframe:
            return BeaconVerdict(BeaconStatus.REPLAY, beacon,
                                 f"superframe {beacon.superframe} after {self.last_superframe}")
        if expected is not None and abs(beacon.superframe - expected) > self.max_skew:
            return BeaconVerdict(BeaconStatus.WRONG_TIME, beacon,
                                 f"superframe {beacon.superframe}, the clock says {expected}")
        if beacon.epoch != self.epoch:
            return BeaconVerdict(BeaconStatus.WRONG_EPOCH, beacon,
                                 f"schedule epoch {beacon.epoch}, this node follows {self.epoch}")
        return BeaconVerdict(BeaconStatus.ACCEPTED, beacon)
