"""The `Radio` interface every LoRa device driver implements (SX1276, RN2483, EByte).

Nodes, tools and tests program against this interface, so a drone node can swap an RN2483
for an EByte module, and the ground node can run on a real SX1276 or its emulator, without
changing a line. PHY settings are one value object from the core (`PhySettings`).
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable

from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.phy import PhySettings


class RadioError(LoraTelemetryError):
    """A radio refused a command, answered something unexpected, or failed."""


class RadioTimeout(RadioError):
    """A bounded wait for the device's answer expired."""


class RadioDisconnected(RadioError):
    """The transport (serial port, SPI device) went away; the caller may reconnect."""


class ModuleReset(RadioError):
    """The device reset itself (e.g. a spontaneous boot banner); its configuration is gone."""


class RadioBusy(RadioError):
    """The device cannot accept the command now (busy, no free channel, duty cycle)."""


class NoSuchDevice(RadioError):
    """Nothing that looks like the expected chip or module answered."""


@dataclass(frozen=True)
class RxFrame:
    """One LoRa frame as a radio received it."""

    data: bytes
    phy: PhySettings
    rssi_dbm: float | None = None  # packet RSSI; None if the device does not report it
    snr_db: float | None = None
    crc_ok: bool = True
    time: float = 0.0  # wall-clock (time.time()) at the end of reception, as seen by the host


@dataclass(frozen=True)
class TxResult:
    """What a completed transmission cost."""

    airtime_s: float  # time on air computed with the core formula
    started: float  # wall-clock when the command was handed to the device
    finished: float  # wall-clock when the device reported the end of transmission


RxCallback = Callable[[RxFrame], None]


class Radio(abc.ABC):
    """A half-duplex LoRa radio: configure the PHY, send a frame, receive frames, close.

    Every wait is bounded. Errors are `RadioError` subclasses with a specific message.
    Implementations are not thread-safe unless they say so; use one thread per radio.
    """

    #: Human-readable device name for logs and diagnostics, e.g. "RN2483 1.0.5 on /dev/ttyUSB0".
    name: str = "radio"

    @property
    @abc.abstractmethod
    def phy(self) -> PhySettings | None:
        """The PHY settings currently applied, or None before `configure`."""

    @abc.abstractmethod
    def configure(self, phy: PhySettings) -> None:
        """Apply PHY settings (frequency, SF, BW, CR, preamble, header, CRC, sync word, IQ,
        power). Raises `RadioError` if the device refuses any of them."""

    @abc.abstractmethod
    def send(self, data: bytes, timeout: float | None = None) -> TxResult:
        """Transmit one raw LoRa frame and wait until the device reports it sent.

        `timeout` bounds the whole wait (default: a margin over the frame's time on air)."""

    @abc.abstractmethod
    def receive(self, timeout: float) -> RxFrame | None:
        """Wait up to `timeout` seconds for one frame; None if none arrived."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device (idempotent)."""

    def receive_forever(self, callback: RxCallback, stop: threading.Event,
                        timeout: float = 0.5) -> None:
        """Call `callback` with every received frame until `stop` is set (for a receive
        thread); each wait is bounded by `timeout` so `stop` is noticed promptly."""
        while not stop.is_set():
            frame = self.receive(timeout)
            if frame is not None:
                callback(frame)

    def with_phy(self, **changes: object) -> PhySettings:
        """The current settings with some fields changed (validated by `PhySettings`)."""
        if self.phy is None:
            raise RadioError(f"{self.name}: not configured yet")
        return dataclasses.replace(self.phy, **changes)

    def __enter__(self) -> "Radio":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
