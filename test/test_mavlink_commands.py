"""Commands to the flight controller: the per-family mapping and the command exchange.

Command and result numbers: MAVLink common.xml (MAV_CMD_NAV_RETURN_TO_LAUNCH 20,
MAV_CMD_NAV_LAND 21, MAV_CMD_DO_SET_MODE 176, MAV_MODE_FLAG_CUSTOM_MODE_ENABLED 1, MAV_RESULT
0-5), cross-checked with pymavlink's generated dialect. Mode numbers: ArduPilot's
``Mode::Number`` (ArduCopter LOITER 5, RTL 6, LAND 9, BRAKE 17; ArduPlane LOITER 12, QLAND 20;
Rover HOLD 4) and PX4's px4_custom_mode.h (main AUTO 4; sub LOITER 3, RTL 5, LAND 6). Every
packet goes through pymavlink's encoder and parser, as on a real link.
"""

from __future__ import annotations

import pytest
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.codec import VehicleFamily, px4_custom_mode
from lora_telemetry.mavlink.commands import (
    CommandExchange,
    ExchangeState,
    Outcome,
    UnsupportedCommandError,
    VehicleCommand,
    autopilot_command,
    is_autopilot_command,
)

F = VehicleFamily
OWN = (1, 191)  # the drone node: the autopilot's system id, MAV_COMP_ID_ONBOARD_COMPUTER


def test_numbers_match_pymavlink() -> None:
    assert mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH == 20 and mavlink2.MAV_CMD_NAV_LAND == 21
    assert mavlink2.MAV_CMD_DO_SET_MODE == 176 and mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED == 1
    assert (mavlink2.MAV_RESULT_DENIED, mavlink2.MAV_RESULT_IN_PROGRESS) == (2, 5)


def test_ardupilot_mapping() -> None:
    rtl = autopilot_command(F.ARDUCOPTER, VehicleCommand.RETURN_TO_LAUNCH)
    assert (rtl.command, rtl.params, rtl.mode, rtl.custom_mode) == (20, (0.0,) * 7, "RTL", 6)
    land = autopilot_command("arducopter", "LAND")
    assert (land.command, land.mode, land.custom_mode) == (21, "LAND", 9)
    hold = autopilot_command(F.ARDUCOPTER, "HOLD")
    assert (hold.command, hold.params[:3], hold.mode) == (176, (1.0, 5.0, 0.0), "LOITER")
    brake = autopilot_command(F.ARDUCOPTER, "SET_MODE", "brake")
    assert (brake.params[:2], brake.mode) == ((1.0, 17.0), "BRAKE")
    assert autopilot_command(F.ARDUPLANE, "HOLD").params[1] == 12.0  # LOITER
    assert autopilot_command(F.ARDUPLANE, "RETURN_TO_LAUNCH").custom_mode == 11
    qland = autopilot_command(F.ARDUPLANE, "LAND")
    assert (qland.command, qland.params[1], qland.mode) == (176, 20.0, "QLAND")
    assert autopilot_command(F.ARDUROVER, "HOLD").params[1] == 4.0  # Rover HOLD
    # pymavlink agrees on the numbers
    assert mavutil.mode_mapping_bynumber(2)[5] == "LOITER"  # MAV_TYPE_QUADROTOR
    assert mavutil.mode_mapping_bynumber(1)[12] == "LOITER"  # MAV_TYPE_FIXED_WING


def test_px4_mapping_uses_main_and_sub_modes() -> None:
    hold = autopilot_command(F.PX4, "HOLD")
    assert (hold.command, hold.params[:3]) == (176, (1.0, 4.0, 3.0))  # AUTO.LOITER
    assert hold.custom_mode == px4_custom_mode(4, 3) == (4 << 16) | (3 << 24)
    assert autopilot_command(F.PX4, "RETURN_TO_LAUNCH").command == 20
    assert autopilot_command(F.PX4, "LAND").custom_mode == px4_custom_mode(4, 6)
    posctl = autopilot_command(F.PX4, "SET_MODE", "POSCTL")
    assert posctl.params[:3] == (1.0, 3.0, 0.0)
    assert autopilot_command(F.PX4, "SET_MODE", "RTL").params[:3] == (1.0, 4.0, 5.0)  # alias


def test_refusals() -> None:
    with pytest.raises(UnsupportedCommandError, match="no flight mode"):
        autopilot_command(F.ARDUCOPTER, "SET_MODE", "WARP")
    with pytest.raises(UnsupportedCommandError, match="mode name"):
        autopilot_command(F.ARDUCOPTER, "SET_MODE")
    with pytest.raises(UnsupportedCommandError, match="cannot land"):
        autopilot_command(F.ARDUROVER, "LAND")
    with pytest.raises(UnsupportedCommandError, match="return-to-launch"):
        autopilot_command(F.ARDUSUB, "RETURN_TO_LAUNCH")
    with pytest.raises(UnsupportedCommandError, match="telemetry period"):
        autopilot_command(F.ARDUCOPTER, "SET_UPDATE_PERIOD")
    with pytest.raises(UnsupportedCommandError, match="unknown command"):
        autopilot_command(F.ARDUCOPTER, "FLIP")
    with pytest.raises(UnsupportedCommandError, match="family"):
        autopilot_command("betaflight", "LAND")
    assert is_autopilot_command("LAND") and not is_autopilot_command("SET_UPDATE_PERIOD")


# -- the exchange over real bytes ------------------------------------------------------------

_sender = mavlink2.MAVLink(None, srcSystem=OWN[0], srcComponent=OWN[1])
_autopilot = {}


def over_the_wire(msg, src=(1, 1)):
    """Pack with pymavlink (as the given source) and parse back, as a receiver would."""
    if msg.get_type() == "COMMAND_LONG":
        buf = msg.pack(_sender)
    else:
        mav = _autopilot.setdefault(src, mavlink2.MAVLink(None, srcSystem=src[0],
                                                          srcComponent=src[1]))  # fmt: skip
        buf = msg.pack(mav)
    parsed = mavlink2.MAVLink(None).parse_buffer(bytearray(buf))  # the dialect the link uses
    assert parsed and len(parsed) == 1
    return parsed[0]


def ack(command: int, result: int, src=(1, 1), target=OWN, progress: int = 0):
    mav = mavlink2.MAVLink(None, srcSystem=src[0], srcComponent=src[1])
    return over_the_wire(mav.command_ack_encode(command, result, progress, 0, *target), src)


def exchange(**kw) -> CommandExchange:
    cmd = autopilot_command(F.ARDUCOPTER, "RETURN_TO_LAUNCH")
    return CommandExchange(cmd, 1, 1, own_system=OWN[0], own_component=OWN[1], **kw)


def test_accepted_with_round_trip() -> None:
    ex = exchange()
    (out,) = ex.start(10.0)
    sent = over_the_wire(out)
    assert (sent.get_type(), sent.command, sent.target_system, sent.target_component) == (
        "COMMAND_LONG", 20, 1, 1)  # fmt: skip
    assert (sent.get_srcSystem(), sent.get_srcComponent(), sent.confirmation) == (1, 191, 0)
    result = ex.on_message(ack(20, 0), 10.25)
    assert result is ex.result and result.accepted and ex.done
    assert (result.outcome, result.result_name, result.rtt_s, result.tries) == (
        Outcome.ACCEPTED, "ACCEPTED", 0.25, 1)  # fmt: skip
    assert ex.due(99.0) == []  # done: nothing more


def test_denied_is_a_refusal() -> None:
    ex = exchange()
    ex.start(0.0)
    result = ex.on_message(ack(20, 2), 0.1)
    assert result.outcome is Outcome.REFUSED and result.result == 2
    assert result.result_name == "DENIED" and not result.accepted


def test_in_progress_then_accepted_without_retransmission() -> None:
    ex = exchange(in_progress_timeout_s=5.0)
    ex.start(0.0)
    assert ex.on_message(ack(20, 5, progress=40), 0.5) is None
    assert ex.state is ExchangeState.IN_PROGRESS
    assert ex.due(3.0) == []  # in progress: no retransmission past the 1 s timeout
    result = ex.on_message(ack(20, 0), 4.0)
    assert result.accepted and result.rtt_s == 4.0 and result.tries == 1
    assert result.progress == 40


def test_in_progress_without_a_final_ack_is_bounded() -> None:
    ex = exchange(in_progress_timeout_s=2.0)
    ex.start(0.0)
    ex.on_message(ack(20, 5), 0.5)
    assert ex.deadline == 2.5
    ex.due(2.4)
    assert not ex.done
    ex.due(2.5)
    assert ex.result.outcome is Outcome.NO_ACK and ex.result.result_name == "NO_ACK"


def test_retransmits_with_confirmation_then_no_ack() -> None:
    ex = exchange()  # 1 s timeout, 3 tries
    ex.start(0.0)
    assert ex.due(0.99) == []
    (second,) = ex.due(1.0)
    assert over_the_wire(second).confirmation == 1
    (third,) = ex.due(2.0)
    assert over_the_wire(third).confirmation == 2
    assert ex.due(2.9) == [] and not ex.done
    assert ex.due(3.0) == []
    result = ex.result
    assert (result.outcome, result.result, result.rtt_s, result.tries) == (
        Outcome.NO_ACK, None, None, 3)  # fmt: skip


def test_a_late_ack_after_a_retransmission_counts_from_the_first_send() -> None:
    ex = exchange()
    ex.start(0.0)
    ex.due(1.0)
    result = ex.on_message(ack(20, 0), 1.3)
    assert result.accepted and result.tries == 2 and result.rtt_s == pytest.approx(1.3)


def test_ignores_acks_that_are_not_ours() -> None:
    ex = exchange()
    ex.start(0.0)
    others = [
        ack(511, 0),  # another command (a stream request)
        ack(20, 0, src=(2, 1)),  # another vehicle
        ack(20, 0, src=(1, 154)),  # another component (a gimbal)
        ack(20, 0, target=(255, 190)),  # addressed to a ground station
        over_the_wire(mavlink2.MAVLink(None).heartbeat_encode(2, 3, 0, 0, 0, 3)),
    ]
    for msg in others:
        assert ex.on_message(msg, 0.2) is None
    assert ex.state is ExchangeState.WAITING and ex.ignored == len(others)
    assert ex.on_message(ack(20, 0, target=(0, 0)), 0.3).accepted  # no target: MAVLink 1 style


def test_bad_construction() -> None:
    from lora_telemetry.core.errors import ConfigError

    cmd = autopilot_command(F.ARDUCOPTER, "LAND")
    with pytest.raises(ConfigError):
        CommandExchange(cmd, 0, own_system=1)
    with pytest.raises(ConfigError):
        CommandExchange(cmd, 1, own_system=1, tries=0)
    ex = CommandExchange(cmd, 1, own_system=1)
    ex.start(0.0)
    with pytest.raises(ConfigError):
        ex.start(1.0)
