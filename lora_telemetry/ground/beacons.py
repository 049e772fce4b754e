"""The ground's TDMA beacon on the receive loop: when to stop listening, what to send, what it cost.

The gateway is the one transceiver of the network and it is half duplex: for each beacon it
stops receiving, transmits and listens again. `BeaconTransmitter` is the part of that the
receive loop (ground/runtime.py) needs, kept apart so it can be driven on a simulated clock:

* ``receive_budget(now)`` bounds the next receive call so the loop is back ``WAKE_MARGIN_S``
  before it must hand the beacon to the chip, ``lead_s`` before its first symbol is due
  (slot 0 of every ``beacon_every``-th superframe, one guard after the superframe's start:
  core/tdma.py): a receive call returns a millisecond or two after its timeout;
* ``send_due(radio, now)`` sleeps the rest (a short, precise sleep) and sends it. The lead is the transceiver family's own
  command-to-air time (radios/sx1276/timing.py: TS_FS + TS_TR, 127.5 us) plus
  ``HOST_ALLOWANCE_S`` for the SPI writes of the payload that precede the TX command;
* its airtime counts against the gateway's duty-cycle ledger (core/dutycycle.py, the same
  rules the drones obey); a beacon the ledger does not allow, or that the radio fails to
  send, or whose moment the loop missed by more than half a guard (it would collide with
  slot 1) is skipped and counted by reason, never sent late.

The clock: the gateway's host clock is the network's time reference and must be GPS- or
NTP-disciplined (docs/timing.md); its beacons let UAVs without GPS time follow it.
"""

from __future__ import annotations

import time
from typing import Callable

from lora_telemetry.core.beacon import BEACON_BYTES
from lora_telemetry.core.dutycycle import DutyCycleLedger
from lora_telemetry.core.tdma_gateway import GatewaySchedule
from lora_telemetry.radios.base import RadioError, RawTransmit
from lora_telemetry.radios.registry import FamilyTiming

#: SPI writes of the beacon's 17 bytes and the FIFO pointers before the TX command.
HOST_ALLOWANCE_S = 0.001
#: The receive loop is back this long before the beacon's command (then sleeps the rest).
WAKE_MARGIN_S = 0.004


class BeaconTransmitter:
    """See the module docstring."""

    def __init__(self, schedule: GatewaySchedule, *, frequency_hz: int, timing: FamilyTiming,
                 ledger: DutyCycleLedger | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self.gateway_schedule = schedule
        self.frequency_hz = frequency_hz
        self.ledger = ledger or DutyCycleLedger()
        self.lead_s = timing.command_to_air_s(BEACON_BYTES, None) + HOST_ALLOWANCE_S
        self.on_event = on_event or (lambda level, text: None)
        self._clock = clock
        self._sleep = sleep
        self.last_error: str | None = None
        self._handled: int | None = None  # the newest beacon sent or skipped
        #: (started on the host, airtime) of the newest beacon sent, for diagnostics
        self.last_sent: tuple[float, float] | None = None

    def _next(self, now: float) -> tuple[int, float]:
        """(superframe, host time its command is due) of the oldest beacon not yet handled
        (sent or skipped); at the start, the next one after ``now``."""
        s = self.gateway_schedule.schedule
        if self._handled is None:  # the first beacon is the next one still ahead
            m, _ = self.gateway_schedule.next_beacon(now + self.lead_s)
            self._handled = m - 1
        m = self._handled + 1
        while not s.beacon_due(m):
            m += 1
        return m, s.beacon_start(m) - self.lead_s

    def receive_budget(self, now: float, limit_s: float) -> float:
        """How long the loop may listen from ``now`` (at most ``limit_s``) and still be back
        in time for the next beacon."""
        _, command_at = self._next(now)
        return max(0.0, min(limit_s, command_at - WAKE_MARGIN_S - now))

    def send_due(self, radio: RawTransmit, now: float) -> bool:
        """Send (or skip, counted) the beacon whose command is due by ``now`` plus
        ``WAKE_MARGIN_S`` (sleeping until its moment); True if one went out. Skips the beacon
        whose moment has passed by more than half a guard."""
        sched = self.gateway_schedule
        s = sched.schedule
        airtime = s.beacon_airtime_s
        while True:  # a beacon whose moment passed (the loop was busy) is counted, not lost
            m, command_at = self._next(now)
            if command_at > now + WAKE_MARGIN_S:
                return False
            if command_at > now:
                self._sleep(command_at - now)
                now = self._clock()
            self._handled = m
            if now - command_at <= s.guard_s / 2:
                break
            sched.skip_beacon(m, "late")  # sent now, it would run into slot 1
        if not self.ledger.can_send(self.frequency_hz, airtime, now):
            sched.skip_beacon(m, "duty_cycle")
            return False
        frame = sched.beacon(m)
        try:
            result = radio.send(frame, timeout=max(1.0, 4 * airtime))
        except RadioError as exc:
            sched.skip_beacon(m, "radio")
            if self.last_error != str(exc):
                self.on_event("error", f"beacon not sent: {exc}")
            self.last_error = str(exc)
            raise
        self.last_error = None
        sched.sent(m)
        self.ledger.record(self.frequency_hz, result.started, result.airtime_s)
        self.last_sent = (result.started, result.airtime_s)
        return True

    def stats(self, now: float) -> dict[str, float | int]:
        sched = self.gateway_schedule
        out: dict[str, float | int] = {"beacons_sent": sched.beacons_sent,
                                       "beacon_lead_ms": 1e3 * self.lead_s}
        out.update({f"beacons_skipped.{k}": v for k, v in sorted(sched.beacons_skipped.items())})
        band = self.ledger.subband_name(self.frequency_hz)
        figures = self.ledger.status(now)[band]
        out["beacon_airtime_last_hour_s"] = figures["used_s"]
        out["beacon_airtime_budget_s"] = figures["budget_s"]
        return out
