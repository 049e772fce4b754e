"""The EByte custom firmware's command-to-air and air-to-host timing (issue 13).

What the seed gives (../shared/seeds/ebyte-custom-firmware-protocol.md): the UART at 115200
baud, the binary AIR_PKT_CMD in both directions (from the host: the data and 3 unused bytes;
from the module: the data, RSSI int16 and SNR int8), whose bytes the serial part of the model
counts (built with protocol.py, as the driver builds them), and the hardware: an STM8L151G6
driving an SX1278, whose start-up from Standby, TS_FS + TS_TR (core.phy
``sx127x_tx_startup_s``, 115 us with the reset PaRamp; the SX1276 datasheet covers the
SX1276/77/78/79), is part of every transmission.

Assumptions (the seed says nothing of the firmware's processing times):

* **TX**: after the AIR_PKT frame's last byte the firmware copies the data into the SX1278
  FIFO over SPI and sets TX mode; binary, no parsing of hex: 1.0 ms +/- 0.5 ms, plus the chip's
  start-up.
* **RX**: after the last symbol the firmware reads RSSI, SNR and the FIFO and starts sending
  AIR_PKT: 0.5 ms +/- 0.25 ms to its first byte.

The jitter is uniform and seeded (the emulator's ``seed``).
"""

from __future__ import annotations

from lora_telemetry.core.latency import Latency
from lora_telemetry.core.phy import sx127x_tx_startup_s
from lora_telemetry.radios.ebyte.protocol import AirPacketFromHost, AirPacketFromModule

__all__ = ["RX_LATENCY", "TX_LATENCY", "rx_report", "tx_command"]

#: Last byte of the host's AIR_PKT -> first symbol on the air.
TX_LATENCY = Latency(0.0010 + sx127x_tx_startup_s(), 0.0005)
#: Last symbol of a frame -> first byte of the module's AIR_PKT.
RX_LATENCY = Latency(0.0005, 0.00025)


def tx_command(frame_bytes: int) -> bytes:
    """The bytes the driver writes to send a ``frame_bytes`` frame (AIR_PKT_CMD)."""
    return AirPacketFromHost(bytes(frame_bytes)).encode()


def rx_report(frame_bytes: int) -> bytes:
    """The bytes the module writes for a received ``frame_bytes`` frame (AIR_PKT_CMD)."""
    return AirPacketFromModule(bytes(frame_bytes), 0, 0).encode()
