"""Medium access for uplinks: when does the drone node send its next frame?

Three things decide it, and each has one owner:

* the regulator: `DutyCycleLedger.next_allowed` (T_off and the hourly budget);
* the access policy: pure ALOHA with random jitter by default (`AlohaPolicy`), or GPS-time
  TDMA (`core.tdma.TdmaPolicy`), both behind `AccessPolicy`;
* newest wins: `UplinkScheduler` keeps at most one frame waiting. A new state replaces the
  waiting one, because telemetry that waited behind a newer sample is worth nothing.

Pure: time is passed in, randomness comes from an injected `random.Random`.
"""

from __future__ import annotations

import abc
import math
import random
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from lora_telemetry.core.dutycycle import DutyCycleLedger
from lora_telemetry.core.errors import ConfigError

T = TypeVar("T")


class AccessPolicy(abc.ABC):
    """Chooses the start time of the next attempt."""

    #: False: the plan involves a random draw, so the scheduler keeps it until the attempt
    #: (ALOHA). True: a pure function of its inputs, asked again on every pass (TDMA follows
    #: its time estimate as it improves). ``math.inf`` means "not now, maybe later".
    deterministic: bool = False

    @abc.abstractmethod
    def next_start(self, *, last_start: float | None, earliest_allowed: float,
                   airtime_s: float = 0.0) -> float:
        """The start time of the next attempt (of a frame lasting `airtime_s`), never before
        `earliest_allowed`."""


class AlohaPolicy(AccessPolicy):
    """Unslotted ALOHA around a target period.

    Attempts are spaced `period_s` apart plus a uniform random jitter of up to
    `jitter_fraction` of the period, so that nodes started together drift apart instead of
    colliding forever. When the duty cycle is the binding limit, the node sends within one
    frame time after it is allowed: without that jitter, nodes with equal frames and equal
    T_off would send in lockstep, and two that collided once would collide every time. The
    jitter averages half a frame time per interval: 0.5 % of the rate a 1 % sub-band allows,
    5 % of what a 10 % sub-band allows (measured by bench/bench_rate.py).
    """

    def __init__(self, period_s: float, *, jitter_fraction: float = 0.25,
                 rng: random.Random | None = None) -> None:
        if not (isinstance(period_s, (int, float)) and math.isfinite(period_s) and period_s > 0):
            raise ConfigError(f"update period {period_s!r} must be a positive number of seconds")
        if not 0.0 <= jitter_fraction <= 1.0:
            raise ConfigError(f"jitter fraction {jitter_fraction!r} must be within 0..1")
        self.period_s = float(period_s)
        self.jitter_fraction = float(jitter_fraction)
        self.rng = rng or random.Random()

    def next_start(self, *, last_start: float | None, earliest_allowed: float,
                   airtime_s: float = 0.0) -> float:
        jitter = self.rng.uniform(0.0, self.jitter_fraction * self.period_s)
        if last_start is None:
            # First frame: spread nodes that boot together over one period.
            return earliest_allowed + self.rng.uniform(0.0, self.period_s)
        target = last_start + self.period_s - self.jitter_fraction * self.period_s / 2 + jitter
        if target >= earliest_allowed:
            return target
        return earliest_allowed + self.rng.uniform(0.0, airtime_s)


@dataclass
class SchedulerCounters:
    offered: int = 0
    replaced: int = 0  # waiting frames superseded by a newer state before they went out
    sent: int = 0
    failed: int = 0


@dataclass
class _Pending(Generic[T]):
    item: T
    airtime_s: float
    offered_at: float


@dataclass
class UplinkScheduler(Generic[T]):
    """One waiting frame, released when the policy and the duty cycle allow."""

    ledger: DutyCycleLedger
    policy: AccessPolicy
    frequency_hz: int
    counters: SchedulerCounters = field(default_factory=SchedulerCounters)
    _pending: _Pending[T] | None = None
    _last_start: float | None = None
    _planned: float | None = None

    def offer(self, item: T, airtime_s: float, now: float) -> None:
        """Make `item` the frame to send next, replacing any frame still waiting."""
        self.counters.offered += 1
        if self._pending is not None:
            self.counters.replaced += 1
        self._pending = _Pending(item, airtime_s, now)

    def offer_clear(self) -> None:
        """Drop the waiting frame (e.g. its state went stale)."""
        self._pending = None
        self._planned = None

    @property
    def pending(self) -> T | None:
        return None if self._pending is None else self._pending.item

    def next_start(self, now: float) -> float | None:
        """When the waiting frame may go out (None if nothing waits)."""
        if self._pending is None:
            return None
        allowed = self.ledger.next_allowed(self.frequency_hz, self._pending.airtime_s, now)
        if self._planned is None or self.policy.deterministic:
            self._planned = self.policy.next_start(
                last_start=self._last_start, earliest_allowed=allowed,
                airtime_s=self._pending.airtime_s,
            )
        elif self._planned < allowed:
            # The plan's time has come (allowed == now) or the regulator now forbids it
            # (a longer frame was offered): go at the earliest permitted moment.
            self._planned = allowed
        return self._planned

    def due(self, now: float) -> T | None:
        """Take the waiting frame if it may start now; the caller must then send it and call
        `sent()` or `failed()`."""
        start = self.next_start(now)
        if start is None or now < start:
            return None
        assert self._pending is not None
        item, self._pending = self._pending.item, None
        return item

    def sent(self, start: float, airtime_s: float) -> None:
        """Book a transmission that happened (it counts against the duty cycle)."""
        self.ledger.record(self.frequency_hz, start, airtime_s)
        self.counters.sent += 1
        self._last_start = start
        self._planned = None

    def failed(self, now: float) -> None:
        """An attempt that never reached the air: try the next frame a period later."""
        self.counters.failed += 1
        self._last_start = now
        self._planned = None

    def budget_left(self, now: float) -> float:
        return self.ledger.budget_left(self.frequency_hz, now)
