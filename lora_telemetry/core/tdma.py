"""GPS-time TDMA on one channel: the superframe, its slots, the planner and the access policy.

Pure ALOHA caps a useful swarm at a handful of UAVs (README, docs/performance.md); slots do
better. Every node keeps GPS time (core/timesync.py), so the superframe boundaries need no
exchange at all: superframe ``m`` starts at ``m * period_s`` seconds of Unix time (UTC, the
scale of MAVLink's SYSTEM_TIME.time_unix_usec, the same on both ends). Inside it::

    |<-- beacon slot -->|<-- slot 1 -->|<-- slot 2 -->| ... |<-- slot N -->|  idle  |
    | g | beacon  | g   | g | frame | g | g | frame | g |     | g | frame | g |        |

each slot is ``guard + airtime + guard`` and its frame starts one guard after the slot start,
so a frame that is up to one guard early or late still stays inside its own slot. The guard
comes from the timing error budget (docs/timing.md: GPS time through the flight controller,
the host's scheduling, the module's command-to-air latency); the default, 5 ms each side,
is what the issue targets and what the measurements support.

Decisions worth knowing:

* **Slots are configuration**, the same on both ends: ``devices.<uav>.slot`` on the ground,
  ``tdma_slot`` on the drone (1-based; 0 is the beacon's). :func:`plan_schedule` refuses
  duplicate slots and an overfull superframe at start, naming the largest swarm that fits
  and the period this one would need.
* **Duty cycle.** A UAV that sent one frame per superframe could break its sub-band's limit
  (1 % in LoRaWAN's EU433 plan): the planner then gives each UAV one superframe in ``k``
  (``uplink_every``, UAV in slot ``s`` sends in superframes with ``(m - s) % k == 0``) and
  says so; the beacon likewise goes out in one superframe in ``beacon_every`` within the
  gateway's limit. The drone's duty-cycle ledger still has the last word.
* **The policy lives on the host clock.** :class:`TdmaPolicy` implements `AccessPolicy` for
  the existing `UplinkScheduler`: it maps the next own slot from GPS time to the host clock
  through a :class:`TimeMapping` (the drone's TimeKeeper) and starts the module command early
  by the module's command-to-air latency (``lead_s``, per radio family), so that the frame's
  first symbol lands one guard into the slot. Without usable time it never releases a frame
  (``math.inf``): a UAV that does not know the time stays quiet rather than collide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from lora_telemetry.core.access import AccessPolicy
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings

#: Default guard on each side of a frame (docs/timing.md: the budget it covers).
DEFAULT_GUARD_S = 0.005
#: A telemetry uplink: 16-byte payload + 13 bytes of LoRaWAN framing (docs/wire-format.md).
UPLINK_FRAME_BYTES = 29
#: Slot 0 is the beacon's; UAV slots are 1..MAX_SLOTS (the beacon's bitmaps have 24 bits).
BEACON_SLOT = 0
MAX_SLOTS = 24
# Superframe numbers are computed from float times; a start time itself must map to its own
# superframe, not to the one before, whatever the rounding of m * period.
_EPS_S = 1e-9


class TimeMapping(Protocol):
    """Host clock <-> GPS time, as the drone's TimeKeeper provides them."""

    @property
    def usable(self) -> bool:
        """Whether the estimate is good enough to transmit in a slot."""

    def to_gps(self, host_time_s: float) -> float: ...

    def to_host(self, gps_time_s: float) -> float: ...


@dataclass(frozen=True)
class TdmaSchedule:
    """The superframe: its period, guard, frame airtimes and how many uplink slots it holds."""

    period_s: float
    guard_s: float
    beacon_airtime_s: float
    uplink_airtime_s: float
    slots: int
    uplink_every: int = 1
    beacon_every: int = 1
    epoch: int = 0
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def beacon_slot_s(self) -> float:
        return self.beacon_airtime_s + 2 * self.guard_s

    @property
    def uplink_slot_s(self) -> float:
        return self.uplink_airtime_s + 2 * self.guard_s

    @property
    def used_s(self) -> float:
        """Beacon slot plus every uplink slot: at most the period."""
        return self.beacon_slot_s + self.slots * self.uplink_slot_s

    def superframe_of(self, t: float) -> int:
        return math.floor(t / self.period_s + _EPS_S)

    def superframe_start(self, m: int) -> float:
        return m * self.period_s

    def beacon_start(self, m: int) -> float:
        """When the beacon's first symbol goes out in superframe ``m``."""
        return self.superframe_start(m) + self.guard_s

    def beacon_due(self, m: int) -> bool:
        return m % self.beacon_every == 0

    def slot_start(self, m: int, slot: int) -> float:
        """Start of uplink slot ``slot`` (1-based) of superframe ``m`` (its frame starts one
        guard later)."""
        self._check_slot(slot)
        return self.superframe_start(m) + self.beacon_slot_s + (slot - 1) * self.uplink_slot_s

    def uplink_start(self, m: int, slot: int) -> float:
        """When the frame of ``slot`` should start in superframe ``m``."""
        return self.slot_start(m, slot) + self.guard_s

    def sends_in(self, m: int, slot: int) -> bool:
        """Whether the UAV of ``slot`` sends in superframe ``m`` (one in ``uplink_every``)."""
        return (m - slot) % self.uplink_every == 0

    def next_uplink(self, slot: int, not_before: float) -> tuple[int, float]:
        """(superframe, frame start) of the first own frame starting at or after
        ``not_before``."""
        self._check_slot(slot)
        m = self.superframe_of(not_before) - 1
        while True:
            m += 1
            if not self.sends_in(m, slot):
                continue
            start = self.uplink_start(m, slot)
            if start >= not_before - _EPS_S:
                return m, start

    def slot_of(self, t: float) -> tuple[int, int | None]:
        """(superframe, slot) holding time ``t``: slot 0 is the beacon's, None the idle end."""
        m = self.superframe_of(t)
        offset = t - self.superframe_start(m)
        if offset < self.beacon_slot_s:
            return m, BEACON_SLOT
        slot = 1 + math.floor((offset - self.beacon_slot_s) / self.uplink_slot_s)
        return m, slot if slot <= self.slots else None

    def _check_slot(self, slot: int) -> None:
        if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= self.slots:
            raise ConfigError(f"TDMA slot {slot!r} is not one of the schedule's 1..{self.slots}")


def frame_airtimes(phy: PhySettings, beacon_bytes: int,
                   uplink_bytes: int = UPLINK_FRAME_BYTES) -> tuple[float, float]:
    """(beacon, uplink) time on air on ``phy`` (SX1276 datasheet formula, core.phy)."""
    return phy.time_on_air(beacon_bytes), phy.time_on_air(uplink_bytes)


def max_swarm(period_s: float, beacon_airtime_s: float, uplink_airtime_s: float,
              guard_s: float = DEFAULT_GUARD_S) -> int:
    """The most uplink slots one superframe of ``period_s`` holds."""
    free = period_s - (beacon_airtime_s + 2 * guard_s)
    return max(0, min(MAX_SLOTS, math.floor(free / (uplink_airtime_s + 2 * guard_s) + 1e-9)))


def min_period(slots: int, beacon_airtime_s: float, uplink_airtime_s: float,
               guard_s: float = DEFAULT_GUARD_S) -> float:
    """The shortest superframe that holds ``slots`` uplink slots."""
    return beacon_airtime_s + 2 * guard_s + slots * (uplink_airtime_s + 2 * guard_s)


def plan_schedule(period_s: float, slots: Mapping[str, int], *, beacon_airtime_s: float,
                  uplink_airtime_s: float, guard_s: float = DEFAULT_GUARD_S,
                  uav_duty_cycle: float = 1.0, gateway_duty_cycle: float = 1.0,
                  beacon_every: int | None = None, epoch: int = 0) -> TdmaSchedule:
    """The schedule for UAVs at ``slots`` ({name: slot}), or a ConfigError that says why not.

    ``uav_duty_cycle``/``gateway_duty_cycle`` are the limits (fractions) the sub-band allows
    the UAVs and the gateway; ``beacon_every`` forces the beacon interval (default: every
    superframe the gateway's limit allows)."""
    for name, value in (("period", period_s), ("guard", guard_s),
                        ("beacon airtime", beacon_airtime_s), ("uplink airtime", uplink_airtime_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"TDMA {name} {value!r} must be a positive number of seconds")
    for name, value in (("UAV", uav_duty_cycle), ("gateway", gateway_duty_cycle)):
        if not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise ConfigError(f"{name} duty cycle {value!r} must be a fraction in (0, 1]")
    if not 0 <= epoch <= 255:
        raise ConfigError(f"TDMA schedule epoch {epoch!r} must be 0..255")
    owners: dict[int, str] = {}
    for name, slot in slots.items():
        if isinstance(slot, bool) or not isinstance(slot, int) or not 1 <= slot <= MAX_SLOTS:
            raise ConfigError(f"{name}: TDMA slot {slot!r} must be an integer 1..{MAX_SLOTS} "
                              "(slot 0 is the beacon's)")
        if slot in owners:
            raise ConfigError(f"TDMA slot {slot} is given to both {owners[slot]} and {name}")
        owners[slot] = name
    if not owners:
        raise ConfigError("TDMA needs at least one UAV with a slot")
    needed = max(owners)
    fits = max_swarm(period_s, beacon_airtime_s, uplink_airtime_s, guard_s)
    if needed > fits:
        raise ConfigError(
            f"TDMA schedule overfull: slot {needed} does not fit a {period_s:g} s superframe "
            f"(beacon slot {1e3 * (beacon_airtime_s + 2 * guard_s):.1f} ms + "
            f"{1e3 * (uplink_airtime_s + 2 * guard_s):.1f} ms per UAV slot): the largest "
            f"feasible swarm is {fits} UAVs; {needed} slots need a period of at least "
            f"{min_period(needed, beacon_airtime_s, uplink_airtime_s, guard_s):.3f} s "
            "(or a faster data rate)")
    notes = []
    every = max(1, math.ceil(uplink_airtime_s / (period_s * uav_duty_cycle) - 1e-9))
    if every > 1:
        notes.append(
            f"one frame per {period_s:g} s superframe is {100 * uplink_airtime_s / period_s:.1f} % "
            f"of the air, above the UAVs' {100 * uav_duty_cycle:g} % duty cycle: each UAV "
            f"sends in one superframe of every {every} (an update every {every * period_s:g} s)")
    least = max(1, math.ceil(beacon_airtime_s / (period_s * gateway_duty_cycle) - 1e-9))
    if beacon_every is None:
        beacon_every = least
    elif beacon_every < least:
        raise ConfigError(f"a beacon every {beacon_every} superframe(s) would break the "
                          f"gateway's {100 * gateway_duty_cycle:g} % duty cycle: every "
                          f"{least} at least")
    if beacon_every > 1:
        notes.append(f"the beacon goes out in one superframe of every {beacon_every}")
    return TdmaSchedule(period_s, guard_s, beacon_airtime_s, uplink_airtime_s, needed,
                        uplink_every=every, beacon_every=beacon_every, epoch=epoch,
                        notes=tuple(notes))


def sample_time_for(frame_start_s: float) -> float:
    """The time a TDMA frame's state is carried to: the telemetry codec's first 20 ms grid
    point at or after the frame's first symbol, so it lies inside the frame's time on air
    and the codec sends it exactly (core/codec.py TIME_STEP_S)."""
    from lora_telemetry.core.codec import TIME_STEP_S

    return math.ceil(frame_start_s / TIME_STEP_S - 1e-9) * TIME_STEP_S


class TdmaPolicy(AccessPolicy):
    """A UAV's own slot as an `AccessPolicy`: see the module docstring."""

    #: The plan is a pure function of the schedule and the time estimate: recomputed on
    #: every call, so it follows the estimate as it improves.
    deterministic = True

    def __init__(self, schedule: TdmaSchedule, slot: int, clock: TimeMapping, *,
                 lead_s: float = 0.0, late_tolerance_s: float | None = None) -> None:
        schedule._check_slot(slot)
        if not (math.isfinite(lead_s) and 0 <= lead_s < schedule.period_s):
            raise ConfigError(f"command lead {lead_s!r} s must be within one superframe")
        self.schedule = schedule
        self.slot = slot
        self.clock = clock
        self.lead_s = lead_s
        #: How late a pass may still hand the command to the module: a pass later than this
        #: skips to the next own slot (a miss) rather than send into the neighbour's slot.
        self.late_tolerance_s = schedule.guard_s / 2 if late_tolerance_s is None else late_tolerance_s
        #: (superframe, GPS frame start) of the newest plan (None: no usable time)
        self.last_plan: tuple[int, float] | None = None

    def planned_frame(self, *, last_start: float | None,
                      earliest_allowed: float) -> tuple[int, float] | None:
        """(superframe, GPS frame start) of the next own frame, None without usable time."""
        if not self.clock.usable:
            return None
        not_before = self.clock.to_gps(earliest_allowed) + self.lead_s - self.late_tolerance_s
        if last_start is not None:  # never twice in one superframe
            last_m = self.schedule.superframe_of(self.clock.to_gps(last_start) + self.lead_s)
            not_before = max(not_before, self.schedule.superframe_start(last_m + 1))
        return self.schedule.next_uplink(self.slot, not_before)

    def next_start(self, *, last_start: float | None, earliest_allowed: float,
                   airtime_s: float = 0.0) -> float:
        planned = self.planned_frame(last_start=last_start, earliest_allowed=earliest_allowed)
        self.last_plan = planned
        if planned is None:
            return math.inf
        return self.clock.to_host(planned[1]) - self.lead_s
