"""Ground node parameters and the device registry (names, DevAddrs, MAVLink ids, keys).

The channel and origin fields, and the loader, are the drone node's too
(lora_telemetry/node_config.py); the devices, given as nested YAML or as flat
``devices.<uav>.<field>`` parameters, are gathered here before the shared loader runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lora_telemetry.core.dutycycle import DutyCycleLedger
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.gateway import Device
from lora_telemetry.core.tdma import TdmaSchedule
from lora_telemetry.core.lorawan import format_dev_addr, parse_dev_addr
from lora_telemetry.keyfile import load_key_file
from lora_telemetry.node_config import LinkSettings, config_from_parameters
from lora_telemetry.params import coerce
from lora_telemetry.persist import default_state_dir

RADIOS = ("sx1276", "emulator")
#: What a devices.<uav> entry may hold (slot: its TDMA uplink slot, the drone's tdma_slot).
DEVICE_FIELDS = ("devaddr", "system_id", "vehicle_family", "slot")


@dataclass(frozen=True)
class GroundConfig(LinkSettings):
    """See config/ground.yaml for the meaning of each field (the origin and channel fields
    are :class:`LinkSettings`')."""

    key_file: str
    gateway_id: str = "gateway"
    radio: str = "sx1276"
    spi_bus: int = 0
    spi_device: int = 0
    spi_speed_hz: int = 500_000
    reset_pin: int = 17  # BCM 17 = wiringPi GPIO0 (thesis wiring); -1: not connected
    nss_pin: int = 25  # BCM 25 = wiringPi GPIO6; -1: NSS on the hardware chip select
    dio0_pin: int = 4  # BCM 4 = wiringPi GPIO7
    gpio_chip: str = "/dev/gpiochip0"
    medium: str = ""  # emulator only: host:port of `lora-telemetry sim medium`
    gateway_x_m: float = 0.0  # emulator only: gateway position in the medium (ENU metres)
    gateway_y_m: float = 0.0
    gateway_z_m: float = 10.0
    state_rate_hz: float = 1.0
    stale_after_s: float = 10.0
    receive_timeout_s: float = 0.5
    # Last accepted frame counter per UAV, kept across restarts ("": in the user's state
    # directory, see counter_state_path).
    fcnt_state_file: str = ""
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.gateway_id or not self.gateway_id.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"gateway_id {self.gateway_id!r} must be letters, digits, '_' and '-' "
                              "(it names the gateway's state file and diagnostics)")
        if self.radio not in RADIOS:
            raise ConfigError(f"radio {self.radio!r} must be 'sx1276' (SPI) or 'emulator'")
        for name in ("state_rate_hz", "stale_after_s", "receive_timeout_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive, finite number, got {value!r}")
        if not self.devices:
            raise ConfigError("no devices registered: add devices.<uav_name>.system_id entries")
        super().__post_init__()  # the origin and the channel
        if self.access == "tdma":
            self.schedule()  # duplicate, missing and overfull slots are refused at start

    def slots(self) -> dict[str, int]:
        """Each registered UAV's TDMA slot (devices.<uav>.slot)."""
        out = {}
        for name, entry in self.devices.items():
            if "slot" not in entry:
                raise ConfigError(f"access tdma: devices.{name} has no slot (give every UAV "
                                  "its slot, 1..N, the same as that drone's tdma_slot)")
            out[name] = coerce(f"devices.{name}.slot", entry["slot"], "int")
        return out

    def schedule(self) -> TdmaSchedule:
        """The TDMA superframe for the registered UAVs, within the sub-band's duty cycle for
        the UAVs and for the gateway's beacon (ConfigError naming the largest feasible swarm
        when it is overfull)."""
        limit = DutyCycleLedger().limit(self.frequency_hz)
        return self.tdma_schedule(self.slots(), uav_duty_cycle=limit, gateway_duty_cycle=limit)

    @property
    def counter_state_path(self) -> Path:
        """Where the frame counters live: fcnt_state_file, or by default
        ~/.local/state/lora_telemetry/<gateway_id>.fcnt.json ($XDG_STATE_HOME honoured)."""
        if self.fcnt_state_file:
            return Path(self.fcnt_state_file)
        return default_state_dir() / f"{self.gateway_id}.fcnt.json"

    def registry(self) -> list[Device]:
        """Devices with their keys from the key file (checked for safe permissions)."""
        keys = load_key_file(self.key_file)
        out = []
        for name, entry in self.devices.items():
            if name not in keys:
                raise ConfigError(f"device {name!r} is registered but the key file "
                                  f"{self.key_file} has no keys for it")
            k = keys[name]
            if entry.get("devaddr"):
                want = parse_dev_addr(str(entry["devaddr"]))
                if want != k.devaddr:
                    raise ConfigError(
                        f"device {name!r}: registry DevAddr {format_dev_addr(want)} differs from "
                        f"the key file's {format_dev_addr(k.devaddr)}")
            system_id = coerce(f"devices.{name}.system_id", entry.get("system_id", 0), "int")
            family = str(entry.get("vehicle_family", "arducopter"))
            out.append(Device(name, k.devaddr, k.nwkskey, k.appskey, self.codec_for(family),
                              system_id=system_id))
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "GroundConfig":
        """From flat ROS parameters (`devices.uav1.system_id` style) or nested YAML."""
        devices: dict[str, dict[str, Any]] = {}
        others: dict[Any, Any] = {}
        for name, value in values.items():
            if name == "devices":
                if not isinstance(value, Mapping):
                    raise ConfigError("devices must map each UAV name to its fields, "
                                      f"got {type(value).__name__}")
                for dev, entry in value.items():
                    if not isinstance(entry, Mapping):
                        raise ConfigError(f"devices.{dev} must be a mapping")
                    devices.setdefault(str(dev), {}).update(entry)
            elif isinstance(name, str) and name.startswith("devices."):
                parts = name.split(".")
                if len(parts) != 3:
                    raise ConfigError(f"parameter {name}: expected devices.<uav>.<field>")
                devices.setdefault(parts[1], {})[parts[2]] = value
            else:
                others[name] = value
        for dev, entry in devices.items():
            unknown = sorted(str(k) for k in entry if k not in DEVICE_FIELDS)
            if unknown:
                raise ConfigError(f"devices.{dev}: unknown field(s) {', '.join(unknown)}")
        return config_from_parameters(cls, others, "ground",
                                      path_parameters=("key_file", "fcnt_state_file"),
                                      devices=devices)
