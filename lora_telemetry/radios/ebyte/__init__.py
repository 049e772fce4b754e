"""EByte E32 433 MHz UART modules with the custom firmware (115200 8N1, binary frames).

protocol.py is the seed's binary protocol as a sans-I/O parser and message set
(../shared/seeds/ebyte-custom-firmware-protocol.md), driver.py the thin serial shell. Raw
LoRa frames only: the firmware has no LoRaWAN stack.
"""

from lora_telemetry.radios.base import Capability
from lora_telemetry.radios.ebyte import timing
from lora_telemetry.radios.ebyte.protocol import EBYTE_433_BAND_HZ
from lora_telemetry.radios.registry import (
    SEED_HELP, Band, EmulatorOption, FamilySpec, FamilyTiming, Role, SerialSettings,
)

FAMILY = FamilySpec(
    name="ebyte",
    title="EByte E32 (custom firmware)",
    role=Role.SERIAL_MODULE,
    capabilities=frozenset({Capability.RAW_TRANSMIT, Capability.RAW_RECEIVE}),
    bands=(Band(*EBYTE_433_BAND_HZ),),  # the seed's SET_LORA_PARAMS range (433 MHz parts)
    default_frequency_hz=433_175_000,
    serial=SerialSettings(115200),
    driver_options=frozenset({"implicit_length"}),
    driver="lora_telemetry.radios.ebyte.driver:EByteRadio",
    emulator="lora_telemetry.radios.ebyte.emulator:EByteModuleLogic",
    emulator_options=(
        EmulatorOption("seed", SEED_HELP, int, None),
    ),
    emulator_settings=lambda frequency_hz, seed: {"seed": seed},
    timing=FamilyTiming(timing.TX_LATENCY, timing.RX_LATENCY, timing.tx_command,
                        timing.rx_report),
)

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path

