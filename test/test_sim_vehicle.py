"""The vehicle simulator: synthetic truth, the simulated autopilot, log replay, the CLI.

Mode numbers are cross-checked with pymavlink's ArduCopter map (``mavutil.mode_mapping_byname``);
message fields and units are MAVLink common.xml's. The link under test is the product's
MavlinkLink, so "parses back" means through the same code the drone node runs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sim_support import poll_until, simulated_link
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.geo import LocalProjection, haversine_m
from lora_telemetry.mavlink.link import MavlinkLink
from lora_telemetry.mavlink.tlog import TlogReader
from lora_telemetry.persist import atomic_write_json
from lora_telemetry.sim.vehicle import (
    LogReplayer,
    ReplayTransform,
    SimulatedAutopilot,
    VehicleSimulator,
    build_swarm,
    find_log_reference,
    medium_position_sink,
)

REPO = Path(__file__).resolve().parent.parent
ORIGIN = (47.3977, 8.5456, 488.0)


def decode_all(packets: list[bytes]) -> list:
    mav = mavlink2.MAVLink(None)
    return [mav.decode(bytearray(p)) for p in packets]


# -- truth -----------------------------------------------------------------------------------


def test_mission_timeline_modes_and_arming() -> None:
    (v,) = build_swarm("circle", 1, ORIGIN, radius_m=80.0, alt_m=30.0, speed_mps=8.0,
                       mission_s=60.0)  # fmt: skip
    copter = mavutil.mode_mapping_byname(2)  # pymavlink's ArduCopter modes (MAV_TYPE_QUADROTOR)
    seen = []
    for t in range(0, 200):
        s = v.state_at(float(t))
        assert s.custom_mode == copter[s.mode_name]
        if not seen or seen[-1][0] != s.phase:
            seen.append((s.phase, s.mode_name, s.armed))
    assert seen == [
        ("idle", "GUIDED", False), ("takeoff", "GUIDED", True), ("auto", "AUTO", True),
        ("rtl", "RTL", True), ("land", "LAND", True), ("landed", "LAND", False),
    ]  # fmt: skip
    # Take-off at 2.5 m/s from t = 3 s: 30 m reached at 15 s; home is the circle's start.
    assert v.state_at(9.0).alt_rel_m == pytest.approx(15.0)
    assert v.state_at(9.0).climb_mps == pytest.approx(2.5)
    assert v.state_at(20.0).alt_rel_m == 30.0
    landed = v.state_at(199.0)
    assert landed.alt_rel_m == 0.0 and landed.alt_amsl_m == ORIGIN[2]
    assert (landed.east_m, landed.north_m) == pytest.approx(v.home)


def test_circle_truth_is_on_the_circle_at_the_cruise_speed() -> None:
    vehicles = build_swarm("circle", 3, ORIGIN, radius_m=100.0, speed_mps=8.0)
    for v in vehicles:
        for t in (40.0, 55.5, 90.0):
            s = v.state_at(t)
            assert s.phase == "auto"
            radius = haversine_m(ORIGIN[0], ORIGIN[1], s.lat_deg, s.lon_deg)
            assert radius == pytest.approx(100.0, abs=0.5)
            assert s.ground_speed_mps == pytest.approx(8.0, abs=0.05)
            # Clockwise: the heading is 90 deg right of the bearing from the centre.
            bearing = math.degrees(math.atan2(s.east_m, s.north_m)) % 360
            assert (s.heading_deg - bearing) % 360 == pytest.approx(90.0, abs=1.0)
            assert s.roll_rad == pytest.approx(math.atan(8.0**2 / 100.0 / 9.80665), abs=0.02)
    # Evenly spaced: 120 deg apart on the circle, vertically separated by 5 m.
    a, b = (v.state_at(60.0) for v in vehicles[:2])
    assert b.alt_rel_m - a.alt_rel_m == 5.0


def test_lawnmower_and_formation_geometry() -> None:
    strips = build_swarm("lawnmower", 4, ORIGIN, radius_m=100.0, lane_spacing_m=10.0)
    for i, v in enumerate(strips):
        xs = [v.state_at(t).east_m for t in range(0, 300, 3)]
        assert -100.0 + 50.0 * i - 1e-6 <= min(xs) and max(xs) <= -50.0 + 50.0 * i + 1e-6
    leader, *followers = build_swarm("formation", 3, ORIGIN, radius_m=100.0,
                                     formation_spacing_m=15.0)  # fmt: skip
    for t in (30.0, 70.0):
        ls = leader.state_at(t)
        for f in followers:
            fs = f.state_at(t)
            gap = math.hypot(fs.east_m - ls.east_m, fs.north_m - ls.north_m)
            assert gap == pytest.approx(15.0 * math.sqrt(2), abs=0.5)  # one row back, one aside


def test_battery_drains_with_flight_time() -> None:
    (v,) = build_swarm("circle", 1, ORIGIN, mission_s=120.0)
    states = [v.state_at(float(t)) for t in range(0, 300, 5)]
    pct = [s.battery_pct for s in states]
    assert pct[0] == 100.0 and states[0].voltage_v == pytest.approx(4 * 4.2 - 0.4 * 0.02)
    assert all(b <= a for a, b in zip(pct, pct[1:]))
    flying = [s for s in states if s.armed]
    assert all(s.current_a >= 12.0 for s in flying)
    # 17 A for 120 s in AUTO alone is 567 mAh, 11 % of 5000 mAh.
    assert 80.0 < pct[-1] < 89.0
    rest = [s.voltage_v for s in states if s.phase == "landed"]
    assert rest and rest[0] < states[0].voltage_v - 0.3


# -- the simulated autopilot ------------------------------------------------------------------


def test_autopilot_emits_arducopter_messages_at_their_rates() -> None:
    (v,) = build_swarm("circle", 1, ORIGIN, first_sysid=7)
    ap = SimulatedAutopilot(v)
    packets = []
    for k in range(1000):  # 10 s of simulated time in 10 ms steps
        packets += ap.due(30.0 + k * 0.01)
    msgs = decode_all(packets)
    counts: dict[str, int] = {}
    for m in msgs:
        counts[m.get_type()] = counts.get(m.get_type(), 0) + 1
        assert (m.get_srcSystem(), m.get_srcComponent()) == (7, 1)
    assert counts == {"HEARTBEAT": 10, "GLOBAL_POSITION_INT": 20, "GPS_RAW_INT": 20,
                      "VFR_HUD": 20, "ATTITUDE": 40, "SYS_STATUS": 20, "BATTERY_STATUS": 10,
                      "SYSTEM_TIME": 10}  # fmt: skip
    hb = next(m for m in msgs if m.get_type() == "HEARTBEAT")
    assert (hb.type, hb.autopilot) == (2, 3)  # MAV_TYPE_QUADROTOR, MAV_AUTOPILOT_ARDUPILOTMEGA
    assert mavutil.mode_string_v10(hb) == "AUTO" and hb.base_mode & 128
    gp = next(m for m in msgs if m.get_type() == "GLOBAL_POSITION_INT")
    truth = v.state_at(30.0)
    assert (gp.lat, gp.lon) == (round(truth.lat_deg * 1e7), round(truth.lon_deg * 1e7))
    assert gp.relative_alt == 30_000 and gp.time_boot_ms == truth.time_boot_ms


def test_autopilot_answers_stream_requests() -> None:
    (v,) = build_swarm("circle", 1, ORIGIN)
    ap = SimulatedAutopilot(v, default_rates_hz={})  # SRx = 0: only HEARTBEAT until asked
    gcs = mavlink2.MAVLink(None, srcSystem=1, srcComponent=191)

    def command(msg_id: float, interval_us: float, target: int = 1):
        msg = gcs.command_long_encode(target, 1, 511, 0, msg_id, interval_us, 0, 0, 0, 0, 0)
        return decode_all([msg.pack(gcs)])[0]  # as received: with its source address

    def count(name: str, t0: float, seconds: float) -> int:
        msgs = decode_all([p for k in range(int(seconds * 100)) for p in ap.due(t0 + k * 0.01)])
        return sum(m.get_type() == name for m in msgs)

    assert count("GLOBAL_POSITION_INT", 0.0, 2.0) == 0
    (ack,) = decode_all(ap.handle(command(33, 100_000), 2.0))  # GLOBAL_POSITION_INT at 10 Hz
    assert (ack.command, ack.result, ack.target_system, ack.target_component) == (511, 0, 1, 191)
    assert count("GLOBAL_POSITION_INT", 2.0, 2.0) == 20
    (denied,) = decode_all(ap.handle(command(12345, 100_000), 4.0))
    assert denied.result == 2  # MAV_RESULT_DENIED: not a message this vehicle sends
    assert ap.handle(command(33, 100_000, target=9), 4.0) == []  # for another vehicle
    ap.handle(command(33, -1), 4.0)  # -1: stop
    assert count("GLOBAL_POSITION_INT", 4.0, 1.0) == 0
    # REQUEST_DATA_STREAM: ArduPilot's groups (EXTRA3 = 12: SYSTEM_TIME, BATTERY_STATUS), no ACK.
    stream_request = decode_all([gcs.request_data_stream_encode(1, 1, 12, 4, 1).pack(gcs)])[0]
    assert ap.handle(stream_request, 5.0) == []
    assert count("SYSTEM_TIME", 5.0, 2.0) == 8 and count("BATTERY_STATUS", 7.0, 1.0) == 4
    legacy = SimulatedAutopilot(v, set_message_interval="unsupported")
    (nack,) = decode_all(legacy.handle(command(33, 100_000), 0.0))
    assert nack.result == 3  # MAV_RESULT_UNSUPPORTED


def test_synthetic_swarm_parses_back_through_the_link_near_the_truth() -> None:
    vehicles = build_swarm("circle", 3, ORIGIN, start_unix_s=time.time())
    autopilots = [SimulatedAutopilot(v, default_rates_hz={}) for v in vehicles]
    with simulated_link(autopilots, system_id=2, duration_s=20.0) as (link, sim):
        poll_until(link, lambda: all(s == "accepted" for s in link.requester.status.values())
                   and link.state.messages_by_type["BATTERY_STATUS"] >= 2, 8.0)
        sample = link.sample()
    assert link.state.autopilot == (2, 1)
    assert link.state.ignored_by_source["1/1"] > 0 and link.state.ignored_by_source["3/1"] > 0
    # The sample time is the autopilot's UTC (SYSTEM_TIME): the truth at that time.
    truth = vehicles[1].state_at(sample.time_unix_s - vehicles[1].start_unix_s)
    assert haversine_m(sample.lat_deg, sample.lon_deg, truth.lat_deg, truth.lon_deg) < 0.05
    assert sample.alt_rel_m == pytest.approx(truth.alt_rel_m, abs=0.01)
    assert sample.mode_name == truth.mode_name and sample.armed == truth.armed
    assert sample.battery_pct == pytest.approx(truth.battery_pct, abs=1.0)
    assert sample.voltage_v == pytest.approx(truth.voltage_v, abs=0.05)
    assert sample.satellites == truth.satellites and sample.gps_fix_type == 3
    assert sim.stats()["vehicles"][2]["received_COMMAND_LONG"] >= 7


# -- log replay -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vtol(testdata_dir: Path) -> Path:
    return testdata_dir / "tlogs" / "uavlogviewer_vtol.tlog"


def _write_tlog(path: Path, frames) -> None:
    """Record replayed packets as a tlog (8-byte big-endian microseconds + packet)."""
    with open(path, "wb") as f:
        for due, packets, _ in frames:
            for p in packets:
                if p is not None:
                    f.write(int((1e9 + due) * 1e6).to_bytes(8, "big") + p)


def test_replay_rewrites_the_system_id(vtol: Path, tmp_path: Path) -> None:
    ref = find_log_reference(vtol)
    assert ref.sysid == 1 and haversine_m(ref.lat_deg, ref.lon_deg, -35.36, 149.16) < 2000
    copy = tmp_path / "as42.tlog"
    _write_tlog(copy, LogReplayer(vtol, [ReplayTransform(ref, sysid=42)], speed=1000.0).frames())
    reader = TlogReader(copy)
    sources = set()
    while (msg := reader.recv_msg()) is not None:
        assert msg.get_type() != "BAD_DATA"
        assert msg.get_msgbuf()[0] == 0xFD  # re-encoded as MAVLink 2 (the log is MAVLink 1)
        sources.add((msg.get_srcSystem(), msg.get_srcComponent()))
    assert sources == {(42, 1)}
    # A link looking for system 42 takes the copy as its vehicle, with the log's positions.
    original, moved = MavlinkLink(str(vtol)), MavlinkLink(str(copy), system_id=42)
    for link in (original, moved):
        while not link.eof:
            link.poll(0)
    assert moved.state.autopilot == (42, 1)
    assert moved.state.value("position") == original.state.value("position")
    assert moved.state.messages_by_type["GLOBAL_POSITION_INT"] == \
        original.state.messages_by_type["GLOBAL_POSITION_INT"]  # fmt: skip


def test_replay_shift_and_recentre(vtol: Path) -> None:
    ref = find_log_reference(vtol)
    shifted = ReplayTransform(ref, shift_north_m=100.0, shift_east_m=-50.0)
    recentred = ReplayTransform(ref, origin=(47.0, 8.0, 400.0))
    plain = ReplayTransform(ref)
    pairs = []
    for _, (a, b, c), msg in LogReplayer(vtol, [plain, shifted, recentred], speed=1e6).frames():
        if msg.get_type() == "GLOBAL_POSITION_INT" and (msg.lat, msg.lon) != (0, 0):
            pairs.append(decode_all([a, b, c]))
    assert len(pairs) > 700
    proj = LocalProjection(ref.lat_deg, ref.lon_deg)
    target = LocalProjection(47.0, 8.0)
    for a, b, c in pairs:
        assert a.get_msgbuf()[0] == 0xFE  # unchanged packets go out as recorded (v1)
        e, n = proj.to_local(a.lat * 1e-7, a.lon * 1e-7)
        e2, n2 = proj.to_local(b.lat * 1e-7, b.lon * 1e-7)
        assert (e2 - e, n2 - n) == pytest.approx((-50.0, 100.0), abs=0.02)
        e3, n3 = target.to_local(c.lat * 1e-7, c.lon * 1e-7)
        assert (e3, n3) == pytest.approx((e, n), abs=0.02)  # same geometry about the new origin
        assert c.alt - a.alt == round((400.0 - ref.alt_m) * 1000)
        assert c.relative_alt == a.relative_alt
    first = pairs[0][2]
    assert haversine_m(first.lat * 1e-7, first.lon * 1e-7, 47.0, 8.0) < 0.05


def test_replay_pacing_and_loop(vtol: Path) -> None:
    ref = find_log_reference(vtol)
    replayer = LogReplayer(vtol, [ReplayTransform(ref)], speed=10.0, loop=True)
    frames = replayer.frames()
    dues = []
    for due, _, msg in frames:
        dues.append(due)
        if replayer.passes == 1 and len(dues) > 30_000:
            break
    assert dues == sorted(dues)
    # The log spans 207.6 s (1533737161.905 .. 1533737369.513): 20.76 s at 10x, then 1 s gap.
    first_pass = dues[:23_894]
    assert first_pass[-1] == pytest.approx(20.7608, abs=1e-3)
    assert dues[23_894] == pytest.approx(21.7608, abs=1e-3)
    with pytest.raises(ConfigError):
        LogReplayer(vtol, [], speed=0)


def test_replay_drops_other_systems_unless_asked(testdata_dir: Path) -> None:
    ardusub = testdata_dir / "tlogs" / "ardusub_small.tlog"
    ref = find_log_reference(ardusub)
    only, everything = ReplayTransform(ref, sysid=5), ReplayTransform(ref, keep_other_systems=True)
    systems_only, systems_all = set(), set()
    for _, (a, b), _msg in LogReplayer(ardusub, [only, everything], speed=1e6).frames():
        if a is not None:
            systems_only.add(decode_all([a])[0].get_srcSystem())
        if b is not None and b[0] in (0xFD, 0xFE):
            systems_all.add(b[5] if b[0] == 0xFD else b[3])
    assert systems_only == {5}
    assert systems_all == {1, 255}  # the vehicle and QGroundControl (255/190)
    assert only.counters["other_system_dropped"] > 1000


# -- replay as the swarm plans it -------------------------------------------------------------

#: Altitudes above mean sea level that a re-centred replay moves (MAVLink common.xml /
#: ardupilotmega.xml field descriptions), and heights above something else that it must not.
AMSL_FIELDS = {"GLOBAL_POSITION_INT": ("alt", 1e-3), "GPS_RAW_INT": ("alt", 1e-3),
               "VFR_HUD": ("alt", 1.0), "AHRS2": ("altitude", 1.0), "AHRS3": ("altitude", 1.0),
               "HOME_POSITION": ("altitude", 1e-3), "TERRAIN_REPORT": ("terrain_height", 1.0),
               "POSITION_TARGET_GLOBAL_INT": ("alt", 1.0)}  # the VTOL log's are MAV_FRAME_GLOBAL_INT
RELATIVE_FIELDS = {"GLOBAL_POSITION_INT": "relative_alt", "LOCAL_POSITION_NED": "z",
                   "TERRAIN_REPORT": "current_height", "HOME_POSITION": "z", "MISSION_ITEM": "z"}


def plan_vehicle(tmp_path: Path, log: Path, **options):
    """The swarm plan for one UAV replaying `log`, and its vehicle simulator's arguments."""
    from lora_telemetry.cli import sim_vehicle
    from lora_telemetry.cli.standalone import standalone_parser
    from lora_telemetry.sim.swarm import SwarmOptions, plan_swarm

    plan = plan_swarm(SwarmOptions(uavs=1, logs=(str(log),), **options), tmp_path)
    (spec,) = [s for s in plan.specs if s.kind == "vehicle"]
    parser = standalone_parser("sim vehicle", "", sim_vehicle.add_arguments)
    return plan, parser.parse_args(spec.argv[3:])  # after: python -m lora_telemetry.cli.sim_vehicle


def test_swarm_replay_keeps_the_height_above_the_field(vtol: Path, tmp_path: Path) -> None:
    from lora_telemetry.cli import sim_vehicle

    plan, args = plan_vehicle(tmp_path, vtol, speed=100.0)
    field_alt = plan.options.origin[2]  # 488 m, the demo's field (swarm.DEFAULT_ORIGIN)
    # The VTOL log's first fix (its first GLOBAL_POSITION_INT with a position): 587.850 m AMSL.
    log_ref_alt = 587.850
    assert find_log_reference(vtol).alt_m == log_ref_alt
    dalt = field_alt - log_ref_alt  # -99.85 m
    sim = sim_vehicle.build(args)
    mav = mavlink2.MAVLink(None)
    moved, kept, log_by_boot_ms = Counter(), Counter(), {}
    try:
        for _, (packet,), msg in sim.replayer.frames():
            if sim.replayer.passes:  # --loop: one pass is enough
                break
            mtype = msg.get_type()
            if packet is None or (mtype not in AMSL_FIELDS and mtype not in RELATIVE_FIELDS):
                continue
            out = mav.decode(bytearray(packet))
            if mtype == "GLOBAL_POSITION_INT":
                log_by_boot_ms[msg.time_boot_ms] = msg
                # Exactly the field plus the height above the log's reference, to the mm...
                assert abs(out.alt * 1e-3 - (field_alt + (msg.alt * 1e-3 - log_ref_alt))) < 1e-3
                # ...and inside the codec's +-255 m window about the origin.
                assert abs(out.alt * 1e-3 - field_alt) < 255.0
            if mtype in AMSL_FIELDS:
                name, unit = AMSL_FIELDS[mtype]
                shift_m = (getattr(out, name) - getattr(msg, name)) * unit
                assert shift_m == pytest.approx(dalt, abs=1e-3), (mtype, name)  # float32 fields
                moved[mtype] += 1
            if mtype in RELATIVE_FIELDS:
                name = RELATIVE_FIELDS[mtype]
                assert getattr(out, name) == getattr(msg, name), (mtype, name)
                kept[mtype] += 1
        # Every altitude-carrying message the log has was checked (counts from the log).
        assert moved == {"GLOBAL_POSITION_INT": 807, "GPS_RAW_INT": 799, "VFR_HUD": 878,
                         "AHRS2": 889, "AHRS3": 888, "HOME_POSITION": 6, "TERRAIN_REPORT": 812,
                         "POSITION_TARGET_GLOBAL_INT": 795}
        assert kept == {"GLOBAL_POSITION_INT": 807, "LOCAL_POSITION_NED": 807,
                        "TERRAIN_REPORT": 812, "HOME_POSITION": 6, "MISSION_ITEM": 260}

        # The truth file the simulator writes says the same as the packets it sends.
        sim.run(duration_s=1.0)
    finally:
        sim.close()
    (truth,) = json.loads(Path(args.truth_json).read_text())["vehicles"]
    logged = log_by_boot_ms[truth["time_boot_ms"]]
    assert truth["alt_amsl_m"] == pytest.approx(field_alt + logged.alt * 1e-3 - log_ref_alt,
                                                abs=1e-3)
    assert truth["alt_rel_m"] == logged.relative_alt * 1e-3  # height above home, as logged


def test_replay_anchors_on_the_first_fix_that_agrees_with_gnss(testdata_dir: Path,
                                                              tmp_path: Path) -> None:
    from lora_telemetry.cli import sim_vehicle

    rover = testdata_dir / "tlogs" / "uavlogviewer_pr437_flight_logs.tlog"
    ref = find_log_reference(rover)
    # The rover's EKF reports -1.78..0 m for its first 322 fixes while GPS_RAW_INT has a 3D fix
    # at 1583 m; its 323rd fix, 40.0714763, -105.2294914 at 1582.930 m, agrees (within 10 m).
    assert (ref.lat_deg, ref.lon_deg, ref.alt_m) == pytest.approx(
        (40.0714763, -105.2294914, 1582.930), abs=1e-9)
    plan, args = plan_vehicle(tmp_path, rover, speed=100.0)
    field_alt = plan.options.origin[2]
    sim = sim_vehicle.build(args)
    mav = mavlink2.MAVLink(None)
    fixes = []
    try:
        for _, (packet,), msg in sim.replayer.frames():
            if sim.replayer.passes:
                break
            if msg.get_type() == "GLOBAL_POSITION_INT" and (msg.lat, msg.lon) != (0, 0):
                fixes.append((msg.alt * 1e-3, mav.decode(bytearray(packet)).alt * 1e-3))
    finally:
        sim.close()
    assert len(fixes) == 2933 and all(-1.78 <= logged <= 0.0 for logged, _ in fixes[:322])
    # From the anchor on, the rover drives on the field: 488 m + its height above the anchor,
    # inside the codec's +-255 m window (a -0.17 m anchor put it at 2071 m).
    for logged, replayed in fixes[322:]:
        assert abs(replayed - (field_alt + logged - 1582.930)) < 1e-3
        assert abs(replayed - field_alt) < 2.0


#: What a vehicle without a GNSS fix sends instead of positions: ArduPilot's "no position"
#: lat = lon = 0, and no home or EKF origin at all.
NO_FIX_POSITIONS = {"GLOBAL_POSITION_INT": ("lat", "lon"), "GPS_RAW_INT": ("lat", "lon"),
                    "GPS_INPUT": ("lat", "lon"), "AHRS2": ("lat", "lng")}
NO_FIX_DROPPED = {"HOME_POSITION", "GPS_GLOBAL_ORIGIN"}


@pytest.fixture(scope="module")
def ardusub_without_fix(testdata_dir: Path, tmp_path_factory) -> Path:
    """The real ArduSub log as if its GNSS never had a fix: every position of the vehicle at
    0, 0 (fix_type 0), everything else as recorded (a .tlog: 8-byte big-endian microseconds,
    then the packet)."""
    path = tmp_path_factory.mktemp("nofix") / "ardusub_without_fix.tlog"
    reader = TlogReader(testdata_dir / "tlogs" / "ardusub_small.tlog")
    mav = mavlink2.MAVLink(None)
    with open(path, "wb") as out:
        while (msg := reader.recv_msg()) is not None:
            mtype = msg.get_type()
            if mtype == "BAD_DATA":
                continue
            packet = bytes(msg.get_msgbuf())
            if msg.get_srcSystem() == 1 and mtype in NO_FIX_DROPPED:
                continue
            if msg.get_srcSystem() == 1 and mtype in NO_FIX_POSITIONS:
                work = mav.decode(bytearray(packet))
                for name in NO_FIX_POSITIONS[mtype]:
                    setattr(work, name, 0)
                if mtype in ("GPS_RAW_INT", "GPS_INPUT"):
                    work.fix_type = 0  # no fix
                mav.srcSystem, mav.srcComponent = msg.get_srcSystem(), msg.get_srcComponent()
                mav.seq = msg.get_seq()
                packet = bytes(work.pack(mav, force_mavlink1=packet[0] == 0xFE))
            out.write(int(msg._timestamp * 1e6).to_bytes(8, "big") + packet)
    reader.close()
    return path


def test_a_log_without_a_fix_replays_with_its_position_unknown(
        ardusub_without_fix: Path, tmp_path: Path, caplog) -> None:
    from lora_telemetry.cli import sim_vehicle
    from lora_telemetry.sim.medium import MediumHub, load_medium_params
    from lora_telemetry.sim.medium_model import MediumModel

    ref = find_log_reference(ardusub_without_fix)
    # No horizontal anchor; the altitudes keep theirs: the log's first GLOBAL_POSITION_INT
    # reads alt = 20 mm.
    assert (ref.sysid, ref.lat_deg, ref.lon_deg, ref.alt_m) == (1, None, None, 0.020)

    plan, args = plan_vehicle(tmp_path, ardusub_without_fix, speed=100.0)
    field_alt = plan.options.origin[2]
    sim = sim_vehicle.build(args)  # the swarm's vehicle: no "never reports a position" refusal
    hub = MediumHub(MediumModel(load_medium_params(plan.medium_config)), port=plan.medium_port)
    serving = threading.Thread(target=hub.serve, kwargs={"duration_s": 10.0}, daemon=True)
    serving.start()
    mav = mavlink2.MAVLink(None)
    replayed = 0
    try:
        for _, (packet,), msg in sim.replayer.frames():
            if sim.replayer.passes:
                break
            if msg.get_type() == "GLOBAL_POSITION_INT":
                out = mav.decode(bytearray(packet))
                assert (out.lat, out.lon, out.get_srcSystem()) == (0, 0, 1)  # still "no fix"
                assert abs(out.alt * 1e-3 - (field_alt + msg.alt * 1e-3 - 0.020)) < 1e-3
                assert out.relative_alt == msg.relative_alt
                replayed += 1
        assert replayed == 792  # every GLOBAL_POSITION_INT of the log
        with caplog.at_level(logging.WARNING, logger="lora_telemetry.sim.vehicle"):
            sim.run(duration_s=1.5)  # 150 s of the 206 s log, its truth published every 0.5 s
    finally:
        sim.close()
        hub.stop()
        serving.join(timeout=3.0)
        hub.close()
    # Nothing was sent to the medium for it (so nothing refused), and it was said once.
    assert sim.counters["positions_unknown_not_sent"] >= 3
    assert not hub.model.has_node("uav1") and hub.stats()["hub"]["datagrams"] == 0
    said = [r for r in caplog.records if r.name == "lora_telemetry.sim.vehicle"
            and r.levelno == logging.WARNING and "no position" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    (truth,) = json.loads(Path(args.truth_json).read_text())["vehicles"]
    assert truth["lat_deg"] is None and truth["lon_deg"] is None and truth["sysid"] == 1


# -- the I/O shell and the CLI ----------------------------------------------------------------


def test_replay_reaches_a_link_as_another_vehicle(vtol: Path, tmp_path: Path) -> None:
    ref = find_log_reference(vtol)
    link = MavlinkLink("udpin:127.0.0.1:0", system_id=9)
    link.poll(0)
    replayer = LogReplayer(vtol, [ReplayTransform(ref, sysid=9, shift_north_m=1000.0)],
                           speed=100.0)  # the 207.6 s log in about 2 s  # fmt: skip
    sim = VehicleSimulator([f"udpout:127.0.0.1:{link.local_address[1]}"], replayer=replayer,
                           truth_path=tmp_path / "truth.json")  # fmt: skip
    thread = threading.Thread(target=sim.run, kwargs={"duration_s": 10.0})
    thread.start()
    try:
        while thread.is_alive():
            link.poll(0.05)
        link.poll(0.2)
    finally:
        thread.join(timeout=10.0)
        sim.close()
        link.close()
    assert sim.stats()["records_sent"] == 23_894  # every record of the log, then it stopped
    assert link.state.autopilot == (9, 1)
    assert link.state.messages_by_type["GLOBAL_POSITION_INT"] > 400  # most of 807 arrive
    (last,) = json.loads((tmp_path / "truth.json").read_text())["vehicles"]
    lat, lon = link.state.value("position")
    assert last["sysid"] == 9
    # The log's last position (-35.3609623, 149.16503) moved 1000 m north (in the local frame
    # of the log's first position, where the shift is applied).
    proj = LocalProjection(ref.lat_deg, ref.lon_deg)
    e0, n0 = proj.to_local(-35.3609623, 149.16503)
    e1, n1 = proj.to_local(last["lat_deg"], last["lon_deg"])
    assert (e1 - e0, n1 - n0) == pytest.approx((0.0, 1000.0), abs=0.02)
    assert haversine_m(lat, lon, last["lat_deg"], last["lon_deg"]) < 100.0



def test_write_json_atomic(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    atomic_write_json(path, {"a": 1}, durable=False)
    atomic_write_json(path, {"a": 2}, durable=False)
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["truth.json"]  # no temporary left over


def test_positions_reach_the_radio_medium() -> None:
    from lora_telemetry.sim.medium import MediumHub
    from lora_telemetry.sim.medium_model import MediumModel, MediumParams

    hub = MediumHub(MediumModel(MediumParams(origin_lat_deg=ORIGIN[0], origin_lon_deg=ORIGIN[1])),
                    port=0)  # fmt: skip
    thread = threading.Thread(target=hub.serve, kwargs={"duration_s": 10.0}, daemon=True)
    thread.start()
    sink, close = medium_position_sink(f"{hub.address[0]}:{hub.address[1]}", {1: "uav1"})
    try:
        (v,) = build_swarm("circle", 1, ORIGIN)
        truth = v.state_at(60.0)
        sink(1, truth.lat_deg, truth.lon_deg, truth.alt_rel_m)
        sink(2, 0.0, 0.0, 0.0)  # not a medium node: ignored
        deadline = time.monotonic() + 3.0
        while not hub.model.has_node("uav1") and time.monotonic() < deadline:
            time.sleep(0.02)
        east, north, up = hub.model.position("uav1")
        assert (east, north) == pytest.approx((truth.east_m, truth.north_m), abs=0.01)
        assert up == pytest.approx(truth.alt_rel_m) and up == 30.0
        assert not hub.model.has_node("uav2")
    finally:
        close()
        hub.stop()
        thread.join(timeout=3.0)
        hub.close()


def test_cli_flies_a_swarm_and_writes_the_truth(tmp_path: Path) -> None:
    link = MavlinkLink("udpin:127.0.0.1:0", system_id=11)
    link.poll(0)
    truth_path = tmp_path / "truth.json"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lora_telemetry.cli.sim_vehicle", "--pattern", "formation",
         "--count", "2", "--sysid", "10", "--origin", "47.3977,8.5456,488", "--speed", "4",
         "--out", f"udpout:127.0.0.1:{link.local_address[1]}", "--truth-json", str(truth_path),
         "--truth-interval", "0.2", "--duration", "30", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        started = json.loads(proc.stdout.readline())
        assert started["event"] == "started" and started["vehicles"] == [10, 11]
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            link.poll(0.1)
            sample = link.sample()
            if sample and sample.armed and truth_path.exists():
                break
        truth = json.loads(truth_path.read_text())
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        link.close()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "stopped"
    assert [v["sysid"] for v in truth["vehicles"]] == [10, 11]
    assert link.state.autopilot == (11, 1)
    # The follower of the truth file and the link's sample describe the same vehicle.
    follower = truth["vehicles"][1]
    assert follower["mode_name"] in ("GUIDED", "AUTO") and sample.armed
    gap = haversine_m(sample.lat_deg, sample.lon_deg, follower["lat_deg"], follower["lon_deg"])
    assert gap < 40
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_rejects_bad_arguments(vtol: Path) -> None:
    from lora_telemetry.cli import sim_vehicle

    assert sim_vehicle.main(["--pattern", "circle", "--out", "udpout:127.0.0.1:0"]) == 2
    with pytest.raises(SystemExit):
        sim_vehicle.main(["--pattern", "spiral"])
    with pytest.raises(SystemExit):
        sim_vehicle.main(["--log", str(vtol), "--sysid", "300"])
    three_outs = ["--out", "udpout:127.0.0.1:9", "--out", "udpout:127.0.0.1:10",
                  "--out", "udpout:127.0.0.1:11"]  # fmt: skip
    assert sim_vehicle.main(["--pattern", "circle", "--count", "2", *three_outs]) == 2
    assert sim_vehicle.main(["--log", str(vtol) + ".missing"]) == 2
