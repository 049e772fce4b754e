"""The registry of radio families: one line per family, as python-can lists its interfaces.

Each family is one package, ``lora_telemetry/radios/<name>/``, holding its sans-I/O protocol,
its driver and its emulator logic; its ``__init__`` defines ``FAMILY``, a :class:`FamilySpec`
that says what configuration checks, CLI choices, the swarm planner and the factories need to
know (serial defaults, bands, capabilities, where the driver and the emulator are) without
importing the driver, which may need pyserial, spidev or gpiod. The emulated ("virtual")
device is a backend like any other, named in the same entry.

Adding a family: its package, one line in :data:`FAMILIES`, its tests and its docs. Nothing
outside the package names it.

Timing (issue 13, GPS-time TDMA): each family states in ``FamilySpec.timing`` a
:class:`FamilyTiming`, when a frame handed to the driver reaches the air and when a frame that
left the air reaches the host. Its serial part is computed from the exact bytes the production
driver sends and the module answers (the family's protocol code builds them), its processing
part is the family's :class:`~lora_telemetry.core.latency.Latency` figures, the same ones its
emulator draws from; a drone node starts a transmission ``command_to_air_s`` early so the
frame's first symbol lands at its slot start. bench/bench_module_timing.py measures both
against the emulators and test/test_module_timing.py holds them to the prediction.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.latency import Latency
from lora_telemetry.core.uart import BITS_PER_BYTE_8N1, bits_per_byte, serial_time_s
from lora_telemetry.radios.base import Capability, Radio

#: Every family, in the order choices are listed (and the demo's radio mix cycles).
FAMILIES: tuple[str, ...] = ("sx1276", "rn2483", "ebyte")
#: A drone node's radio_type when its parameters name none.
DEFAULT_MODULE_FAMILY = "rn2483"


class Role(str, enum.Enum):
    """How the host reaches the device."""

    SERIAL_MODULE = "serial_module"  # a module with its own firmware, on a UART (drones)
    SPI_TRANSCEIVER = "spi_transceiver"  # a bare transceiver on SPI and GPIO (the gateway)


@dataclass(frozen=True)
class SerialSettings:
    """The UART settings a module ships with."""

    baud: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    def __str__(self) -> str:
        return f"{self.baud} {self.bytesize}{self.parity}{self.stopbits}"

    @property
    def bits_per_byte(self) -> int:
        """Line bits per byte (10 for 8N1)."""
        return bits_per_byte(self.bytesize, self.parity, self.stopbits)


@dataclass(frozen=True)
class FamilyTiming:
    """When a frame reaches the air and when its reception reaches the host (see the module
    docstring).

    ``tx``: from the last byte of the transmit command (SPI transceivers: the RegOpMode write
    that enters TX) to the frame's first symbol on the air. ``rx``: from the frame's last
    symbol to the first byte of the module's report (SPI: the RxDone edge on DIO0).
    ``tx_command(n)`` / ``rx_report(n)``: the wire bytes of the driver's transmit command and
    of the module's reception report for an ``n``-byte frame (None: no serial line).
    """

    tx: Latency
    rx: Latency
    tx_command: Callable[[int], bytes] | None = None
    rx_report: Callable[[int], bytes] | None = None

    @staticmethod
    def _serial_s(message: Callable[[int], bytes] | None, frame_bytes: int, baud: int | None,
                  bits: int) -> float:
        if message is None or not baud:
            return 0.0
        return serial_time_s(len(message(frame_bytes)), baud, bits)

    def command_to_air_s(self, frame_bytes: int, baud: int | None,
                         bits: int = BITS_PER_BYTE_8N1) -> float:
        """Nominal time from the driver starting to write the transmit command for a
        ``frame_bytes`` frame at ``baud`` to the frame's first symbol (+/- :attr:`tx_jitter_s`)."""
        return self._serial_s(self.tx_command, frame_bytes, baud, bits) + self.tx.nominal_s

    def air_to_host_s(self, frame_bytes: int, baud: int | None,
                      bits: int = BITS_PER_BYTE_8N1) -> float:
        """Nominal time from a ``frame_bytes`` frame's last symbol to the last byte of its
        report at the host (+/- :attr:`rx_jitter_s`)."""
        return self.rx.nominal_s + self._serial_s(self.rx_report, frame_bytes, baud, bits)

    @property
    def tx_jitter_s(self) -> float:
        return self.tx.jitter_s

    @property
    def rx_jitter_s(self) -> float:
        return self.rx.jitter_s


@dataclass(frozen=True)
class Band:
    """A frequency range the family's parts cover, inclusive."""

    low_hz: int
    high_hz: int

    def covers(self, frequency_hz: int) -> bool:
        return self.low_hz <= frequency_hz <= self.high_hz

    def __str__(self) -> str:
        return f"{self.low_hz / 1e6:g}-{self.high_hz / 1e6:g} MHz"


#: The help of the ``seed`` emulator option, which every family that draws randomly shares
#: (one ``sim module --seed``).
SEED_HELP = ("seed of the emulator's random choices (latency jitter; channels and nonces "
             "where the module has them)")


@dataclass(frozen=True)
class EmulatorOption:
    """A family-specific option of its emulator (`lora-telemetry sim module --<name>`)."""

    name: str
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class FamilySpec:
    """What the rest of the system knows about one family (see the module docstring).

    ``driver`` and ``emulator`` are "module:attribute" paths, imported on first use.
    ``emulator`` names the family's emulator *logic* (``radios/<family>/emulator.py``: events
    in, actions out, see core/emulation.py), built as ``Logic(name=..., **emulator_options)``;
    the shell that runs it is the same for a whole role (sim/emulated_serial.py puts a serial
    module on a pty, sim/emulated_spi.py a transceiver behind SPI and GPIO), so nothing
    outside the family's package knows its emulator. ``emulator_settings(frequency_hz, seed)``
    gives the emulator options a planner should pass for a channel (e.g. which band a module
    boots into); ``open_emulated`` (SPI transceivers only) names the function that builds the
    driver on an emulated chip, called with the family's name and ``node_id``, ``medium``,
    ``position_m``. ``timing``: the family's :class:`FamilyTiming`.
    """

    name: str
    title: str
    role: Role
    capabilities: frozenset[Capability]
    bands: tuple[Band, ...]
    default_frequency_hz: int
    driver: str
    serial: SerialSettings | None = None
    #: keyword options of the driver that tools may pass (e.g. "implicit_length")
    driver_options: frozenset[str] = frozenset()
    emulator: str | None = None
    emulator_options: tuple[EmulatorOption, ...] = ()
    emulator_settings: Callable[[int, int], dict[str, Any]] = field(
        default=lambda frequency_hz, seed: {})
    open_emulated: str | None = None
    timing: FamilyTiming | None = None

    def has(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def covers(self, frequency_hz: int) -> bool:
        return any(band.covers(frequency_hz) for band in self.bands)

    def check_frequency(self, frequency_hz: int) -> None:
        if not self.covers(frequency_hz):
            bands = ", ".join(str(b) for b in self.bands)
            raise ConfigError(f"{self.title} parts cover {bands}, not {frequency_hz / 1e6:g} MHz")

    @property
    def default_baud(self) -> int:
        if self.serial is None:
            raise ConfigError(f"{self.title} is not a serial module")
        return self.serial.baud

    def driver_class(self) -> type[Radio]:
        return _resolve(self.driver)

    def open_serial(self, port: str, baud: int | None = None, **options: Any) -> Radio:
        """The driver on a serial port (a real module or an emulator's pseudo-terminal)."""
        if self.serial is None:
            raise ConfigError(f"{self.title} is not a serial module")
        unknown = sorted(set(options) - self.driver_options)
        if unknown:
            raise ConfigError(f"the {self.title} driver has no option {', '.join(unknown)}")
        return self.driver_class()(port, baud or self.serial.baud, **options)

    def emulator_class(self) -> Any:
        """The class of the family's emulator logic."""
        if self.emulator is None:
            raise ConfigError(f"there is no emulator of {self.title}")
        return _resolve(self.emulator)

    def emulator_logic(self, name: str, **options: Any) -> Any:
        """A new emulator logic for node ``name`` with the family's ``emulator_options``."""
        unknown = sorted(set(options) - {o.name for o in self.emulator_options})
        if unknown:
            raise ConfigError(f"the {self.title} emulator has no option {', '.join(unknown)}")
        return self.emulator_class()(name=name, **options)

    def emulated_radio(self, **options: Any) -> Radio:
        """The driver on an emulated chip (SPI transceivers: the virtual backend)."""
        if self.open_emulated is None:
            raise ConfigError(f"{self.title} has no emulated chip")
        return _resolve(self.open_emulated)(self.name, **options)


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


_specs: dict[str, FamilySpec] = {}


def family(name: str) -> FamilySpec:
    """The spec of a family by name; ConfigError naming the known ones."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown radio family {name!r}; known: {', '.join(FAMILIES)}")
    spec = _specs.get(name)
    if spec is None:
        spec = _specs[name] = importlib.import_module(f"lora_telemetry.radios.{name}").FAMILY
        if spec.name != name:
            raise ConfigError(f"radio family package {name!r} declares {spec.name!r}")
    return spec


def families(*, role: Role | None = None, capability: Capability | None = None,
             emulated: bool | None = None) -> list[FamilySpec]:
    """Families, in registry order, filtered by role, capability and emulator."""
    out = []
    for name in FAMILIES:
        spec = family(name)
        if role is not None and spec.role is not role:
            continue
        if capability is not None and not spec.has(capability):
            continue
        if emulated is not None and (spec.emulator is not None) != emulated:
            continue
        out.append(spec)
    return out


def module_families() -> list[FamilySpec]:
    """The serial modules a drone node can use."""
    return families(role=Role.SERIAL_MODULE)


def module_family_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in module_families())


def module_family(name: str) -> FamilySpec:
    """A serial module family by name, with an error listing the ones there are."""
    spec = family(name) if name in FAMILIES else None
    if spec is None or spec.role is not Role.SERIAL_MODULE:
        raise ConfigError(f"radio_type {name!r} must be one of {', '.join(module_family_names())}")
    return spec
