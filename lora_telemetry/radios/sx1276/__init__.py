"""Semtech SX1276: the ground gateway's bare LoRa transceiver, on SPI plus GPIO.

registers.py holds the register map and the pure conversions of the datasheet, driver.py
the register-level driver, gpio.py the gpiod v2 lines. The emulated chip (the virtual
backend) answers the same SPI transfers.
"""

from lora_telemetry.radios.base import Capability
from lora_telemetry.radios.registry import Band, FamilySpec, FamilyTiming, Role
from lora_telemetry.radios.sx1276 import timing
from lora_telemetry.radios.sx1276.registers import BANDS_HZ

FAMILY = FamilySpec(
    name="sx1276",
    title="Semtech SX1276",
    role=Role.SPI_TRANSCEIVER,
    capabilities=frozenset({Capability.RAW_TRANSMIT, Capability.RAW_RECEIVE}),
    bands=tuple(Band(low, high) for low, high in BANDS_HZ),  # the datasheet's three bands
    default_frequency_hz=433_175_000,
    driver="lora_telemetry.radios.sx1276.driver:SX1276Radio",
    emulator="lora_telemetry.radios.sx1276.emulator:SX1276ChipLogic",
    open_emulated="lora_telemetry.sim.emulated_spi:open_emulated_transceiver",
    timing=FamilyTiming(timing.TX_LATENCY, timing.RX_LATENCY),
)

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path

