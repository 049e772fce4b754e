"""Drone node parameters: one validated value object, from ROS parameters or a YAML file.

The channel and origin fields, and the loader, are the ground node's too
(lora_telemetry/node_config.py); only the transmit power is the drone's alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core.dutycycle import POLICIES, DutyCycleLedger
from lora_telemetry.core.tdma import MAX_SLOTS, TdmaSchedule
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.node_config import LinkSettings, config_from_parameters
from lora_telemetry.persist import default_state_dir
from lora_telemetry.radios import registry
from lora_telemetry.radios.base import Capability

LORAWAN_MODES = ("raw", "module")


@dataclass(frozen=True)
class DroneConfig(LinkSettings):
    """Everything a drone node needs; see config/drone.yaml for the meaning of each field
    (the origin and channel fields are :class:`LinkSettings`')."""

    uav_name: str
    mavlink_url: str
    radio_port: str
    key_file: str
    # This UAV's reserved uplink counter ("": ~/.local/state/lora_telemetry/<uav_name>.fcnt.json).
    fcnt_state_file: str = ""
    mavlink_system_id: int = 0
    vehicle_family: str = "arducopter"
    radio_type: str = registry.DEFAULT_MODULE_FAMILY
    radio_baud: int = 0
    lorawan_mode: str = "raw"
    tx_power_dbm: float = 10.0
    update_period_s: float = 2.0
    jitter_fraction: float = 0.25
    duty_cycle_policy: str = "both"
    duty_cycle_cap: float = 0.0  # 0: the sub-band's ETSI limit; e.g. 0.01 for LoRaWAN EU433
    max_sample_age_s: float = 5.0
    stale_timeout_s: float = 3.0
    reconnect_backoff_max_s: float = 5.0
    diagnostics_period_s: float = 1.0
    # A drone holds its own keys only (lora-telemetry keys export); true accepts a key file
    # with other devices' keys too (one captured drone could then forge the whole swarm).
    allow_shared_key_file: bool = False
    # TDMA (access: tdma; the superframe fields are LinkSettings'): this UAV's slot (the same
    # as devices.<uav>.slot on the ground), how many beacons a UAV without GPS time may miss
    # before it goes quiet, whether the host clock may stand in for GPS time, and the
    # command's lead (< 0: the radio family's timing model plus the host's allowance).
    tdma_slot: int = 0
    tdma_max_missed_beacons: int = 5
    tdma_trust_host_clock: bool = False
    tdma_lead_s: float = -1.0
    # Emulation only: run this node with its host clock off by this much and drifting (the
    # hardware-free swarm shows that TDMA slots follow GPS time, not the host clock).
    sim_clock_offset_s: float = 0.0
    sim_clock_drift_ppm: float = 0.0

    def __post_init__(self) -> None:
        if not self.uav_name or not self.uav_name.replace("_", "").isalnum():
            raise ConfigError(f"uav_name {self.uav_name!r} must be letters, digits and '_' "
                              "(it becomes part of topic names)")
        family = self.family  # validates radio_type
        if self.lorawan_mode not in LORAWAN_MODES:
            raise ConfigError(f"lorawan_mode {self.lorawan_mode!r} must be 'raw' (our LoRaWAN "
                              "framing over the module's radio) or 'module' (the module's own "
                              "LoRaWAN stack)")
        if self.lorawan_mode == "module" and not family.has(Capability.MODULE_LORAWAN):
            with_stack = [f.name for f in registry.module_families()
                          if f.has(Capability.MODULE_LORAWAN)]
            raise ConfigError(f"lorawan_mode 'module' needs a module with its own LoRaWAN stack "
                              f"({', '.join(with_stack)}): the {family.title} has none; use "
                              "lorawan_mode 'raw'")
        if self.access == "tdma":
            if not 1 <= self.tdma_slot <= MAX_SLOTS:
                raise ConfigError(f"access tdma needs tdma_slot 1..{MAX_SLOTS} (the same as this "
                                  "UAV's devices.<uav>.slot on the ground), got "
                                  f"{self.tdma_slot}")
            if self.lorawan_mode == "module":
                raise ConfigError("access tdma needs lorawan_mode raw: the module's own LoRaWAN "
                                  "stack opens receive windows 1 and 2 s after each uplink, "
                                  "longer than a superframe")
            if self.tdma_max_missed_beacons < 1:
                raise ConfigError("tdma_max_missed_beacons must be at least 1")
            if not (math.isfinite(self.tdma_lead_s) and self.tdma_lead_s < self.tdma_period_s):
                raise ConfigError(f"tdma_lead_s {self.tdma_lead_s!r} must be below the period")
        if self.duty_cycle_policy not in POLICIES:
            raise ConfigError(f"duty_cycle_policy must be one of {', '.join(POLICIES)}")
        if not 0.0 <= self.duty_cycle_cap <= 1.0:
            raise ConfigError(f"duty_cycle_cap {self.duty_cycle_cap!r} must be 0 (none) or a "
                              "fraction such as 0.01")
        if not 0 <= self.mavlink_system_id <= 255:
            raise ConfigError(f"mavlink_system_id {self.mavlink_system_id} must be 0 (auto) .. 255")
        for name in ("update_period_s", "max_sample_age_s", "stale_timeout_s",
                     "reconnect_backoff_max_s", "diagnostics_period_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive, finite number, got {value!r}")
        if self.max_sample_age_s >= tcodec.TIME_WINDOW_S - 1:
            raise ConfigError(f"max_sample_age_s must stay below {tcodec.TIME_WINDOW_S - 1:g} s: "
                              "older samples would be dated one time window late")
        super().__post_init__()  # the origin and the channel
        self.codec  # validates the family  # noqa: B018

    def schedule(self) -> TdmaSchedule:
        """This UAV's view of the TDMA superframe (its slot; its sub-band's duty cycle)."""
        ledger = DutyCycleLedger(policy=self.duty_cycle_policy, cap=self.duty_cycle_cap or None)
        return self.tdma_schedule({self.uav_name: self.tdma_slot},
                                  uav_duty_cycle=ledger.limit(self.frequency_hz))

    @property
    def counter_state_path(self) -> Path:
        """fcnt_state_file, or by default <state dir>/<uav_name>.fcnt.json (persist.py)."""
        if self.fcnt_state_file:
            return Path(self.fcnt_state_file)
        return default_state_dir() / f"{self.uav_name}.fcnt.json"

    @property
    def baud(self) -> int:
        return self.radio_baud or self.family.default_baud

    @property
    def family(self) -> registry.FamilySpec:
        """The radio family of radio_type (a serial module family of the registry)."""
        return registry.module_family(self.radio_type)

    @property
    def phy(self) -> PhySettings:
        return self.phy_settings(tx_power_dbm=self.tx_power_dbm)

    @property
    def codec(self) -> tcodec.CodecConfig:
        return self.codec_for(self.vehicle_family)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "DroneConfig":
        """Build from ROS parameters or YAML; unknown keys and wrong types are clear errors."""
        return config_from_parameters(cls, values, "drone",
                                      path_parameters=("key_file", "fcnt_state_file"))
