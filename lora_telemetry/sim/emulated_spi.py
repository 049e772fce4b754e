"""An emulated SPI chip on an emulated board: a family's chip logic run by the device loop.

The production driver runs unchanged against it: it is handed :attr:`EmulatedSpiChip.spi` (a
``spidev.SpiDev`` look-alike) and :attr:`EmulatedSpiChip.gpio` (a board with gpiod v2's
requests: outputs, rising-edge lines). Every SPI transaction is a ``SpiTransfer`` event the
chip's logic answers in the driver's own thread, under the loop's lock, so a register read is
as immediate as on the bus; the same :class:`~lora_telemetry.sim.device_loop.DeviceLoop` runs
the chip's timers and its medium events in its own thread (no thread per timer). The chip's
output pins (``SetPin`` actions) are :class:`EmulatedEdgeLine` s: a level plus rising edges
queued on a pipe, so a driver's wait for an interrupt is a real blocking wait.

``open_emulated_transceiver`` is the virtual backend of every SPI-transceiver family in the
registry: the family's driver on its emulated chip, joined to the radio medium. By the rule of
sim/device_loop.py it closes what it created (chip, board, medium client) when the driver
closes.
"""

from __future__ import annotations

import errno
import math
import os
import select
from typing import Any, Callable, Mapping

from lora_telemetry.core.emulation import DeviceEvent, DeviceLogic, PinChanged, SpiTransfer
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.sim.device_loop import DeviceLoop, DeviceShell

__all__ = ["EmulatedSpiChip", "EmulatedEdgeLine", "EmulatedGpio", "EmulatedSpiDevice",
           "emulated_chip", "open_emulated_transceiver"]


class EmulatedEdgeLine:
    """A chip's output pin: a level plus a queue of rising edges on a pipe (pollable,
    blocking), as a gpiod edge request gives them."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self.level = False
        self.closed = False

    def rise(self) -> None:
        if self.closed:
            return
        try:
            os.write(self._w, b"\x01")
        except BlockingIOError:
            pass  # 64 KiB of unread edges: the kernel's buffer would have dropped them too

    def wait_edge(self, timeout: float) -> bool:
        self._check_open()
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        return bool(poller.poll(max(0, math.ceil(timeout * 1000.0))))

    def read_edge_events(self) -> int:
        self._check_open()
        try:
            return len(os.read(self._r, 65536))
        except BlockingIOError:
            return 0

    def get_value(self) -> bool:
        return self.level

    def fileno(self) -> int:
        return self._r

    def _check_open(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "the emulated chip has been closed")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.write(self._w, b"\x00")  # wake a waiter; it then sees the line closed
            except BlockingIOError:
                pass
            os.close(self._r)
            os.close(self._w)


class _EdgeRequest:
    """A driver's request of an edge line; releasing it frees the pin for the next driver."""

    def __init__(self, board: "EmulatedGpio", pin: int, line: EmulatedEdgeLine) -> None:
        self._board, self._pin, self._line = board, pin, line

    def wait_edge(self, timeout: float) -> bool:
        return self._live().wait_edge(timeout)

    def read_edge_events(self) -> int:
        return self._live().read_edge_events()

    def get_value(self) -> bool:
        return self._live().get_value()

    def fileno(self) -> int:
        return self._live().fileno()

    def release(self) -> None:
        if self._line is not None:
            self._line = None
            self._board._requested.discard(self._pin)

    def _live(self) -> EmulatedEdgeLine:
        if self._line is None:
            raise OSError(errno.EBADF, f"GPIO line {self._pin} was released")
        return self._line


class _OutputRequest:
    def __init__(
        self, board: "EmulatedGpio", pin: int, on_change: Callable[[bool], None] | None
    ) -> None:
        self._board, self._pin, self._on_change = board, pin, on_change
        self.value: bool | None = None

    def set_value(self, high: bool) -> None:
        if self._board is None:
            raise OSError(errno.EBADF, f"GPIO line {self._pin} was released")
        high = bool(high)
        if high != self.value:
            self.value = high
            if self._on_change is not None:
                self._on_change(high)

    def release(self) -> None:
        if self._board is not None:
            self._board._requested.discard(self._pin)
            self._board = None


class EmulatedGpio:
    """The board around the emulated chip: GPIO line numbers wired to the chip's pins.

    ``inputs`` maps a line to a chip input (driving it delivers PinChanged to the chip),
    ``outputs`` a line to one of the chip's output lines. Any other line (e.g. a software
    NSS) is a free output; an edge request on an unwired line gets a line that never fires,
    as on a miswired board. Requesting a line twice without releasing it fails with EBUSY, as
    the kernel does.
    """

    def __init__(self, chip: "EmulatedSpiChip", inputs: Mapping[int, str],
                 outputs: Mapping[int, EmulatedEdgeLine]) -> None:
        self._chip, self._inputs, self._outputs = chip, dict(inputs), dict(outputs)
        self._requested: set[int] = set()
        self._unwired: list[EmulatedEdgeLine] = []

    def _claim(self, pin: int) -> None:
        if pin in self._requested:
            raise OSError(errno.EBUSY, f"GPIO line {pin} is already requested")
        self._requested.add(pin)

    def request_output(self, pin: int, *, initial: bool, consumer: str) -> _OutputRequest:
        self._claim(pin)
        chip_pin = self._inputs.get(pin)
        hook = None if chip_pin is None else (lambda high: self._chip.drive(chip_pin, high))
        line = _OutputRequest(self, pin, hook)
        line.set_value(initial)
        return line

    def request_rising_edge(self, pin: int, *, consumer: str) -> _EdgeRequest:
        self._claim(pin)
        if pin in self._outputs:
            return _EdgeRequest(self, pin, self._outputs[pin])
        dead = EmulatedEdgeLine()
        self._unwired.append(dead)
        return _EdgeRequest(self, pin, dead)

    def close(self) -> None:
        for line in self._unwired:
            line.close()
        self._unwired.clear()


class EmulatedSpiDevice:
    """`spidev.SpiDev` look-alike wired to the emulated chip: each transfer is one
    SpiTransfer event, answered synchronously in the caller's thread."""

    def __init__(self, chip: "EmulatedSpiChip") -> None:
        self._chip = chip
        self.max_speed_hz = 500_000
        self.mode = 0
        self.bits_per_word = 8
        self.opened: tuple[int, int] | None = None
        self.transfers = 0

    def open(self, bus: int, device: int) -> None:
        self.opened = (bus, device)

    def close(self) -> None:
        self.opened = None

    def xfer2(self, values: list[int], *_: Any) -> list[int]:
        if self.opened is None:
            raise OSError(errno.EBADF, "SPI device is not open")
        out = list(values)
        for v in out:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFF:
                raise TypeError(f"SPI bytes must be ints 0..255, got {v!r}")
        self.transfers += 1
        return self._chip.transfer(out, self.mode, self.max_speed_hz)

    xfer = xfer2


class EmulatedSpiChip(DeviceShell):
    """A chip's logic behind an emulated SPI bus and board, on the medium through the loop.

    ``wiring`` maps board GPIO line numbers to the chip's pin names; those the logic drives
    (``output_pins``) become edge lines, the others are the chip's inputs. ``medium`` is a
    medium client the caller created and closes after this chip (or None: frames take their
    time on air and arrive only through :meth:`inject`).
    """

    def __init__(self, logic: DeviceLogic, name: str, medium: Any | None = None, *,
                 wiring: Mapping[int, str], output_pins: tuple[str, ...],
                 clock: Callable[[], float] | None = None) -> None:
        self.name = name
        self.lines = {pin: EmulatedEdgeLine() for pin in output_pins}
        inputs = {gpio: pin for gpio, pin in wiring.items() if pin not in self.lines}
        outputs = {gpio: self.lines[pin] for gpio, pin in wiring.items() if pin in self.lines}
        self.spi = EmulatedSpiDevice(self)
        self.gpio = EmulatedGpio(self, inputs, outputs)
        options = {} if clock is None else {"clock": clock}
        self.loop = DeviceLoop(logic, name, medium=medium, pins=self._set_pin, **options)
        self.loop.start()  # the chip's timers and the medium's events

    def transfer(self, data: list[int], mode: int, speed_hz: int) -> list[int]:
        """One SPI transaction (the bus calls this); raises OSError once the chip is closed."""
        reply = self.loop.request(SpiTransfer(tuple(data), mode, speed_hz))
        if not isinstance(reply, list):
            raise OSError(errno.EIO, f"{self.name}: no answer on the SPI bus")
        return reply

    def drive(self, pin: str, high: bool) -> None:
        """The host drives one of the chip's input pins."""
        try:
            self.loop.request(PinChanged(pin, high))
        except OSError:
            pass  # a closed chip ignores its pins, like an unpowered one

    def inject(self, event: DeviceEvent) -> Any:
        """Hand the chip an event directly (e.g. a frame as if it had just ended on the air);
        the value of the chip's Reply (for a frame: whether it was received)."""
        return self.loop.request(event)

    def _set_pin(self, pin: str, level: bool) -> None:
        line = self.lines.get(pin)
        if line is None:
            return
        if level and not line.level:
            line.level = True
            line.rise()
        else:
            line.level = level

    def close(self) -> None:
        """Stop the loop, then close the board's lines (a driver waiting on one wakes up and
        sees it closed). The medium client is its creator's to close."""
        self.loop.close()
        self.gpio.close()
        for line in self.lines.values():
            line.close()


def emulated_chip(family: str, name: str, medium: Any | None = None,
                  **options: Any) -> EmulatedSpiChip:
    """The emulated chip of SPI-transceiver ``family`` (the registry's), with its board
    wiring; ``options`` go to the family's chip logic."""
    from lora_telemetry.radios import registry

    spec = registry.family(family)
    if spec.role is not registry.Role.SPI_TRANSCEIVER:
        raise ConfigError(f"{spec.title} is not an SPI transceiver")
    logic = spec.emulator_class()(name=name, **options)
    return EmulatedSpiChip(logic, name, medium, wiring=logic.board_wiring,
                           output_pins=logic.output_pins)


def open_emulated_transceiver(family: str, *, node_id: str, medium: str | None = None,
                              position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Any:
    """The driver of SPI-transceiver ``family`` on its emulated chip, joined to the radio
    medium at ``medium`` ("host:port"; None: $LORA_TELEMETRY_MEDIUM or the default hub) as
    node ``node_id`` at ``position_m``. Closing the driver closes the chip, then the medium
    client this function created."""
    from lora_telemetry.radios import registry
    from lora_telemetry.sim.medium import MediumClient, hub_address

    spec = registry.family(family)
    hub = hub_address(medium)
    client = MediumClient(node_id, hub=hub, position_m=position_m)
    try:
        chip = emulated_chip(family, node_id, client)
    except BaseException:
        client.close()
        raise

    def close() -> None:
        chip.close()
        client.close()
    try:
        return spec.driver_class()(spi=chip.spi, gpio=chip.gpio, on_close=close,
                                   name=f"emulated {spec.title} on {hub[0]}:{hub[1]}")
    except BaseException:
        close()
        raise
