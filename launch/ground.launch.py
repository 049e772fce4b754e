"""The ground gateway node: `ros2 launch lora_telemetry ground.launch.py config:=my_ground.yaml`.

The config file (default: the package's config/ground.yaml) holds the SX1276 wiring, the PHY,
the origin and the device registry; `key_file` and `radio` can be overridden here.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "config", default_value=PathJoinSubstitution(
                [FindPackageShare("lora_telemetry"), "config", "ground.yaml"]),
            description="parameter file with wiring, PHY, origin and device registry"),
        DeclareLaunchArgument("key_file", default_value="~/.config/lora_telemetry/keys.yaml",
                              description="key file with every UAV's session keys"),
        DeclareLaunchArgument("radio", default_value="sx1276",
                              description="sx1276 (SPI) or emulator (simulated medium)"),
        Node(
            package="lora_telemetry", executable="ground_node", name="ground_node",
            output="screen", emulate_tty=True,
            parameters=[
                LaunchConfiguration("config"),
                {"key_file": ParameterValue(LaunchConfiguration("key_file"), value_type=str),
                 "radio": ParameterValue(LaunchConfiguration("radio"), value_type=str)},
            ],
        ),
    ])
