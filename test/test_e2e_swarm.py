"""End to end, no hardware: 3 UAVs (RN2483 and EByte mixed) -> medium -> gateway -> ROS 2.

The processes are the ones `make demo` starts (lora_telemetry.sim.swarm). The test reads
the topics a swarm coordinator would read, compares positions with the vehicle simulator's
exact truth, and injects forged, replayed and foreign frames into the medium: they must be
rejected, counted, and never published as telemetry.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from rostest_support import require_ros

require_ros()

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402

from lora_telemetry.cli.sim_swarm import _truth_fn  # noqa: E402
from lora_telemetry.core import codec as tcodec  # noqa: E402
from lora_telemetry.core import lorawan as lw  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.keyfile import load_key_file  # noqa: E402
from lora_telemetry.msg import RadioFrame  # noqa: E402
from lora_telemetry.nodes.swarm_monitor import SwarmMonitor  # noqa: E402
from lora_telemetry.sim import swarm_report  # noqa: E402
from lora_telemetry.sim.medium import MediumControl  # noqa: E402
from lora_telemetry.sim.processes import ProcessGroup  # noqa: E402
from lora_telemetry.sim.swarm import SwarmOptions, plan_swarm, ros_env, start_swarm  # noqa: E402

pytestmark = pytest.mark.slow
UAVS = 3
RUN_S = 30.0


class Probe:
    """The monitor plus /lora/rx and /diagnostics, spun in the test's thread."""

    def __init__(self, names: list[str]) -> None:
        rclpy.init()
        self.monitor = SwarmMonitor(names, time.time)
        self.rx: list[RadioFrame] = []
        self.diag: list[DiagnosticArray] = []
        self.monitor.create_subscription(RadioFrame, "/lora/rx", self.rx.append,
                                         qos_profile_sensor_data)
        self.monitor.create_subscription(DiagnosticArray, "/diagnostics", self.diag.append, 50)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.monitor)

    def spin(self, seconds: float, until=None) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.1)
            if until is not None and until():
                return True
        return until is None

    def close(self) -> None:
        self.executor.shutdown()
        self.monitor.destroy_node()
        rclpy.shutdown()


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("swarm")
    plan = plan_swarm(SwarmOptions(uavs=UAVS, radios="mix", update_period_s=1.0, seed=3), run_dir)
    group = ProcessGroup(run_dir / "logs", env=ros_env(log_dir=str(run_dir / "ros_log")))
    probe = None
    try:
        start_swarm(plan, group)
        probe = Probe(plan.uav_names)
        yield plan, group, probe
    finally:
        if probe is not None:
            probe.close()
        group.stop_all()


def inject_until(probe: Probe, control: MediumControl, data: bytes, status: str) -> RadioFrame:
    """Inject a frame until the gateway reports it with `status` (a real uplink can collide
    with it on the air, as on a real channel)."""
    phy = PhySettings(433_175_000, 7, 125_000)
    for _ in range(8):
        before = len(probe.rx)
        control.inject(data, phy, tx_node="attacker", position_m=(0.0, -450.0, 20.0))
        if probe.spin(3.0, until=lambda: any(bytes(m.data) == data and m.status == status
                                               for m in probe.rx[before:])):
            return next(m for m in probe.rx[before:] if bytes(m.data) == data)
    raise AssertionError(f"the gateway never reported an injected frame as {status}")


def test_swarm_end_to_end(swarm) -> None:
    plan, group, probe = swarm
    started = time.time()
    assert probe.spin(40.0, until=lambda: all(
        r.latest is not None for r in probe.monitor.snapshot().values())), "not every UAV appeared"

    # --- attacks, while the swarm keeps flying ---------------------------------------------
    keys = load_key_file(plan.key_file)
    uav1 = keys["uav1"]
    control = MediumControl(("127.0.0.1", plan.medium_port))
    far = tcodec.TelemetrySample(time.time(), lat_deg=47.42, lon_deg=8.56, alt_amsl_m=900.0)
    fport, payload = tcodec.encode(far, tcodec.CodecConfig(*plan.options.origin, "arducopter"))
    forged = lw.build_data_frame(uav1.devaddr, 60000, payload, nwkskey=bytes(16),
                                 appskey=uav1.appskey, fport=fport)
    inject_until(probe, control, forged, "mic_failed")
    stranger = lw.build_data_frame(0x01020304, 1, payload, nwkskey=bytes(16), appskey=bytes(16),
                                   fport=fport)
    inject_until(probe, control, stranger, "unknown_devaddr")
    inject_until(probe, control, stranger, "unknown_devaddr")
    def uav1_accepted() -> list[bytes]:
        return [bytes(m.data) for m in probe.rx if m.uav_name == "uav1" and m.status == "accepted"]

    # A genuine frame to replay, then a few newer ones so that it has become old.
    assert probe.spin(20.0, until=lambda: len(uav1_accepted()) >= 1), "no accepted uav1 frame seen"
    genuine = uav1_accepted()[0]
    assert probe.spin(20.0, until=lambda: len(uav1_accepted()) >= 3)
    replayed = inject_until(probe, control, genuine, "replay")
    assert replayed.uav_name == "uav1"

    probe.spin(max(0.0, RUN_S - (time.time() - started)))
    assert not group.dead(), [c.name for c in group.dead()]
    records = probe.monitor.snapshot()

    # --- every UAV, at its true position -----------------------------------------------------
    summary = swarm_report.summarize(
        records, radios={n: plan.options.radio_of(i) for i, n in enumerate(plan.uav_names)},
        window=(started, time.time() - 3), period_s=1.0,
        airtime_s=PhySettings(433_175_000, 7, 125_000).time_on_air(29),
        truth=_truth_fn(plan), duration_s=time.time() - started)
    assert summary["all_uavs_received"], summary
    assert summary["all_positions_within_resolution"], summary
    for name, u in summary["per_uav"].items():
        assert u["frames_received"] >= 5, (name, u)
        assert u["max_position_error_m"] <= 0.5, (name, u)

    # --- rejected frames never became telemetry, and were counted ----------------------------
    for rec in records.values():
        for r in rec.received.values():
            assert abs(r.alt_amsl - 900.0) > 50, "a forged position was published"
    fcnts = [f for f in records["uav1"].received]
    assert len(fcnts) == len(set(fcnts))
    link = records["uav1"].link
    assert link is not None
    assert link.mic_failures_rejected >= 1 and link.replays_rejected + link.duplicates_rejected >= 1
    assert probe.spin(3.0, until=lambda: any(
        _gateway_value(d, "verdict.unknown_devaddr") >= 2 for d in probe.diag))
    statuses = {m.status for m in probe.rx}
    assert {"accepted", "mic_failed", "unknown_devaddr", "replay"} <= statuses


def test_medium_took_every_position_update(swarm) -> None:
    """The vehicle simulator moves each UAV's radio in the medium (lat/lon, converted with the
    swarm origin the plan gives the medium): none refused, and each radio is where its UAV
    flies, not where its module registered it (0, 0, 0)."""
    plan, group, _ = swarm
    with MediumControl(("127.0.0.1", plan.medium_port), timeout_s=2.0) as control:
        stats = control.stats()
    truth = json.loads(plan.truth_path.read_text())
    assert stats["hub"]["rejected_by_op"]["position"] == 0, stats["hub"]
    # The truth file and the medium are written together every 0.5 s (--truth-interval);
    # 1 s at the formation's fastest slot (about 9 m/s) is the most they can differ by.
    for vehicle in truth["vehicles"]:
        name = f"uav{vehicle['sysid']}"
        east, north, up = stats["nodes"][name]["position_m"]
        gap = math.hypot(east - vehicle["east_m"], north - vehicle["north_m"])
        assert gap <= 10.0 and abs(up - vehicle["alt_rel_m"]) <= 3.0, (name, stats["nodes"][name],
                                                                        vehicle)
        assert math.hypot(east, north) > 100.0, (name, "still at its registration point")


def _gateway_value(arr: DiagnosticArray, key: str) -> int:
    for status in arr.status:
        if status.name.startswith("lora_telemetry/gateway/"):
            for kv in status.values:
                if kv.key == key:
                    return int(kv.value)
    return -1


def test_ctrl_c_leaves_no_process_or_pty(swarm) -> None:
    plan, group, _ = swarm
    pids = [c.pid for c in group.children]
    group.stop_all()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not list((plan.run_dir / "tty").glob("*.tty")), "pseudo-terminal links left behind"
