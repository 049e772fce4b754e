"""The generated interfaces, exercised through real rclpy and DDS across two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rostest_support import require_ros

require_ros()

from lora_telemetry.msg import (  # noqa: E402  (after the ROS availability check)
    LinkQuality,
    LinkStats,
    RadioFrame,
    SwarmState,
    UavTelemetry,
)

PEER = Path(__file__).with_name("ros_peer.py")


def test_messages_are_rosidl_generated() -> None:
    # Generated classes carry rosidl's metaclass and type support; hand-written ones do not.
    for cls in (UavTelemetry, LinkQuality, LinkStats, SwarmState, RadioFrame):
        assert type(cls).__name__.startswith("Metaclass_"), cls
        cls.__class__.__import_type_support__()
        assert cls._TYPE_SUPPORT is not None
    assert UavTelemetry.FAILURE_MISSION == 8192  # HL_FAILURE_FLAG_MISSION in MAVLink common.xml
    assert SwarmState.get_fields_and_field_types()["uavs"] == "sequence<lora_telemetry/UavTelemetry>"


def test_swarm_state_crosses_processes_intact(ros_env: dict[str, str]) -> None:
    sys.path.insert(0, str(PEER.parent))
    from ros_peer import canonical_swarm, to_plain

    publisher = subprocess.Popen([sys.executable, str(PEER), "publish"], env=ros_env)
    try:
        received = subprocess.run(
            [sys.executable, str(PEER), "receive"],
            env=ros_env, capture_output=True, text=True, timeout=60,
        )
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
    assert received.returncode == 0, received.stderr
    got = json.loads(received.stdout)
    assert got == json.loads(json.dumps(to_plain(canonical_swarm())))
    assert [u["uav_name"] for u in got["uavs"]] == ["uav1", "uav2", "uav3"]
    assert got["uavs"][2]["battery_remaining_pct"] == "nan"


@pytest.fixture
def ros_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")
    return env
