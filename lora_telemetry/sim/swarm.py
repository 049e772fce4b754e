"""The hardware-free swarm: what to start, with which files, in which order.

`plan_swarm()` writes a run directory (key file, the medium's parameter file, one parameter
file per drone node, the ground node's parameter file) and returns the processes to start, in
order:

  medium hub -> one emulated module per UAV (the registry's families in turn) on a pseudo-terminal ->
  vehicle simulator (synthetic formation or replayed logs, pushing positions to the medium)
  -> one drone node per UAV in namespace /<uav> -> the ground node on an emulated SX1276.

`lora-telemetry sim swarm` (and so `make demo`) starts exactly these with `start_swarm()`,
each kind once every process of the kind before has announced itself ready on its ready
channel (data on a pipe of its own, lora_telemetry/readiness.py; log wording plays no part).
`launch/swarm_sim.launch.py` turns the same plan into launch actions; processes started by
launch have no ready channel (announcing does nothing there) and it staggers the kinds by
fixed delays instead.

Every process shares one origin (`SwarmOptions.origin`, the field: lat, lon and its AMSL
altitude). The medium gets it in `medium.yaml`, so the lat/lon positions the vehicle simulator
sends are placed (east/north metres about the origin, up = height above home) and path loss,
RSSI, SNR and capture follow the flying UAVs; the drone and ground nodes get it as their codec
origin; a replayed log is re-centred on it in all three coordinates (its reference fix lands
on the origin, every AMSL altitude moves by the same difference), so a replayed flight keeps
its height above the field and stays inside the codec's +-255 m altitude window.

Access (``SwarmOptions.access``): "aloha", or "tdma" (core/tdma.py), where UAV i gets slot
i + 1 of a superframe of ``update_period_s``, the ground sends the beacon, and, so that the
demo shows slots follow GPS time and not the host clock, each drone node's host clock is
put off by a seeded offset of up to +-2 s drifting by up to +-50 ppm (``sim_clock_*``
parameters; the emulated modules and the vehicles keep true time), and the vehicles stamp
SYSTEM_TIME as a flight controller's scheduler hands it over (0-2.5 ms old). A swarm
the superframe cannot hold is refused here, before any process starts.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import yaml

from lora_telemetry import keyfile
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.ground.config import GroundConfig
from lora_telemetry.node_config import ACCESS_MODES
from lora_telemetry.radios import registry
from lora_telemetry.radios.base import Capability
from lora_telemetry.sim.medium_model import MediumParams
from lora_telemetry.sim.processes import ProcessGroup



def emulated_module_families() -> list[registry.FamilySpec]:
    """The serial module families the hardware-free swarm can fly (registry order)."""
    return registry.families(role=registry.Role.SERIAL_MODULE, emulated=True)


def radio_mixes() -> tuple[str, ...]:
    """--radios choices: "mix" cycles through every emulated family, or one family."""
    return ("mix", *(f.name for f in emulated_module_families()))


LORAWAN_MODES = ("raw", "module")
DEFAULT_ORIGIN = (47.3977, 8.5456, 488.0)  # the vehicle simulator's default field
#: The demo's update period per access (README: "Default update rate", "Coordinated access").
DEFAULT_PERIOD_S = {"tdma": 1.0, "aloha": 2.0}
DEVADDR_BASE = 0x260B0000  # TTN-style NetID-0x13 prefix; any free block works


@dataclass(frozen=True)
class SwarmOptions:
    uavs: int = 4
    radios: str = "mix"
    logs: tuple[str, ...] = ()  # replay these .tlog files (cycled over the UAVs)
    pattern: str = "formation"
    origin: tuple[float, float, float] = DEFAULT_ORIGIN
    radius_m: float = 150.0
    frequency_hz: int = 433_175_000
    spreading_factor: int = 7
    update_period_s: float = 2.0
    gateway_position_m: tuple[float, float, float] = (0.0, -500.0, 10.0)
    seed: int = 1
    speed: float = 1.0
    #: "module": UAVs whose module has its own LoRaWAN stack use it; the others stay raw
    lorawan_mode: str = "raw"
    access: str = "aloha"
    #: TDMA: the worst host-clock offset (s) and drift (ppm) given to a drone node
    clock_offset_s: float = 2.0
    clock_drift_ppm: float = 50.0

    def __post_init__(self) -> None:
        if self.access not in ACCESS_MODES:
            raise ConfigError(f"--access must be one of {', '.join(ACCESS_MODES)}")
        if not 1 <= self.uavs <= 50:
            raise ConfigError(f"--uavs {self.uavs}: choose 1..50")
        if self.radios not in radio_mixes():
            raise ConfigError(f"--radios {self.radios!r}: use one of {', '.join(radio_mixes())}")
        for log in self.logs:
            if not Path(log).is_file():
                raise ConfigError(f"--log {log}: no such file")
        if self.lorawan_mode not in LORAWAN_MODES:
            raise ConfigError(f"--lorawan-mode must be one of {', '.join(LORAWAN_MODES)}")
        if self.access == "tdma" and self.lorawan_mode == "module":
            raise ConfigError("--lorawan-mode module needs --access aloha: the module's own "
                              "LoRaWAN stack opens receive windows 1 and 2 s after each uplink, "
                              "longer than a TDMA superframe")

    def radio_of(self, index: int) -> str:
        if self.radios == "mix":
            mix = emulated_module_families()
            return mix[index % len(mix)].name
        return self.radios

    def lorawan_mode_of(self, index: int) -> str:
        spec = registry.family(self.radio_of(index))
        if self.lorawan_mode == "module" and spec.has(Capability.MODULE_LORAWAN):
            return "module"
        return "raw"


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    #: what the process is; it announces itself ready as this kind (lora_telemetry/readiness.py)
    kind: str
    # For launch files: how to express the same process as a launch_ros Node.
    ros_executable: str | None = None
    ros_namespace: str | None = None
    ros_params_file: str | None = None


@dataclass
class SwarmPlan:
    options: SwarmOptions
    run_dir: Path
    uav_names: list[str]
    medium_port: int
    mavlink_ports: list[int]
    specs: list[ProcessSpec] = field(default_factory=list)

    @property
    def truth_path(self) -> Path:
        return self.run_dir / "truth.json"

    @property
    def key_file(self) -> Path:
        """Every UAV's keys: the ground node's file."""
        return self.run_dir / "keys.yaml"

    def drone_key_file(self, name: str) -> Path:
        """One UAV's own keys (exported from key_file), as a real drone holds them."""
        return self.run_dir / "keys" / f"{name}.yaml"

    @property
    def medium_config(self) -> Path:
        return self.run_dir / "medium.yaml"


def free_udp_ports(n: int) -> list[int]:
    """n distinct free loopback UDP ports (bound together so they are distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def plan_swarm(options: SwarmOptions, run_dir: str | os.PathLike[str]) -> SwarmPlan:
    run = Path(run_dir)
    (run / "tty").mkdir(parents=True, exist_ok=True)
    (run / "state").mkdir(parents=True, exist_ok=True)
    names = [f"uav{i + 1}" for i in range(options.uavs)]
    ports = free_udp_ports(options.uavs + 1)
    plan = SwarmPlan(options, run, names, ports[0], ports[1:])
    medium = f"127.0.0.1:{plan.medium_port}"
    lat0, lon0, alt0 = options.origin

    # Fresh keys for this run (owner-only file, never printed).
    if not plan.key_file.exists():
        devices = {n: keyfile.generate_device(n, DEVADDR_BASE + i + 1) for i, n in enumerate(names)}
        keyfile.write_key_file(plan.key_file, devices, network=keyfile.generate_network())
    for name in names:
        keyfile.export_device(plan.key_file, name, plan.drone_key_file(name), force=True)

    # The medium's built-in parameters (config/medium.yaml) plus the swarm origin.
    medium_origin = {"origin_lat_deg": lat0, "origin_lon_deg": lon0}
    MediumParams.from_mapping(medium_origin)  # a bad origin fails here, not in the hub
    plan.medium_config.write_text(yaml.safe_dump(medium_origin, sort_keys=False))
    plan.specs.append(ProcessSpec(
        "medium", _py("lora_telemetry.cli.sim_medium", "--port", str(plan.medium_port),
                      "--config", str(plan.medium_config), "--seed", str(options.seed), "--json",
                      "--stats-json", str(run / "medium_stats.json")),
        kind="medium"))

    for i, name in enumerate(names):
        kind = options.radio_of(i)
        args = ["--type", kind, "--name", name, "--link", str(run / "tty" / f"{name}.tty"),
                "--medium", medium, "--control", str(run / "tty" / f"{name}.ctl")]
        spec = registry.family(kind)
        for option, value in spec.emulator_settings(options.frequency_hz, options.seed + i).items():
            args += [f"--{option.replace('_', '-')}", str(value)]
        plan.specs.append(ProcessSpec(f"module-{name}", _py("lora_telemetry.cli.sim_module", *args),
                                      kind="module"))

    tdma = options.access == "tdma"
    outs = [arg for p in plan.mavlink_ports for arg in ("--out", f"udpout:127.0.0.1:{p}")]
    nodes = [arg for n in names for arg in ("--medium-node", n)]
    common = ["--origin", f"{lat0},{lon0},{alt0}", "--speed", str(options.speed), "--loop",
              "--truth-json", str(plan.truth_path), "--medium", medium, *nodes, *outs]
    if options.logs:
        for i, name in enumerate(names):
            log = options.logs[i % len(options.logs)]
            plan.specs.append(ProcessSpec(
                f"vehicle-{name}", _py("lora_telemetry.cli.sim_vehicle", "--log", log,
                                       "--sysid", str(i + 1), "--origin", f"{lat0},{lon0},{alt0}",
                                       "--shift-east-m", str(40.0 * i), "--speed",
                                       str(options.speed), "--loop", "--medium", medium,
                                       "--medium-node", name,
                                       "--out", f"udpout:127.0.0.1:{plan.mavlink_ports[i]}",
                                       *(["--system-time-now"] if tdma else []),
                                       "--truth-json", str(run / f"truth-{name}.json")),
                kind="vehicle"))
    else:
        plan.specs.append(ProcessSpec(
            "vehicles", _py("lora_telemetry.cli.sim_vehicle", "--pattern", options.pattern,
                            "--count", str(options.uavs), "--radius-m", str(options.radius_m),
                            *(["--system-time-delay"] if tdma else []), *common),
            kind="vehicle"))

    for i, name in enumerate(names):
        kind = options.radio_of(i)
        params = {
            "uav_name": name,
            "mavlink_url": f"udpin:127.0.0.1:{plan.mavlink_ports[i]}",
            "mavlink_system_id": i + 1,
            "vehicle_family": _family(options, i),
            "radio_type": kind,
            "radio_port": str(run / "tty" / f"{name}.tty"),
            "lorawan_mode": options.lorawan_mode_of(i),
            "frequency_hz": options.frequency_hz,
            "spreading_factor": options.spreading_factor,
            "update_period_s": options.update_period_s,
            "key_file": str(plan.drone_key_file(name)),
            "fcnt_state_file": str(run / "state" / f"{name}.fcnt.json"),
            "origin_lat_deg": lat0, "origin_lon_deg": lon0, "origin_alt_m": alt0,
            "access": options.access,
        }
        if tdma:
            clock = random.Random(f"sim-swarm-clock/{options.seed}/{i}")
            params.update({
                "tdma_period_s": options.update_period_s, "tdma_slot": i + 1,
                "sim_clock_offset_s": round(clock.uniform(-1, 1) * options.clock_offset_s, 4),
                "sim_clock_drift_ppm": round(clock.uniform(-1, 1) * options.clock_drift_ppm, 2),
            })
        path = run / f"{name}.yaml"
        _write_params(path, params)
        plan.specs.append(ProcessSpec(
            f"drone-{name}", _py("lora_telemetry.nodes.drone_node", "--ros-args",
                                 "-r", f"__ns:=/{name}", "--params-file", str(path)),
            kind="drone", ros_executable="drone_node",
            ros_namespace=name, ros_params_file=str(path)))

    gx, gy, gz = options.gateway_position_m
    ground = {
        "gateway_id": "gateway", "radio": "emulator", "medium": medium,
        "gateway_x_m": gx, "gateway_y_m": gy, "gateway_z_m": gz,
        "frequency_hz": options.frequency_hz, "spreading_factor": options.spreading_factor,
        "key_file": str(plan.key_file), "fcnt_state_file": str(run / "state" / "gateway.fcnt.json"),
        "origin_lat_deg": lat0, "origin_lon_deg": lon0, "origin_alt_m": alt0,
        "devices": {n: {"system_id": i + 1, "vehicle_family": _family(options, i),
                        **({"slot": i + 1} if tdma else {})}
                    for i, n in enumerate(names)},
        "access": options.access,
        **({"tdma_period_s": options.update_period_s} if tdma else {}),
    }
    if tdma:  # a swarm the superframe cannot hold is refused before anything starts
        GroundConfig.from_mapping(ground).schedule()
    gpath = run / "ground.yaml"
    _write_params(gpath, ground)
    plan.specs.append(ProcessSpec(
        "ground", _py("lora_telemetry.nodes.ground_node", "--ros-args", "--params-file", str(gpath)),
        kind="ground", ros_executable="ground_node",
        ros_params_file=str(gpath)))
    (run / "plan.json").write_text(json.dumps(
        {"uavs": names, "radios": [options.radio_of(i) for i in range(options.uavs)],
         "medium_port": plan.medium_port, "mavlink_ports": plan.mavlink_ports,
         "processes": [{"name": s.name, "argv": s.argv} for s in plan.specs]}, indent=1))
    return plan


def _family(options: SwarmOptions, index: int) -> str:
    if not options.logs:
        return "arducopter"
    return log_vehicle_family(options.logs[index % len(options.logs)])


def log_vehicle_family(path: str) -> str:
    """The codec's vehicle family of a log's autopilot, from its first autopilot HEARTBEAT."""
    from pymavlink import mavutil

    from lora_telemetry.core.codec import vehicle_family

    conn = mavutil.mavlink_connection(str(path))
    try:
        while True:
            msg = conn.recv_match(type="HEARTBEAT", blocking=False)
            if msg is None:
                break
            family = vehicle_family(msg.autopilot, msg.type)
            if family is not None and msg.get_srcComponent() == 1:
                return family.value
    finally:
        conn.close()
    raise ConfigError(f"--log {path}: no autopilot HEARTBEAT, cannot tell its flight modes")


def _write_params(path: Path, params: dict) -> None:
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}, sort_keys=False))


def start_swarm(plan: SwarmPlan, group: ProcessGroup, *, on_start=None) -> None:
    """Start the plan's processes in order; processes of one kind start together and the next
    kind starts once all of them have announced themselves ready (modules before drone nodes,
    and so on); a ProcessError names one that did not within 60 s."""
    i = 0
    while i < len(plan.specs):
        j = i
        while j < len(plan.specs) and plan.specs[j].kind == plan.specs[i].kind:
            j += 1
        batch = plan.specs[i:j]
        if on_start is not None:
            on_start(batch)
        children = [group.spawn(s.name, s.argv, ready=s.kind) for s in batch]
        for child in children:
            group.wait_ready(child, 60.0)
        i += len(batch)


def ros_env(domain_id: int | None = None, log_dir: str | None = None) -> dict[str, str]:
    """Environment for the swarm's ROS processes: local discovery only."""
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    if log_dir is not None:
        env["ROS_LOG_DIR"] = log_dir
    env["PYTHONUNBUFFERED"] = "1"
    return env


def names_of(specs: Sequence[ProcessSpec], kind: str) -> list[str]:
    return [s.name for s in specs if s.kind == kind]
