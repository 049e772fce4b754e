"""The drone node as a process: real MAVLink in, frames on the simulated air out.

Each test starts the radio medium, an emulated module on a pseudo-terminal, a vehicle
simulator and `drone_node`, and listens on the medium like a gateway would (a sniffer).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from pymavlink import mavutil

from rostest_support import require_ros

require_ros()

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402

from lora_telemetry import keyfile  # noqa: E402
from lora_telemetry.core import codec as tcodec  # noqa: E402
from lora_telemetry.core import lorawan as lw  # noqa: E402
from lora_telemetry.core.geo import haversine_m  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.sim.medium import MediumClient, RxEvent  # noqa: E402
from lora_telemetry.sim.processes import ProcessGroup, python_module  # noqa: E402
from lora_telemetry.sim.swarm import free_udp_ports, log_vehicle_family, ros_env  # noqa: E402
from lora_telemetry.sim.vehicle import find_log_reference  # noqa: E402

pytestmark = pytest.mark.slow
PHY = PhySettings(433_175_000, 7, 125_000)
DEVADDR = 0x260B0001


class Rig:
    """medium + module emulator + vehicle simulator + drone node, and a sniffer on the air."""

    def __init__(self, tmp: Path, radio: str) -> None:
        self.tmp = tmp
        self.radio = radio
        self.group = ProcessGroup(tmp / "logs", env=ros_env(log_dir=str(tmp / "ros_log")))
        self.medium_port, self.mav_port = free_udp_ports(2)
        self.keys = keyfile.generate_device("uav1", DEVADDR)
        keyfile.write_key_file(tmp / "keys.yaml", {"uav1": self.keys})
        self.tty = tmp / "uav1.tty"
        self.ctl = tmp / "uav1.ctl"
        self.group.start("medium", python_module(
            "lora_telemetry.cli.sim_medium", "--port", str(self.medium_port), "--seed", "1"),
            ready="medium")
        args = ["--type", radio, "--name", "uav1", "--link", str(self.tty), "--medium",
                f"127.0.0.1:{self.medium_port}", "--control", str(self.ctl), "--y", "100"]
        if radio == "rn2483":
            args += ["--band", "433"]
        self.module = self.group.start("module", python_module("lora_telemetry.cli.sim_module", *args),
                                       ready="module")
        self.sniffer = MediumClient("gateway", ("127.0.0.1", self.medium_port), (0.0, 0.0, 10.0))
        self.sniffer.listen(PHY)
        self.drone = None
        self.vehicle = None

    def start_vehicle(self, *args: str):
        self.vehicle = self.group.start("vehicle", python_module(
            "lora_telemetry.cli.sim_vehicle", "--out", f"udpout:127.0.0.1:{self.mav_port}", *args),
            ready="vehicle")

    def start_drone(self, origin: tuple[float, float, float], family: str, period: float = 0.5):
        params = self.tmp / "drone.yaml"
        import yaml
        params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
            "uav_name": "uav1", "mavlink_url": f"udpin:127.0.0.1:{self.mav_port}",
            "radio_type": self.radio, "radio_port": str(self.tty), "vehicle_family": family,
            "key_file": str(self.tmp / "keys.yaml"), "fcnt_state_file": str(self.tmp / "fcnt.json"),
            "origin_lat_deg": origin[0], "origin_lon_deg": origin[1], "origin_alt_m": origin[2],
            "update_period_s": period, "frequency_hz": PHY.frequency_hz}}}))
        self.drone = self.group.start("drone", python_module(
            "lora_telemetry.nodes.drone_node", "--ros-args", "-r", "__ns:=/uav1",
            "--params-file", str(params)), ready="drone")
        return self.drone

    def frames(self, seconds: float) -> list[RxEvent]:
        out = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ev = self.sniffer.next_event(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(ev, RxEvent) and ev.crc_ok:
                out.append(ev)
        return out

    def control(self, text: str) -> str:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reply_path = self.tmp / f"reply-{time.monotonic_ns()}.sock"
        s.bind(str(reply_path))
        s.settimeout(3)
        try:
            s.sendto(text.encode(), str(self.ctl))
            return s.recv(1024).decode().strip()
        finally:
            s.close()
            reply_path.unlink()

    def decode(self, ev: RxEvent, cfg: tcodec.CodecConfig):
        d = lw.decode_data_frame(ev.data, self.keys.nwkskey, self.keys.appskey)
        assert d.mic_valid, "MIC does not verify"
        return d.fcnt32, tcodec.decode(d.frame.fport, d.payload, cfg, ev.t_end)

    def close(self) -> None:
        self.sniffer.close()
        self.group.stop_all()


@pytest.fixture
def rig_factory(tmp_path):
    rigs: list[Rig] = []

    def make(radio: str) -> Rig:
        rig = Rig(tmp_path, radio)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def log_track(path: Path) -> tuple[list[tuple[float, float, float]], set[str]]:
    """Every GLOBAL_POSITION_INT of the log's autopilot (lat, lon, alt AMSL) and its modes."""
    ref = find_log_reference(path)
    conn = mavutil.mavlink_connection(str(path))
    track, modes = [], set()
    while (msg := conn.recv_match(blocking=False)) is not None:
        if msg.get_type() == "BAD_DATA" or msg.get_srcSystem() != ref.sysid:
            continue
        if msg.get_type() == "GLOBAL_POSITION_INT" and (msg.lat, msg.lon) != (0, 0):
            track.append((msg.lat * 1e-7, msg.lon * 1e-7, msg.alt * 1e-3))
        elif msg.get_type() == "HEARTBEAT" and msg.get_srcComponent() == 1:
            modes.add(mavutil.mode_string_v10(msg))
    conn.close()
    return track, modes


@pytest.mark.parametrize("radio, log", [("rn2483", "uavlogviewer_vtol.tlog"),
                                        ("ebyte", "ardusub_small.tlog")])
def test_replayed_log_arrives_in_order_within_resolution(rig_factory, testdata_dir, radio, log):
    path = testdata_dir / "tlogs" / log
    ref = find_log_reference(path)
    origin = (ref.lat_deg, ref.lon_deg, ref.alt_m)
    family = log_vehicle_family(str(path))
    cfg = tcodec.CodecConfig(*origin, family)
    track, modes = log_track(path)
    rig = rig_factory(radio)
    rig.start_vehicle("--log", str(path), "--speed", "4")
    rig.start_drone(origin, family)
    events = rig.frames(25.0)
    assert len(events) >= 15, f"only {len(events)} frames on the air"
    index, last_fcnt, positions = 0, -1, 0
    for ev in events:
        fcnt, s = rig.decode(ev, cfg)
        assert fcnt > last_fcnt, "frame counters must strictly increase"
        last_fcnt = fcnt
        if s.lat_deg is None:
            # A HEARTBEAT can arrive before the first GLOBAL_POSITION_INT: the node then sends
            # mode and status with the position marked unknown, never an invented one.
            assert positions == 0, f"frame {fcnt} lost a position the log keeps sending"
            continue
        positions += 1
        # The first log record at or after the previous match that this frame reproduces
        # within codec resolution (0.25 m per axis, docs/wire-format.md): in order, exact.
        for j in range(index, len(track)):
            lat, lon, alt = track[j]
            if haversine_m(s.lat_deg, s.lon_deg, lat, lon) <= 0.36 and abs(s.alt_amsl_m - alt) <= 0.26:
                index = j
                break
        else:
            raise AssertionError(f"frame {fcnt} ({s.lat_deg}, {s.lon_deg}, {s.alt_amsl_m}) is no "
                                 f"position of the log at or after record {index}")
        assert s.mode_name in modes, (s.mode_name, modes)
    assert positions >= 12, f"only {positions} frames carried a position"
    assert index > 0 or len(set(track)) == 1


def test_sigkill_restarts_never_repeat_a_counter(rig_factory):
    rig = rig_factory("rn2483")
    rig.start_vehicle("--pattern", "circle", "--origin", "47.3977,8.5456,488")
    origin = (47.3977, 8.5456, 488.0)
    seen: list[int] = []
    cfg = tcodec.CodecConfig(*origin, "arducopter")
    for _ in range(20):
        drone = rig.start_drone(origin, "arducopter", period=0.3)
        deadline = time.monotonic() + 15
        got = 0
        while got == 0 and time.monotonic() < deadline:
            for ev in rig.frames(0.5):
                seen.append(rig.decode(ev, cfg)[0])
                got += 1
        assert got, "the restarted node sent nothing"
        rig.group.stop(drone, timeout_s=0.0)  # SIGINT with no grace... then SIGKILL below
        import os
        import signal
        try:
            os.killpg(drone.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        drone.popen.wait(5)
        rig.group.children.remove(drone)
    assert len(seen) == len(set(seen)), f"a frame counter was repeated: {sorted(seen)}"
    assert seen == sorted(seen)


def test_unplug_reset_and_silent_flight_controller(rig_factory):
    rig = rig_factory("rn2483")
    origin = (47.3977, 8.5456, 488.0)
    cfg = tcodec.CodecConfig(*origin, "arducopter")
    rig.start_vehicle("--pattern", "circle", "--origin", "47.3977,8.5456,488")
    rig.start_drone(origin, "arducopter")
    assert len(rig.frames(5.0)) >= 3

    assert rig.control("unplug 2") == "ok"  # USB adapter out for 2 s, then back
    rig.frames(3.0)
    after_unplug = rig.frames(6.0)
    assert len(after_unplug) >= 3, "not recovered from the unplugged port"

    assert rig.control("reset") == "ok"  # spontaneous reboot banner: configuration lost
    rig.frames(2.0)
    after_reset = rig.frames(6.0)
    assert len(after_reset) >= 3, "not recovered from the module reset"
    fcnts = [rig.decode(ev, cfg)[0] for ev in after_unplug + after_reset]
    assert fcnts == sorted(set(fcnts))
    assert rig.drone.alive(), "the node had to be restarted"

    # Silent flight controller: the node stops sending and says STALE on /diagnostics.
    rclpy.init()
    node = rclpy.create_node("diag_probe")
    diags: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 20)
    try:
        rig.group.stop(rig.vehicle)
        stale_at = time.monotonic()
        deadline = stale_at + 10
        stale = False
        while not stale and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.2)
            stale = any(s.level == b"\x03" and "uav1" in s.name for d in diags for s in d.status)
        assert stale, "no STALE diagnostic after the flight controller went silent"
        rig.frames(1.0)
        assert rig.frames(4.0) == [], "stale state was still being sent"
    finally:
        node.destroy_node()
        rclpy.shutdown()
