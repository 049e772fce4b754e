"""The interfaces every LoRa device driver implements: `Radio` plus small capabilities.

python-can's shape: one base interface (`Radio`: configure, close, reconnect, stats), and
what a device can do beyond it as small abstract classes a driver inherits, so a caller asks
`isinstance(radio, RawReceive)` instead of probing for methods:

* `RawTransmit`: send one raw LoRa frame (every family);
* `RawReceive`: receive one raw LoRa frame with RSSI, SNR, receive time and CRC verdict,
  within a timeout (every family);
* `ModuleLoRaWAN`: the module's own LoRaWAN stack in ABP mode (RN2483 `mac`), with the
  counter kept in step with the node's persisted one;
* `Bootloader` (to come with the firmware tools).

`Capability` names them for the registry (radios/registry.py), which tells configuration and
CLI choices what each family can do without importing its driver. Nodes, tools and tests
program against these, so a drone node can swap one module family for another, and the ground
node can run on a real SX1276 or its emulator, without changing a line. PHY settings are one
value object from the core (`PhySettings`).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping

from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.regions import Region


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


@dataclass(frozen=True)
class Downlink:
    """Application data a network server sent back in a receive window."""

    port: int
    data: bytes


@dataclass(frozen=True)
class UplinkResult(TxResult):
    """A finished module-side LoRaWAN uplink: airtime and times, the frame counter the
    module used, and the downlink the server sent back, if any."""

    fcnt: int | None = None
    port: int = 0
    confirmed: bool = False
    downlink: Downlink | None = None


RxCallback = Callable[[RxFrame], None]


class Capability(str, enum.Enum):
    """What a radio can do beyond `Radio` (each is one abstract class below)."""

    RAW_TRANSMIT = "raw_transmit"
    RAW_RECEIVE = "raw_receive"
    MODULE_LORAWAN = "module_lorawan"
    BOOTLOADER = "bootloader"


#: Driver statistics: counter name -> value, the same shape for every family (diagnostics
#: publish them as ``radio.<name>``).
Stats = Mapping[str, "int | float"]


class Radio(abc.ABC):
    """A half-duplex LoRa radio: configure the PHY, close, reconnect, report statistics.

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
    def close(self) -> None:
        """Release the device (idempotent)."""

    @abc.abstractmethod
    def reconnect(self, timeout: float = 10.0) -> None:
        """Open the device again after `RadioDisconnected` (an unplugged port, a failed bus)
        and restore its configuration; raises `RadioError` if it is still not there."""

    @abc.abstractmethod
    def stats(self) -> Stats:
        """The driver's counters (frames, errors, garbage...), cheap to call any time."""

    def info(self) -> dict[str, object]:
        """What the device reports about itself (firmware, identifiers...), for `radio info`;
        drivers add what their protocol can tell."""
        return {"name": self.name, **self.stats()}

    @classmethod
    def capabilities(cls) -> frozenset[Capability]:
        """The capabilities this driver class implements (from the classes it inherits)."""
        return frozenset(cap for cap, base in _CAPABILITY_CLASSES.items() if issubclass(cls, base))

    def with_phy(self, **changes: object) -> PhySettings:
        """The current settings with some fields changed (validated by `PhySettings`)."""
        if self.phy is None:
            raise RadioError(f"{self.name}: not configured yet")
        return dataclasses.replace(self.phy, **changes)

    def __enter__(self) -> "Radio":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawTransmit(Radio):
    """Sends raw LoRa frames."""

    @abc.abstractmethod
    def send(self, data: bytes, timeout: float | None = None) -> TxResult:
        """Transmit one raw LoRa frame and wait until the device reports it sent.

        `timeout` bounds the whole wait (default: a margin over the frame's time on air)."""


class RawReceive(Radio):
    """Receives raw LoRa frames: data, RSSI, SNR, receive time and CRC verdict."""

    @abc.abstractmethod
    def receive(self, timeout: float) -> RxFrame | None:
        """Wait up to `timeout` seconds for one frame; None if none arrived."""

    def receive_forever(self, callback: RxCallback, stop: threading.Event,
                        timeout: float = 0.5) -> None:
        """Call `callback` with every received frame until `stop` is set (for a receive
        thread); each wait is bounded by `timeout` so `stop` is noticed promptly."""
        while not stop.is_set():
            frame = self.receive(timeout)
            if frame is not None:
                callback(frame)


class RawRadio(RawTransmit, RawReceive):
    """Both raw directions: what every family offers."""


@dataclass(frozen=True)
class AbpSession:
    """A module-side LoRaWAN 1.0 ABP session on one channel (the thesis's end-node set-up).

    ``region`` is the band plan whose channels and data rates the module loads;
    ``duty_cycle`` is the fraction the module itself enforces on the channel (the node's own
    ledger enforces the legal limit on top); ``uplink_counter`` restores a persisted FCntUp.
    """

    region: Region
    frequency_hz: int
    data_rate: int
    tx_power_index: int
    devaddr: int
    nwkskey: bytes = field(repr=False)
    appskey: bytes = field(repr=False)
    duty_cycle: float = 0.1
    uplink_counter: int | None = None


class ModuleLoRaWAN(Radio):
    """A module with its own LoRaWAN stack: it frames, secures and counts the uplinks."""

    @abc.abstractmethod
    def join_abp(self, session: AbpSession) -> None:
        """Set the session up (keys, channel, data rate, power, counter) and activate it."""

    @property
    @abc.abstractmethod
    def uplink_counter(self) -> int | None:
        """The FCntUp the module will use next, as the driver tracks it (None: unknown)."""

    @abc.abstractmethod
    def set_uplink_counter(self, value: int) -> None:
        """Make the module use `value` as its next FCntUp."""

    @abc.abstractmethod
    def send_uplink(self, fport: int, payload: bytes, *, confirmed: bool = False) -> UplinkResult:
        """One uplink through the module's stack; waits for its end (and receive windows)."""


_CAPABILITY_CLASSES: dict[Capability, type] = {
    Capability.RAW_TRANSMIT: RawTransmit,
    Capability.RAW_RECEIVE: RawReceive,
    Capability.MODULE_LORAWAN: ModuleLoRaWAN,
}
