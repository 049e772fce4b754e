"""A drone's TDMA machinery for DroneRuntime: its clock, the beacons, its slot, its misses.

DroneRuntime keeps its shape (step(now) returns its next wake time); with ``access: tdma``
it hands this object the things only TDMA needs:

* **Time.** Every SYSTEM_TIME pair the flight controller sent feeds the TimeKeeper
  (core/timesync.py), its GPS time moved on by the message's own serial time when the link
  is a serial port (``system_time_transit_s``: 20 bytes at the link's baud, 3.5 ms at
  57600; the least-delayed sample still carries it); its estimate maps the slot's GPS time to the host clock, and the
  policy (core/tdma.TdmaPolicy) hands the command to the module ``lead_s`` early: the
  radio family's command-to-air time for a 29-byte frame at the configured baud (the
  registry's timing model, radios/<family>/timing.py) plus the host's own cost
  (``HOST_ALLOWANCE_S``, measured by bench/bench_module_timing.py: 0.5-0.8 ms).
* **Beacons.** Between its own frames the UAV listens in slot 0 of the superframes that
  carry a beacon: a receive window from ``LISTEN_EARLY_S`` before the beacon's first symbol,
  bounded so that it (and the module's report) ends before its own command; a slot whose
  command comes too soon after the beacon (slot 1 with a slow module) does not listen and
  relies on GPS time. An accepted beacon (core/beacon.py: MIC, counter, time, epoch) is a
  time sample (its reception ended one guard plus its airtime after the superframe start,
  plus the module's report latency) and its number is persisted, so a recorded beacon is a
  replay after a restart too. Without usable time the UAV listens all the time and sends
  nothing.
* **Misses.** Each own slot that passes without a frame is counted with its reason: no
  usable time, no fresh vehicle state, radio unavailable, or a pass that came too late.
"""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable

from lora_telemetry.core.beacon import BEACON_BYTES, BeaconStatus, BeaconTracker, BeaconVerdict
from lora_telemetry.core.tdma import UPLINK_FRAME_BYTES, TdmaPolicy, TdmaSchedule
from lora_telemetry.core.timesync import TimeKeeper
from lora_telemetry.core.uart import serial_time_s
from lora_telemetry.mavlink.urls import parse_url
from lora_telemetry.persist import StateFileError, atomic_write_json, read_json
from lora_telemetry.radios.base import RxFrame
from lora_telemetry.radios.registry import FamilyTiming

#: The host's own cost on top of the family's model (bench_module_timing: 0.5-0.8 ms late).
HOST_ALLOWANCE_S = 0.0007
#: A receive window opens this long before the beacon's first symbol (covers the receive
#: command's own serial time and the clock's uncertainty).
LISTEN_EARLY_S = 0.010
#: ... and stays open this long after the beacon's last symbol should have ended.
LISTEN_LATE_S = 0.005
#: The window (and the module's report) ends at least this long before the UAV's own
#: command: the module's housekeeping after a window (the RN2483 driver puts its radio
#: watchdog back: `radio set wdt 15000` and `ok`, 25 bytes at 57600 baud = 4.3 ms, plus the
#: firmware's answer time) must be over by then.
LISTEN_CLEARANCE_S = 0.010
#: Without usable time, listen in windows of this length (nothing to send meanwhile).
SEARCH_WINDOW_S = 1.0


#: SYSTEM_TIME on the wire: MAVLink 2 header 10 + payload 12 + CRC 2 (unsigned) = 24 bytes
#: (MAVLink 1: 6 + 12 + 2 = 20; the smaller is taken, so a sample is never moved past its
#: true time, and MAVLink 2's trailing-zero truncation only shortens it).
SYSTEM_TIME_WIRE_BYTES = 20


def system_time_transit_s(mavlink_url: str) -> float:
    """The serial time of one SYSTEM_TIME on the flight controller's link (0 for UDP/TCP)."""
    spec = parse_url(mavlink_url)
    return serial_time_s(SYSTEM_TIME_WIRE_BYTES, spec.baud) if spec.kind == "serial" else 0.0


class BeaconStateStore:
    """The last accepted beacon's superframe number, written durably (a recorded beacon must
    stay a replay across restarts)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            data = read_json(self.path)
        except FileNotFoundError:
            data = {}
        if not isinstance(data, dict) or not isinstance(data.get("last_superframe", 0), int):
            raise StateFileError(f"{self.path}: not a beacon state file; move it away to start "
                                 "over (a beacon recorded before could then be replayed once)")
        self.last_superframe: int | None = data.get("last_superframe")

    def record(self, superframe: int) -> None:
        atomic_write_json(self.path, {"last_superframe": superframe})
        self.last_superframe = superframe


class TdmaAccess:
    """See the module docstring."""

    def __init__(self, schedule: TdmaSchedule, slot: int, *, timing: FamilyTiming | None,
                 baud: int, beacon_key: bytes | None, keeper: TimeKeeper | None = None,
                 beacon_state: BeaconStateStore | None = None, max_missed_beacons: int = 5,
                 trust_host_clock: bool = False, lead_s: float | None = None,
                 can_receive: bool = True, system_time_transit_s: float = 0.0,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self.schedule = schedule
        self.slot = slot
        self.on_event = on_event or (lambda level, text: None)
        beacon_period = schedule.period_s * schedule.beacon_every
        self.keeper = keeper or TimeKeeper(
            beacon_timeout_s=max_missed_beacons * beacon_period + schedule.period_s / 2,
            trust_host_clock=trust_host_clock)
        if lead_s is None:
            lead_s = (timing.command_to_air_s(UPLINK_FRAME_BYTES, baud) if timing else 0.0) \
                + HOST_ALLOWANCE_S
        self.lead_s = lead_s
        self.system_time_transit_s = system_time_transit_s
        self.report_s = (timing.air_to_host_s(BEACON_BYTES, baud) if timing else 0.0) \
            + HOST_ALLOWANCE_S
        self.policy = TdmaPolicy(schedule, slot, self.keeper, lead_s=lead_s)
        self.beacon_state = beacon_state
        self.tracker = BeaconTracker(beacon_key, epoch=schedule.epoch,
                                     last_superframe=beacon_state.last_superframe
                                     if beacon_state else None) if beacon_key else None
        self.can_receive = can_receive and self.tracker is not None
        self.misses: Counter[str] = Counter()
        self._command_late: deque[float] = deque(maxlen=200)  # host lateness of commands
        self.sent = 0
        self._planned: int | None = None  # superframe of the frame planned now
        self._sent_in: int | None = None
        self._listened: int | None = None
        self._not_listened: int | None = None  # newest beacon counted as not listened to
        self._held: int | None = None
        self._usable: bool | None = None

    # -- time ------------------------------------------------------------------------------
    def update(self, now: float, gps_samples: list[tuple[float, float]]) -> None:
        """Feed the flight controller's time pairs and re-estimate at ``now``."""
        for gps, host in gps_samples:
            self.keeper.add_gps(gps + self.system_time_transit_s, host)
        self.keeper.update(now)
        if self.keeper.usable != self._usable:
            self._usable = self.keeper.usable
            if self._usable:
                self.on_event("info", f"TDMA time from {self.keeper.estimate.source.value}: "
                                      f"sending in slot {self.slot}")
            else:
                self.on_event("warn", f"TDMA: {self.keeper.warning() or 'no usable time'}; "
                                      "holding frames rather than collide")

    def gps_now(self, host_now: float) -> float:
        return self.keeper.to_gps(host_now)

    # -- beacons -------------------------------------------------------------------------------
    def listen_window(self, now: float) -> tuple[float, float, int | None] | None:
        """(open, close, superframe) of the next receive window in host time, None if this
        UAV does not listen (no beacon key, a radio that cannot receive, or no beacon it can
        hear before its own command in a whole cycle of the schedule)."""
        if not self.can_receive:
            return None
        if not self.keeper.usable:
            return now, now + SEARCH_WINDOW_S, None
        s = self.schedule
        m = s.superframe_of(self.keeper.to_gps(now) + LISTEN_EARLY_S)
        first = True  # only the next beacon that cannot be heard counts as a miss (once)
        # One whole cycle of beacons and own slots: if no beacon in it can be heard, none can.
        for _ in range(s.beacon_every * s.uplink_every + 1):
            if s.beacon_due(m) and m != self._listened:
                start = s.beacon_start(m)
                opens = self.keeper.to_host(start - LISTEN_EARLY_S)
                closes = self.keeper.to_host(start + s.beacon_airtime_s + LISTEN_LATE_S)
                if closes > now:
                    if self._clear_of_own_frame(m, closes):
                        return max(opens, now), closes, m
                    if first and (self._not_listened is None or m > self._not_listened):
                        self.misses["beacons_not_listened"] += 1
                        self._not_listened = m
                    first = False
            m += 1
        return None

    def _clear_of_own_frame(self, m: int, closes: float) -> bool:
        s = self.schedule
        if not s.sends_in(m, self.slot):
            return True
        command = self.keeper.to_host(s.uplink_start(m, self.slot)) - self.lead_s
        return closes + self.report_s + LISTEN_CLEARANCE_S <= command

    def listened(self, superframe: int | None) -> None:
        """The window of ``superframe`` is over (with or without a beacon)."""
        if superframe is not None:
            self._listened = superframe

    def on_frame(self, frame: RxFrame) -> BeaconVerdict | None:
        """A frame heard in a window: judged as a beacon; an accepted one is a time sample."""
        if self.tracker is None:
            return None
        expected = None
        if self.keeper.usable:
            expected = self.schedule.superframe_of(self.keeper.to_gps(frame.time))
        verdict = self.tracker.process(frame.data, expected_superframe=expected)
        if verdict.accepted and verdict.beacon is not None:
            m = verdict.beacon.superframe
            s = self.schedule
            ended = s.beacon_start(m) + s.beacon_airtime_s + self.report_s
            self.keeper.add_beacon(ended, frame.time)
            self._listened = m
            if self.beacon_state is not None:
                try:
                    self.beacon_state.record(m)
                except (OSError, StateFileError) as exc:
                    self.misses["beacon_state_write_failed"] += 1
                    self.on_event("error", f"cannot persist the beacon counter: {exc}")
        elif verdict.status is BeaconStatus.WRONG_EPOCH:
            self.on_event("warn", f"beacon of another schedule: {verdict.detail}")
        return verdict

    # -- own slots -----------------------------------------------------------------------------
    def note_plan(self, now: float, *, state_ready: bool, radio_open: bool) -> None:
        """Called on every pass: count the own slot that just went by without a frame."""
        plan = self.policy.last_plan
        m = None if plan is None else plan[0]
        if plan is None and not self.keeper.usable:
            # Holding: one miss per superframe, by the best clock there is.
            held = self.schedule.superframe_of(self.keeper.to_gps(now))
            if held != self._held:
                self._held = held
                self.misses["slot_missed.no_time"] += 1
        elif self._planned is not None and m != self._planned and self._sent_in != self._planned:
            if not self.keeper.usable:
                reason = "no_time"
            elif not radio_open:
                reason = "radio"
            elif not state_ready:
                reason = "no_state"
            else:
                reason = "late"
            self.misses[f"slot_missed.{reason}"] += 1
        self._planned = m

    def planned_frame_gps(self) -> tuple[int, float] | None:
        return self.policy.last_plan

    def sent_in(self, superframe: int, command_host_s: float | None = None) -> None:
        """A frame of ``superframe`` went to the module; ``command_host_s``: when the command
        started to go out (host clock), measured against when it should have."""
        self._sent_in = superframe
        self.sent += 1
        plan = self.policy.last_plan
        if command_host_s is not None and plan is not None and plan[0] == superframe:
            self._command_late.append(command_host_s - (self.keeper.to_host(plan[1]) - self.lead_s))

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tdma_slot": self.slot, "tdma_lead_ms": 1e3 * self.lead_s,
                               "tdma_frames_sent": self.sent, **self.keeper.stats()}
        out.update({f"tdma.{k}": v for k, v in sorted(self.misses.items())})
        if self._command_late:
            late = sorted(self._command_late)
            out["tdma_command_late_ms_median"] = 1e3 * late[len(late) // 2]
            out["tdma_command_late_ms_max"] = 1e3 * late[-1]
        if self.tracker is not None:
            out.update({f"beacons.{k}": v for k, v in self.tracker.counts.items()})
        warning = self.keeper.warning()
        out["time_warning"] = warning or ""
        return out

    @staticmethod
    def beacon_state_path(counter_state_path: Path) -> Path:
        """Where the beacon counter lives: beside the UAV's frame-counter state."""
        return counter_state_path.with_name(counter_state_path.stem + ".beacon.json")
