"""Sans-I/O codec for the custom firmware of EByte 433 MHz UART LoRa modules.

Everything here is pure: bytes in, typed messages out (and back). The driver
(`driver.py`) and the emulator logic (`emulator.py`) share it, so both ends speak
one implementation of the wire format. Source: ``../shared/seeds/ebyte-custom-firmware-
protocol.md`` ("the seed"); section names below refer to it.

Wire format ("General UART packet format")::

    40 53 | info | len_lo len_hi | payload (0..258 bytes)

* The start of frame is 0x5340 sent little endian ("Byte Ordering"), i.e. ``40 53``.
* Packet info is one byte, the packet type of the "Command Packet" table.
* AIR_PKT (0x80) travels both ways with different payloads: from the host, the data followed
  by three unused bytes (the seed's transmitter capture sends ``00 00 00``); from the module,
  the data followed by RSSI (int16 LE) and SNR (int8). A parser must therefore know who sent
  the stream (:class:`Sender`).

The protocol has no checksum, so a stream parser can only resynchronise on the start of frame
and on what the seed makes impossible: a length above 258, a length other than a fixed-size
command's, an unknown packet type, a field outside the seed's tables. Each rejection is counted
(:class:`ParserCounters`) and scanning restarts one byte after the rejected start of frame, so
a valid frame hidden behind a false start is still found. A frame whose bytes stop arriving is
given up by :meth:`FrameParser.resync`, which the I/O side calls after an inter-byte timeout.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass, field, fields
from typing import ClassVar, Union

from lora_telemetry.core.errors import ConfigError, MalformedFrameError
from lora_telemetry.core.phy import PhySettings

__all__ = [
    "SOF", "HEADER_LEN", "MAX_PAYLOAD_LEN", "MAX_AIR_DATA_LEN", "AIR_PKT_TRAILER_LEN",
    "BAUDRATE", "BW_CODES", "SF_CODES", "CR_CODES", "PREAMBLE_RANGE", "EBYTE_433_BAND_HZ",
    "SYNC_WORD_PRIVATE", "SYNC_WORD_PUBLIC", "EXPLICIT_LENGTH_BYTE",
    "PacketType", "Sender",
    "EByteProtocolError", "UnknownPacketType", "BadLength", "WrongDirection", "BadField",
    "SetLoraParams", "ReqLoraParams", "ReqAirPkt", "GetRssi", "SetRssi", "GetModuleName",
    "ModuleName", "GetLoraCoreName", "LoraCoreName", "SetLoraModes", "ReqLoraModes",
    "AirPacketFromHost", "AirPacketFromModule", "Message",
    "encode_frame", "decode_frame", "decode_payload", "FrameParser", "ParserCounters",
    "phy_to_messages", "phy_from_messages", "check_frequency", "nominal_power_dbm",
]

#: Start of frame: 0x5340 little endian ("General UART packet format", "Byte Ordering").
SOF = b"\x40\x53"
HEADER_LEN = 5  # SOF (2) + packet info (1) + payload length (2)
#: "Payload | 0 - 258 bytes": 255 data bytes + RSSI (2) + SNR (1) of a module's AIR_PKT.
MAX_PAYLOAD_LEN = 258
#: "Data | 0 - n (max 255)" of AIR_PKT_CMD.
MAX_AIR_DATA_LEN = 255
#: RSSI (2) + SNR (1) after an AIR_PKT's data; "not used" when the host sends.
AIR_PKT_TRAILER_LEN = 3
#: "UART connection settings": 115200 8N1, no flow control.
BAUDRATE = 115200

#: SET_LORA_PARAMS_CMD "Bandwidth (BW)" table: code -> Hz. 31.2 kHz is the nominal 31.25 kHz
#: of PhySettings (SX1276 RegModemConfig1).
BW_CODES: dict[int, int] = {
    0x00: 7800, 0x01: 10400, 0x02: 15600, 0x03: 20800, 0x04: 31250,
    0x05: 41700, 0x06: 62500, 0x07: 125000, 0x08: 250000, 0x09: 500000,
}
#: "Spreading Factor (SF)" table: the code is the SF itself, 0x05 (SF5) .. 0x0C (SF12).
#: SF5 exists on the LLCC68/SX1262 modules only and PhySettings (SX1276: 6..12) cannot hold it.
SF_CODES: tuple[int, ...] = tuple(range(5, 13))
#: "Coding Rate (CR)" table: code 1..4 = 4/5..4/8; PhySettings uses the denominator 5..8.
CR_CODES: dict[int, int] = {0x01: 5, 0x02: 6, 0x03: 7, 0x04: 8}
#: SET_LORA_MODES_CMD "PreambleLength | 5 - 6 | 6 - 65535".
PREAMBLE_RANGE = (6, 65535)
#: SyncWord table: "0x12 Private", "0x34 Public" (the capture uses 0x55: any byte goes).
SYNC_WORD_PRIVATE = 0x12
SYNC_WORD_PUBLIC = 0x34
#: Packet Length byte sent in explicit mode, where the seed says the field is only used in
#: implicit mode. 0xFF is the SX127x RegPayloadMaxLength default (datasheet, thesis ~18712):
#: a firmware that does use it as a limit then limits nothing.
EXPLICIT_LENGTH_BYTE = 0xFF
#: Frequencies a 433 MHz EByte module can use. Every module in the seed's hardware table is a
#: 433/400/470 MHz part (E32-433, E22-400, E220-400, E78-470) built around a LoRa core's
#: low-frequency port: SX1276-family "Band 2 (LF) 410-525 MHz" (SX1276 datasheet,
#: thesis ~16435; the SX1278 itself stops at 525 MHz, Table 1, ~12456).
EBYTE_433_BAND_HZ = (410_000_000, 525_000_000)

_HOST_TO_MODULE_ONLY = "host"
_MODULE_TO_HOST_ONLY = "module"


class PacketType(enum.IntEnum):
    """The "Command Packet" table: packet info values."""

    SET_LORA_PARAMS = 0x01
    REQ_LORA_PARAMS = 0x02
    REQ_AIR_PKT = 0x03
    GET_RSSI = 0x04
    SET_RSSI = 0x05
    GET_MODULE_NAME = 0x06
    GET_MODULE_NAME_RSP = 0x07
    GET_LORACORE_NAME = 0x08
    GET_LORACORE_NAME_RSP = 0x09
    SET_LORA_MODES = 0x0A
    REQ_LORA_MODES = 0x0B
    AIR_PKT = 0x80


class Sender(enum.Enum):
    """Who wrote a byte stream; AIR_PKT's layout and the legal packet types depend on it."""

    HOST = "host"
    MODULE = "module"


# --- errors -------------------------------------------------------------------------------


class EByteProtocolError(MalformedFrameError):
    """Bytes that are not a valid EByte custom-firmware frame."""


class UnknownPacketType(EByteProtocolError):
    """Packet info byte not in the seed's "Command Packet" table."""


class BadLength(EByteProtocolError):
    """Payload length impossible for the packet type (or above 258)."""


class WrongDirection(EByteProtocolError):
    """A well-formed packet that only the other side sends (e.g. SET_LORA_PARAMS from a module)."""


class BadField(EByteProtocolError):
    """A field value outside the seed's tables (BW code 0x0A, CR code 0, preamble 3, ...)."""


# --- messages -----------------------------------------------------------------------------


def _int_in(name: str, value: int, lo: int = 0, hi: int = 0xFF) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} {value!r} must be an int {lo}..{hi}")
    return value


class _Message:
    """Base: a typed EByte packet. Subclasses define TYPE, SENDERS, payload() and parse()."""

    TYPE: ClassVar[PacketType]
    #: Which side may send it ("host", "module" or both).
    SENDERS: ClassVar[frozenset[Sender]]

    def payload(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, payload: bytes) -> "_Message":
        return cls()

    def encode(self) -> bytes:
        """The complete frame, start of frame included."""
        return encode_frame(self.TYPE, self.payload())


_HOST = frozenset({Sender.HOST})
_MODULE = frozenset({Sender.MODULE})
_BOTH = frozenset({Sender.HOST, Sender.MODULE})


@dataclass(frozen=True)
class SetLoraParams(_Message):
    """SET_LORA_PARAMS_CMD (host -> module): frequency, BW code, SF, CR code (7 bytes).

    Held as physical values (Hz, SF, coding-rate denominator 5..8); the codes are derived.
    """

    TYPE: ClassVar[PacketType] = PacketType.SET_LORA_PARAMS
    SENDERS: ClassVar[frozenset[Sender]] = _HOST
    frequency_hz: int
    bandwidth_hz: int
    sf: int
    coding_rate: int

    def __post_init__(self) -> None:
        _int_in("frequency_hz", self.frequency_hz, 0, 0xFFFFFFFF)
        if self.bandwidth_hz not in BW_CODES.values():
            raise ConfigError(f"bandwidth {self.bandwidth_hz!r} Hz has no EByte BW code")
        if self.sf not in SF_CODES:
            raise ConfigError(f"spreading factor {self.sf!r} has no EByte SF code (5..12)")
        if self.coding_rate not in CR_CODES.values():
            raise ConfigError(f"coding rate 4/{self.coding_rate!r} has no EByte CR code (4/5..4/8)")

    @property
    def bw_code(self) -> int:
        return next(code for code, hz in BW_CODES.items() if hz == self.bandwidth_hz)

    @property
    def cr_code(self) -> int:
        return self.coding_rate - 4

    def payload(self) -> bytes:
        return struct.pack("<IBBB", self.frequency_hz, self.bw_code, self.sf, self.cr_code)

    @classmethod
    def parse(cls, payload: bytes) -> "SetLoraParams":
        freq, bw, sf, cr = struct.unpack("<IBBB", payload)
        if bw not in BW_CODES:
            raise BadField(f"SET_LORA_PARAMS: bandwidth code 0x{bw:02X} is not 0x00..0x09")
        if sf not in SF_CODES:
            raise BadField(f"SET_LORA_PARAMS: spreading factor code 0x{sf:02X} is not 0x05..0x0C")
        if cr not in CR_CODES:
            raise BadField(f"SET_LORA_PARAMS: coding rate code 0x{cr:02X} is not 0x01..0x04")
        return cls(freq, BW_CODES[bw], sf, CR_CODES[cr])


@dataclass(frozen=True)
class SetLoraModes(_Message):
    """SET_LORA_MODES_CMD (host -> module): header mode, implicit length, CRC, IQ, preamble,
    sync word (8 bytes). ``dio_mapping`` is "not used, always 1"."""

    TYPE: ClassVar[PacketType] = PacketType.SET_LORA_MODES
    SENDERS: ClassVar[frozenset[Sender]] = _HOST
    explicit_header: bool
    packet_length: int  # only meaningful in implicit mode
    crc_on: bool
    iq_inverted: bool
    preamble_symbols: int
    sync_word: int
    dio_mapping: int = 1

    def __post_init__(self) -> None:
        _int_in("packet_length", self.packet_length)
        if not self.explicit_header and self.packet_length == 0:
            raise ConfigError("implicit header mode needs a packet length 1..255")
        _int_in("preamble_symbols", self.preamble_symbols, *PREAMBLE_RANGE)
        _int_in("sync_word", self.sync_word)
        _int_in("dio_mapping", self.dio_mapping)

    def payload(self) -> bytes:
        return struct.pack(
            "<BBBBBHB", 0 if self.explicit_header else 1, self.packet_length, self.dio_mapping,
            int(self.crc_on), int(self.iq_inverted), self.preamble_symbols, self.sync_word,
        )

    @classmethod
    def parse(cls, payload: bytes) -> "SetLoraModes":
        fmt, length, dio, crc, iq, preamble, sync = struct.unpack("<BBBBBHB", payload)
        for name, value in (("packet format", fmt), ("CrcOnPayload", crc), ("InvertIQ", iq)):
            if value not in (0, 1):
                raise BadField(f"SET_LORA_MODES: {name} 0x{value:02X} is not 0x00 or 0x01")
        if fmt == 1 and length == 0:
            raise BadField("SET_LORA_MODES: implicit mode with packet length 0")
        lo, hi = PREAMBLE_RANGE
        if not lo <= preamble <= hi:
            raise BadField(f"SET_LORA_MODES: preamble length {preamble} is not {lo}..{hi}")
        return cls(fmt == 0, length, bool(crc), bool(iq), preamble, sync, dio)


@dataclass(frozen=True)
class ReqLoraParams(_Message):
    """REQ_LORA_PARAMS_CMD (module -> host): "send me SET_LORA_PARAMS" (after SET_LORA_MODES)."""

    TYPE: ClassVar[PacketType] = PacketType.REQ_LORA_PARAMS
    SENDERS: ClassVar[frozenset[Sender]] = _MODULE


@dataclass(frozen=True)
class ReqAirPkt(_Message):
    """REQ_AIR_PKT_CMD (module -> host): radio initialised, receiving, ready to transmit."""

    TYPE: ClassVar[PacketType] = PacketType.REQ_AIR_PKT
    SENDERS: ClassVar[frozenset[Sender]] = _MODULE


@dataclass(frozen=True)
class ReqLoraModes(_Message):
    """REQ_LORA_MODES_CMD (module -> host): "send me SET_LORA_MODES" (a module that booted)."""

    TYPE: ClassVar[PacketType] = PacketType.REQ_LORA_MODES
    SENDERS: ClassVar[frozenset[Sender]] = _MODULE


@dataclass(frozen=True)
class GetRssi(_Message):
    """GET_RSSI_CMD (host -> module): the module answers SET_RSSI with the current RSSI."""

    TYPE: ClassVar[PacketType] = PacketType.GET_RSSI
    SENDERS: ClassVar[frozenset[Sender]] = _HOST


@dataclass(frozen=True)
class SetRssi(_Message):
    """SET_RSSI_CMD (both ways, int16 LE): from the host the listen-before-talk threshold
    ("above which the module's radio will not attempt to transmit"), from the module the RSSI
    it measured when asked."""

    TYPE: ClassVar[PacketType] = PacketType.SET_RSSI
    SENDERS: ClassVar[frozenset[Sender]] = _BOTH
    rssi_dbm: int

    def __post_init__(self) -> None:
        _int_in("rssi_dbm", self.rssi_dbm, -32768, 32767)

    def payload(self) -> bytes:
        return struct.pack("<h", self.rssi_dbm)

    @classmethod
    def parse(cls, payload: bytes) -> "SetRssi":
        return cls(struct.unpack("<h", payload)[0])


@dataclass(frozen=True)
class GetModuleName(_Message):
    TYPE: ClassVar[PacketType] = PacketType.GET_MODULE_NAME
    SENDERS: ClassVar[frozenset[Sender]] = _HOST


@dataclass(frozen=True)
class GetLoraCoreName(_Message):
    TYPE: ClassVar[PacketType] = PacketType.GET_LORACORE_NAME
    SENDERS: ClassVar[frozenset[Sender]] = _HOST


def _name_bytes(name: str) -> bytes:
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        raise ConfigError(f"module/core name {name!r} must be ASCII") from None
    if len(raw) > MAX_PAYLOAD_LEN:
        raise ConfigError(f"name of {len(raw)} bytes is longer than {MAX_PAYLOAD_LEN}")
    return raw


def _name_text(payload: bytes) -> str:
    # A C firmware may send its terminating NUL; any non-ASCII byte stays visible as \xNN.
    return payload.rstrip(b"\x00").decode("ascii", errors="backslashreplace")


@dataclass(frozen=True)
class ModuleName(_Message):
    """GET_MODULE_NAME_RSP (module -> host), e.g. ``e32-433t30d-10010-v6.2``."""

    TYPE: ClassVar[PacketType] = PacketType.GET_MODULE_NAME_RSP
    SENDERS: ClassVar[frozenset[Sender]] = _MODULE
    name: str

    def payload(self) -> bytes:
        return _name_bytes(self.name)

    @classmethod
    def parse(cls, payload: bytes) -> "ModuleName":
        return cls(_name_text(payload))


@dataclass(frozen=True)
class LoraCoreName(_Message):
    """GET_LORACORE_NAME_RSP (module -> host), e.g. ``SX1278``."""

    TYPE: ClassVar[PacketType] = PacketType.GET_LORACORE_NAME_RSP
    SENDERS: ClassVar[frozenset[Sender]] = _MODULE
    name: str

    def payload(self) -> bytes:
        return _name_bytes(self.name)

    @classmethod
    def parse(cls, payload: bytes) -> "LoraCoreName":
        return cls(_name_text(payload))


def _check_air_data(data: bytes) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ConfigError(f"air packet data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if not 1 <= len(data) <= MAX_AIR_DATA_LEN:
        raise ConfigError(f"air packet of {len(data)} bytes: LoRa carries 1..{MAX_AIR_DATA_LEN}")
    return data


@dataclass(frozen=True)
class AirPacketFromHost(_Message):
    """AIR_PKT_CMD from the host: data to transmit + 3 unused bytes (sent as zero, as the
    seed's transmitter capture does)."""

    TYPE: ClassVar[PacketType] = PacketType.AIR_PKT
    SENDERS: ClassVar[frozenset[Sender]] = _HOST
    data: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_air_data(self.data))

    def payload(self) -> bytes:
        return self.data + bytes(AIR_PKT_TRAILER_LEN)

    @classmethod
    def parse(cls, payload: bytes) -> "AirPacketFromHost":
        return cls(payload[:-AIR_PKT_TRAILER_LEN])  # the trailer is "not used": ignore it


@dataclass(frozen=True)
class AirPacketFromModule(_Message):
    """AIR_PKT_CMD from the module: received data + RSSI (int16 LE) + SNR (int8)."""

    TYPE: ClassVar[PacketType] = PacketType.AIR_PKT
    SENDERS: ClassVar[frozenset[Sender]] = _MODULE
    data: bytes
    rssi_dbm: int
    snr_db: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_air_data(self.data))
        _int_in("rssi_dbm", self.rssi_dbm, -32768, 32767)
        _int_in("snr_db", self.snr_db, -128, 127)

    def payload(self) -> bytes:
        return self.data + struct.pack("<hb", self.rssi_dbm, self.snr_db)

    @classmethod
    def parse(cls, payload: bytes) -> "AirPacketFromModule":
        rssi, snr = struct.unpack("<hb", payload[-AIR_PKT_TRAILER_LEN:])
        return cls(payload[:-AIR_PKT_TRAILER_LEN], rssi, snr)


Message = Union[
    SetLoraParams, ReqLoraParams, ReqAirPkt, GetRssi, SetRssi, GetModuleName, ModuleName,
    GetLoraCoreName, LoraCoreName, SetLoraModes, ReqLoraModes, AirPacketFromHost,
    AirPacketFromModule,
]

# (packet type, sender) -> (message class, smallest payload, largest payload)
_FIXED = {
    SetLoraParams: 7, ReqLoraParams: 0, ReqAirPkt: 0, GetRssi: 0, SetRssi: 2, GetModuleName: 0,
    GetLoraCoreName: 0, SetLoraModes: 8, ReqLoraModes: 0,
}
_AIR_LEN = (1 + AIR_PKT_TRAILER_LEN, MAX_AIR_DATA_LEN + AIR_PKT_TRAILER_LEN)
_RULES: dict[tuple[int, Sender], tuple[type, int, int]] = {}
for _cls, _n in _FIXED.items():
    for _sender in _cls.SENDERS:
        _RULES[(_cls.TYPE, _sender)] = (_cls, _n, _n)
for _cls in (ModuleName, LoraCoreName):
    _RULES[(_cls.TYPE, Sender.MODULE)] = (_cls, 0, MAX_PAYLOAD_LEN)
_RULES[(PacketType.AIR_PKT, Sender.HOST)] = (AirPacketFromHost, *_AIR_LEN)
_RULES[(PacketType.AIR_PKT, Sender.MODULE)] = (AirPacketFromModule, *_AIR_LEN)
del _cls, _n, _sender


def _other(sender: Sender) -> Sender:
    return Sender.MODULE if sender is Sender.HOST else Sender.HOST


def _check_header(ptype: int, length: int, sender: Sender) -> bool:
    """Validate a header; True if the frame is fine, False if it is a well-formed frame of the
    other direction. Raises UnknownPacketType / BadLength."""
    if length > MAX_PAYLOAD_LEN:
        raise BadLength(f"payload length {length} exceeds the protocol's {MAX_PAYLOAD_LEN} bytes")
    try:
        name = PacketType(ptype).name
    except ValueError:
        raise UnknownPacketType(f"unknown packet info 0x{ptype:02X}") from None
    own = _RULES.get((ptype, sender))
    rule = own or _RULES[(ptype, _other(sender))]
    _, lo, hi = rule
    if not lo <= length <= hi:
        expect = f"{lo}" if lo == hi else f"{lo}..{hi}"
        raise BadLength(f"{name} with payload length {length}, expected {expect}")
    return own is not None


def encode_frame(ptype: int, payload: bytes = b"") -> bytes:
    """``40 53 | ptype | len (LE16) | payload``."""
    _int_in("packet type", int(ptype))
    if len(payload) > MAX_PAYLOAD_LEN:
        raise ConfigError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_LEN}")
    return SOF + struct.pack("<BH", int(ptype), len(payload)) + bytes(payload)


def decode_payload(ptype: int, payload: bytes, sender: Sender) -> Message:
    """Typed message for one frame's type and payload, as sent by `sender`."""
    if not _check_header(ptype, len(payload), sender):
        raise WrongDirection(
            f"{PacketType(ptype).name} is only sent by the {_other(sender).value}, "
            f"not by the {sender.value}"
        )
    cls = _RULES[(ptype, sender)][0]
    try:
        return cls.parse(bytes(payload))
    except ConfigError as exc:  # a dataclass check on decoded values
        raise BadField(f"{PacketType(ptype).name}: {exc}") from None


def decode_frame(frame: bytes, sender: Sender) -> Message:
    """Decode exactly one complete frame (no leading garbage, no trailing bytes)."""
    frame = bytes(frame)
    if len(frame) < HEADER_LEN or frame[:2] != SOF:
        raise EByteProtocolError(f"not an EByte frame (no 40 53 header): {frame[:8].hex(' ')}")
    ptype, length = frame[2], int.from_bytes(frame[3:5], "little")
    if len(frame) != HEADER_LEN + length:
        raise BadLength(f"frame of {len(frame)} bytes announces a {length}-byte payload")
    return decode_payload(ptype, frame[HEADER_LEN:], sender)


# --- stream parser ------------------------------------------------------------------------


@dataclass
class ParserCounters:
    """What a :class:`FrameParser` accepted and rejected (for diagnostics)."""

    frames: int = 0  # messages delivered
    discarded_bytes: int = 0  # bytes skipped while hunting for a start of frame
    unknown_type: int = 0
    bad_length: int = 0
    bad_field: int = 0
    wrong_direction: int = 0
    stalled: int = 0  # partial frames given up after an inter-byte timeout

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class FrameParser:
    """Incremental parser for the byte stream one side (`sender`) writes.

    ``feed(bytes) -> [messages]`` never raises on any input: rejected frames are counted in
    :attr:`counters` and described in :attr:`last_error`. Memory is bounded by one frame.
    """

    sender: Sender
    counters: ParserCounters = field(default_factory=ParserCounters)
    last_error: EByteProtocolError | None = None
    _buf: bytearray = field(default_factory=bytearray, repr=False)

    @property
    def pending(self) -> bool:
        """True while bytes of an incomplete frame (or half a start of frame) are buffered."""
        return bool(self._buf)

    @property
    def buffered(self) -> int:
        """Bytes held back (never more than one maximal frame)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        return self._drain()

    def resync(self) -> list[Message]:
        """Give up the buffered partial frame (its bytes stopped coming): skip its start of
        frame and re-scan the rest, which may hold a real frame."""
        if not self._buf:
            return []
        if len(self._buf) >= 2:  # more than a lone 0x40: a frame really stalled
            self.counters.stalled += 1
            self.last_error = EByteProtocolError(
                f"incomplete frame given up: {bytes(self._buf[:HEADER_LEN]).hex(' ')}..."
            )
        self._skip(1)
        return self._drain()

    def reset(self) -> None:
        """Forget buffered bytes (e.g. after reopening the port); counters are kept."""
        self._buf.clear()

    def _skip(self, n: int) -> None:
        del self._buf[:n]
        self.counters.discarded_bytes += n

    def _reject(self, exc: EByteProtocolError, counter: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.last_error = exc
        self._skip(1)  # restart the hunt one byte later: a real frame may start inside

    def _drain(self) -> list[Message]:
        out: list[Message] = []
        buf = self._buf
        while buf:
            start = buf.find(SOF)
            if start < 0:
                # Keep a trailing 0x40: it may be the first half of the next start of frame.
                self._skip(len(buf) - 1 if buf[-1] == SOF[0] else len(buf))
                break
            if start:
                self._skip(start)
            if len(buf) < HEADER_LEN:
                break
            ptype, length = buf[2], buf[3] | (buf[4] << 8)
            try:
                ours = _check_header(ptype, length, self.sender)
            except UnknownPacketType as exc:
                self._reject(exc, "unknown_type")
                continue
            except BadLength as exc:
                self._reject(exc, "bad_length")
                continue
            total = HEADER_LEN + length
            if len(buf) < total:
                break
            if not ours:
                # Well-formed but the other side's packet (e.g. an echo): skip it whole.
                self.counters.wrong_direction += 1
                self.last_error = WrongDirection(
                    f"{PacketType(ptype).name} received from the {self.sender.value} side"
                )
                self._skip(total)
                continue
            try:
                msg = decode_payload(ptype, bytes(buf[HEADER_LEN:total]), self.sender)
            except BadField as exc:
                self._reject(exc, "bad_field")
                continue
            del buf[:total]
            self.counters.frames += 1
            out.append(msg)
        return out


# --- PhySettings mapping ------------------------------------------------------------------


def check_frequency(frequency_hz: int, band_hz: tuple[int, int] = EBYTE_433_BAND_HZ) -> int:
    """`frequency_hz` if the 433 MHz module can tune it, else ConfigError."""
    lo, hi = band_hz
    if not lo <= frequency_hz <= hi:
        raise ConfigError(
            f"{frequency_hz / 1e6:g} MHz is outside the EByte 433 MHz modules' band "
            f"{lo / 1e6:g}-{hi / 1e6:g} MHz"
        )
    return frequency_hz


def phy_to_messages(
    phy: PhySettings, implicit_length: int | None = None,
) -> tuple[SetLoraModes, SetLoraParams]:
    """The SET_LORA_MODES / SET_LORA_PARAMS pair that programs `phy`.

    Implicit header mode needs the fixed packet length, which PhySettings does not carry
    (`implicit_length`, 1..255). LDRO and TX power have no field in the protocol: the
    firmware decides them.
    """
    if phy.explicit_header:
        length = EXPLICIT_LENGTH_BYTE
    else:
        if implicit_length is None:
            raise ConfigError(
                "implicit header mode needs implicit_length (the fixed packet length)")
        length = _int_in("implicit_length", implicit_length, 1, MAX_AIR_DATA_LEN)
    lo, hi = PREAMBLE_RANGE
    if not lo <= phy.preamble_symbols <= hi:
        raise ConfigError(
            f"preamble of {phy.preamble_symbols} symbols: the EByte firmware takes {lo}..{hi}"
        )
    modes = SetLoraModes(
        explicit_header=phy.explicit_header, packet_length=length, crc_on=phy.crc_on,
        iq_inverted=phy.iq_inverted, preamble_symbols=phy.preamble_symbols,
        sync_word=phy.sync_word,
    )
    params = SetLoraParams(phy.frequency_hz, phy.bandwidth_hz, phy.sf, phy.coding_rate)
    return modes, params


def phy_from_messages(
    modes: SetLoraModes, params: SetLoraParams, tx_power_dbm: float | None = None,
) -> PhySettings:
    """The PhySettings a module programmed with `modes` and `params` transmits with."""
    if params.sf not in (6, 7, 8, 9, 10, 11, 12):
        raise ConfigError(f"SF{params.sf} (LLCC68/SX1262 only) cannot be described by PhySettings")
    return PhySettings(
        frequency_hz=params.frequency_hz, sf=params.sf, bandwidth_hz=params.bandwidth_hz,
        coding_rate=params.coding_rate, preamble_symbols=modes.preamble_symbols,
        explicit_header=modes.explicit_header, crc_on=modes.crc_on, ldro="auto",
        sync_word=modes.sync_word, iq_inverted=modes.iq_inverted, tx_power_dbm=tx_power_dbm,
    )


_POWER_IN_NAME = re.compile(r"(\d{2})[ds](?:-|$)")


def nominal_power_dbm(module_name: str) -> float | None:
    """TX power class from an EByte part number: "...T20D" 20 dBm, "...T30D" 30 dBm,
    "...LN22S" 22 dBm (EByte's naming; the seed's hardware table lists these parts)."""
    match = _POWER_IN_NAME.search(module_name.lower())
    return float(match.group(1)) if match else None
