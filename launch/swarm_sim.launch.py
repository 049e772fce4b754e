"""The hardware-free swarm under `ros2 launch`:

    ros2 launch lora_telemetry swarm_sim.launch.py uavs:=4 radios:=mix

Starts the same processes as `lora-telemetry sim swarm` (see lora_telemetry/sim/swarm.py):
the radio medium, one emulated module per UAV (RN2483 and EByte mixed), the vehicle
simulator (synthetic formation, or replayed logs with log:=/path/a.tlog), one drone node per
UAV in namespace /uavN and the ground node on an emulated SX1276. Keys and parameter files
are generated into run_dir. Watch the result with `ros2 topic echo /swarm/state`.
"""

import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, TimerAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from lora_telemetry.sim.swarm import DEFAULT_PERIOD_S, SwarmOptions, plan_swarm, radio_mixes

# Processes of one kind start together, a little after the kind they depend on (the drone and
# ground nodes also retry their radios, so the delays only avoid noisy first attempts).
START_DELAY_S = {"medium": 0.0, "module": 1.0, "vehicle": 1.5, "drone": 2.5, "ground": 2.5}


def _plan(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    logs = tuple(x for x in arg("log").split(",") if x)
    options = SwarmOptions(uavs=int(arg("uavs")), radios=arg("radios"), logs=logs,
                           update_period_s=float(arg("period") or DEFAULT_PERIOD_S[arg("access")]),
                           seed=int(arg("seed")), pattern=arg("pattern"), access=arg("access"))
    run_dir = arg("run_dir") or tempfile.mkdtemp(prefix="lora_sim_launch_")
    plan = plan_swarm(options, run_dir)
    actions = []
    for spec in plan.specs:
        if spec.ros_executable:
            action = Node(package="lora_telemetry", executable=spec.ros_executable,
                          name=f"{spec.ros_executable}", namespace=spec.ros_namespace or "",
                          parameters=[spec.ros_params_file], output="screen", emulate_tty=True)
        else:
            action = ExecuteProcess(cmd=spec.argv, name=spec.name, output="screen",
                                    sigterm_timeout="5")
        delay = START_DELAY_S.get(spec.kind, 0.0)
        actions.append(TimerAction(period=delay, actions=[action]) if delay else action)
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("uavs", default_value="4", description="number of UAVs"),
        DeclareLaunchArgument("radios", default_value="mix",
                              description="mix (every emulated family in turn) or one family: "
                                          + " | ".join(radio_mixes()[1:])),
        DeclareLaunchArgument("log", default_value="",
                              description="comma-separated .tlog files to replay (default: synthetic)"),
        DeclareLaunchArgument("pattern", default_value="formation",
                              description="synthetic pattern: formation | circle | lawnmower"),
        DeclareLaunchArgument("period", default_value="",
                              description="update period per UAV (TDMA: the superframe), s; "
                                          "default 1 under tdma, 2 under aloha"),
        DeclareLaunchArgument("seed", default_value="1", description="radio medium seed"),
        DeclareLaunchArgument("access", default_value="tdma",
                              description="tdma (GPS-time slots in superframes of period) | aloha"),
        DeclareLaunchArgument("run_dir", default_value="",
                              description="where keys and parameter files go (default: temporary)"),
        OpaqueFunction(function=_plan),
    ])
