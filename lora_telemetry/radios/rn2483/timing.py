"""The RN2483's command-to-air and air-to-host timing (issue 13): figures and assumptions.

What the seeds give: the UART, 57600 8N1 (RN2483 datasheet Table 3-1 "Default UART
settings", thesis line ~10674; the registry's ``FamilySpec.serial``), and the command and
report formats, ``radio tx <hex>`` answered ``ok`` (2.5.2) and ``radio_rx <hex>`` (2.5.1),
whose bytes the serial part of the model counts (built with protocol.py, as the driver builds
them). Assumption: the module's transceiver is an SX127x (the seeds do not name it), so the
chip's start-up from Standby, TS_FS + TS_TR (core.phy ``sx127x_tx_startup_s``, 115 us with the
reset PaRamp), is part of every transmission.

Assumptions (the seeds are silent: neither the command reference nor the datasheet gives the
firmware's processing times, and the thesis's latency study, Table 4.5.7 at line ~2760, is
timed by NTP to whole seconds):

* **TX**: after the command's last byte (its LF) the firmware parses the line, decodes up to 255
  bytes of hex, writes them into the SX1276 FIFO over SPI, answers ``ok`` and sets TX mode:
  2.0 ms +/- 1.0 ms of firmware, plus the chip's start-up.
* **RX**: after the last symbol (RxDone inside the module) the firmware reads the FIFO and
  starts printing ``radio_rx``: 1.0 ms +/- 0.5 ms to the report's first byte.

The jitter is uniform and seeded (the emulator's ``seed``).
"""

from __future__ import annotations

from lora_telemetry.core.latency import Latency
from lora_telemetry.core.phy import sx127x_tx_startup_s
from lora_telemetry.radios.rn2483 import protocol as P

__all__ = ["RX_LATENCY", "TX_LATENCY", "rx_report", "tx_command"]

#: Last byte of ``radio tx`` -> first symbol on the air.
TX_LATENCY = Latency(0.0020 + sx127x_tx_startup_s(), 0.0010)
#: Last symbol of a frame -> first byte of ``radio_rx <hex>``.
RX_LATENCY = Latency(0.0010, 0.0005)


def tx_command(frame_bytes: int) -> bytes:
    """The bytes the driver writes to send a ``frame_bytes`` frame (``radio tx <hex>\\r\\n``)."""
    return P.radio_tx(bytes(frame_bytes)).encode()


def rx_report(frame_bytes: int) -> bytes:
    """The bytes the module writes for a received ``frame_bytes`` frame."""
    return P.radio_rx_report(bytes(frame_bytes)).encode("ascii") + P.EOL
