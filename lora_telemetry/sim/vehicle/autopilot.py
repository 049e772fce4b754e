"""The MAVLink side of a synthetic vehicle (sans-I/O): what it sends when, and its answers.

:class:`SimulatedAutopilot` emits HEARTBEAT, GLOBAL_POSITION_INT, GPS_RAW_INT, VFR_HUD,
ATTITUDE, SYS_STATUS, BATTERY_STATUS and SYSTEM_TIME at ArduPilot-like rates
(:data:`DEFAULT_SIM_RATES_HZ` until asked otherwise), and answers
MAV_CMD_SET_MESSAGE_INTERVAL (COMMAND_ACK) and REQUEST_DATA_STREAM (ArduPilot's stream groups,
no ACK) as the firmware does, plus MAV_CMD_REQUEST_MESSAGE. It answers with the stream groups
and command numbers of :mod:`lora_telemetry.mavlink.streams`, the ones the link asks with.
Time is the simulation time, passed in; the packets are bytes for the simulator to write.

Flight commands (issue 14), answered as ArduCopter 4.x does (GCS_MAVLINK_Copter and
GCS_MAVLINK::_set_mode_common): MAV_CMD_NAV_RETURN_TO_LAUNCH (20) and MAV_CMD_NAV_LAND (21)
switch to RTL / LAND; MAV_CMD_DO_SET_MODE (176) takes param1 = base mode, which must carry
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED (else DENIED, "invalid parameters"), and param2 = the
custom mode. The SET_MODE message does the same and ArduPilot answers it with a COMMAND_ACK
whose ``command`` is the message id, 11 (its own comment calls that "extraordinarily
improper"); so does this simulator. A mode change ArduCopter refuses (no such mode number:
``set_mode`` fails) is MAV_RESULT_FAILED, the code ArduCopter sends; so is a real ArduCopter
mode this simulation does not fly (STABILIZE, ACRO, AUTO again, ...), a documented limit of
the simulator. A vehicle disarmed on the ground accepts RTL/LAND/any mode and stays there, as
ArduCopter does (it switches modes freely while disarmed); see
:meth:`SyntheticVehicle.command_mode`. Only the addressed system (or a broadcast, 0) acts.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from typing import Any, Mapping

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.codec import FLIGHT_MODES, VehicleFamily
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.latency import Latency
from lora_telemetry.mavlink.commands import (
    MAV_CMD_DO_SET_MODE,
    MAV_CMD_NAV_LAND,
    MAV_CMD_NAV_RETURN_TO_LAUNCH,
    MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
)
from lora_telemetry.mavlink.state import MAV_COMP_ID_AUTOPILOT1
from lora_telemetry.mavlink.streams import (
    DATA_STREAM_OF_MESSAGE,
    MAV_CMD_SET_MESSAGE_INTERVAL,
    MAV_RESULT_ACCEPTED,
    MAV_RESULT_UNSUPPORTED,
)
from lora_telemetry.sim.vehicle.encoding import ENCODERS, MESSAGE_NAME_OF_ID
from lora_telemetry.sim.vehicle.trajectories import SyntheticVehicle, VehicleTruth

__all__ = ["DEFAULT_SIM_RATES_HZ", "SYSTEM_TIME_DELAY", "SimulatedAutopilot"]

#: How old a flight controller's SYSTEM_TIME is when the autopilot hands it to its port: it
#: is stamped in one task and written at some point of the scheduler's 400 Hz loop
#: (ArduCopter's main loop: 0-2.5 ms). The simulator's links are UDP, as SITL's; a serial
#: link adds the message's own serial time, which the drone knows from the baud and takes off
#: (drone/tdma.system_time_transit_s). docs/timing.md.
SYSTEM_TIME_DELAY = Latency(0.00125, 0.00125)

MAV_CMD_REQUEST_MESSAGE = 512
MAVLINK_MSG_ID_SET_MODE = 11
MAV_RESULT_DENIED = 2
MAV_RESULT_FAILED = 4

#: What an ArduCopter telemetry port streams before anyone asks (Hz): roughly SRx_* = 2 with
#: SYSTEM_TIME and BATTERY_STATUS (stream EXTRA3) at 1 Hz. HEARTBEAT is always 1 Hz.
DEFAULT_SIM_RATES_HZ: Mapping[str, float] = {
    "GLOBAL_POSITION_INT": 2.0,
    "GPS_RAW_INT": 2.0,
    "VFR_HUD": 2.0,
    "ATTITUDE": 4.0,
    "SYS_STATUS": 2.0,
    "BATTERY_STATUS": 1.0,
    "SYSTEM_TIME": 1.0,
}


class SimulatedAutopilot:
    """The MAVLink side of a :class:`SyntheticVehicle`: what it sends when, and its answers.

    ``set_message_interval``: "accept" (ArduPilot 4.x), "unsupported" (answers
    MAV_RESULT_UNSUPPORTED) or "ignore" (no answer, as very old firmware) -- the last two
    exercise a link's REQUEST_DATA_STREAM fallback. ``mavlink1`` sends MAVLink 1 packets.
    """

    def __init__(
        self,
        vehicle: SyntheticVehicle,
        default_rates_hz: Mapping[str, float] | None = None,
        *,
        set_message_interval: str = "accept",
        mavlink1: bool = False,
        system_time_delay: Latency | None = None,
        seed: int | None = None,
    ) -> None:
        if set_message_interval not in ("accept", "unsupported", "ignore"):
            raise ConfigError(f"set_message_interval mode {set_message_interval!r} is unknown")
        self.vehicle = vehicle
        self.sysid = vehicle.sysid
        self.mode = set_message_interval
        self.mavlink1 = mavlink1
        self.mav = mavlink2.MAVLink(
            None, srcSystem=vehicle.sysid, srcComponent=MAV_COMP_ID_AUTOPILOT1
        )
        defaults = DEFAULT_SIM_RATES_HZ if default_rates_hz is None else default_rates_hz
        self.default_rates: dict[str, float] = {n: defaults.get(n, 0.0) for n in ENCODERS}
        self.default_rates["HEARTBEAT"] = 1.0
        self.rates: dict[str, float] = dict(self.default_rates)
        self._next: dict[str, float] = {}
        self.counters: Counter[str] = Counter()
        #: SYSTEM_TIME is stamped this much before it is handed over (None: at once)
        self.system_time_delay = system_time_delay
        self._rng = random.Random(seed)

    def _pack(self, msg: Any) -> bytes:
        buf = msg.pack(self.mav, force_mavlink1=self.mavlink1)
        self.mav.seq = (self.mav.seq + 1) % 256
        self.counters[f"sent_{msg.get_type()}"] += 1
        return buf

    def due(self, t: float) -> list[bytes]:
        """Packets due at simulation time ``t`` (call often; each message keeps its rate)."""
        out: list[bytes] = []
        truth: VehicleTruth | None = None
        for name, rate in self.rates.items():
            if rate <= 0:
                continue
            period = 1.0 / rate
            nxt = self._next.get(name)
            if nxt is None or nxt > t + period:  # new, or the rate just went up
                nxt = t
            if t < nxt:
                continue
            self._next[name] = nxt + period if t - nxt < period else t + period
            truth = truth or self.vehicle.state_at(t)
            sent = truth
            if name == "SYSTEM_TIME" and self.system_time_delay is not None:
                delay = self.system_time_delay.draw(self._rng)
                sent = dataclasses.replace(truth, time_unix_s=truth.time_unix_s - delay)
            out.append(self._pack(ENCODERS[name](self.mav, sent)))
        return out

    def handle(self, msg: Any, t: float) -> list[bytes]:
        """Answer a message addressed to this vehicle (others are ignored); returns packets."""
        mtype = msg.get_type()
        if mtype == "SET_MODE":  # no target component: the mode is the whole vehicle's
            if msg.target_system not in (0, self.sysid):
                return []
            self.counters["received_SET_MODE"] += 1
            result = self._set_mode(msg.base_mode, msg.custom_mode, t)
            return [self._ack(msg, result, command=MAVLINK_MSG_ID_SET_MODE)]
        if mtype not in ("COMMAND_LONG", "REQUEST_DATA_STREAM"):
            return []
        if msg.target_system not in (0, self.sysid) or msg.target_component not in (
            0,
            MAV_COMP_ID_AUTOPILOT1,
        ):
            return []
        self.counters[f"received_{mtype}"] += 1
        if mtype == "REQUEST_DATA_STREAM":
            self._data_stream(msg.req_stream_id, msg.req_message_rate, msg.start_stop)
            return []  # ArduPilot does not acknowledge it
        if msg.command == MAV_CMD_SET_MESSAGE_INTERVAL:
            if self.mode == "ignore":
                return []
            if self.mode == "unsupported":
                return [self._ack(msg, MAV_RESULT_UNSUPPORTED)]
            result = self._set_interval(int(msg.param1), msg.param2)
            return [self._ack(msg, result)]
        if msg.command == MAV_CMD_NAV_RETURN_TO_LAUNCH:
            return [self._ack(msg, self._fly_mode("RTL", t))]
        if msg.command == MAV_CMD_NAV_LAND:
            return [self._ack(msg, self._fly_mode("LAND", t))]
        if msg.command == MAV_CMD_DO_SET_MODE:
            return [self._ack(msg, self._set_mode(msg.param1, msg.param2, t))]
        if msg.command == MAV_CMD_REQUEST_MESSAGE:
            name = MESSAGE_NAME_OF_ID.get(int(msg.param1))
            if name is None:
                return [self._ack(msg, MAV_RESULT_DENIED)]
            return [self._ack(msg, MAV_RESULT_ACCEPTED),
                    self._pack(ENCODERS[name](self.mav, self.vehicle.state_at(t)))]  # fmt: skip
        return [self._ack(msg, MAV_RESULT_UNSUPPORTED)]

    def _set_mode(self, base_mode: float, custom_mode: float, t: float) -> int:
        if not (math.isfinite(base_mode) and int(base_mode) & MAV_MODE_FLAG_CUSTOM_MODE_ENABLED):
            return MAV_RESULT_DENIED
        if not (math.isfinite(custom_mode) and custom_mode == int(custom_mode)):
            return MAV_RESULT_FAILED
        name = FLIGHT_MODES[VehicleFamily.ARDUCOPTER].get(int(custom_mode))
        if name is None:
            return MAV_RESULT_FAILED  # ArduCopter: no such mode
        return self._fly_mode(name, t)

    def _fly_mode(self, name: str, t: float) -> int:
        if not self.vehicle.command_mode(t, name):
            return MAV_RESULT_FAILED  # a mode this simulation does not fly
        self.counters[f"mode_{name}"] += 1
        return MAV_RESULT_ACCEPTED

    def _set_interval(self, msg_id: int, interval_us: float) -> int:
        name = MESSAGE_NAME_OF_ID.get(msg_id)
        if name is None:
            return MAV_RESULT_DENIED  # a message this vehicle cannot send
        if interval_us == -1:
            self.rates[name] = 0.0
        elif interval_us == 0:
            self.rates[name] = self.default_rates[name]
        elif interval_us > 0:
            self.rates[name] = min(1e6 / interval_us, 50.0)
        else:
            return MAV_RESULT_DENIED
        self._next.pop(name, None)
        return MAV_RESULT_ACCEPTED

    def _data_stream(self, stream_id: int, rate_hz: int, start: int) -> None:
        for name, stream in DATA_STREAM_OF_MESSAGE.items():
            if name in self.rates and (stream_id == 0 or stream == stream_id):
                self.rates[name] = float(min(rate_hz, 50)) if start else 0.0
                self._next.pop(name, None)

    def _ack(self, msg: Any, result: int, command: int | None = None) -> bytes:
        return self._pack(
            self.mav.command_ack_encode(
                msg.command if command is None else command, result, 0, 0,
                msg.get_srcSystem(), msg.get_srcComponent(),
            )
        )
