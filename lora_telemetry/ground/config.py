"""Ground node parameters and the device registry (names, DevAddrs, MAVLink ids, keys)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.gateway import Device
from lora_telemetry.core.lorawan import format_dev_addr, parse_dev_addr
from lora_telemetry.core.phy import PhySettings, parse_coding_rate
from lora_telemetry.keyfile import load_key_file
from lora_telemetry.params import check_origin, coerce, expand_user, missing_parameters
from lora_telemetry.persist import default_state_dir

RADIOS = ("sx1276", "emulator")


@dataclass(frozen=True)
class GroundConfig:
    """See config/ground.yaml for the meaning of each field."""

    key_file: str
    origin_lat_deg: float
    origin_lon_deg: float
    origin_alt_m: float
    gateway_id: str = "gateway"
    radio: str = "sx1276"
    frequency_hz: int = 433_175_000
    spreading_factor: int = 7
    bandwidth_hz: int = 125_000
    coding_rate: int = 5
    preamble_symbols: int = 8
    sync_word: int = 0x34
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
        check_origin(self.origin_lat_deg, self.origin_lon_deg)
        self.phy  # noqa: B018  (validates)
        self.codec_for("arducopter")  # noqa: B018  (validates the origin)

    @property
    def counter_state_path(self) -> Path:
        """Where the frame counters live: fcnt_state_file, or by default
        ~/.local/state/lora_telemetry/<gateway_id>.fcnt.json ($XDG_STATE_HOME honoured)."""
        if self.fcnt_state_file:
            return Path(self.fcnt_state_file)
        return default_state_dir() / f"{self.gateway_id}.fcnt.json"

    @property
    def phy(self) -> PhySettings:
        return PhySettings(frequency_hz=self.frequency_hz, sf=self.spreading_factor,
                           bandwidth_hz=self.bandwidth_hz, coding_rate=self.coding_rate,
                           preamble_symbols=self.preamble_symbols, sync_word=self.sync_word)

    def codec_for(self, family: str) -> tcodec.CodecConfig:
        return tcodec.CodecConfig(self.origin_lat_deg, self.origin_lon_deg, self.origin_alt_m,
                                  family)

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
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        devices: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            if not isinstance(name, str):
                raise ConfigError(f"parameter name {name!r} is not a string")
            if name == "devices":
                if not isinstance(value, Mapping):
                    raise ConfigError("devices must map each UAV name to its fields, "
                                      f"got {type(value).__name__}")
                for dev, entry in value.items():
                    if not isinstance(entry, Mapping):
                        raise ConfigError(f"devices.{dev} must be a mapping")
                    devices.setdefault(str(dev), {}).update(entry)
                continue
            if name.startswith("devices."):
                parts = name.split(".")
                if len(parts) != 3:
                    raise ConfigError(f"parameter {name}: expected devices.<uav>.<field>")
                devices.setdefault(parts[1], {})[parts[2]] = value
                continue
            if name not in fields:
                raise ConfigError(f"unknown ground parameter: {name}")
            if name == "coding_rate" and isinstance(value, str):
                kwargs[name] = parse_coding_rate(value)
            else:
                kwargs[name] = coerce(name, value, str(fields[name].type))
        for dev, entry in devices.items():
            unknown = sorted(str(k) for k in entry if k not in ("devaddr", "system_id",
                                                                 "vehicle_family"))
            if unknown:
                raise ConfigError(f"devices.{dev}: unknown field(s) {', '.join(unknown)}")
        missing = [n for n, f in fields.items() if n not in kwargs and n != "devices"
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise missing_parameters("ground", missing)
        kwargs["key_file"] = expand_user(kwargs["key_file"], "parameter key_file")
        if kwargs.get("fcnt_state_file"):
            kwargs["fcnt_state_file"] = expand_user(kwargs["fcnt_state_file"],
                                                    "parameter fcnt_state_file")
        return cls(devices=devices, **kwargs)
