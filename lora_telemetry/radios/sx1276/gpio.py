"""GPIO lines for radio drivers: an injectable interface and a thin adapter over python
`gpiod` v2 (libgpiod's line requests).

A driver needs two kinds of line: outputs (NRESET, a software chip select) and inputs that
report rising edges (the SX1276's DIO0 interrupt). The kernel queues edge events on the
request's file descriptor, so a driver *waits* for an interrupt with a bounded blocking
wait (poll) and never reads the pin in a loop. The emulators offer the same interface, so
a driver under test cannot tell an emulated pin from a real one.

Pins are line offsets on a GPIO chip; on a Raspberry Pi's `/dev/gpiochip0` these are BCM
numbers. (On a Pi 5 with an older kernel the header is `/dev/gpiochip4`.)
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Protocol, runtime_checkable

from lora_telemetry.radios.base import NoSuchDevice, RadioError

__all__ = [
    "THESIS_RESET_PIN", "THESIS_NSS_PIN", "THESIS_DIO0_PIN", "DEFAULT_GPIO_CHIP",
    "MissingDriverLibrary", "OutputLine", "RisingEdgeLine", "GpioChip", "GpiodChip",
    "import_gpiod",
]

# The thesis wiring (Tabla 4.4.1, thesis file line ~2206: "GPIO 0 NReset, GPIO 6 NSS,
# GPIO 7 DIO0" in wiringPi numbering), as BCM line offsets.
THESIS_RESET_PIN = 17  # wiringPi 0
THESIS_NSS_PIN = 25  # wiringPi 6
THESIS_DIO0_PIN = 4  # wiringPi 7
DEFAULT_GPIO_CHIP = "/dev/gpiochip0"


class MissingDriverLibrary(NoSuchDevice):
    """A hardware access library (spidev, gpiod) is not installed."""


@runtime_checkable
class OutputLine(Protocol):
    """A requested output line."""

    def set_value(self, high: bool) -> None: ...

    def release(self) -> None: ...


@runtime_checkable
class RisingEdgeLine(Protocol):
    """A requested input line with rising-edge detection; events queue until read."""

    def wait_edge(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True as soon as an edge event is pending."""

    def read_edge_events(self) -> int:
        """Consume the pending edge events (call after `wait_edge` returned True); their count."""

    def get_value(self) -> bool: ...

    def fileno(self) -> int:
        """Readable when an edge event is pending (for selectors)."""

    def release(self) -> None: ...


@runtime_checkable
class GpioChip(Protocol):
    """Where a driver requests its lines (a real chip or an emulator's board)."""

    def request_output(self, pin: int, *, initial: bool, consumer: str) -> OutputLine: ...

    def request_rising_edge(self, pin: int, *, consumer: str) -> RisingEdgeLine: ...

    def close(self) -> None: ...


def import_gpiod() -> Any:
    """Import python `gpiod` and insist on the v2 API, with an actionable message."""
    try:
        import gpiod  # type: ignore[import-not-found]
    except ImportError:
        raise MissingDriverLibrary(
            "python 'gpiod' (libgpiod v2 bindings) is not installed: on the Raspberry Pi run "
            "`pip install 'gpiod>=2'` (or `pip install lora_telemetry[gateway]`); without "
            "hardware, pass the emulator's GPIO object instead"
        ) from None
    if not hasattr(gpiod, "request_lines"):
        raise MissingDriverLibrary(
            f"python 'gpiod' {getattr(gpiod, '__version__', '1.x')} has the v1 API; this driver "
            "needs v2 (`pip install 'gpiod>=2'`, which provides gpiod.request_lines)"
        )
    return gpiod


class GpiodChip:
    """`GpioChip` on a real GPIO character device through python `gpiod` v2."""

    def __init__(self, path: str = DEFAULT_GPIO_CHIP) -> None:
        self._gpiod = import_gpiod()
        if not os.path.exists(path):
            raise NoSuchDevice(
                f"GPIO chip {path} does not exist (wrong --gpio-chip? on a Pi 5 with an older "
                "kernel the header pins are on /dev/gpiochip4)"
            )
        self.path = path

    def _request(self, pin: int, settings: Any, consumer: str) -> Any:
        if isinstance(pin, bool) or not isinstance(pin, int) or pin < 0:
            raise RadioError(f"GPIO pin {pin!r} must be a line offset (BCM number) >= 0")
        try:
            return self._gpiod.request_lines(self.path, consumer=consumer, config={pin: settings})
        except (OSError, ValueError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            raise NoSuchDevice(
                f"cannot request GPIO line {pin} on {self.path} for {consumer}: {detail} "
                "(line used by another program or driver? user not in the 'gpio' group?)"
            ) from None

    def request_output(self, pin: int, *, initial: bool, consumer: str) -> "_GpiodOutput":
        from gpiod.line import Direction, Value  # type: ignore[import-not-found]

        settings = self._gpiod.LineSettings(
            direction=Direction.OUTPUT, output_value=Value.ACTIVE if initial else Value.INACTIVE
        )
        return _GpiodOutput(self._request(pin, settings, consumer), pin, Value)

    def request_rising_edge(self, pin: int, *, consumer: str) -> "_GpiodRisingEdge":
        from gpiod.line import Direction, Edge, Value  # type: ignore[import-not-found]

        settings = self._gpiod.LineSettings(direction=Direction.INPUT, edge_detection=Edge.RISING)
        return _GpiodRisingEdge(self._request(pin, settings, consumer), pin, Value)

    def close(self) -> None:
        """Nothing to do: each request holds its own file descriptor."""


class _GpiodOutput:
    def __init__(self, request: Any, pin: int, value_enum: Any) -> None:
        self._req, self._pin, self._value = request, pin, value_enum

    def set_value(self, high: bool) -> None:
        self._req.set_value(self._pin, self._value.ACTIVE if high else self._value.INACTIVE)

    def release(self) -> None:
        if self._req is not None:
            req, self._req = self._req, None
            req.release()


class _GpiodRisingEdge:
    def __init__(self, request: Any, pin: int, value_enum: Any) -> None:
        self._req, self._pin, self._value = request, pin, value_enum

    def wait_edge(self, timeout: float) -> bool:
        # gpiod polls the request fd; a timedelta avoids float-vs-None ambiguity.
        return bool(self._req.wait_edge_events(datetime.timedelta(seconds=max(0.0, timeout))))

    def read_edge_events(self) -> int:
        # read_edge_events blocks when nothing is queued: only call it after wait_edge().
        return len(self._req.read_edge_events())

    def get_value(self) -> bool:
        return self._req.get_value(self._pin) == self._value.ACTIVE

    def fileno(self) -> int:
        return int(self._req.fd)

    def release(self) -> None:
        if self._req is not None:
            req, self._req = self._req, None
            req.release()
