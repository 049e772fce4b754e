"""Commands to the flight controller: what to send per autopilot family, and the exchange.

Two sans-I/O pieces for issue 14 (commands to any UAV over the downlink):

:func:`autopilot_command` maps (vehicle family, command, argument) to the one COMMAND_LONG
that does it, or raises :class:`UnsupportedCommandError` for what the family cannot do.
Decisions (numbers from MAVLink common.xml, mode numbers from the core's mode table, which
follows pymavlink's/ArduPilot's ``Mode::Number`` and PX4's ``px4_custom_mode.h``):

* RETURN_TO_LAUNCH: MAV_CMD_NAV_RETURN_TO_LAUNCH (20) -- ArduCopter/Plane/Rover and PX4 map it
  to their RTL mode. ArduSub has no RTL mode: refused.
* LAND: MAV_CMD_NAV_LAND (21) for ArduCopter and PX4 (both switch to LAND / AUTO.LAND, where
  the vehicle is). ArduPlane: DO_SET_MODE QLAND (20) -- only a QuadPlane can land where it is;
  a fixed-wing plane refuses the mode (its COMMAND_ACK says so). Rover and Sub: refused.
* HOLD ("stay where you are"): DO_SET_MODE to ArduCopter LOITER (5) -- holds position and
  height and lets a pilot take over with the sticks; BRAKE (17) stops harder but is not a mode
  pilots fly, so it is available as SET_MODE BRAKE. ArduPlane LOITER (12, circles the point),
  ArduRover HOLD (4), ArduSub POSHOLD (16), PX4 AUTO.LOITER (main 4, sub 3).
* SET_MODE <name>: MAV_CMD_DO_SET_MODE (176) with param1 = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
  (1). ArduPilot takes the custom mode in param2 (GCS_MAVLINK::_set_mode_common); PX4 takes the
  main mode in param2 and the sub mode in param3 (MavlinkReceiver / Commander). A name the
  family does not know is refused before anything is sent. The SET_MODE *message* is not used:
  common.xml deprecates it for MAV_CMD_DO_SET_MODE, and its COMMAND_ACK (ArduPilot answers it
  with command = 11, "extraordinarily improper" in its own words) is not part of the command
  protocol. The simulated autopilot still answers it as ArduPilot does.
* SET_UPDATE_PERIOD is the drone node's own telemetry period, not a flight-controller command:
  :func:`autopilot_command` refuses it (:func:`is_autopilot_command` says which are).

:class:`CommandExchange` runs MAVLink's command protocol for one command: send it, wait for
the COMMAND_ACK from the addressed autopilot for this command id (and, when the ACK carries a
target, addressed to us), retransmit with ``confirmation`` incremented after ``timeout_s``
(default 1 s, 3 tries in all: the link's stream requests use the same 1 s / 2 retries), and end
in a :class:`CommandResult`: ACCEPTED, another MAV_RESULT (a refusal) or NO_ACK, with the round
trip from the first send. MAV_RESULT_IN_PROGRESS means the autopilot has the command: no more
retransmissions, and a final ACK is awaited for ``in_progress_timeout_s`` after the newest
IN_PROGRESS (then NO_ACK). Every wait is bounded; times are passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.codec import VehicleFamily, custom_mode_from_name, mode_name
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.mavlink.streams import MAV_RESULT_ACCEPTED, MAV_RESULT_IN_PROGRESS

__all__ = [
    "MAV_CMD_NAV_RETURN_TO_LAUNCH",
    "MAV_CMD_NAV_LAND",
    "MAV_CMD_DO_SET_MODE",
    "MAV_MODE_FLAG_CUSTOM_MODE_ENABLED",
    "MAV_RESULT_NAMES",
    "HOLD_MODE",
    "VehicleCommand",
    "UnsupportedCommandError",
    "AutopilotCommand",
    "autopilot_command",
    "is_autopilot_command",
    "ExchangeState",
    "Outcome",
    "CommandResult",
    "CommandExchange",
]

# MAVLink common.xml, MAV_CMD.
MAV_CMD_NAV_RETURN_TO_LAUNCH = 20
MAV_CMD_NAV_LAND = 21
MAV_CMD_DO_SET_MODE = 176
# MAVLink common.xml, MAV_MODE_FLAG.
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
# MAVLink common.xml, MAV_RESULT (the numbers themselves: mavlink/streams.py).
MAV_RESULT_NAMES = {
    0: "ACCEPTED", 1: "TEMPORARILY_REJECTED", 2: "DENIED", 3: "UNSUPPORTED", 4: "FAILED",
    5: "IN_PROGRESS", 6: "CANCELLED", 7: "COMMAND_LONG_ONLY", 8: "COMMAND_INT_ONLY",
    9: "COMMAND_UNSUPPORTED_MAV_FRAME",
}  # fmt: skip

#: The mode HOLD switches to, per family (see the module notes).
HOLD_MODE = {
    VehicleFamily.ARDUCOPTER: "LOITER",
    VehicleFamily.ARDUPLANE: "LOITER",
    VehicleFamily.ARDUROVER: "HOLD",
    VehicleFamily.ARDUSUB: "POSHOLD",
    VehicleFamily.PX4: "AUTO_LOITER",
}


class VehicleCommand(str, Enum):
    """The commands the downlink carries (issue 14)."""

    RETURN_TO_LAUNCH = "RETURN_TO_LAUNCH"
    LAND = "LAND"
    HOLD = "HOLD"
    SET_MODE = "SET_MODE"
    SET_UPDATE_PERIOD = "SET_UPDATE_PERIOD"


class UnsupportedCommandError(LoraTelemetryError):
    """A command this vehicle family cannot carry out (or an unknown mode name): not sent."""


@dataclass(frozen=True)
class AutopilotCommand:
    """One COMMAND_LONG to send: ``command`` (MAV_CMD) and its seven params; ``mode`` and
    ``custom_mode`` when it changes the flight mode (the HEARTBEAT should then show them)."""

    command: int
    params: tuple[float, float, float, float, float, float, float]
    description: str
    mode: str | None = None
    custom_mode: int | None = None

    def encode(self, mav: Any, target_system: int, target_component: int,
               confirmation: int = 0) -> Any:
        """The pymavlink COMMAND_LONG message (``mav``: a pymavlink MAVLink object)."""
        return mav.command_long_encode(
            target_system, target_component, self.command, confirmation % 256, *self.params
        )


def _family(value: object) -> VehicleFamily:
    try:
        return VehicleFamily(value)
    except ValueError:
        raise UnsupportedCommandError(f"unknown vehicle family {value!r}") from None


def _command(value: object) -> VehicleCommand:
    try:
        return VehicleCommand(value)
    except ValueError:
        known = ", ".join(c.value for c in VehicleCommand)
        raise UnsupportedCommandError(f"unknown command {value!r} (known: {known})") from None


def is_autopilot_command(command: VehicleCommand | str) -> bool:
    """Whether ``command`` goes to the flight controller (SET_UPDATE_PERIOD does not)."""
    return _command(command) is not VehicleCommand.SET_UPDATE_PERIOD


def _set_mode(family: VehicleFamily, name: str, why: str) -> AutopilotCommand:
    custom = custom_mode_from_name(family, name)
    if custom is None:
        raise UnsupportedCommandError(f"{family.value} has no flight mode {name!r}")
    if family is VehicleFamily.PX4:
        main, sub = (custom >> 16) & 0xFF, (custom >> 24) & 0xFF
        params = (float(MAV_MODE_FLAG_CUSTOM_MODE_ENABLED), float(main), float(sub), 0.0, 0.0,
                  0.0, 0.0)  # fmt: skip
    else:
        params = (float(MAV_MODE_FLAG_CUSTOM_MODE_ENABLED), float(custom), 0.0, 0.0, 0.0, 0.0,
                  0.0)  # fmt: skip
    return AutopilotCommand(MAV_CMD_DO_SET_MODE, params, why, mode_name(family, custom), custom)


def autopilot_command(family: VehicleFamily | str, command: VehicleCommand | str,
                      argument: str | None = None) -> AutopilotCommand:
    """The COMMAND_LONG that carries out ``command`` on a ``family`` vehicle (``argument``: the
    mode name of SET_MODE). Raises :class:`UnsupportedCommandError` for what the family cannot
    do, an unknown mode name, or SET_UPDATE_PERIOD (not a flight-controller command)."""
    fam, cmd = _family(family), _command(command)
    zeros = (0.0,) * 7
    if cmd is VehicleCommand.SET_UPDATE_PERIOD:
        raise UnsupportedCommandError(
            "SET_UPDATE_PERIOD is the drone node's telemetry period, not a flight-controller "
            "command"
        )
    if cmd is VehicleCommand.RETURN_TO_LAUNCH:
        if fam is VehicleFamily.ARDUSUB:
            raise UnsupportedCommandError("ArduSub has no return-to-launch mode")
        rtl = "AUTO_RTL" if fam is VehicleFamily.PX4 else "RTL"
        return AutopilotCommand(MAV_CMD_NAV_RETURN_TO_LAUNCH, zeros, "return to launch", rtl,
                                custom_mode_from_name(fam, rtl))  # fmt: skip
    if cmd is VehicleCommand.LAND:
        if fam in (VehicleFamily.ARDUCOPTER, VehicleFamily.PX4):
            land = "AUTO_LAND" if fam is VehicleFamily.PX4 else "LAND"
            # param5/6 (lat/lon) 0 and param7 (altitude) 0: land where it is. NaN would say
            # "current position" in newer common.xml, but ArduCopter ignores them anyway.
            return AutopilotCommand(MAV_CMD_NAV_LAND, zeros, "land here", land,
                                    custom_mode_from_name(fam, land))  # fmt: skip
        if fam is VehicleFamily.ARDUPLANE:
            return _set_mode(fam, "QLAND", "land here (QuadPlane QLAND)")
        raise UnsupportedCommandError(f"a {fam.value} vehicle cannot land")
    if cmd is VehicleCommand.HOLD:
        return _set_mode(fam, HOLD_MODE[fam], "hold position")
    if not argument or not isinstance(argument, str):
        raise UnsupportedCommandError("SET_MODE needs a mode name")
    return _set_mode(fam, argument, f"set mode {argument.strip().upper()}")


# -- the exchange ----------------------------------------------------------------------------


class ExchangeState(Enum):
    IDLE = "idle"
    WAITING = "waiting"  # sent, no answer yet
    IN_PROGRESS = "in_progress"  # the autopilot answered IN_PROGRESS
    DONE = "done"


class Outcome(Enum):
    ACCEPTED = "accepted"
    REFUSED = "refused"  # a final MAV_RESULT other than ACCEPTED
    NO_ACK = "no_ack"


@dataclass(frozen=True)
class CommandResult:
    """How an exchange ended. ``result``: the MAV_RESULT (None without one); ``rtt_s``: from
    the first send to the final ACK (None for NO_ACK); ``tries``: transmissions;
    ``progress``: the last IN_PROGRESS percentage (None if none came)."""

    outcome: Outcome
    result: int | None
    rtt_s: float | None
    tries: int
    command: int
    progress: int | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @property
    def result_name(self) -> str:
        if self.result is None:
            return "NO_ACK"
        return MAV_RESULT_NAMES.get(self.result, f"MAV_RESULT({self.result})")


class CommandExchange:
    """One command to one autopilot, by MAVLink's command protocol; see the module notes.

    ``target_system``/``target_component``: the autopilot (component 0: any component may
    answer). ``own_system``/``own_component``: our address, which an ACK with a target must
    carry (0 in an ACK's target fields, as MAVLink 1 ACKs have, matches). ``start`` and
    ``due`` return pymavlink COMMAND_LONG messages for the I/O edge to send
    (``mav.send(msg)``, so the link's own sequence numbers are used).
    """

    def __init__(
        self,
        command: AutopilotCommand,
        target_system: int,
        target_component: int = 1,
        *,
        own_system: int,
        own_component: int = 191,
        timeout_s: float = 1.0,
        tries: int = 3,
        in_progress_timeout_s: float = 5.0,
    ) -> None:
        for name, value in (("target_system", target_system), ("own_system", own_system)):
            if not (isinstance(value, int) and 1 <= value <= 255):
                raise ConfigError(f"{name} must be in 1..255, got {value!r}")
        if not (isinstance(tries, int) and tries >= 1):
            raise ConfigError(f"tries must be >= 1, got {tries!r}")
        for name, value in (("timeout_s", timeout_s),
                            ("in_progress_timeout_s", in_progress_timeout_s)):  # fmt: skip
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be positive, got {value!r}")
        self.command = command
        self.target_system = target_system
        self.target_component = target_component
        self.own_system = own_system
        self.own_component = own_component
        self.timeout_s = float(timeout_s)
        self.tries = tries
        self.in_progress_timeout_s = float(in_progress_timeout_s)
        self.state = ExchangeState.IDLE
        self.result: CommandResult | None = None
        self.sent = 0
        self.ignored = 0  # messages seen that were not our ACK
        self._encoder = mavlink2.MAVLink(None, srcSystem=own_system, srcComponent=own_component)
        self._first_sent: float | None = None
        self._deadline = math.inf
        self._progress: int | None = None

    @property
    def done(self) -> bool:
        return self.state is ExchangeState.DONE

    @property
    def deadline(self) -> float:
        """When :meth:`due` next has something to do (inf when done or not started)."""
        return self._deadline

    def _send(self, now: float) -> list[Any]:
        msg = self.command.encode(self._encoder, self.target_system, self.target_component,
                                  confirmation=self.sent)  # fmt: skip
        self.sent += 1
        self._deadline = now + self.timeout_s
        return [msg]

    def start(self, now: float) -> list[Any]:
        """Send the command: the COMMAND_LONG message(s) to send now."""
        if self.state is not ExchangeState.IDLE:
            raise ConfigError("a CommandExchange is started once")
        self._first_sent = now
        self.state = ExchangeState.WAITING
        return self._send(now)

    def due(self, now: float) -> list[Any]:
        """Retransmissions due at ``now`` (empty if none); ends in NO_ACK when out of tries or
        when a command in progress never finishes."""
        if self.state in (ExchangeState.IDLE, ExchangeState.DONE) or now < self._deadline:
            return []
        if self.state is ExchangeState.WAITING and self.sent < self.tries:
            return self._send(now)
        self._finish(Outcome.NO_ACK, None, None)
        return []

    def is_our_ack(self, msg: Any) -> bool:
        """Whether ``msg`` is the COMMAND_ACK answering this command."""
        if msg.get_type() != "COMMAND_ACK" or msg.command != self.command.command:
            return False
        if msg.get_srcSystem() != self.target_system:
            return False
        if self.target_component not in (0, msg.get_srcComponent()):
            return False
        ts, tc = getattr(msg, "target_system", 0), getattr(msg, "target_component", 0)
        return ts in (0, self.own_system) and tc in (0, self.own_component)

    def on_message(self, msg: Any, now: float) -> CommandResult | None:
        """Consume a received message; returns the result when this one ended the exchange."""
        if self.state not in (ExchangeState.WAITING, ExchangeState.IN_PROGRESS):
            return None
        if not self.is_our_ack(msg):
            self.ignored += 1
            return None
        if msg.result == MAV_RESULT_IN_PROGRESS:
            self.state = ExchangeState.IN_PROGRESS
            self._progress = getattr(msg, "progress", None)
            self._deadline = now + self.in_progress_timeout_s
            return None
        outcome = Outcome.ACCEPTED if msg.result == MAV_RESULT_ACCEPTED else Outcome.REFUSED
        assert self._first_sent is not None
        return self._finish(outcome, int(msg.result), now - self._first_sent)

    def _finish(self, outcome: Outcome, result: int | None, rtt: float | None) -> CommandResult:
        self.state = ExchangeState.DONE
        self._deadline = math.inf
        self.result = CommandResult(outcome, result, rtt, self.sent, self.command.command,
                                    self._progress)  # fmt: skip
        return self.result
