"""The ground's side of TDMA: when to send the beacon, what it says, how well UAVs keep time.

`GatewaySchedule` is pure (times passed in, on the gateway's clock, which must be GPS- or
NTP-disciplined: it is the network's reference, docs/timing.md). It

* says when the next beacon is due (slot 0 of every ``beacon_every``-th superframe; the
  beacon's first symbol one guard after the superframe starts) and builds it: the superframe
  number, the schedule's epoch, the slots heard in the previous superframe and the slots
  with a pending downlink, authenticated with the beacon key (core/beacon.py);
* places every accepted uplink on the schedule: from its reception end and airtime, the
  frame's start; from the start, the superframe and slot it fell in; and the timing error
  against where that UAV's frame should have started. Per UAV it keeps the newest error,
  the mean, the largest magnitude, the 95th percentile of the last ``window`` frames and a
  count of frames outside their own slot (late or early by more than a guard: they can
  collide with a neighbour). That closes the timing loop: LinkStats and /diagnostics show
  it per UAV.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from lora_telemetry.core.beacon import Beacon, encode_beacon
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.tdma import TdmaSchedule


@dataclass
class SlotTiming:
    """How one UAV's frames start relative to its slot (seconds; positive = late)."""

    frames: int = 0
    outside_slot: int = 0
    last_error_s: float = math.nan
    sum_error_s: float = 0.0
    max_abs_error_s: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=200))

    @property
    def mean_error_s(self) -> float:
        return self.sum_error_s / self.frames if self.frames else math.nan

    @property
    def p95_abs_error_s(self) -> float:
        if not self.recent:
            return math.nan
        ordered = sorted(abs(e) for e in self.recent)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    def add(self, error_s: float, guard_s: float) -> None:
        self.frames += 1
        self.last_error_s = error_s
        self.sum_error_s += error_s
        self.max_abs_error_s = max(self.max_abs_error_s, abs(error_s))
        self.recent.append(error_s)
        if abs(error_s) > guard_s:
            self.outside_slot += 1


@dataclass(frozen=True)
class SlotObservation:
    superframe: int
    slot: int
    error_s: float


class GatewaySchedule:
    """See the module docstring. ``slots`` maps each UAV's name to its slot."""

    def __init__(self, schedule: TdmaSchedule, slots: Mapping[str, int], beacon_key: bytes) -> None:
        self.schedule = schedule
        self.slots = dict(slots)
        if len(set(self.slots.values())) != len(self.slots):
            raise ConfigError("two UAVs share a TDMA slot")
        self._key = beacon_key
        self.timing = {name: SlotTiming() for name in self.slots}
        self._heard: dict[int, set[int]] = {}  # superframe -> slots heard
        self._pending: set[int] = set()
        self.beacons_sent = 0
        self.beacons_skipped: dict[str, int] = {}
        self._last_beacon: int | None = None

    # -- beacons ---------------------------------------------------------------------------
    def next_beacon(self, now: float) -> tuple[int, float]:
        """(superframe, start time) of the next beacon not yet sent whose start is not
        before ``now``."""
        s = self.schedule
        m = s.superframe_of(now)
        while True:
            if s.beacon_due(m) and (self._last_beacon is None or m > self._last_beacon) \
                    and s.beacon_start(m) >= now - 1e-9:
                return m, s.beacon_start(m)
            m += 1

    def beacon(self, m: int) -> bytes:
        """The beacon of superframe ``m`` (call when it goes out: marks it handled; count it
        with :meth:`sent` once the radio has sent it, or :meth:`skip_beacon`)."""
        frame = encode_beacon(Beacon(superframe=m, epoch=self.schedule.epoch,
                                     heard=frozenset(self._heard.get(m - 1, ())),
                                     pending=frozenset(self._pending)), self._key)
        self._last_beacon = m
        for old in [k for k in self._heard if k < m - 1]:
            del self._heard[old]
        return frame

    def sent(self, m: int) -> None:
        """The beacon of superframe ``m`` is on the air."""
        self.beacons_sent += 1

    def skip_beacon(self, m: int, reason: str) -> None:
        """A beacon that could not go out (duty cycle, radio error): counted by reason."""
        self._last_beacon = m
        self.beacons_skipped[reason] = self.beacons_skipped.get(reason, 0) + 1

    def set_pending(self, names: Iterable[str]) -> None:
        """The UAVs with a downlink waiting (flagged in the next beacon)."""
        self._pending = {self.slots[n] for n in names if n in self.slots}

    # -- uplinks -----------------------------------------------------------------------------
    def observe(self, name: str, rx_end_s: float, airtime_s: float) -> SlotObservation | None:
        """Place one accepted frame of UAV ``name`` on the schedule and record its timing."""
        slot = self.slots.get(name)
        if slot is None:
            return None
        s = self.schedule
        start = rx_end_s - airtime_s
        # The superframe whose slot start for this UAV lies nearest the frame's start.
        m = round((start - s.uplink_start(0, slot)) / s.period_s)
        error = start - s.uplink_start(m, slot)
        self.timing[name].add(error, s.guard_s)
        self._heard.setdefault(m, set()).add(slot)
        return SlotObservation(m, slot, error)
