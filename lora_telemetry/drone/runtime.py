"""The drone node's send loop: newest vehicle state -> secured frame -> air, within the rules.

`DroneRuntime.step(now)` is one pass of the loop and returns when it wants to run again, so
the same code runs on the wall clock in the node and on a simulated clock in tests. It never
sends stale state: a silent flight controller empties the queue and raises a diagnostic.

Access is ALOHA (core/access.AlohaPolicy) or, given a `drone.tdma.TdmaAccess`, GPS-time
TDMA: the pass then also feeds the flight controller's time to the TimeKeeper, listens for
the ground's beacon in slot 0 (a receive window is one pass, which returns at once so the
next pass sees the new time), and at its slot takes the newest vehicle state, carried
forward to the frame's on-air time (its sample time), so the state's age on the ground is
the frame's airtime.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import saturation
from lora_telemetry.core.access import AccessPolicy, AlohaPolicy, UplinkScheduler
from lora_telemetry.core.dutycycle import DutyCycleLedger
from lora_telemetry.core.tdma import sample_time_for
from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.drone.config import DroneConfig
from lora_telemetry.drone.tdma import TdmaAccess
from lora_telemetry.drone.transmitters import UplinkReport, UplinkTransmitter
from lora_telemetry.radios.base import (
    ModuleReset, RadioBusy, RadioDisconnected, RadioError, RadioTimeout,
)

IDLE_WAKE_S = 0.1  # how often to look for a new vehicle state when nothing is scheduled
SATURATION_RECENT_S = 10.0  # a saturated value sent this recently keeps the diagnostic at WARN


class VehicleSource(Protocol):
    """What the runtime needs from the MAVLink link (thread-safe)."""

    def sample(self, now: float | None = None, *, at_time: float | None = None,
               clock_offset_s: float = 0.0) -> tcodec.TelemetrySample | None: ...
    def is_stale(self, now: float | None = None) -> bool: ...
    def take_time_samples(self) -> list[tuple[float, float]]: ...


class CounterSource(Protocol):
    def take(self) -> int: ...


@dataclass(frozen=True)
class SentFrame:
    report: UplinkReport
    sample: tcodec.TelemetrySample
    fport: int
    payload: bytes


class DroneRuntime:
    def __init__(self, config: DroneConfig, vehicle: VehicleSource,
                 transmitter: UplinkTransmitter, counters: CounterSource, *,
                 rng: random.Random | None = None,
                 tdma: TdmaAccess | None = None,
                 on_sent: Callable[[SentFrame], None] | None = None,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self.config = config
        self.vehicle = vehicle
        self.tx = transmitter
        self.counters = counters
        self.codec = config.codec
        self.frequency_hz = config.frequency_hz
        self.ledger = DutyCycleLedger(policy=config.duty_cycle_policy,
                                      cap=config.duty_cycle_cap or None)
        self.tdma = tdma
        policy: AccessPolicy = tdma.policy if tdma is not None else AlohaPolicy(
            config.update_period_s, jitter_fraction=config.jitter_fraction, rng=rng)
        self.scheduler: UplinkScheduler[tcodec.TelemetrySample] = UplinkScheduler(
            self.ledger, policy, config.frequency_hz)
        self.frame_airtime_s = transmitter.airtime_s(tcodec.MAX_PAYLOAD_SIZE)
        self.on_sent = on_sent or (lambda frame: None)
        self.on_event = on_event or (lambda level, text: None)
        self.failures: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.stale = True
        self.last_fcnt: int | None = None
        self.last_sent_at: float | None = None
        self._last_offered_time = -math.inf
        self._reconnect_at = -math.inf
        self._backoff_s = 0.5
        self.radio_error: str | None = None
        self.saturated_samples = 0
        self.saturation_notes: list[str] = []
        self.last_saturated_at: float | None = None
        self._saturated_fields: list[str] = []

    # -- one pass of the loop -------------------------------------------------------------
    def step(self, now: float) -> float:
        """Do what is due at `now`; return the time of the next pass."""
        if self.tdma is not None:
            self.tdma.update(now, self.vehicle.take_time_samples())
        self._refresh_vehicle(now)
        if not self.tx.is_open:
            self._try_open(now)
        window = None
        if self.tdma is not None:
            self.scheduler.next_start(now)  # re-plans: the slot that went by is noted below
            self.tdma.note_plan(now, state_ready=not self.stale, radio_open=self.tx.is_open)
            if self.tx.is_open and self.tx.can_receive:
                window = self.tdma.listen_window(now)
                if window is not None and window[0] <= now:
                    self._listen(now, window)
                    return now  # the window took time: the next pass reads the clock again
        sample = self.scheduler.due(now) if self.tx.is_open else None
        if sample is not None:
            self._send(sample, now)
        wake = self.scheduler.next_start(now)
        if window is not None:
            wake = window[0] if wake is None else min(wake, window[0])
        if not self.tx.is_open:
            wake = self._reconnect_at if wake is None else min(wake, self._reconnect_at)
        nxt = now + IDLE_WAKE_S
        return nxt if wake is None else max(now, min(wake, nxt))

    def _listen(self, now: float, window: tuple[float, float, int | None]) -> None:
        """One receive window for the beacon (TDMA)."""
        assert self.tdma is not None
        _, closes, superframe = window
        try:
            frame = self.tx.receive(max(0.001, closes - now))
        except RadioError as exc:
            self._send_failed(exc, now)
            frame = None
        self.tdma.listened(superframe)
        if frame is not None:
            self.tdma.on_frame(frame)

    def _refresh_vehicle(self, now: float) -> None:
        stale = self.vehicle.is_stale(now)
        if stale != self.stale:
            if stale:
                self.on_event("warn", "flight controller silent: telemetry paused")
            else:
                self.on_event("info", "flight controller state received: sending telemetry"
                              if self._last_offered_time == -math.inf
                              else "flight controller state fresh again: telemetry resumed")
            self.stale = stale
        if stale:
            if self.scheduler.pending is not None:
                self.scheduler.offer_clear()
                self.dropped["stale"] += 1
            return
        sample = self.vehicle.sample(now)
        if sample is None or sample.time_unix_s <= self._last_offered_time:
            return
        self._last_offered_time = sample.time_unix_s
        self.scheduler.offer(sample, self.frame_airtime_s, now)

    def _try_open(self, now: float) -> None:
        if now < self._reconnect_at:
            return
        try:
            self.tx.open()
        except RadioError as exc:
            self.failures["open_failed"] += 1
            self._reconnect_at = now + self._backoff_s
            if self.radio_error != str(exc):
                self.on_event("error", f"radio unavailable, retrying in {self._backoff_s:.1f} s: {exc}")
            self.radio_error = str(exc)
            self._backoff_s = min(self._backoff_s * 2, self.config.reconnect_backoff_max_s)
            return
        if self.radio_error is not None:
            self.on_event("info", "radio reconnected and configured")
        self.radio_error = None
        self._backoff_s = 0.5

    def _send(self, sample: tcodec.TelemetrySample, now: float) -> None:
        superframe = None
        if self.tdma is not None:
            fresh = self._freshest(now)
            if fresh is None:
                self.dropped["too_old"] += 1
                return
            superframe, sample = fresh
        else:
            age = now - sample.time_unix_s
            if age > self.config.max_sample_age_s:
                self.dropped["too_old"] += 1
                return
        try:
            fport, payload = tcodec.encode(sample, self.codec)
        except LoraTelemetryError as exc:
            self.dropped["encode_error"] += 1
            self.on_event("warn", f"vehicle state cannot be encoded: {exc}")
            return
        self._note_saturation(sample, fport, payload, now)
        fcnt = self.counters.take()
        try:
            report = self.tx.send(fport, payload, fcnt)
        except RadioError as exc:
            self._send_failed(exc, now)
            return
        self.scheduler.sent(report.started, report.airtime_s)
        if self.tdma is not None and superframe is not None:
            self.tdma.sent_in(superframe, report.started)
        self.last_fcnt = fcnt
        self.last_sent_at = report.started
        self.on_sent(SentFrame(report, sample, fport, payload))

    def _freshest(self, now: float) -> tuple[int, tcodec.TelemetrySample] | None:
        """TDMA: the newest vehicle state, carried forward to the planned frame's GPS start
        (its sample time: the codec's first 20 ms grid point in its time on air), with its superframe; None if the newest
        state is too old."""
        assert self.tdma is not None
        plan = self.tdma.planned_frame_gps()
        if plan is None:
            return None
        superframe, start = plan
        offset = self.tdma.keeper.estimate.offset_s
        newest = self.vehicle.sample(now, clock_offset_s=offset)
        if newest is None or self.tdma.gps_now(now) - newest.time_unix_s > self.config.max_sample_age_s:
            return None
        # The codec sends time on a 20 ms grid: carry the state to the first grid point in
        # the frame's time on air, so the position is the one at the time the ground reads.
        at = sample_time_for(start)
        carried = self.vehicle.sample(now, at_time=at, clock_offset_s=offset)
        return (superframe, carried) if carried is not None else None

    def _note_saturation(self, sample: tcodec.TelemetrySample, fport: int, payload: bytes,
                         now: float) -> None:
        """Which values leave the frame as a bound instead of the truth (the codec's own
        decoder says), with the true numbers; warned once per change of the set of fields."""
        try:
            decoded = tcodec.decode(fport, payload, self.codec, sample.time_unix_s)
        except LoraTelemetryError:  # cannot happen for a payload encode produced; never fatal
            return
        fields = saturation.significant(decoded.saturated)
        if fields:
            self.saturated_samples += 1
            self.last_saturated_at = now
            self.saturation_notes = saturation.describe_sent(sample, self.codec, fields)
            if fields != self._saturated_fields:
                self.on_event("warn", "value beyond the frame's range, sent as its bound: "
                              + "; ".join(self.saturation_notes))
        elif self._saturated_fields:
            self.on_event("info", "no value saturates any more")
        self._saturated_fields = fields

    def saturation_warning(self, now: float) -> str | None:
        """The explanation while saturated values were sent recently, else None."""
        if self.last_saturated_at is None or now - self.last_saturated_at > SATURATION_RECENT_S:
            return None
        return "; ".join(self.saturation_notes)

    def _send_failed(self, exc: RadioError, now: float) -> None:
        cause = _cause(exc)
        self.failures[cause] += 1
        self.scheduler.failed(now)
        if isinstance(exc, (RadioDisconnected, ModuleReset, RadioTimeout)):
            # The module's state is unknown or gone: reopen and configure it from scratch.
            self.tx.close()
            self._reconnect_at = now if isinstance(exc, ModuleReset) else now + self._backoff_s
            self.on_event("warn", f"send failed ({cause}): {exc}; reconnecting")
        elif not isinstance(exc, RadioBusy):
            self.on_event("warn", f"send failed ({cause}): {exc}")

    # -- reporting ------------------------------------------------------------------------
    def status(self, now: float) -> dict[str, Any]:
        """Values for the node's /diagnostics."""
        return {
            "stale": self.stale,
            "radio_open": self.tx.is_open,
            "radio_error": self.radio_error or "",
            "frames_sent": self.scheduler.counters.sent,
            "frames_replaced": self.scheduler.counters.replaced,
            "last_fcnt": -1 if self.last_fcnt is None else self.last_fcnt,
            "duty_cycle_budget_left_s": self.ledger.budget_left(self.frequency_hz, now),
            "frame_airtime_s": self.frame_airtime_s,
            "saturated_samples": self.saturated_samples,
            **{f"send_failures.{k}": v for k, v in sorted(self.failures.items())},
            **{f"dropped.{k}": v for k, v in sorted(self.dropped.items())},
            **(self.tdma.status() if self.tdma is not None else {}),
        }

    def run(self, stop: threading.Event, clock: Callable[[], float] = time.time, *,
            on_started: Callable[[], None] | None = None) -> None:
        """Loop on the wall clock until `stop` is set; `on_started` runs once, after the first
        pass (which has tried to open the radio, so `status()` says whether it is open)."""
        while not stop.is_set():
            now = clock()
            try:
                wake = self.step(now)
            except Exception as exc:  # noqa: BLE001 - a bug must not silently stop telemetry
                self.failures["internal_error"] += 1
                self.on_event("error", f"uplink loop error (continuing): {type(exc).__name__}: {exc}")
                wake = now + 1.0
            if on_started is not None:
                on_started()
                on_started = None
            stop.wait(max(0.0, wake - clock()))


def _cause(exc: RadioError) -> str:
    name = type(exc).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
