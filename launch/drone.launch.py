"""One UAV's drone node: `ros2 launch lora_telemetry drone.launch.py uav_name:=uav2 ...`.

Parameters come from the config file (default: the package's config/drone.yaml). Each
argument below overrides the file's value only when it is given: left empty, the file's
value stands (so a `mavlink_url` written in your drone.yaml is what the node uses). The node
runs in the namespace /<uav_name> (the argument, else the file's uav_name), so several UAVs
can share one ROS graph.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.params import launch_overrides, parameter_in_file

# (name, parameter type, what it is). Empty default everywhere: "use the parameter file's".
ARGUMENTS = (
    ("uav_name", "str", "device name: key-file entry, namespace and ground registry name"),
    ("mavlink_url", "str", "flight controller connection (pymavlink URL or .tlog)"),
    ("radio_type", "str", "rn2483 or ebyte"),
    ("radio_port", "str", "serial port of the LoRa module"),
    ("lorawan_mode", "str", "raw (our LoRaWAN framing) or module (RN2483's own stack)"),
    ("key_file", "str", "this UAV's own key file (lora-telemetry keys export)"),
    ("fcnt_state_file", "str", "where the persisted frame counter lives"),
    ("origin_lat_deg", "float", "swarm origin latitude (the same on every node)"),
    ("origin_lon_deg", "float", "swarm origin longitude"),
    ("origin_alt_m", "float", "swarm origin altitude AMSL, m"),
    ("update_period_s", "float", "seconds between telemetry frames"),
)


def _drone_node(context):
    config = LaunchConfiguration("config").perform(context)
    given = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    overrides = launch_overrides(given, {name: kind for name, kind, _ in ARGUMENTS})
    uav = overrides.get("uav_name") or parameter_in_file(config, "uav_name")
    if not uav:
        raise ConfigError(f"no uav_name: give uav_name:=<name> or set it in {config}")
    return [Node(
        package="lora_telemetry", executable="drone_node", name="drone_node",
        namespace=str(uav), output="screen", emulate_tty=True,
        parameters=[config, overrides],
    )]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "config", default_value=PathJoinSubstitution(
                [FindPackageShare("lora_telemetry"), "config", "drone.yaml"]),
            description="parameter file"),
        *[DeclareLaunchArgument(name, default_value="",
                                description=f"{doc} (default: the parameter file's)")
          for name, _, doc in ARGUMENTS],
        OpaqueFunction(function=_drone_node),
    ])
