"""Microchip RN2483 ASCII protocol, sans I/O: command encoding, CRLF line framing, response
classification and the two-stage answer state machine.

Everything here is pure: bytes and a clock value in, bytes, typed events and typed errors out.
The driver (:mod:`lora_telemetry.radios.rn2483.driver`) moves the bytes over a serial port; the
emulator (:mod:`lora_telemetry.radios.rn2483.emulator`) reuses the same parameter validators so the
two sides can never disagree on what a command accepts.

Source: "RN2483 LoRa Technology Module Command Reference User's Guide" (DS40001784F), carried in
the thesis file (``uav-swarm-lora-thesis-with-datasheets.txt``, lines ~19150-21694); section
numbers below are that guide's.

* Serial: 57600 bps 8N1, no flow control; every command and every reply ends in <CR><LF> (1.4).
* Replies: ``ok``, ``invalid_param``, the requested value, or a descriptive error (2.2 note).
* ``mac tx``, ``mac join``, ``radio tx`` and ``radio rx`` answer twice: ``ok`` (or an error) at
  once, then a second reply when the operation ends (2.4.2, 2.4.3, 2.5.1, 2.5.2).
* ``sys reset``/``sys factoryRESET``/``radio cw off`` answer with the version banner
  ``RN2483 X.Y.Z MMM DD YYYY HH:MM:SS`` (2.3.2, 2.3.4, 2.5.3). The same banner arriving
  unasked means the module rebooted and lost its unsaved configuration.
"""

from __future__ import annotations

import enum
import math
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.radios.base import Downlink, RadioBusy, RadioError

__all__ = [
    "BAUDRATE", "EOL", "MAX_LINE", "BAND_RANGES_HZ", "rf_port_band", "PAUSE_FOREVER_MS",
    "RN2483Error", "InvalidParam", "NotJoined", "NoFreeChannel", "Silent",
    "FrameCounterRolledOver", "MacBusy", "MacPaused", "InvalidDataLength", "KeysNotInitialised",
    "JoinDenied", "MacTxFailed", "RadioOperationFailed", "RN2483ArgumentError",
    "ERROR_RESPONSES", "error_for",
    "Version", "parse_banner", "banner_text",
    "Expect", "Command", "LineFramer", "LineKind", "Line", "classify_line",
    "Downlink", "MacTxOutcome",
    "Accepted", "Completed", "Failed", "ResetDetected", "Garbage", "UnsolicitedDownlink",
    "TimedOut", "Event", "RN2483Protocol",
    "validate_radio_set", "validate_mac_set", "validate_mac_set_ch", "RADIO_SET_PARAMS",
    "MAC_SET_PARAMS", "check_frequency", "parse_hex_data",
    "sys_reset", "sys_factory_reset", "sys_get_ver", "sys_get_hweui", "sys_get_vdd",
    "sys_sleep", "sys_get_nvm", "sys_set_nvm",
    "mac_reset", "mac_tx", "mac_join", "mac_save", "mac_force_enable", "mac_pause",
    "mac_resume", "mac_set", "mac_set_ch", "mac_get", "mac_get_ch",
    "radio_tx", "radio_rx", "radio_rx_report", "radio_cw", "radio_set", "radio_get",
    "command_from_text",
]

#: Default UART settings (command reference 1.4; datasheet Table 3-1).
BAUDRATE = 57600
EOL = b"\r\n"
#: Longest legal line: "radio_rx " + 255 bytes as hex = 519 characters; commands are similar.
MAX_LINE = 600
#: The two frequency ranges every frequency parameter accepts (2.4.8.15, 2.4.8.19.1, 2.5.4.3).
BAND_RANGES_HZ: tuple[tuple[int, int], ...] = ((433_050_000, 434_790_000),
                                               (863_000_000, 870_000_000))


def rf_port_band(frequency_hz: int) -> int:
    """433 or 868: which of the module's two RF outputs serves ``frequency_hz`` (each has its
    own power table, 2.5.4.14)."""
    low, high = BAND_RANGES_HZ[0]
    return 433 if low <= frequency_hz <= high else 868


#: ``mac pause`` answer when the LoRaWAN stack is idle: "the maximum value (4294967295)" (2.4.6).
PAUSE_FOREVER_MS = 4_294_967_295
_U32_MAX = 4_294_967_295


# ----------------------------------------------------------------------------------------- errors


class RN2483Error(RadioError):
    """The module answered a documented error string. ``response`` is that string."""

    response = ""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


class InvalidParam(RN2483Error):
    """``invalid_param``: a parameter or the command itself was not accepted (2.2)."""

    response = "invalid_param"


class NotJoined(RN2483Error):
    """``not_joined``: ``mac tx`` before ``mac join`` succeeded (2.4.2)."""

    response = "not_joined"


class NoFreeChannel(RN2483Error, RadioBusy):
    """``no_free_ch``: every enabled channel is resting for its duty cycle (2.4.2, 2.4.3)."""

    response = "no_free_ch"


class Silent(RN2483Error):
    """``silent``: the network told the module to go silent; ``mac forceENABLE`` lifts it."""

    response = "silent"


class FrameCounterRolledOver(RN2483Error):
    """``frame_counter_err_rejoin_needed``: the uplink frame counter rolled over (2.4.2)."""

    response = "frame_counter_err_rejoin_needed"


class MacBusy(RN2483Error, RadioBusy):
    """``busy``: the MAC (or the transceiver, for ``radio`` commands) is not idle."""

    response = "busy"


class MacPaused(RN2483Error):
    """``mac_paused``: ``mac pause`` is in force; ``mac resume`` first (2.4.2, 2.4.3)."""

    response = "mac_paused"


class InvalidDataLength(RN2483Error):
    """``invalid_data_len``: the payload exceeds the maximum for the current data rate."""

    response = "invalid_data_len"


class KeysNotInitialised(RN2483Error):
    """``keys_not_init``: the keys the join mode needs were never set (2.4.3)."""

    response = "keys_not_init"


class JoinDenied(RN2483Error):
    """``denied``: the join procedure failed (second answer of ``mac join``, 2.4.3)."""

    response = "denied"


class MacTxFailed(RN2483Error):
    """``mac_err``: the uplink failed, e.g. no ACK for a confirmed frame (2.4.2)."""

    response = "mac_err"


class RadioOperationFailed(RN2483Error):
    """``radio_err``: a raw transmission was cut by the radio watchdog, or a reception timed
    out or failed (2.5.1, 2.5.2)."""

    response = "radio_err"


class RN2483ArgumentError(ConfigError):
    """A value the RN2483 would reject, caught on the host before sending it."""


#: Every documented error answer -> its exception class.
ERROR_RESPONSES: dict[str, type[RN2483Error]] = {
    cls.response: cls
    for cls in (InvalidParam, NotJoined, NoFreeChannel, Silent, FrameCounterRolledOver, MacBusy,
                MacPaused, InvalidDataLength, KeysNotInitialised, JoinDenied, MacTxFailed,
                RadioOperationFailed)
}

_ERROR_TEXT = {
    "invalid_param": "the module rejected a parameter or the command",
    "not_joined": "the module has not joined a network (mac join first)",
    "no_free_ch": "all enabled channels are busy (duty cycle)",
    "silent": "the module is in the Silent Immediately state (mac forceENABLE lifts it)",
    "frame_counter_err_rejoin_needed": "the uplink frame counter rolled over; rejoin needed",
    "busy": "the MAC or transceiver is busy",
    "mac_paused": "the LoRaWAN MAC is paused (mac resume first)",
    "invalid_data_len": "the payload is too long for the current data rate",
    "keys_not_init": "the keys for this join mode are not configured",
    "denied": "the join procedure was rejected",
    "mac_err": "the uplink failed (no ACK received)",
    "radio_err": "the radio operation failed (watchdog time-out or reception time-out/error)",
}


def error_for(response: str, command: str | None = None) -> RN2483Error:
    """The exception for a documented error answer (KeyError if it is not one)."""
    cls = ERROR_RESPONSES[response]
    where = f" to {command!r}" if command else ""
    return cls(f"RN2483 answered {response!r}{where}: {_ERROR_TEXT[response]}", command=command)


# ----------------------------------------------------------------------------------------- banner

_BANNER_RE = re.compile(
    r"^(RN\d{4}) (\d+)\.(\d+)\.(\d+) ([A-Z][a-z]{2}) +(\d{1,2}) (\d{4}) (\d{2}:\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class Version:
    """A parsed banner: ``RN2483 1.0.5 Oct 31 2018 15:06:52`` ([HW] [FW] [Date] [Time], 2.3.2)."""

    model: str
    firmware: tuple[int, int, int]
    date: str
    time: str
    text: str

    @property
    def firmware_text(self) -> str:
        return ".".join(str(x) for x in self.firmware)


def parse_banner(line: str) -> Version | None:
    """The version banner in ``line``, or None. Any RN-family model is recognised (an RN2903
    answering is still a reset signal); callers check ``model`` themselves."""
    m = _BANNER_RE.match(line)
    if m is None:
        return None
    model, a, b, c, mon, day, year, hms = m.groups()
    return Version(model, (int(a), int(b), int(c)), f"{mon} {int(day):2d} {year}", hms, line)


def banner_text(model: str, firmware: str, date: str, time_: str) -> str:
    return f"{model} {firmware} {date} {time_}"


# ---------------------------------------------------------------------------------------- framing


class LineFramer:
    """Split a byte stream into CRLF-terminated ASCII lines, robust against line noise.

    Bytes outside printable ASCII are dropped and counted (``garbage_bytes``); a line growing
    past ``max_line`` without a terminator is discarded (``overlong_lines``) so a babbling port
    cannot grow memory. A bare LF also ends a line (a stray CR is dropped as noise).
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._overflow = False
        self.garbage_bytes = 0
        self.overlong_lines = 0

    def reset(self) -> None:
        self._buf.clear()
        self._overflow = False

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        for byte in data:
            if byte == 0x0A:  # LF ends the line
                if self._overflow:
                    self.overlong_lines += 1
                else:
                    lines.append(self._buf.decode("ascii"))
                self._buf.clear()
                self._overflow = False
            elif 0x20 <= byte <= 0x7E:
                if self._overflow:
                    continue
                self._buf.append(byte)
                if len(self._buf) > self.max_line:
                    self._buf.clear()
                    self._overflow = True
            elif byte != 0x0D:
                self.garbage_bytes += 1
        return lines


# --------------------------------------------------------------------------- response classification


class LineKind(enum.Enum):
    OK = "ok"
    ERROR = "error"  # one of ERROR_RESPONSES that is not a second-stage-only answer
    BANNER = "banner"
    MAC_TX_OK = "mac_tx_ok"
    MAC_RX = "mac_rx"
    MAC_ERR = "mac_err"
    INVALID_DATA_LEN = "invalid_data_len"  # first or second answer of mac tx
    ACCEPTED = "accepted"
    DENIED = "denied"
    RADIO_TX_OK = "radio_tx_ok"
    RADIO_RX = "radio_rx"
    RADIO_ERR = "radio_err"
    OTHER = "other"  # a value (e.g. "868") or noise: meaning depends on the pending command


@dataclass(frozen=True)
class Line:
    kind: LineKind
    text: str
    version: Version | None = None
    port: int | None = None
    data: bytes | None = None


_HEX = frozenset(string.hexdigits)


def parse_hex_data(text: str, *, min_bytes: int = 0, max_bytes: int = 255) -> bytes | None:
    """Hex text (either case, even length) to bytes, or None if it is not that."""
    if len(text) % 2 or not all(c in _HEX for c in text):
        return None
    n = len(text) // 2
    if not min_bytes <= n <= max_bytes:
        return None
    return bytes.fromhex(text)


_SIMPLE = {
    "ok": LineKind.OK, "mac_tx_ok": LineKind.MAC_TX_OK, "mac_err": LineKind.MAC_ERR,
    "invalid_data_len": LineKind.INVALID_DATA_LEN, "accepted": LineKind.ACCEPTED,
    "denied": LineKind.DENIED, "radio_tx_ok": LineKind.RADIO_TX_OK, "radio_err": LineKind.RADIO_ERR,
}


def classify_line(text: str) -> Line:
    """What a line is, independent of the command it answers."""
    kind = _SIMPLE.get(text)
    if kind is not None:
        return Line(kind, text)
    if text in ERROR_RESPONSES:
        return Line(LineKind.ERROR, text)
    if text.startswith("mac_rx "):
        parts = text.split(" ")
        if len(parts) == 3 and parts[1].isdecimal() and 1 <= int(parts[1]) <= 255:
            data = parse_hex_data(parts[2], min_bytes=1)
            if data is not None:
                return Line(LineKind.MAC_RX, text, port=int(parts[1]), data=data)
        return Line(LineKind.OTHER, text)
    if text.startswith("radio_rx "):
        # The module prints two spaces after radio_rx on some firmware; accept any run.
        data = parse_hex_data(text[len("radio_rx"):].strip(), min_bytes=1)
        if data is not None:
            return Line(LineKind.RADIO_RX, text, data=data)
        return Line(LineKind.OTHER, text)
    version = parse_banner(text)
    if version is not None:
        return Line(LineKind.BANNER, text, version=version)
    return Line(LineKind.OTHER, text)


# ------------------------------------------------------------------------------------- commands


class Expect(enum.Enum):
    """Which answers a command gets."""

    OK = "ok"  # ok | error
    VALUE = "value"  # a value | error
    BANNER = "banner"  # the version banner
    MAC_TX = "mac_tx"  # ok|error, then mac_tx_ok | mac_rx | mac_err | invalid_data_len
    JOIN = "join"  # ok|error, then accepted | denied
    RADIO_TX = "radio_tx"  # ok|error, then radio_tx_ok | radio_err
    RADIO_RX = "radio_rx"  # ok|error, then radio_rx <hex> | radio_err
    NOTHING = "nothing"  # sys eraseFW: "no response" (2.3.3)

    @property
    def two_stage(self) -> bool:
        return self in (Expect.MAC_TX, Expect.JOIN, Expect.RADIO_TX, Expect.RADIO_RX)


ValueParser = Callable[[str], Any]


@dataclass(frozen=True)
class Command:
    """One command line and what it expects back. ``parse`` turns a VALUE answer into a
    Python value and returns None for a line that cannot be that value."""

    text: str
    expect: Expect = Expect.OK
    parse: ValueParser | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.text or len(self.text) > MAX_LINE or not all(
            0x20 <= ord(c) <= 0x7E for c in self.text
        ):
            raise RN2483ArgumentError(
                f"RN2483 command must be 1..{MAX_LINE} printable ASCII characters: {self.text!r}"
            )

    def encode(self) -> bytes:
        return self.text.encode("ascii") + EOL

    @property
    def secret_free_text(self) -> str:
        """The text with key material masked, for logs and error messages."""
        parts = self.text.split(" ")
        if len(parts) == 4 and parts[:2] == ["mac", "set"] and parts[2] in (
            "nwkskey", "appskey", "appkey"
        ):
            return " ".join(parts[:3] + ["*" * 32])
        return self.text


# ---------------------------------------------------------------------- value parsers (answers)


def _int_parser(lo: int, hi: int) -> ValueParser:
    def parse(text: str) -> int | None:
        if re.fullmatch(r"-?\d{1,10}", text):
            value = int(text)
            if lo <= value <= hi:
                return value
        return None
    return parse


def _hex_parser(digits: int) -> ValueParser:
    def parse(text: str) -> str | None:
        if len(text) == digits and all(c in _HEX for c in text):
            return text.upper()
        return None
    return parse


def _hex_any(text: str) -> str | None:
    if 1 <= len(text) <= 16 and all(c in _HEX for c in text):
        return text.upper()
    return None


def _choice_parser(*choices: str) -> ValueParser:
    def parse(text: str) -> str | None:
        return text if text in choices else None
    return parse


def _on_off(text: str) -> bool | None:
    return {"on": True, "off": False}.get(text)


def _two_ints(lo1: int, hi1: int, lo2: int, hi2: int) -> ValueParser:
    first, second = _int_parser(lo1, hi1), _int_parser(lo2, hi2)

    def parse(text: str) -> tuple[int, int] | None:
        parts = text.split(" ")
        if len(parts) != 2:
            return None
        a, b = first(parts[0]), second(parts[1])
        return None if a is None or b is None else (a, b)
    return parse


def _any_value(text: str) -> str | None:
    """Raw commands: any line that is not a status word counts as the value."""
    kind = classify_line(text).kind
    return text if kind is LineKind.OTHER and text else None


def _banner_value(text: str) -> Version | None:
    return parse_banner(text)


# ------------------------------------------------------------------------- parameter validators


def _int_arg(value: Any, lo: int, hi: int, what: str) -> str:
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,10}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RN2483ArgumentError(f"{what} must be an integer {lo}..{hi}, got {value!r}")
    return str(value)


def _hex_arg(value: Any, digits: int, what: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 16 ** digits:
        value = f"{value:0{digits}X}"
    if not isinstance(value, str) or len(value) != digits or not all(c in _HEX for c in value):
        raise RN2483ArgumentError(f"{what} must be {digits} hex digits, got {value!r}")
    return value.upper()


def _on_off_arg(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return value.lower()
    raise RN2483ArgumentError(f"{what} must be on/off (or a bool), got {value!r}")


def check_frequency(value: Any, what: str = "frequency") -> str:
    """433050000-434790000 or 863000000-870000000 Hz (2.4.8.15, 2.5.4.3)."""
    text = _int_arg(value, 0, _U32_MAX, what)
    hz = int(text)
    if not any(lo <= hz <= hi for lo, hi in BAND_RANGES_HZ):
        raise RN2483ArgumentError(
            f"{what} {hz} Hz is outside the RN2483 bands 433050000-434790000 and "
            "863000000-870000000 Hz"
        )
    return text


def _choice_arg(value: Any, choices: tuple[str, ...], what: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int, float)) else None
    if isinstance(value, bool) or text is None:
        raise RN2483ArgumentError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    if text.lower() in choices:
        return text.lower()
    if isinstance(value, float) and f"{value:g}" in choices:
        return f"{value:g}"
    raise RN2483ArgumentError(f"{what} must be one of {', '.join(choices)}, got {value!r}")


def _sf_arg(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"sf{value}"
    return _choice_arg(value, ("sf7", "sf8", "sf9", "sf10", "sf11", "sf12"),
                       "radio set sf (2.5.4.5)")


def _cr_arg(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"4/{value}"
    return _choice_arg(value, ("4/5", "4/6", "4/7", "4/8"), "radio set cr (2.5.4.13)")


def _sync_arg(value: Any) -> str:
    """LoRa: one byte; FSK: up to eight bytes (2.5.4.15)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF:
        return f"{value:02X}"
    if isinstance(value, (bytes, bytearray)) and 1 <= len(value) <= 8:
        return bytes(value).hex().upper()
    if isinstance(value, str) and 1 <= len(value) <= 16 and all(c in _HEX for c in value):
        return value.upper()
    raise RN2483ArgumentError(
        f"radio set sync takes 1 byte (LoRa) or up to 8 bytes (FSK) as hex, got {value!r}"
    )


_FSK_BW = ("250", "125", "62.5", "31.3", "15.6", "7.8", "3.9", "200", "100", "50", "25", "12.5",
           "6.3", "3.1", "166.7", "83.3", "41.7", "20.8", "10.4", "5.2", "2.6")

#: ``radio set`` parameters and their validators (2.5.4.1 - 2.5.4.16).
RADIO_SET_PARAMS: dict[str, Callable[[Any], str]] = {
    "bt": lambda v: _choice_arg(v, ("none", "1.0", "0.5", "0.3"), "radio set bt (2.5.4.1)"),
    "mod": lambda v: _choice_arg(v, ("lora", "fsk"), "radio set mod (2.5.4.2)"),
    "freq": lambda v: check_frequency(v, "radio set freq (2.5.4.3)"),
    "pwr": lambda v: _int_arg(v, -3, 15, "radio set pwr (2.5.4.4)"),
    "sf": _sf_arg,
    "afcbw": lambda v: _choice_arg(v, _FSK_BW, "radio set afcbw (2.5.4.6)"),
    "rxbw": lambda v: _choice_arg(v, _FSK_BW, "radio set rxbw (2.5.4.7)"),
    "bitrate": lambda v: _int_arg(v, 1, 300000, "radio set bitrate (2.5.4.8)"),
    "fdev": lambda v: _int_arg(v, 0, 200000, "radio set fdev (2.5.4.9)"),
    "prlen": lambda v: _int_arg(v, 0, 65535, "radio set prlen (2.5.4.10)"),
    "crc": lambda v: _on_off_arg(v, "radio set crc (2.5.4.11)"),
    "iqi": lambda v: _on_off_arg(v, "radio set iqi (2.5.4.12)"),
    "cr": _cr_arg,
    "wdt": lambda v: _int_arg(v, 0, _U32_MAX, "radio set wdt (2.5.4.14)"),
    "sync": _sync_arg,
    "bw": lambda v: _choice_arg(v, ("125", "250", "500"), "radio set bw (2.5.4.16)"),
}


def _rx2_arg(value: Any) -> str:
    if isinstance(value, str):
        value = tuple(value.split(" "))
    if not isinstance(value, tuple) or len(value) != 2:
        raise RN2483ArgumentError(f"mac set rx2 takes (dataRate, frequency), got {value!r}")
    return f"{_int_arg(value[0], 0, 7, 'rx2 data rate')} {check_frequency(value[1], 'rx2 frequency')}"


#: ``mac set`` parameters and their validators (2.4.8.1 - 2.4.8.18). ``pwridx`` is 0..5 here;
#: the band-specific limit (1..5 on 868 MHz, 2.4.8.7) is checked by :func:`validate_mac_set`.
MAC_SET_PARAMS: dict[str, Callable[[Any], str]] = {
    "devaddr": lambda v: _hex_arg(v, 8, "mac set devaddr (2.4.8.1)"),
    "deveui": lambda v: _hex_arg(v, 16, "mac set deveui (2.4.8.2)"),
    "appeui": lambda v: _hex_arg(v, 16, "mac set appeui (2.4.8.3)"),
    "nwkskey": lambda v: _hex_arg(v, 32, "mac set nwkskey (2.4.8.4)"),
    "appskey": lambda v: _hex_arg(v, 32, "mac set appskey (2.4.8.5)"),
    "appkey": lambda v: _hex_arg(v, 32, "mac set appkey (2.4.8.6)"),
    "pwridx": lambda v: _int_arg(v, 0, 5, "mac set pwridx (2.4.8.7)"),
    "dr": lambda v: _int_arg(v, 0, 7, "mac set dr (2.4.8.8)"),
    "adr": lambda v: _on_off_arg(v, "mac set adr (2.4.8.9)"),
    "bat": lambda v: _int_arg(v, 0, 255, "mac set bat (2.4.8.10)"),
    "retx": lambda v: _int_arg(v, 0, 255, "mac set retx (2.4.8.11)"),
    "linkchk": lambda v: _int_arg(v, 0, 65535, "mac set linkchk (2.4.8.12)"),
    "rxdelay1": lambda v: _int_arg(v, 0, 65535, "mac set rxdelay1 (2.4.8.13)"),
    "ar": lambda v: _on_off_arg(v, "mac set ar (2.4.8.14)"),
    "rx2": _rx2_arg,
    "sync": lambda v: _hex_arg(v, 2, "mac set sync (2.4.8.16)"),
    "upctr": lambda v: _int_arg(v, 0, _U32_MAX, "mac set upctr (2.4.8.17)"),
    "dnctr": lambda v: _int_arg(v, 0, _U32_MAX, "mac set dnctr (2.4.8.18)"),
}


def validate_radio_set(param: str, value: Any) -> str:
    """Canonical text of a ``radio set`` value, or RN2483ArgumentError."""
    try:
        check = RADIO_SET_PARAMS[param]
    except KeyError:
        raise RN2483ArgumentError(f"unknown radio set parameter {param!r}") from None
    return check(value)


def validate_mac_set(param: str, value: Any, band: int | None = None) -> str:
    """Canonical text of a ``mac set`` value, or RN2483ArgumentError."""
    try:
        check = MAC_SET_PARAMS[param]
    except KeyError:
        raise RN2483ArgumentError(f"unknown mac set parameter {param!r}") from None
    text = check(value)
    if param == "pwridx" and band == 868 and text == "0":
        raise RN2483ArgumentError("mac set pwridx is 1..5 on the 868 MHz band (2.4.8.7)")
    return text


def validate_mac_set_ch(param: str, channel: Any, *values: Any) -> str:
    """Canonical ``<channel> <values>`` text of a ``mac set ch`` command (2.4.8.19)."""
    if param == "freq":
        if len(values) != 1:
            raise RN2483ArgumentError("mac set ch freq takes <channel> <frequency>")
        # "The default channels (0-2) cannot be modified in terms of frequency" (2.4.8.19.1).
        return (f"{_int_arg(channel, 3, 15, 'mac set ch freq channel (2.4.8.19.1)')} "
                f"{check_frequency(values[0], 'channel frequency')}")
    ch = _int_arg(channel, 0, 15, f"mac set ch {param} channel")
    if param == "dcycle" and len(values) == 1:
        return f"{ch} {_int_arg(values[0], 0, 65535, 'mac set ch dcycle (2.4.8.19.2)')}"
    if param == "drrange" and len(values) == 2:
        lo = _int_arg(values[0], 0, 7, "mac set ch drrange minimum (2.4.8.19.3)")
        hi = _int_arg(values[1], 0, 7, "mac set ch drrange maximum (2.4.8.19.3)")
        if int(lo) > int(hi):
            raise RN2483ArgumentError(f"mac set ch drrange: minimum {lo} above maximum {hi}")
        return f"{ch} {lo} {hi}"
    if param == "status" and len(values) == 1:
        return f"{ch} {_on_off_arg(values[0], 'mac set ch status (2.4.8.19.4)')}"
    raise RN2483ArgumentError(f"bad mac set ch command: {param!r} {channel!r} {values!r}")


# ----------------------------------------------------------------------------- command builders


def sys_reset() -> Command:
    return Command("sys reset", Expect.BANNER, _banner_value)


def sys_factory_reset() -> Command:
    return Command("sys factoryRESET", Expect.BANNER, _banner_value)


def sys_get_ver() -> Command:
    return Command("sys get ver", Expect.VALUE, _banner_value)


def sys_get_hweui() -> Command:
    return Command("sys get hweui", Expect.VALUE, _hex_parser(16))


def sys_get_vdd() -> Command:
    return Command("sys get vdd", Expect.VALUE, _int_parser(0, 3600))


def sys_sleep(ms: int) -> Command:
    """``ok`` arrives when the module wakes up (2.3.1): the wait must cover ``ms``."""
    return Command(f"sys sleep {_int_arg(ms, 100, 4_294_967_296, 'sys sleep (2.3.1)')}")


def sys_get_nvm(address: int) -> Command:
    addr = _int_arg(address, 0x300, 0x3FF, "user EEPROM address (2.3.6.2)")
    return Command(f"sys get nvm {int(addr):X}", Expect.VALUE, _hex_parser(2))


def sys_set_nvm(address: int, value: int) -> Command:
    addr = _int_arg(address, 0x300, 0x3FF, "user EEPROM address (2.3.5.1)")
    data = _int_arg(value, 0, 0xFF, "user EEPROM data (2.3.5.1)")
    return Command(f"sys set nvm {int(addr):X} {int(data):02X}")


def mac_reset(band: int) -> Command:
    """``mac reset <band>``: 868 or 433 (2.4.1)."""
    if band not in (868, 433) or isinstance(band, bool):
        raise RN2483ArgumentError(f"mac reset band must be 868 or 433, got {band!r}")
    return Command(f"mac reset {band}")


def mac_tx(confirmed: bool, port: int, data: bytes) -> Command:
    """``mac tx cnf|uncnf <port 1..223> <hex>`` (2.4.2)."""
    p = _int_arg(port, 1, 223, "mac tx port (2.4.2)")
    data = bytes(data)
    if not 1 <= len(data) <= 255:
        raise RN2483ArgumentError(f"mac tx payload must be 1..255 bytes, got {len(data)}")
    return Command(f"mac tx {'cnf' if confirmed else 'uncnf'} {p} {data.hex().upper()}",
                   Expect.MAC_TX)


def mac_join(mode: str) -> Command:
    if not isinstance(mode, str) or mode.lower() not in ("otaa", "abp"):
        raise RN2483ArgumentError(f"mac join mode must be otaa or abp, got {mode!r}")
    return Command(f"mac join {mode.lower()}", Expect.JOIN)


def mac_save() -> Command:
    return Command("mac save")


def mac_force_enable() -> Command:
    return Command("mac forceENABLE")


def mac_pause() -> Command:
    """Answer: milliseconds the MAC stays paused; 0 = cannot pause now (2.4.6)."""
    return Command("mac pause", Expect.VALUE, _int_parser(0, _U32_MAX))


def mac_resume() -> Command:
    return Command("mac resume")


def mac_set(param: str, value: Any, *, band: int | None = None) -> Command:
    return Command(f"mac set {param} {validate_mac_set(param, value, band)}")


def mac_set_ch(param: str, channel: int, *values: Any) -> Command:
    return Command(f"mac set ch {param} {validate_mac_set_ch(param, channel, *values)}")


_MAC_GET: dict[str, ValueParser] = {
    "devaddr": _hex_parser(8), "deveui": _hex_parser(16), "appeui": _hex_parser(16),
    "dr": _int_parser(0, 7), "band": _int_parser(433, 868), "pwridx": _int_parser(0, 5),
    "adr": _on_off, "retx": _int_parser(0, 255), "rxdelay1": _int_parser(0, 65535),
    "rxdelay2": _int_parser(0, 65535), "ar": _on_off, "dcycleps": _int_parser(0, 65535),
    "mrgn": _int_parser(0, 255), "gwnb": _int_parser(0, 255), "status": _hex_parser(8),
    "sync": _hex_parser(2), "upctr": _int_parser(0, _U32_MAX), "dnctr": _int_parser(0, _U32_MAX),
}


def mac_get(param: str, band: int | None = None) -> Command:
    """``mac get <param>`` (2.4.9); ``rx2`` needs the band (2.4.9.12)."""
    if param == "rx2":
        if band not in (868, 433):
            raise RN2483ArgumentError("mac get rx2 needs the band, 868 or 433")
        return Command(f"mac get rx2 {band}", Expect.VALUE, _two_ints(0, 7, 0, _U32_MAX))
    if param not in _MAC_GET:
        raise RN2483ArgumentError(f"unknown mac get parameter {param!r}")
    return Command(f"mac get {param}", Expect.VALUE, _MAC_GET[param])


def mac_get_ch(param: str, channel: int) -> Command:
    ch = _int_arg(channel, 0, 15, "mac get ch channel (2.4.9.20)")
    parsers: dict[str, ValueParser] = {
        "freq": _int_parser(0, _U32_MAX), "dcycle": _int_parser(0, 65535),
        "drrange": _two_ints(0, 15, 0, 15), "status": _on_off,
    }
    if param not in parsers:
        raise RN2483ArgumentError(f"unknown mac get ch parameter {param!r}")
    return Command(f"mac get ch {param} {ch}", Expect.VALUE, parsers[param])


def radio_tx(data: bytes) -> Command:
    """``radio tx <hex>``: LoRa 1..255 bytes (2.5.2; the empty frame is not supported here)."""
    data = bytes(data)
    if not 1 <= len(data) <= 255:
        raise RN2483ArgumentError(f"radio tx payload must be 1..255 bytes, got {len(data)}")
    return Command(f"radio tx {data.hex().upper()}", Expect.RADIO_TX)


def radio_rx_report(data: bytes) -> str:
    """The module's line for a frame received by ``radio rx`` (2.5.1): ``radio_rx <hex>``."""
    return f"radio_rx {bytes(data).hex().upper()}"


def radio_rx(window: int) -> Command:
    """``radio rx <symbols>``; 0 = continuous reception, bounded by ``radio set wdt`` (2.5.1)."""
    return Command(f"radio rx {_int_arg(window, 0, 65535, 'radio rx window (2.5.1)')}",
                   Expect.RADIO_RX)


def radio_cw(on: bool) -> Command:
    """``radio cw off`` resets the module like ``sys reset`` (2.5.3 note)."""
    if on:
        return Command("radio cw on")
    return Command("radio cw off", Expect.BANNER, _banner_value)


def radio_set(param: str, value: Any) -> Command:
    return Command(f"radio set {param} {validate_radio_set(param, value)}")


_RADIO_GET: dict[str, ValueParser] = {
    "bt": _choice_parser("none", "1.0", "0.5", "0.3"), "mod": _choice_parser("lora", "fsk"),
    "freq": _int_parser(0, _U32_MAX), "pwr": _int_parser(-3, 15),
    "sf": _choice_parser("sf7", "sf8", "sf9", "sf10", "sf11", "sf12"),
    "afcbw": _choice_parser(*_FSK_BW), "rxbw": _choice_parser(*_FSK_BW),
    "bitrate": _int_parser(1, 300000), "fdev": _int_parser(0, 200000),
    "prlen": _int_parser(0, 65535), "crc": _on_off, "iqi": _on_off,
    "cr": _choice_parser("4/5", "4/6", "4/7", "4/8"), "wdt": _int_parser(0, _U32_MAX),
    "bw": _choice_parser("125", "250", "500"),
    "snr": _int_parser(-128, 127),  # signed dB of the last packet (2.5.5.16)
    "sync": _hex_any,
    # Not in DS40001784F: firmware 1.0.5 added it; older firmware answers invalid_param.
    "rssi": _int_parser(-200, 0),
}


def radio_get(param: str) -> Command:
    if param not in _RADIO_GET:
        raise RN2483ArgumentError(f"unknown radio get parameter {param!r}")
    return Command(f"radio get {param}", Expect.VALUE, _RADIO_GET[param])


def command_from_text(text: str) -> Command:
    """A raw command typed by a person: infer what it answers (for tools and tests)."""
    text = text.strip()
    words = text.split(" ")
    head = " ".join(words[:2])
    if head == "mac tx":
        return Command(text, Expect.MAC_TX)
    if head == "mac join":
        return Command(text, Expect.JOIN)
    if head == "radio tx":
        return Command(text, Expect.RADIO_TX)
    if head == "radio rx":
        return Command(text, Expect.RADIO_RX)
    if text in ("sys reset", "sys factoryRESET", "radio cw off"):
        return Command(text, Expect.BANNER, _banner_value)
    if text == "sys get ver":
        return sys_get_ver()
    # Known queries get their typed parser, so line noise cannot pass for their value.
    if len(words) == 3 and head == "mac get" and words[2] in _MAC_GET:
        return mac_get(words[2])
    if len(words) == 3 and head == "radio get" and words[2] in _RADIO_GET:
        return radio_get(words[2])
    if text == "sys eraseFW":
        return Command(text, Expect.NOTHING)
    if text == "mac pause" or (len(words) >= 3 and words[1] == "get"):
        return Command(text, Expect.VALUE, _any_value)
    return Command(text, Expect.OK)


# --------------------------------------------------------------------------------- results/events


# Downlink (application data the server sent back: ``mac_rx <port> <hex>``) is the
# capability's value type, radios.base.Downlink.


@dataclass(frozen=True)
class MacTxOutcome:
    """Second answer of a successful ``mac tx``: ``mac_tx_ok`` or ``mac_rx``."""

    downlink: Downlink | None = None


@dataclass(frozen=True)
class Accepted:
    """First answer ``ok`` of a two-stage command: the operation started."""

    command: Command
    time: float


@dataclass(frozen=True)
class Completed:
    """The command finished successfully; ``value`` depends on the command:
    "ok" (OK), the parsed value (VALUE), a Version (BANNER), MacTxOutcome (MAC_TX),
    "accepted" (JOIN), "radio_tx_ok" (RADIO_TX), the received bytes (RADIO_RX)."""

    command: Command
    value: Any
    time: float


@dataclass(frozen=True)
class Failed:
    """The command failed with a documented error answer (``stage`` 1 or 2)."""

    command: Command
    error: RN2483Error
    stage: int
    time: float


@dataclass(frozen=True)
class ResetDetected:
    """A banner nobody asked for: the module rebooted. ``during`` is the command it killed."""

    version: Version
    during: Command | None
    time: float


@dataclass(frozen=True)
class Garbage:
    """A line that answers nothing pending: noise, or a late answer to an abandoned command."""

    text: str
    time: float


@dataclass(frozen=True)
class UnsolicitedDownlink:
    """``mac_rx`` with no ``mac tx`` pending (automatic-reply sequences, 2.4.2)."""

    downlink: Downlink
    time: float


@dataclass(frozen=True)
class TimedOut:
    """No (valid) answer before the deadline; ``last_garbage`` helps diagnose why."""

    command: Command
    stage: int
    last_garbage: str | None
    time: float


Event = Union[Accepted, Completed, Failed, ResetDetected, Garbage, UnsolicitedDownlink, TimedOut]


class RN2483Protocol:
    """The request/answer state machine of one RN2483 link (one command outstanding).

    ``send`` returns the bytes to write and arms a deadline; ``receive_data`` classifies each
    complete line against the pending command; ``check_timeout`` turns an expired deadline
    into ``TimedOut``. Times are whatever monotonic clock the caller uses.
    """

    def __init__(self) -> None:
        self.framer = LineFramer()
        self._pending: Command | None = None
        self._stage = 0
        self._deadline = math.inf
        self._final_timeout = 0.0
        self._last_garbage: str | None = None
        self.garbage_lines = 0
        self.resets_detected = 0
        self.timeouts = 0

    # -- state ----------------------------------------------------------------------------
    @property
    def pending(self) -> Command | None:
        return self._pending

    @property
    def stage(self) -> int:
        return self._stage

    @property
    def deadline(self) -> float:
        return self._deadline

    def abandon(self) -> None:
        """Forget the pending command (port lost, or the caller gave up)."""
        self._pending, self._stage, self._deadline = None, 0, math.inf

    def reset(self) -> None:
        """Forget everything in flight, including a half-received line (after reopening)."""
        self.abandon()
        self.framer.reset()

    # -- outgoing ---------------------------------------------------------------------------
    def send(self, command: Command, now: float, timeout: float,
             final_timeout: float = 0.0) -> bytes:
        """Start ``command``: ``timeout`` bounds the first answer, ``final_timeout`` the second
        (counted from the first) for two-stage commands. Returns the bytes to write."""
        if self._pending is not None:
            raise RadioBusy(
                f"RN2483: {self._pending.secret_free_text!r} is still waiting for its answer"
            )
        if command.expect is Expect.NOTHING:
            return command.encode()
        self._pending, self._stage = command, 1
        self._deadline = now + timeout
        self._final_timeout = final_timeout
        self._last_garbage = None
        return command.encode()

    # -- incoming ---------------------------------------------------------------------------
    def receive_data(self, data: bytes, now: float) -> list[Event]:
        events: list[Event] = []
        for text in self.framer.feed(data):
            events.append(self._handle_line(text, now))
        return events

    def check_timeout(self, now: float) -> list[Event]:
        if self._pending is None or now < self._deadline:
            return []
        event = TimedOut(self._pending, self._stage, self._last_garbage, now)
        self.timeouts += 1
        self.abandon()
        return [event]

    def _garbage(self, text: str, now: float) -> Garbage:
        self.garbage_lines += 1
        self._last_garbage = text
        return Garbage(text, now)

    def _finish(self, event: Event) -> Event:
        self.abandon()
        return event

    def _handle_line(self, text: str, now: float) -> Event:
        line = classify_line(text)
        cmd = self._pending
        if line.kind is LineKind.BANNER:
            assert line.version is not None
            # The banner also answers `sys get ver`; a reboot that coincides with that question
            # is indistinguishable from its answer (the next command's behaviour will show it).
            if cmd is not None and self._stage == 1 and (
                cmd.expect is Expect.BANNER or cmd.parse is _banner_value
            ):
                return self._finish(Completed(cmd, line.version, now))
            self.resets_detected += 1
            self.abandon()
            return ResetDetected(line.version, cmd, now)
        if cmd is None:
            if line.kind is LineKind.MAC_RX:
                assert line.port is not None and line.data is not None
                return UnsolicitedDownlink(Downlink(line.port, line.data), now)
            return self._garbage(text, now)
        if self._stage == 1:
            return self._first_answer(cmd, line, now)
        return self._second_answer(cmd, line, now)

    def _first_answer(self, cmd: Command, line: Line, now: float) -> Event:
        if line.kind in (LineKind.ERROR, LineKind.INVALID_DATA_LEN):
            return self._finish(Failed(cmd, error_for(line.text, cmd.secret_free_text), 1, now))
        if line.kind is LineKind.OK:
            if cmd.expect is Expect.OK:
                return self._finish(Completed(cmd, "ok", now))
            if cmd.expect.two_stage:
                self._stage = 2
                self._deadline = now + self._final_timeout
                return Accepted(cmd, now)
            return self._garbage(line.text, now)
        if cmd.expect is Expect.VALUE and line.kind is LineKind.OTHER and cmd.parse is not None:
            value = cmd.parse(line.text)
            if value is not None:
                return self._finish(Completed(cmd, value, now))
        return self._garbage(line.text, now)

    def _second_answer(self, cmd: Command, line: Line, now: float) -> Event:
        kind, expect = line.kind, cmd.expect
        if expect is Expect.MAC_TX:
            if kind is LineKind.MAC_TX_OK:
                return self._finish(Completed(cmd, MacTxOutcome(None), now))
            if kind is LineKind.MAC_RX:
                assert line.port is not None and line.data is not None
                return self._finish(Completed(cmd, MacTxOutcome(Downlink(line.port, line.data)),
                                              now))
            if kind in (LineKind.MAC_ERR, LineKind.INVALID_DATA_LEN):
                return self._finish(Failed(cmd, error_for(line.text, cmd.secret_free_text), 2,
                                           now))
        elif expect is Expect.JOIN:
            if kind is LineKind.ACCEPTED:
                return self._finish(Completed(cmd, "accepted", now))
            if kind is LineKind.DENIED:
                return self._finish(Failed(cmd, error_for("denied", cmd.text), 2, now))
        elif expect is Expect.RADIO_TX:
            if kind is LineKind.RADIO_TX_OK:
                return self._finish(Completed(cmd, "radio_tx_ok", now))
            if kind is LineKind.RADIO_ERR:
                return self._finish(Failed(cmd, RadioOperationFailed(
                    "RN2483 answered 'radio_err' after radio tx: the transmission was "
                    "interrupted by the radio watchdog (radio set wdt)", command=cmd.text), 2, now))
        elif expect is Expect.RADIO_RX:
            if kind is LineKind.RADIO_RX:
                return self._finish(Completed(cmd, line.data, now))
            if kind is LineKind.RADIO_ERR:
                return self._finish(Failed(cmd, RadioOperationFailed(
                    "RN2483 answered 'radio_err' after radio rx: reception timed out "
                    "(window or watchdog) or the frame was bad", command=cmd.text), 2, now))
        return self._garbage(line.text, now)
