"""The vocabulary between an emulated device's logic and the loop that runs it.

Every emulator (a serial module's firmware, a transceiver chip) is written as a sans-I/O state
machine in its family's package (``radios/<family>/emulator.py``), in the shape of h11 and of
the project's protocol parsers: :meth:`DeviceLogic.handle` takes one typed event and the time,
and returns typed actions; it never reads a clock, sleeps, opens a file or starts a thread.
The generic shell in :mod:`lora_telemetry.sim.device_loop` turns pty bytes, medium datagrams,
timers, SPI transfers and fault-injection commands into these events and carries out the
actions. This module is the whole contract, so a family's logic imports ``core`` and its own
protocol only, never ``sim``.

Decisions worth knowing:

* Time is ``time.time()`` seconds, passed in: the medium stamps frames with it, and receive
  windows are judged against a frame's ``t_start``.
* Timers are named by the logic (any hashable key); :class:`StartTimer` with a key already
  pending moves it, :class:`CancelTimer` forgets it, :class:`TimerFired` brings the key back.
* The medium's events, :class:`RxEvent` and :class:`TxDoneEvent`, are defined here and reach
  the logic unchanged, told apart by their type.
* A transmission always ends with :class:`TxDoneEvent`: from the medium, or, when the device
  has no medium or the medium could not be reached, from the loop after the frame's time on
  air (the frame is lost, its time is not). Logic may still guard against a medium that never
  answers with a timer of its own.
* Fault injection is one closed set of commands (:data:`ControlCommand`); each logic answers
  every command with :class:`Accepted` or :class:`Refused` (with the reason), so a device that
  cannot do something says so itself instead of being probed for methods.
* Synchronous requests from an in-process host (an SPI transfer) are answered by one
  :class:`Reply` action among the others.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Protocol, Union

from lora_telemetry.core.phy import PhySettings

__all__ = [
    "Accepted", "Action", "CancelTimer", "ControlCommand", "DeviceEvent", "DeviceLogic",
    "DropAnswers", "Garbage", "HostBytes", "Listen", "MediumEvent", "PinChanged", "PowerOn",
    "PowerOnMoment", "Refused", "Replug", "ReplugPort", "Reply", "Reset", "RxEvent",
    "SetChannelRssi", "SetPin", "Silence", "SpiTransfer", "Standby", "StartTimer",
    "TimerFired", "ToHost", "Transmit", "TransmitFailed", "TxDoneEvent", "Unplug",
    "UnplugPort",
    "refuse_unsupported",
]


# --- events: what happens to the device ---------------------------------------------------------

class PowerOnMoment(str, enum.Enum):
    """When the shell powers a device on: a module with its banner on the wire as soon as the
    port exists, or one that boots when its loop starts serving."""

    CREATED = "created"
    SERVING = "serving"


@dataclass(frozen=True)
class PowerOn:
    """Power is applied (once, at the moment the logic's ``power_on_at`` names)."""


@dataclass(frozen=True)
class HostBytes:
    """Bytes the host wrote on the device's UART."""

    data: bytes


@dataclass(frozen=True)
class RxEvent:
    """A frame heard by a node, delivered at its end (``t_end = t_start + time on air``).

    The radio medium's own event (sim/medium_model.py, sim/medium.py), handed to the logic
    as it is: one type from the hub's datagram to the emulated firmware."""

    data: bytes
    phy: PhySettings
    rssi_dbm: float
    snr_db: float
    crc_ok: bool
    tx_node: str
    t_start: float
    t_end: float


@dataclass(frozen=True)
class TxDoneEvent:
    """To the sender, when its frame has left the air (from the medium, or from the device
    loop when there is no medium to report it)."""

    airtime_s: float
    t_start: float
    t_end: float


@dataclass(frozen=True)
class TransmitFailed:
    """The medium could not take the frame (hub unreachable); a TxDoneEvent still follows."""

    reason: str


@dataclass(frozen=True)
class TimerFired:
    key: Hashable


@dataclass(frozen=True)
class SpiTransfer:
    """One SPI transaction (NSS low ... high) from an in-process host; answered by a Reply."""

    data: tuple[int, ...]
    mode: int = 0
    speed_hz: int = 500_000


@dataclass(frozen=True)
class PinChanged:
    """The host drove one of the device's input pins (e.g. NRESET)."""

    pin: str
    level: bool


# --- fault-injection commands (every logic answers each with Accepted or Refused) ----------------

@dataclass(frozen=True)
class Reset:
    """Spontaneous restart (brown-out, watchdog); ``during_next_tx``: right after the next
    transmission has started instead of now."""

    during_next_tx: bool = False


@dataclass(frozen=True)
class Silence:
    """Enter (or leave) a mode in which the device refuses to transmit."""

    on: bool = True


@dataclass(frozen=True)
class Garbage:
    """Line noise to the host; None: the device's own typical noise."""

    data: bytes | None = None


@dataclass(frozen=True)
class DropAnswers:
    """Lose the next ``count`` answers to the host (0 cancels)."""

    count: int = 1


@dataclass(frozen=True)
class Unplug:
    """Pull the USB adapter (the device loses power); replug after ``replug_after_s`` if set."""

    replug_after_s: float | None = None


@dataclass(frozen=True)
class Replug:
    """Plug the adapter back in: a new port behind the same path, power-on."""


@dataclass(frozen=True)
class SetChannelRssi:
    """What the device's radio measures on a quiet channel (None: the thermal noise floor)."""

    rssi_dbm: float | None


MediumEvent = Union[RxEvent, TxDoneEvent]
ControlCommand = Union[Reset, Silence, Garbage, DropAnswers, Unplug, Replug, SetChannelRssi]
DeviceEvent = Union[PowerOn, HostBytes, RxEvent, TxDoneEvent, TransmitFailed, TimerFired,
                    SpiTransfer, PinChanged, ControlCommand]


# --- actions: what the device does ---------------------------------------------------------------

@dataclass(frozen=True)
class ToHost:
    """Bytes the device writes on its UART."""

    data: bytes


@dataclass(frozen=True)
class Transmit:
    data: bytes
    phy: PhySettings
    power_dbm: float | None = None


@dataclass(frozen=True)
class Listen:
    phy: PhySettings


@dataclass(frozen=True)
class Standby:
    pass


@dataclass(frozen=True)
class StartTimer:
    key: Hashable
    at: float


@dataclass(frozen=True)
class CancelTimer:
    key: Hashable


@dataclass(frozen=True)
class UnplugPort:
    """Close the host's port (its reads and writes fail as on a pulled adapter)."""


@dataclass(frozen=True)
class ReplugPort:
    """A fresh port behind the same path."""


@dataclass(frozen=True)
class SetPin:
    """Drive one of the device's output pins (a rising edge is what a host waits for)."""

    pin: str
    level: bool


@dataclass(frozen=True)
class Reply:
    """The answer to a synchronous request (an SPI transfer's bytes)."""

    value: Any


@dataclass(frozen=True)
class Accepted:
    """A control command was carried out."""


@dataclass(frozen=True)
class Refused:
    """A control command the device cannot carry out, and why."""

    reason: str


Action = Union[ToHost, Transmit, Listen, Standby, StartTimer, CancelTimer, UnplugPort,
               ReplugPort, SetPin, Reply, Accepted, Refused]


class DeviceLogic(Protocol):
    """What the device loop runs (see the module docstring)."""

    #: when the shell delivers PowerOn
    power_on_at: PowerOnMoment

    def handle(self, event: DeviceEvent, now: float) -> list[Action]: ...

    @property
    def counters(self) -> Mapping[str, int]: ...


def refuse_unsupported(device: str, command: ControlCommand, why: str) -> list[Action]:
    """The one wording of a refusal: ``<device> cannot <command>: <why>``."""
    return [Refused(f"{device} cannot {type(command).__name__.lower()}: {why}")]
