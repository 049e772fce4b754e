"""The ground gateway node: `ros2 launch lora_telemetry ground.launch.py config:=my_ground.yaml`.

The config file (default: the package's config/ground.yaml) holds the SX1276 wiring, the PHY,
the origin and the device registry. Each argument below overrides the file's value only when
it is given; left empty, the file's value stands (a config with `radio: emulator` keeps it).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from lora_telemetry.params import launch_overrides

# (name, parameter type, what it is). Empty default everywhere: "use the parameter file's".
ARGUMENTS = (
    ("key_file", "str", "key file with every UAV's session keys"),
    ("radio", "str", "sx1276 (SPI) or emulator (simulated medium)"),
    ("medium", "str", "emulator only: host:port of the radio medium (lora-telemetry sim medium)"),
    ("gateway_x_m", "float", "emulator only: the gateway's east position in the medium, m"),
    ("gateway_y_m", "float", "emulator only: north position, m"),
    ("gateway_z_m", "float", "emulator only: height, m"),
    ("gateway_id", "str", "name of this gateway (diagnostics, state file)"),
    ("fcnt_state_file", "str", "where the last accepted frame counters are kept"),
    ("origin_lat_deg", "float", "swarm origin latitude (the same on every node)"),
    ("origin_lon_deg", "float", "swarm origin longitude"),
    ("origin_alt_m", "float", "swarm origin altitude AMSL, m"),
)


def _ground_node(context):
    given = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    overrides = launch_overrides(given, {name: kind for name, kind, _ in ARGUMENTS})
    return [Node(
        package="lora_telemetry", executable="ground_node", name="ground_node",
        output="screen", emulate_tty=True,
        parameters=[LaunchConfiguration("config").perform(context), overrides],
    )]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            "config", default_value=PathJoinSubstitution(
                [FindPackageShare("lora_telemetry"), "config", "ground.yaml"]),
            description="parameter file with wiring, PHY, origin and device registry"),
        *[DeclareLaunchArgument(name, default_value="",
                                description=f"{doc} (default: the parameter file's)")
          for name, _, doc in ARGUMENTS],
        OpaqueFunction(function=_ground_node),
    ])
