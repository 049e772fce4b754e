"""launch_testing: swarm_sim.launch.py brings up a swarm whose state reaches /swarm/state.

Runs where launch_testing and launch_ros are installed (a ROS 2 Jazzy install); they are not
on PyPI, so elsewhere this module is skipped. The same processes are exercised without the
launch system by test_e2e_swarm.py.
"""

from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

import pytest

launch_testing = pytest.importorskip("launch_testing", reason="launch_testing is not installed")
pytest.importorskip("launch_ros", reason="launch_ros is not installed")

import launch  # noqa: E402
import launch_testing.actions  # noqa: E402,F811  (the submodule, after the skip check)
import rclpy  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from lora_telemetry.msg import SwarmState  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parent.parent / "launch" / "swarm_sim.launch.py"
UAVS = 2


@pytest.mark.launch_test
def generate_test_description():
    run_dir = tempfile.mkdtemp(prefix="lora_launch_test_")
    swarm = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"uavs": str(UAVS), "radios": "mix", "period": "1.0",
                          "run_dir": run_dir}.items(),
    )
    return launch.LaunchDescription([swarm, launch_testing.actions.ReadyToTest()])


class TestSwarmState(unittest.TestCase):
    def test_every_uav_appears_in_swarm_state(self) -> None:
        rclpy.init()
        node = rclpy.create_node("launch_test_probe")
        seen: set[str] = set()
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(SwarmState, "/swarm/state",
                                 lambda m: seen.update(u.uav_name for u in m.uavs), qos)
        try:
            deadline = time.monotonic() + 90
            while len(seen) < UAVS and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.5)
        finally:
            node.destroy_node()
            rclpy.shutdown()
        self.assertEqual(seen, {f"uav{i + 1}" for i in range(UAVS)})


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_cleanly(self, proc_info) -> None:
        # Nodes stop on SIGINT with status 0; the simulators may report -2/-15 if killed.
        for info in proc_info:
            self.assertIn(info.returncode, (0, -2, -15, 130), info.process_name)
