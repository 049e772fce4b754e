"""Asking an autopilot for the messages the telemetry needs, at their rates (sans-I/O).

:class:`StreamRequester` follows the MAVLink command protocol: one
MAV_CMD_SET_MESSAGE_INTERVAL per message, sent one at a time because a COMMAND_ACK does not
say which message it answers, retried with an incremented confirmation, and a fallback to
REQUEST_DATA_STREAM (ArduPilot's stream groups) when the autopilot answers UNSUPPORTED or not at
all, as older ArduPilot firmware does. A message that still does not arrive is asked for again
a few times, then reported missing. The link restarts every request on a new autopilot and
after the autopilot rebooted or came back from silence.

The command and result numbers are MAVLink common.xml's; the simulated autopilot answers the
same ones.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.errors import ConfigError

__all__ = [
    "MAV_CMD_SET_MESSAGE_INTERVAL",
    "MAV_RESULT_ACCEPTED",
    "MAV_RESULT_TEMPORARILY_REJECTED",
    "MAV_RESULT_UNSUPPORTED",
    "MAV_RESULT_IN_PROGRESS",
    "DEFAULT_STREAM_RATES_HZ",
    "DATA_STREAM_OF_MESSAGE",
    "StreamRequest",
    "StreamRequester",
]

MAV_CMD_SET_MESSAGE_INTERVAL = 511
MAV_RESULT_ACCEPTED = 0
MAV_RESULT_TEMPORARILY_REJECTED = 1
MAV_RESULT_UNSUPPORTED = 3
MAV_RESULT_IN_PROGRESS = 5

#: Messages the telemetry needs and the rate asked for each (Hz). HEARTBEAT always comes at 1 Hz.
#: Position at 10 Hz: the drone sends the newest state, so its age when sent averages half this
#: period (bench/bench_latency.py "wait"); a flight-controller link carries it easily.
DEFAULT_STREAM_RATES_HZ: Mapping[str, float] = {
    "GLOBAL_POSITION_INT": 10.0,
    "GPS_RAW_INT": 2.0,
    "VFR_HUD": 4.0,
    "ATTITUDE": 4.0,
    "SYS_STATUS": 2.0,
    "BATTERY_STATUS": 1.0,
    "SYSTEM_TIME": 1.0,
}

#: Under TDMA (core/timesync.py) the drone keeps GPS time from SYSTEM_TIME: four a second
#: give its least-delay filter enough samples to ignore the link's delays.
TDMA_STREAM_RATES_HZ: Mapping[str, float] = {**DEFAULT_STREAM_RATES_HZ, "SYSTEM_TIME": 4.0}

#: ArduPilot's stream group (MAV_DATA_STREAM) of each message, from the STREAM_*_msgs tables of
#: its GCS_Mavlink.cpp: EXTENDED_STATUS 2, POSITION 6, EXTRA1 10, EXTRA2 11, EXTRA3 12.
DATA_STREAM_OF_MESSAGE: Mapping[str, int] = {
    "SYS_STATUS": 2,
    "GPS_RAW_INT": 2,
    "GLOBAL_POSITION_INT": 6,
    "ATTITUDE": 10,
    "VFR_HUD": 11,
    "SYSTEM_TIME": 12,
    "BATTERY_STATUS": 12,
}


@dataclass(frozen=True)
class StreamRequest:
    """One request to send: a SET_MESSAGE_INTERVAL command or a REQUEST_DATA_STREAM."""

    kind: str  # "set_message_interval" | "request_data_stream"
    message: str | None = None
    message_id: int = 0
    interval_us: int = 0
    confirmation: int = 0
    stream_id: int = 0
    rate_hz: int = 0


class StreamRequester:
    """Asks an autopilot for each needed message at its rate; see the module notes.

    Message states: ``queued`` -> ``waiting`` (command sent) -> ``accepted`` (ACK ACCEPTED) or
    ``data_stream`` (fallback sent). A message still not seen ``verify_after_s`` after its
    request is asked for again, at most ``max_rounds`` times (then ``missing``).
    """

    def __init__(
        self,
        rates_hz: Mapping[str, float] = DEFAULT_STREAM_RATES_HZ,
        command_timeout_s: float = 1.0,
        command_retries: int = 2,
        verify_after_s: float = 5.0,
        max_rounds: int = 3,
    ) -> None:
        self.rates_hz: dict[str, float] = {}
        for name, rate in rates_hz.items():
            msg_id = getattr(mavlink2, f"MAVLINK_MSG_ID_{name}", None)
            if msg_id is None:
                raise ConfigError(f"unknown MAVLink message {name!r} in the stream rates")
            if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate <= 1000):
                raise ConfigError(f"stream rate of {name} must be in (0, 1000] Hz, got {rate!r}")
            self.rates_hz[name] = float(rate)
        self.command_timeout_s = command_timeout_s
        self.command_retries = command_retries
        self.verify_after_s = verify_after_s
        self.max_rounds = max_rounds
        self.status: dict[str, str] = {}
        self.legacy = False  # the autopilot does not know SET_MESSAGE_INTERVAL
        self.counters: Counter[str] = Counter()
        self._queue: list[str] = []
        self._in_flight: tuple[str, int, float] | None = None  # message, confirmation, sent at
        self._requested_at: dict[str, float] = {}
        self._rounds: Counter[str] = Counter()
        self._seen_at: dict[str, float] = {}
        self._streams_due: dict[int, int] = {}
        self.active = False

    def start(self, now: float) -> None:
        """(Re)start every request: on a new autopilot or after it rebooted."""
        self.active = True
        self.legacy = False
        self._queue = list(self.rates_hz)
        self.status = {name: "queued" for name in self.rates_hz}
        self._in_flight = None
        self._requested_at.clear()
        self._rounds.clear()
        self._streams_due.clear()
        self.counters["starts"] += 1

    def on_message(self, mtype: str, fields: Mapping[str, Any], now: float) -> None:
        """Every message from the autopilot (ACKs answer requests; arrivals verify them)."""
        self._seen_at[mtype] = now
        if mtype != "COMMAND_ACK" or self._in_flight is None:
            return
        if int(fields.get("command", -1)) != MAV_CMD_SET_MESSAGE_INTERVAL:
            return
        name, _, _ = self._in_flight
        result = int(fields.get("result", -1))
        if result == MAV_RESULT_IN_PROGRESS:
            return
        self._in_flight = None
        if result == MAV_RESULT_ACCEPTED:
            self.status[name] = "accepted"
            self._requested_at[name] = now
            self.counters["accepted"] += 1
        elif result == MAV_RESULT_TEMPORARILY_REJECTED:
            self._queue.append(name)
            self.status[name] = "queued"
            self.counters["temporarily_rejected"] += 1
        else:
            if result == MAV_RESULT_UNSUPPORTED:
                self.legacy = True
            self.counters[f"nack_{result}"] += 1
            self._fallback(name, now)

    def _fallback(self, name: str, now: float) -> None:
        stream = DATA_STREAM_OF_MESSAGE.get(name)
        if stream is None:
            self.status[name] = "missing"  # no stream carries it on ArduPilot
            self.counters["no_fallback"] += 1
            return
        rate = max(1, math.ceil(self.rates_hz[name]))
        self._streams_due[stream] = max(rate, self._streams_due.get(stream, 0))
        self.status[name] = "data_stream"
        self._requested_at[name] = now

    def due(self, now: float) -> list[StreamRequest]:
        """Requests to send now."""
        if not self.active:
            return []
        out: list[StreamRequest] = []
        if self._in_flight is not None:
            name, confirmation, sent_at = self._in_flight
            if now - sent_at >= self.command_timeout_s:
                if confirmation < self.command_retries:
                    self._in_flight = (name, confirmation + 1, now)
                    out.append(self._command(name, confirmation + 1))
                    self.counters["command_retries"] += 1
                else:  # never answered: an autopilot that ignores the command
                    self._in_flight = None
                    self.legacy = True
                    self.counters["no_ack"] += 1
                    self._fallback(name, now)
        # Verify: re-request what was asked for but has not arrived.
        for name, asked in list(self._requested_at.items()):
            if now - asked < self.verify_after_s or self._seen_at.get(name, -math.inf) >= asked:
                continue
            del self._requested_at[name]
            self._rounds[name] += 1
            if self._rounds[name] >= self.max_rounds:
                self.status[name] = "missing"
                self.counters["gave_up"] += 1
            else:
                self.status[name] = "queued"
                self._queue.append(name)
                self.counters["rerequests"] += 1
        while self._queue and self._in_flight is None:
            name = self._queue.pop(0)
            if self.legacy:
                self._fallback(name, now)
                continue
            self.status[name] = "waiting"
            self._in_flight = (name, 0, now)
            out.append(self._command(name, 0))
        for stream, rate in sorted(self._streams_due.items()):
            out.append(StreamRequest("request_data_stream", stream_id=stream, rate_hz=rate))
            self.counters["data_stream_requests"] += 1
        self._streams_due.clear()
        return out

    def _command(self, name: str, confirmation: int) -> StreamRequest:
        self.counters["commands"] += 1
        return StreamRequest(
            "set_message_interval",
            message=name,
            message_id=getattr(mavlink2, f"MAVLINK_MSG_ID_{name}"),
            interval_us=int(round(1e6 / self.rates_hz[name])),
            confirmation=confirmation,
        )

