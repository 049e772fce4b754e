"""Microchip RN2483: a LoRaWAN module with an ASCII command set on a UART (57600 8N1).

protocol.py is the sans-I/O command/response state machine (RN2483 command reference,
../shared/seeds), driver.py the thin serial shell. Raw LoRa frames (`radio tx`/`radio rx`)
and the module's own LoRaWAN stack (`mac`, ABP) are both supported.
"""

from lora_telemetry.core.regions import region_for_frequency
from lora_telemetry.radios.base import Capability
from lora_telemetry.radios.rn2483 import timing
from lora_telemetry.radios.rn2483.protocol import BAND_RANGES_HZ
from lora_telemetry.radios.registry import (
    SEED_HELP, Band, EmulatorOption, FamilySpec, FamilyTiming, Role, SerialSettings,
)


def _emulator_settings(frequency_hz: int, seed: int) -> dict:
    # `mac reset <band>` loads EU433 or EU868; the emulator boots into the channel's band.
    return {"band": 433 if region_for_frequency(frequency_hz).name == "EU433" else 868,
            "seed": seed}


FAMILY = FamilySpec(
    name="rn2483",
    title="Microchip RN2483",
    role=Role.SERIAL_MODULE,
    capabilities=frozenset({Capability.RAW_TRANSMIT, Capability.RAW_RECEIVE,
                            Capability.MODULE_LORAWAN}),
    bands=tuple(Band(low, high) for low, high in BAND_RANGES_HZ),  # 433.05-434.79, 863-870 MHz
    default_frequency_hz=868_100_000,
    serial=SerialSettings(57600),
    driver="lora_telemetry.radios.rn2483.driver:RN2483Radio",
    emulator="lora_telemetry.radios.rn2483.emulator:RN2483ModuleLogic",
    emulator_options=(
        EmulatorOption("band", "band after a factory reset (868)", int, 868, (868, 433)),
        EmulatorOption("firmware", "firmware version in the banner (1.0.5)", str, "1.0.5"),
        EmulatorOption("seed", SEED_HELP, int, None),
        EmulatorOption("rx_windows", "keep LoRaWAN receive windows open for the longest "
                       "downlink (full, default) or only for preamble detection (detect: "
                       "real mac_tx_ok timing, no downlinks)", str, "full", ("full", "detect")),
    ),
    emulator_settings=_emulator_settings,
    timing=FamilyTiming(timing.TX_LATENCY, timing.RX_LATENCY, timing.tx_command,
                        timing.rx_report),
)

# Installed by colcon as per-file symlinks: also look in the source directory, so modules
# added since the last build import without a rebuild.
from pathlib import Path as _Path

if str(_Path(__file__).resolve().parent) not in __path__:
    __path__.append(str(_Path(__file__).resolve().parent))
del _Path

