"""What the drone and ground nodes' parameters share: the LoRa channel, the origin, the
medium access (ALOHA or the TDMA schedule), one loader.

Every node on the link must agree on the radio channel (a drone and a gateway that differ in
frequency, spreading factor, bandwidth, coding rate, preamble or sync word never hear each
other) and on the origin (positions travel as offsets from it). :class:`LinkSettings`
declares those parameters once, with their validation: the origin is not the 0, 0
placeholder (params.check_origin) and fits the codec, and the channel is a valid
:class:`~lora_telemetry.core.phy.PhySettings`. DroneConfig and GroundConfig inherit it.

Inherited, not nested: ROS parameters are flat (``frequency_hz``, not ``phy.frequency_hz``)
and each config field is one parameter (nodes/common.py declares one per field), so
parameter files, launch arguments and ``config.frequency_hz`` read as before. The shared
fields are keyword-only, so that a config's own required fields may follow their defaults.
A config calls ``super().__post_init__()`` after its own checks: its errors come first, as
they did.

:func:`config_from_parameters` is the one loader of both: parameter names must be strings
and known (all unknown ones are named at once), values are coerced to the field types
(params.coerce; ``coding_rate`` may also be written "4/5"), missing parameters are named
(params.missing_parameters, the origin with its own explanation), and path parameters get
``~`` expanded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence, TypeVar

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings, parse_coding_rate
from lora_telemetry.params import check_origin, coerce, expand_user, missing_parameters

if TYPE_CHECKING:
    from lora_telemetry.core.tdma import TdmaSchedule

__all__ = ["LinkSettings", "config_from_parameters", "ACCESS_MODES"]

#: "aloha": random access around update_period_s; "tdma": GPS-time slots (core/tdma.py).
ACCESS_MODES = ("aloha", "tdma")


@dataclass(frozen=True, kw_only=True)
class LinkSettings:
    """The origin and the LoRa channel; see config/drone.yaml and config/ground.yaml."""

    origin_lat_deg: float
    origin_lon_deg: float
    origin_alt_m: float
    frequency_hz: int = 433_175_000
    spreading_factor: int = 7
    bandwidth_hz: int = 125_000
    coding_rate: int = 5
    preamble_symbols: int = 8
    sync_word: int = 0x34
    # Medium access; the TDMA superframe must be the same on every node (core/tdma.py).
    access: str = "aloha"
    tdma_period_s: float = 1.0
    tdma_guard_s: float = 0.005
    tdma_beacon_every: int = 1
    tdma_epoch: int = 0

    def __post_init__(self) -> None:
        if self.access not in ACCESS_MODES:
            raise ConfigError(f"access {self.access!r} must be one of {', '.join(ACCESS_MODES)}")
        for name in ("tdma_period_s", "tdma_guard_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive, finite number, got {value!r}")
        if not 1 <= self.tdma_beacon_every <= 3600:
            raise ConfigError(f"tdma_beacon_every {self.tdma_beacon_every} must be 1..3600")
        if not 0 <= self.tdma_epoch <= 255:
            raise ConfigError(f"tdma_epoch {self.tdma_epoch} must be 0..255")
        check_origin(self.origin_lat_deg, self.origin_lon_deg)
        self.phy  # validates the radio settings  # noqa: B018
        self.codec_for("arducopter")  # validates the origin (any family would do)

    @property
    def phy(self) -> PhySettings:
        """The channel as the radio is configured with it."""
        return self.phy_settings()

    def phy_settings(self, tx_power_dbm: float | None = None) -> PhySettings:
        """The channel, with a transmit power for a node that sends (None: the radio's)."""
        return PhySettings(
            frequency_hz=self.frequency_hz, sf=self.spreading_factor,
            bandwidth_hz=self.bandwidth_hz, coding_rate=self.coding_rate,
            preamble_symbols=self.preamble_symbols, sync_word=self.sync_word,
            tx_power_dbm=tx_power_dbm,
        )

    def tdma_schedule(self, slots: Mapping[str, int], *, uav_duty_cycle: float = 1.0,
                      gateway_duty_cycle: float = 1.0) -> "TdmaSchedule":
        """The superframe these settings describe for UAVs at ``slots`` ({name: slot}); a
        ConfigError when it cannot work (core/tdma.plan_schedule)."""
        from lora_telemetry.core.beacon import BEACON_BYTES
        from lora_telemetry.core.tdma import frame_airtimes, plan_schedule

        beacon_s, uplink_s = frame_airtimes(self.phy, BEACON_BYTES)
        return plan_schedule(self.tdma_period_s, slots, beacon_airtime_s=beacon_s,
                             uplink_airtime_s=uplink_s, guard_s=self.tdma_guard_s,
                             uav_duty_cycle=uav_duty_cycle, gateway_duty_cycle=gateway_duty_cycle,
                             beacon_every=self.tdma_beacon_every, epoch=self.tdma_epoch)

    def codec_for(self, family: str) -> tcodec.CodecConfig:
        """The telemetry codec of a vehicle of ``family`` flying about this origin."""
        return tcodec.CodecConfig(self.origin_lat_deg, self.origin_lon_deg, self.origin_alt_m,
                                  family)


Config = TypeVar("Config", bound=LinkSettings)


def config_from_parameters(cls: type[Config], values: Mapping[Any, Any], kind: str, *,
                           path_parameters: Sequence[str] = (), **parsed: Any) -> Config:
    """A ``kind`` ("drone", "ground") node's config from flat ROS parameters or YAML values;
    see the module notes. ``parsed``: fields the caller has already built from their own
    parameters (the ground's devices), passed on as they are."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in parsed}
    for name in values:
        if not isinstance(name, str):
            raise ConfigError(f"parameter name {name!r} is not a string")
    unknown = sorted(name for name in values if name not in fields)
    if unknown:
        raise ConfigError(f"unknown {kind} parameter(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name == "coding_rate" and isinstance(value, str):
            kwargs[name] = parse_coding_rate(value)
        else:
            kwargs[name] = coerce(name, value, str(fields[name].type))
    missing = [name for name, f in fields.items() if name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise missing_parameters(kind, missing)
    for name in path_parameters:
        if kwargs.get(name):
            kwargs[name] = expand_user(kwargs[name], f"parameter {name}")
    return cls(**kwargs, **parsed)
