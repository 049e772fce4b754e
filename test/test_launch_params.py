"""Under the real launch system, a value in the parameter file is what the node runs with,
unless a launch argument gives another.

The launch files used to pass every argument's default, so `mavlink_url` from a user's
drone.yaml was replaced by the launch default and `radio:=sx1276` replaced a config's
`radio: emulator` (issue 11). Runs where launch and launch_ros are installed (a ROS 2 install;
they are not on PyPI) and is skipped elsewhere. Each case launches the real node and asks it
for its parameters over the ROS parameter services.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("launch", reason="launch is not installed")
pytest.importorskip("launch_ros", reason="launch_ros is not installed")

from rostest_support import require_ros  # noqa: E402

require_ros()

import rclpy  # noqa: E402
import yaml  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402

from lora_telemetry import keyfile  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUN_LAUNCH = """
import sys
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
path, *args = sys.argv[1:]
description = launch.LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(path),
    launch_arguments=[tuple(a.split(":=", 1)) for a in args])])
service = launch.LaunchService()
service.include_launch_description(description)
sys.exit(service.run())
"""
ORIGIN = {"origin_lat_deg": 47.3977, "origin_lon_deg": 8.5456, "origin_alt_m": 488.0}


def params_file(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return path


def launched_parameters(launch_file: str, node: str, names: list[str], *args: str) -> dict:
    child = subprocess.Popen([sys.executable, "-c", RUN_LAUNCH, str(REPO / "launch" / launch_file),
                              *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    rclpy.init()
    try:
        probe = rclpy.create_node("launch_params_probe")
        client = AsyncParameterClient(probe, node)
        assert client.wait_for_services(timeout_sec=30.0), f"{node} did not come up"
        future = client.get_parameters(names)
        rclpy.spin_until_future_complete(probe, future, timeout_sec=10.0)
        values = future.result().values
        return {n: v.string_value or v.double_value or v.integer_value for n, v in zip(names, values)}
    finally:
        rclpy.shutdown()
        os.killpg(child.pid, signal.SIGINT)
        try:
            child.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)


@pytest.fixture()
def drone_files(tmp_path: Path) -> Path:
    full = tmp_path / "keys.yaml"
    keyfile.add_device(full, keyfile.generate_device("uav7", 0x260B0007))
    keyfile.export_device(full, "uav7", tmp_path / "uav7.yaml")
    return params_file(tmp_path / "drone.yaml", {
        "uav_name": "uav7", "mavlink_url": "udpin:127.0.0.1:14999", "radio_type": "ebyte",
        "radio_port": "/nonexistent", "key_file": str(tmp_path / "uav7.yaml"),
        "fcnt_state_file": str(tmp_path / "uav7.fcnt.json"), **ORIGIN})


def test_drone_launch_keeps_the_files_values(drone_files: Path) -> None:
    got = launched_parameters("drone.launch.py", "/uav7/drone_node",
                              ["mavlink_url", "radio_type", "origin_alt_m"], f"config:={drone_files}")
    assert got == {"mavlink_url": "udpin:127.0.0.1:14999", "radio_type": "ebyte",
                   "origin_alt_m": 488.0}


def test_drone_launch_argument_overrides_when_given(drone_files: Path) -> None:
    got = launched_parameters("drone.launch.py", "/uav7/drone_node", ["mavlink_url", "origin_alt_m"],
                              f"config:={drone_files}", "mavlink_url:=udpin:127.0.0.1:15000",
                              "origin_alt_m:=400")
    assert got == {"mavlink_url": "udpin:127.0.0.1:15000", "origin_alt_m": 400.0}


def test_ground_launch_keeps_radio_emulator_from_the_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keyfile.add_device(keys, keyfile.generate_device("uav7", 0x260B0007))
    config = params_file(tmp_path / "ground.yaml", {
        "radio": "emulator", "medium": "127.0.0.1:47999", "key_file": str(keys),
        "fcnt_state_file": str(tmp_path / "gw.json"), "devices": {"uav7": {"system_id": 7}},
        **ORIGIN})
    got = launched_parameters("ground.launch.py", "/ground_node", ["radio", "medium"],
                              f"config:={config}")
    assert got == {"radio": "emulator", "medium": "127.0.0.1:47999"}
    got = launched_parameters("ground.launch.py", "/ground_node", ["radio", "medium"],
                              f"config:={config}", "medium:=127.0.0.1:48000")
    assert got == {"radio": "emulator", "medium": "127.0.0.1:48000"}
