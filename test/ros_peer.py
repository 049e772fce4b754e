"""A minimal second ROS 2 process for cross-process tests: publishes or echoes a SwarmState.

    python ros_peer.py publish    # publishes the canonical three-UAV SwarmState until killed
    python ros_peer.py receive    # prints the first SwarmState received as JSON and exits

Run by the tests with a test-specific ROS_DOMAIN_ID so parallel runs never see each other.
"""

from __future__ import annotations

import json
import math
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from lora_telemetry.msg import SwarmState, UavTelemetry

QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def canonical_swarm() -> SwarmState:
    """Three UAVs with distinct values in every kind of field (floats, strings, arrays, nested).

    float32 fields hold values exactly representable in binary32, so equality is exact.
    """
    swarm = SwarmState()
    swarm.header.stamp.sec = 1_700_000_000
    swarm.header.frame_id = "map"
    swarm.origin_latitude_deg = 41.275
    swarm.origin_longitude_deg = 1.987
    swarm.origin_altitude_amsl_m = 4.5
    for i in range(3):
        uav = UavTelemetry()
        uav.header.stamp.sec = 1_700_000_000 - i
        uav.header.stamp.nanosec = 250_000_000 * i
        uav.uav_name = f"uav{i + 1}"
        uav.devaddr = 0x26011CA2 + i
        uav.system_id = i + 1
        uav.latitude_deg = 41.2751 + i * 1e-4
        uav.longitude_deg = 1.9872 - i * 1e-4
        uav.altitude_amsl_m = 54.5 + i
        uav.altitude_relative_m = 50.0 + i
        uav.position_enu.x = 16.5 * (i + 1)
        uav.position_enu.y = -8.0 * (i + 1)
        uav.position_enu.z = 50.0 + i
        uav.heading_deg = 90.0 * i
        uav.ground_speed_mps = 4.25 + i
        uav.climb_rate_mps = -0.5 * i
        uav.armed = i != 2
        uav.flight_mode = ["GUIDED", "AUTO", "LAND"][i]
        uav.custom_mode = [4, 3, 9][i]
        uav.system_status = 4
        uav.gps_fix_type = 3 + i
        uav.satellites_visible = 10 + i
        uav.battery_voltage_v = 15.875 - i * 0.25
        uav.battery_remaining_pct = math.nan if i == 2 else 80.0 - 10 * i
        uav.failure_flags = UavTelemetry.FAILURE_BATTERY if i == 1 else 0
        uav.link.rssi_dbm = -90.0 - i
        uav.link.snr_db = 7.5 - i
        uav.link.frequency_hz = 869_525_000
        uav.link.spreading_factor = 7
        uav.link.bandwidth_hz = 125_000
        uav.link.frame_counter = 1000 + i
        uav.link.latency_s = 0.25 * (i + 1)
        swarm.uavs.append(uav)
    swarm.stale = [False, False, True]
    swarm.age_s = [0.5, 1.5, 42.0]
    return swarm


def to_plain(msg: object) -> object:
    """Message -> JSON-able structure (NaN kept as the string "nan" so JSON stays strict)."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: to_plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple)) or type(msg).__name__ == "array":
        return [to_plain(v) for v in msg]
    if isinstance(msg, float) and math.isnan(msg):
        return "nan"
    return msg


def main(role: str) -> int:
    rclpy.init()
    node = rclpy.create_node(f"ros_peer_{role}")
    try:
        if role == "publish":
            pub = node.create_publisher(SwarmState, "/swarm/state", QOS)
            msg = canonical_swarm()
            while rclpy.ok():
                pub.publish(msg)
                rclpy.spin_once(node, timeout_sec=0.2)
        else:
            received: list[SwarmState] = []
            node.create_subscription(SwarmState, "/swarm/state", received.append, QOS)
            deadline = time.monotonic() + 30
            while not received and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.2)
            if not received:
                print("no SwarmState received within 30 s", file=sys.stderr)
                return 1
            print(json.dumps(to_plain(received[0])))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
