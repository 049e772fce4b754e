"""One UAV's drone node: `ros2 launch lora_telemetry drone.launch.py uav_name:=uav2 ...`.

Parameters come from the config file (default: the package's config/drone.yaml); the launch
arguments below override the ones that differ per UAV. The node runs in the namespace
/<uav_name>, so several UAVs can share one ROS graph.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("uav_name", "uav1", "device name: key-file entry, namespace and ground registry name"),
    ("mavlink_url", "udpin:0.0.0.0:14550", "flight controller connection (pymavlink URL or .tlog)"),
    ("radio_type", "rn2483", "rn2483 or ebyte"),
    ("radio_port", "/dev/ttyUSB0", "serial port of the LoRa module"),
    ("lorawan_mode", "raw", "raw (our LoRaWAN framing) or module (RN2483's own stack)"),
    ("key_file", "~/.config/lora_telemetry/keys.yaml", "key file (lora-telemetry keys generate)"),
)


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    uav = LaunchConfiguration("uav_name")
    overrides = {name: ParameterValue(LaunchConfiguration(name), value_type=str)
                 for name, _, _ in ARGUMENTS}
    overrides["fcnt_state_file"] = ParameterValue(
        LaunchConfiguration("fcnt_state_file"), value_type=str)
    return LaunchDescription([
        DeclareLaunchArgument(
            "config", default_value=PathJoinSubstitution(
                [FindPackageShare("lora_telemetry"), "config", "drone.yaml"]),
            description="parameter file"),
        *[DeclareLaunchArgument(name, default_value=default, description=doc)
          for name, default, doc in ARGUMENTS],
        DeclareLaunchArgument(
            "fcnt_state_file",
            default_value=["~/.local/state/lora_telemetry/", uav, ".fcnt.json"],
            description="where the persisted frame counter lives"),
        Node(
            package="lora_telemetry", executable="drone_node", name="drone_node",
            namespace=uav, output="screen", emulate_tty=True,
            parameters=[config, overrides],
        ),
    ])
