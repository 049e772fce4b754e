"""The simulated autopilot takes flight commands and the synthetic vehicle acts on them.

Numbers: MAVLink common.xml (MAV_CMD_NAV_RETURN_TO_LAUNCH 20, MAV_CMD_NAV_LAND 21,
MAV_CMD_DO_SET_MODE 176, MAV_RESULT ACCEPTED 0 / DENIED 2 / FAILED 4), ArduCopter's mode
numbers (LOITER 5, RTL 6, LAND 9; cross-checked with pymavlink's ``mode_string_v10``) and
ArduPilot's answers (GCS_MAVLINK::_set_mode_common: an unknown mode is FAILED, a base mode
without MAV_MODE_FLAG_CUSTOM_MODE_ENABLED is DENIED; the SET_MODE message is acknowledged with
command = 11). The command side is the product's CommandExchange, so the loop is the drone's.
"""

from __future__ import annotations

import math

import pytest

from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.codec import VehicleFamily
from lora_telemetry.mavlink.commands import CommandExchange, Outcome, autopilot_command
from lora_telemetry.sim.vehicle import SimulatedAutopilot, build_swarm

ORIGIN = (47.3977, 8.5456, 488.0)
DRONE = mavlink2.MAVLink(None, srcSystem=1, srcComponent=191)


def wire(packets: list[bytes]) -> list:
    parser = mavlink2.MAVLink(None)
    return [m for p in packets for m in parser.parse_buffer(bytearray(p)) or []]


def send(msgs: list, sysid: int = 1) -> list:
    """The drone's messages as the autopilot receives them (source 1/191 re-stamped)."""
    mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=191)
    return wire([m.pack(mav) for m in msgs])


def heartbeat(ap: SimulatedAutopilot, t: float):
    return next(m for m in wire(ap.due(t)) if m.get_type() == "HEARTBEAT")


def swarm(n: int = 3) -> list[SimulatedAutopilot]:
    return [SimulatedAutopilot(v, default_rates_hz={}) for v in build_swarm("circle", n, ORIGIN)]


def run_exchange(ap: SimulatedAutopilot, family_cmd: tuple, t: float):
    cmd = autopilot_command(VehicleFamily.ARDUCOPTER, *family_cmd)
    ex = CommandExchange(cmd, ap.sysid, 1, own_system=ap.sysid, own_component=191)
    replies = [r for m in send(ex.start(t), ap.sysid) for r in wire(ap.handle(m, t))]
    for reply in replies:
        ex.on_message(reply, t + 0.02)
    return ex.result


def test_rtl_accepted_mode_in_the_next_heartbeat_and_heads_home() -> None:
    aps = swarm()
    ap = aps[0]
    v = ap.vehicle
    t = 40.0  # in AUTO, far along the circle
    before = v.state_at(t)
    assert before.phase == "auto" and heartbeat(ap, t).custom_mode == 3  # AUTO
    result = run_exchange(ap, ("RETURN_TO_LAUNCH",), t)
    assert result.outcome is Outcome.ACCEPTED and result.rtt_s == pytest.approx(0.02)
    hb = heartbeat(ap, t + 1.0)
    assert hb.custom_mode == 6 and mavutil.mode_string_v10(hb) == "RTL" and hb.base_mode & 128
    # flies straight home at its speed, at its height, then lands and disarms
    home_e, home_n = v.home
    d0 = math.hypot(before.east_m - home_e, before.north_m - home_n)
    s = v.state_at(t + 2.0)
    assert s.phase == "rtl" and s.alt_rel_m == before.alt_rel_m
    assert math.hypot(s.east_m - home_e, s.north_m - home_n) == \
        pytest.approx(d0 - 2.0 * v.speed, abs=0.01)  # fmt: skip
    assert abs(s.ground_speed_mps - v.speed) < 0.05
    t_home = t + d0 / v.speed
    landing = v.state_at(t_home + 5.0)
    assert landing.phase == "land" and (landing.east_m, landing.north_m) == (home_e, home_n)
    assert landing.mode_name == "RTL" and landing.alt_rel_m < before.alt_rel_m
    done = v.state_at(t_home + before.alt_rel_m / v.land_mps + 1.0)
    assert (done.phase, done.armed, done.alt_rel_m, done.custom_mode) == ("landed", False, 0.0, 6)
    assert done.consumed_mah > before.consumed_mah
    # the scripted mission is over: still landed long after its own RTL time
    assert v.state_at(1e4).phase == "landed"


def test_land_descends_where_it_is_and_hold_stays() -> None:
    a, b = swarm(2)
    t = 30.0
    here = a.vehicle.state_at(t)
    assert run_exchange(a, ("LAND",), t).accepted
    s = a.vehicle.state_at(t + 4.0)
    assert (s.phase, s.mode_name, s.custom_mode) == ("land", "LAND", 9)
    assert (s.east_m, s.north_m) == (here.east_m, here.north_m)
    assert s.alt_rel_m == here.alt_rel_m - 4.0 * a.vehicle.land_mps
    hold_at = b.vehicle.state_at(t)
    assert run_exchange(b, ("HOLD",), t).accepted
    later = b.vehicle.state_at(t + 50.0)
    assert (later.phase, later.mode_name) == ("hold", "LOITER")
    assert heartbeat(b, t + 50.0).custom_mode == 5
    assert (later.east_m, later.north_m, later.alt_rel_m) == (
        hold_at.east_m, hold_at.north_m, hold_at.alt_rel_m)  # fmt: skip
    assert later.armed and later.ground_speed_mps < 0.01
    # and a later RTL from the hold flies home
    assert run_exchange(b, ("RETURN_TO_LAUNCH",), t + 60.0).accepted
    assert b.vehicle.state_at(t + 61.0).phase == "rtl"


def test_refusals_are_acknowledged() -> None:
    (ap,) = swarm(1)
    gcs = mavlink2.MAVLink(None, srcSystem=1, srcComponent=191)

    def do_set_mode(base: float, custom: float):
        (msg,) = send([gcs.command_long_encode(1, 1, 176, 0, base, custom, 0, 0, 0, 0, 0)])
        (ack,) = wire(ap.handle(msg, 30.0))
        return ack

    unknown = do_set_mode(1, 12)  # 12: no ArduCopter mode has this number
    assert (unknown.command, unknown.result, unknown.target_system, unknown.target_component) == (
        176, 4, 1, 191)  # fmt: skip  # MAV_RESULT_FAILED, as ArduCopter
    assert do_set_mode(0, 6).result == 2  # no custom-mode flag: DENIED
    assert do_set_mode(1, float("nan")).result == 4
    assert do_set_mode(1, 0).result == 4  # STABILIZE: real, but not flown by the simulation
    assert ap.vehicle.state_at(30.5).phase == "auto" and not ap.vehicle.commanded
    assert heartbeat(ap, 31.0).custom_mode == 3  # still AUTO


def test_set_mode_message_is_acked_with_its_message_id() -> None:
    (ap,) = swarm(1)
    gcs = mavlink2.MAVLink(None, srcSystem=1, srcComponent=191)
    (msg,) = send([gcs.set_mode_encode(1, 1, 5)])  # LOITER
    (ack,) = wire(ap.handle(msg, 30.0))
    assert (ack.command, ack.result) == (11, 0)
    assert ap.vehicle.state_at(31.0).mode_name == "LOITER"
    (other,) = send([gcs.set_mode_encode(2, 1, 6)])
    assert ap.handle(other, 32.0) == []  # for system 2


def test_on_the_ground_the_mode_changes_and_it_stays_down() -> None:
    (ap,) = swarm(1)
    assert ap.vehicle.state_at(1.0).phase == "idle"
    assert run_exchange(ap, ("RETURN_TO_LAUNCH",), 1.0).accepted  # ArduCopter, disarmed
    s = ap.vehicle.state_at(60.0)
    assert (s.phase, s.armed, s.alt_rel_m, s.mode_name) == ("landed", False, 0.0, "RTL")


def test_only_the_addressed_vehicle_acts() -> None:
    aps = swarm(3)
    t = 40.0
    assert run_exchange(aps[1], ("RETURN_TO_LAUNCH",), t).accepted
    # the same command addressed to vehicle 2 reaches the others too, and they ignore it
    cmd = autopilot_command(VehicleFamily.ARDUCOPTER, "LAND")
    (msg,) = send([cmd.encode(DRONE, 2, 1)])
    for ap in (aps[0], aps[2]):
        assert ap.handle(msg, t) == []
    for ap in (aps[0], aps[2]):
        s = ap.vehicle.state_at(t + 5.0)
        assert (s.phase, s.mode_name) == ("auto", "AUTO") and not ap.vehicle.commanded
    assert aps[1].vehicle.state_at(t + 5.0).mode_name == "RTL"


def test_no_command_leaves_the_mission_unchanged() -> None:
    (v,) = build_swarm("circle", 1, ORIGIN)
    (w,) = build_swarm("circle", 1, ORIGIN)
    w.command_mode(500.0, "LOITER")  # long after it landed: stays down, earlier times unchanged
    for t in (0.0, 5.0, 30.0, 150.0, 200.0, 400.0, 499.9):
        assert v.state_at(t) == w.state_at(t)


def test_a_lost_command_is_retransmitted_and_the_simulator_accepts_it() -> None:
    (ap,) = swarm(1)
    cmd = autopilot_command(VehicleFamily.ARDUCOPTER, "SET_MODE", "brake")
    ex = CommandExchange(cmd, 1, 1, own_system=1, own_component=191)
    ex.start(40.0)  # lost on the way
    assert ex.due(40.5) == []
    (again,) = send(ex.due(41.0))
    assert again.confirmation == 1
    (ack,) = wire(ap.handle(again, 41.0))
    result = ex.on_message(ack, 41.05)
    assert result.accepted and result.tries == 2 and result.rtt_s == pytest.approx(1.05)
    assert heartbeat(ap, 42.0).custom_mode == 17  # BRAKE


def test_the_link_commands_rtl_over_udp_and_the_vehicle_flies_it() -> None:
    """MavlinkLink.submit_command, end to end over real UDP sockets with the vehicle simulator:
    the result is the simulated ArduCopter's ACCEPTED, its HEARTBEAT then says RTL, and the
    other vehicle on the link keeps its mode. A second command while one is open is refused."""
    import time

    from sim_support import poll_until, simulated_link

    from lora_telemetry.mavlink.commands import UnsupportedCommandError
    from lora_telemetry.mavlink.link import CommandBusyError

    vehicles = build_swarm("circle", 2, ORIGIN, start_unix_s=time.time())
    autopilots = [SimulatedAutopilot(v) for v in vehicles]
    results: list = []
    with simulated_link(autopilots, system_id=1) as (link, _):
        with pytest.raises(UnsupportedCommandError, match="no autopilot heard yet"):
            link.submit_command("RETURN_TO_LAUNCH")
        poll_until(link, lambda: link.state.family is not None, 8.0)
        link.submit_command("RETURN_TO_LAUNCH", on_done=results.append)
        with pytest.raises(CommandBusyError):
            link.submit_command("LAND")
        poll_until(link, lambda: bool(results), 8.0)
        poll_until(link, lambda: link.sample().mode_name == "RTL", 3.0)
        sample = link.sample()
    (result,) = results
    assert result.outcome is Outcome.ACCEPTED and result.result == 0  # MAV_RESULT_ACCEPTED
    assert result.rtt_s is not None and result.rtt_s > 0  # measured (its size: not a test's job)
    assert sample.mode_name == "RTL"
    assert autopilots[0].vehicle.commanded and not autopilots[1].vehicle.commanded
    assert link.stats()["commands.accepted"] == 1
