"""The ground node as a process: nothing accepted before a restart is ever accepted again.

A radio medium hub and the real ground node (emulated SX1276) run as processes; the test
puts authentic frames on the air with the medium's injector, as a UAV (or a replayer with a
recording) would, and reads what a coordinator reads: /lora/rx, /swarm/uav1/telemetry,
/swarm/uav1/link and /diagnostics. Without the persisted counters, the first frame after a
start set the baseline and a frame recorded 100 s earlier was accepted (issue 11).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from rostest_support import require_ros

require_ros()

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402

from lora_telemetry import keyfile  # noqa: E402
from lora_telemetry.core import codec as tcodec  # noqa: E402
from lora_telemetry.core import lorawan as lw  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.msg import LinkStats, RadioFrame, UavTelemetry  # noqa: E402
from lora_telemetry.sim.medium import MediumControl  # noqa: E402
from lora_telemetry.sim.processes import ProcessGroup, python_module  # noqa: E402
from lora_telemetry.sim.swarm import free_udp_ports, ros_env  # noqa: E402

pytestmark = pytest.mark.slow
ORIGIN = (47.3977, 8.5456, 488.0)
CODEC = tcodec.CodecConfig(*ORIGIN, "arducopter")
PHY = PhySettings(433_175_000, 7, 125_000)
AIRTIME_S = PHY.time_on_air(29)  # 66.8 ms: injected frames are spaced wider, never overlap


class Probe:
    """What a coordinator reads, spun in a thread of the test process."""

    def __init__(self) -> None:
        rclpy.init()
        self.node = Node("restart_probe")
        self.lock = threading.RLock()
        self.rx: list[tuple[int, str, bytes]] = []  # (fcnt16, status, data)
        self.telemetry: list[UavTelemetry] = []
        self.links: list[LinkStats] = []
        self.diag: list[DiagnosticArray] = []
        self.node.create_subscription(RadioFrame, "/lora/rx", self._rx, qos_profile_sensor_data)
        self.node.create_subscription(UavTelemetry, "/swarm/uav1/telemetry",
                                      self._keep(self.telemetry), 50)
        self.node.create_subscription(LinkStats, "/swarm/uav1/link", self._keep(self.links), 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diag), 50)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _keep(self, into: list):
        def keep(msg) -> None:
            with self.lock:
                into.append(msg)
        return keep

    def _rx(self, msg: RadioFrame) -> None:
        data = bytes(msg.data)
        with self.lock:
            self.rx.append((lw.parse_phy_payload(data).fcnt, msg.status, data))

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.1)

    def wait(self, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return True
            time.sleep(0.05)
        return False

    def statuses(self, data: bytes) -> list[str]:
        with self.lock:
            return [s for _, s, d in self.rx if d == data]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown()


class Ground:
    """A medium hub plus a ground node that can be restarted, cleanly or with SIGKILL."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.keys = tmp / "keys.yaml"
        keyfile.write_key_file(self.keys, {"uav1": keyfile.generate_device("uav1", 0x260B0001)})
        self.uav1 = keyfile.load_key_file(self.keys)["uav1"]
        self.state = tmp / "state" / "gateway.fcnt.json"
        self.group = ProcessGroup(tmp / "logs", env=ros_env(log_dir=str(tmp / "ros_log")))
        (port,) = free_udp_ports(1)
        self.group.start("medium", python_module("lora_telemetry.cli.sim_medium", "--port",
                                                 str(port), "--seed", "5", "--json"),
                         ready="medium")
        self.control = MediumControl(("127.0.0.1", port))
        params = {"gateway_id": "gateway", "radio": "emulator", "medium": f"127.0.0.1:{port}",
                  "gateway_x_m": 0.0, "gateway_y_m": 0.0, "gateway_z_m": 10.0,
                  "key_file": str(self.keys), "fcnt_state_file": str(self.state),
                  "origin_lat_deg": ORIGIN[0], "origin_lon_deg": ORIGIN[1],
                  "origin_alt_m": ORIGIN[2], "stale_after_s": 30.0,
                  "devices": {"uav1": {"system_id": 1}}}
        self.params = tmp / "ground.yaml"
        self.params.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        self.child = None
        self.starts = 0

    def start(self, probe: "Probe") -> None:
        """Start the node and wait until the probe hears it (DDS discovery of a new process
        takes a moment; frames published before that would be missed by the probe)."""
        self.starts += 1
        with probe.lock:
            heard = len(probe.diag)
        self.child = self.group.start(
            f"ground-{self.starts}", python_module("lora_telemetry.nodes.ground_node", "--ros-args",
                                                   "--params-file", str(self.params)),
            ready="ground", ready_timeout_s=60.0)
        assert probe.wait(lambda: len(probe.diag) > heard, 15.0), "ground node not discovered"
        time.sleep(0.3)

    def stop(self) -> None:
        self.group.stop(self.child)

    def kill9(self) -> None:
        os.killpg(self.child.pid, signal.SIGKILL)
        self.child.popen.wait(5.0)

    def frame(self, fcnt: int, *, alt_amsl_m: float = 520.0) -> bytes:
        sample = tcodec.TelemetrySample(time.time(), lat_deg=47.398, lon_deg=8.546,
                                        alt_amsl_m=alt_amsl_m, alt_rel_m=30.0)
        fport, payload = tcodec.encode(sample, CODEC)
        return lw.build_data_frame(self.uav1.devaddr, fcnt, payload, nwkskey=self.uav1.nwkskey,
                                   appskey=self.uav1.appskey, fport=fport)

    def send(self, data: bytes) -> None:
        self.control.inject(data, PHY, tx_node="uav1", position_m=(100.0, 0.0, 30.0))
        time.sleep(2 * AIRTIME_S)

    def replay(self, data: bytes) -> None:
        """A replayer 20 m from the gateway (14 dB above the UAV at 100 m: it wins a collision
        with the UAV's frame by the medium's 6 dB capture margin), on its own socket."""
        with MediumControl(self.control.hub) as control:
            control.inject(data, PHY, tx_node="replayer", position_m=(20.0, 0.0, 10.0))
        time.sleep(2 * AIRTIME_S)

    def stored_fcnt(self) -> int | None:
        if not self.state.exists():
            return None
        return json.loads(self.state.read_text())["devices"]["260B0001"]["fcnt_up"]

    def close(self) -> None:
        self.control.close()
        self.group.stop_all()


@pytest.fixture()
def ground(tmp_path: Path):
    g = Ground(tmp_path)
    probe = Probe()
    try:
        yield g, probe
    finally:
        probe.close()
        g.close()


def _until_status(g: Ground, probe: Probe, data: bytes, status: str, tries: int = 10, *,
                  replayer: bool = False) -> None:
    """Inject until the gateway reports it (a frame can be lost on the air, as any)."""
    for _ in range(tries):
        (g.replay if replayer else g.send)(data)
        if probe.wait(lambda: status in probe.statuses(data), 1.5):
            return
    raise AssertionError(f"frame never reported as {status}: saw {probe.statuses(data)}")


def test_recorded_frame_replayed_after_a_restart_is_rejected_and_counted(ground) -> None:
    g, probe = ground
    g.start(probe)
    recorded = [g.frame(n) for n in range(5)]
    for data in recorded:
        _until_status(g, probe, data, "accepted")
    assert g.stored_fcnt() == 4
    g.stop()
    g.start(probe)
    time.sleep(1.0)  # the frame would now be "old"; before the fix it was accepted anyway
    _until_status(g, probe, recorded[2], "replay")
    assert "accepted" not in probe.statuses(recorded[2])[1:], probe.statuses(recorded[2])
    assert probe.wait(lambda: any(m.replays_rejected >= 1 for m in probe.links), 5.0)
    # Accepted telemetry only ever carried each counter once.
    fcnts = [m.link.frame_counter for m in probe.telemetry]
    assert sorted(fcnts) == sorted(set(fcnts)) == [0, 1, 2, 3, 4]
    # And the UAV carries on after the restart: its next frame is accepted, none counted lost.
    _until_status(g, probe, g.frame(5), "accepted")
    assert probe.wait(lambda: probe.links[-1].frames_lost == 0 and
                      probe.links[-1].last_frame_counter == 5, 5.0)


def test_kill_9_mid_stream_twenty_times_never_accepts_a_frame_twice(ground) -> None:
    g, probe = ground
    rng = random.Random(11)
    stop = threading.Event()
    sent: list[bytes] = []

    def uav() -> None:  # a UAV sending all the time, whatever happens to the ground node
        n = 0
        while not stop.is_set():
            data = g.frame(n)
            sent.append(data)
            g.send(data)
            n += 1

    sender = threading.Thread(target=uav, daemon=True)
    stored: list[int] = []
    g.start(probe)
    sender.start()
    try:
        for round_ in range(20):
            # Wait for this incarnation's own accepted frames, then kill it at a random moment.
            with probe.lock:
                seen = len(probe.rx)
            assert probe.wait(lambda: sum(s == "accepted" for _, s, _ in probe.rx[seen:]) >= 2,
                              30.0), f"round {round_}: no frame accepted"
            time.sleep(rng.uniform(0.0, 0.4))
            g.kill9()
            value = g.stored_fcnt()
            assert value is not None
            stored.append(value)
            g.start(probe)
            # A frame this run accepted earlier, replayed now, is refused.
            with probe.lock:
                accepted_before = [d for _, s, d in probe.rx if s == "accepted"]
            old = rng.choice(accepted_before[:-1])
            _until_status(g, probe, old, "replay", replayer=True)
    finally:
        stop.set()
        sender.join(5.0)
    assert stored == sorted(stored), f"a counter went back: {stored}"
    with probe.lock:
        accepted = [f for f, s, _ in probe.rx if s == "accepted"]
        replays = [f for f, s, _ in probe.rx if s == "replay"]
    assert len(accepted) == len(set(accepted)), "a frame was accepted twice"
    assert len(replays) >= 20 and not set(replays) - set(accepted) - set(range(len(sent)))
    assert g.starts == 21


def test_saturated_altitude_arrives_flagged_counted_and_explained(ground) -> None:
    g, probe = ground
    g.start(probe)
    # The reviewer's case: a flight at 3 m AMSL around a 488 m origin saturates the altitude.
    _until_status(g, probe, g.frame(0, alt_amsl_m=3.0), "accepted")
    assert probe.wait(lambda: bool(probe.telemetry), 5.0)
    msg = probe.telemetry[-1]
    assert msg.saturated & UavTelemetry.SATURATED_ALTITUDE
    assert msg.altitude_amsl_m == pytest.approx(488.0 - 255.5)
    assert probe.wait(lambda: any(m.saturated_samples == 1 for m in probe.links), 5.0)

    def warned() -> bool:
        for arr in probe.diag:
            for st in arr.status:
                if st.name == "lora_telemetry/uav/uav1" and st.level == b"\x01" and \
                        "more than 255 m below origin_alt_m 488.0 m" in st.message:
                    return True
        return False
    assert probe.wait(warned, 5.0), [s.message for a in probe.diag for s in a.status]
