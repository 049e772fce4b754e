"""Commands to a UAV over the LoRaWAN downlink, and their results back in the next uplink.

Sans-I/O (no radio, no ROS, no MAVLink, no files): bytes, numbers and a ``now`` in; typed
results out. Section numbers refer to the LoRaWAN Specification 1.0 in the thesis file
(``uav-swarm-lora-thesis-with-datasheets.txt``, lines ~3660-7450). The byte-level description
is ``docs/wire-format.md``, section "Commands (downlink) and their results".

Decisions:

* **FPort 2 = command format v1** (:data:`COMMAND_FPORT`). FPorts 1..223 are application
  specific (§4.3.2, thesis line ~4249); FPort 1 is telemetry (``codec.FPORT_V1``). The
  telemetry decoder refuses FPort 2, and this decoder refuses everything but FPort 2.
* **Command FRMPayload** (little-endian, like LoRaWAN): ``command_id`` u8 | ``code`` u8 |
  ``expiry`` u24 | argument (0, 1 or 2 bytes; the length is fixed by the code, so 5, 6 or 7
  bytes in all). ``command_id`` is chosen by the ground (a sequence number modulo 256) and
  comes back in the result report, so results can be matched to commands.
* **Expiry**: absolute Unix time in **1 s** steps, sent modulo 2**24 s (194.2 days). The
  telemetry's time field (20 ms modulo 40.96 s) is too short for commands that may wait
  minutes for their downlink slot. The drone places the code on its time line nearest to its
  own ``now`` (like ``codec.reconstruct_time``); a command is refused when ``now`` is past the
  expiry, or when the expiry lies more than :data:`MAX_COMMAND_LIFETIME_S` (+ the allowed clock
  lead) ahead, which only a wrong clock or a forged ground could produce. The ground refuses
  to build such a command. Expiry is the second line of defence: FCntDown already rejects
  every frame that was received before; expiry also refuses a frame held back (jammed and
  recorded) and delivered late.
* **SET_MODE argument**: the telemetry codec's 5-bit flight-mode code of the device's family
  (``codec.mode_code``; for ArduPilot it is ``custom_mode`` itself, for PX4 an index into the
  main/sub-mode table), in one byte. Codes 0..29 only (30/31 "other"/"unknown" mean nothing as
  a target); with the family given, a code without a named mode is refused too.
* **SET_UPDATE_PERIOD argument**: u16 in **0.1 s** steps, 0.1 s .. 600.0 s (codes 1..6000).
* **Result report**: a proprietary LoRaWAN MAC command in the uplink's **FOpts**: CID
  :data:`RESULT_CID` (0x80; CIDs 0x80..0xFF are "reserved for proprietary network command
  extensions", §5 Table 4, thesis line ~4416) | ``command_id`` u8 | ``status`` u8 |
  ``mav_result`` u8, 4 bytes. FOpts are sent in clear in LoRaWAN 1.0 (only FRMPayload is
  encrypted, §4.3.3) but covered by the MIC (§4.4). Why old ground software keeps decoding:
  the 16-byte telemetry FRMPayload and FPort 1 are untouched; the parser already skips FOpts
  by FOptsLen (§4.3.1.6) and the gateway never reads them; the MIC is computed over the whole
  frame as before. A separate FPort would cost a whole uplink, and bytes after the 16-byte
  payload would be refused by every v1 decoder (exactly 16 bytes).
* **Verification order on the drone** (:class:`DownlinkVerifier`): parse, MType unconfirmed
  data down, DevAddr ours, FCntDown rebuilt from 16 bits by the same
  :class:`~lora_telemetry.core.lorawan.FrameCounterTracker` the ground uses for uplinks, MIC
  (NwkSKey, Dir = 1), counter strictly new, counter written durably (the ``counter_store``),
  FPort, decryption (AppSKey), command decoding, expiry, allowlist. Exactly one verdict per
  frame, every verdict counted. An authentic new frame advances the counter whatever follows
  (``Verdict.advanced``), so it can never be replayed, not even when it was refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Iterable, Protocol

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError, MalformedFrameError

__all__ = [
    "COMMAND_FPORT", "RESULT_CID", "EXPIRY_STEP_S", "EXPIRY_WINDOW_S", "MAX_COMMAND_LIFETIME_S",
    "DEFAULT_MAX_CLOCK_LEAD_S", "PERIOD_STEP_S", "PERIOD_MIN_S", "PERIOD_MAX_S",
    "DEFAULT_ALLOWED", "COMMAND_LENGTHS", "RESULT_REPORT_LEN",
    "CommandError", "CommandLengthError", "UnknownCommandError", "CommandArgumentError",
    "ResultReportError", "CommandBuildError",
    "CommandCode", "Command", "encode_command", "decode_command", "expiry_code",
    "reconstruct_expiry", "set_mode_command",
    "ResultStatus", "CommandResult", "encode_result_report", "decode_result_report",
    "results_from_fopts",
    "command_payload_to_send", "build_command_downlink",
    "DownlinkStatus", "DownlinkVerdict", "DownlinkCounterSink", "DownlinkVerifier",
]

#: FPort of command format v1 (application specific, §4.3.2).
COMMAND_FPORT = 2
#: Proprietary MAC command identifier of the result report (§5 Table 4: 0x80..0xFF).
RESULT_CID = 0x80

EXPIRY_STEP_S = 1
_EXPIRY_BITS = 24
#: The expiry code repeats every 2**24 s = 194.2 days.
EXPIRY_WINDOW_S = 1 << _EXPIRY_BITS
#: The longest a command may live: its expiry at most this far ahead of the sender's clock.
MAX_COMMAND_LIFETIME_S = 3600
#: How far the ground's clock may run ahead of the drone's (both GPS/NTP-disciplined).
DEFAULT_MAX_CLOCK_LEAD_S = 5.0

PERIOD_STEP_S = 0.1
_PERIOD_MIN_CODE = 1
_PERIOD_MAX_CODE = 6000
PERIOD_MIN_S = _PERIOD_MIN_CODE * PERIOD_STEP_S
PERIOD_MAX_S = _PERIOD_MAX_CODE * PERIOD_STEP_S
_MODE_MAX_CODE = 29  # codec: 30 = other, 31 = unknown
_MAX_ABS_TIME_S = 1e12

RESULT_REPORT_LEN = 4  # CID + 3


# ---------------------------------------------------------------------------------------- errors


class CommandError(MalformedFrameError):
    """A command FRMPayload (or a result report) that a v1 encoder cannot have produced."""


class CommandLengthError(CommandError):
    """Wrong length for the payload or for its command code."""


class UnknownCommandError(CommandError):
    """A command code (or report status) that format v1 does not define."""


class CommandArgumentError(CommandError):
    """A command argument outside its documented range (mode code, update period, expiry)."""


class ResultReportError(CommandError):
    """FOpts that do not hold well-formed result reports."""


class CommandBuildError(ConfigError):
    """A command the ground must not send (bad id, expiry in the past or too far ahead)."""


# --------------------------------------------------------------------------------------- command


class CommandCode(IntEnum):
    """What the UAV is asked to do. 0 and 6..255 are reserved in format v1."""

    RETURN_TO_LAUNCH = 1
    LAND = 2
    HOLD = 3
    SET_MODE = 4           # argument: flight-mode code (1 byte)
    SET_UPDATE_PERIOD = 5  # argument: telemetry period in 0.1 s (u16)


#: FRMPayload length of each code.
COMMAND_LENGTHS: dict[CommandCode, int] = {
    CommandCode.RETURN_TO_LAUNCH: 5,
    CommandCode.LAND: 5,
    CommandCode.HOLD: 5,
    CommandCode.SET_MODE: 6,
    CommandCode.SET_UPDATE_PERIOD: 7,
}
#: What a drone accepts unless configured otherwise: the commands that end a flight safely.
DEFAULT_ALLOWED = frozenset({CommandCode.RETURN_TO_LAUNCH, CommandCode.LAND, CommandCode.HOLD})


@dataclass(frozen=True)
class Command:
    """One command. ``expiry_unix_s`` is whole seconds of Unix time (1 s steps on the wire).

    ``mode_code`` is set for SET_MODE only, ``period_s`` for SET_UPDATE_PERIOD only.
    """

    command_id: int
    code: CommandCode
    expiry_unix_s: int
    mode_code: int | None = None
    period_s: float | None = None

    def custom_mode(self, family: tcodec.VehicleFamily | str) -> int | None:
        """The MAVLink ``custom_mode`` a SET_MODE command asks for (None for other codes)."""
        if self.mode_code is None:
            return None
        try:
            return tcodec.mode_from_code(family, self.mode_code)[0]
        except tcodec.CodecError as exc:
            raise CommandArgumentError(str(exc)) from None

    def mode_name(self, family: tcodec.VehicleFamily | str) -> str | None:
        if self.mode_code is None:
            return None
        try:
            return tcodec.mode_from_code(family, self.mode_code)[1]
        except tcodec.CodecError as exc:
            raise CommandArgumentError(str(exc)) from None


def _u(value: Any, bits: int, name: str, exc: type[Exception]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise exc(f"{name} must be an integer in 0..{(1 << bits) - 1}, got {value!r}")
    return value


def _time(value: Any, name: str, exc: type[Exception]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not abs(value) < _MAX_ABS_TIME_S:
        raise exc(f"{name} is not a plausible Unix time: {value!r}")
    return float(value)


def _check_mode_code(code: Any, family: tcodec.VehicleFamily | str | None) -> int:
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= _MODE_MAX_CODE:
        raise CommandArgumentError(
            f"flight-mode code must be 0..{_MODE_MAX_CODE} (codec mode code), got {code!r}")
    if family is not None:
        try:
            custom, name = tcodec.mode_from_code(family, code)
        except tcodec.CodecError as exc:
            raise CommandArgumentError(str(exc)) from None
        if custom is None or name is None or name.startswith("Mode("):
            raise CommandArgumentError(f"flight-mode code {code} names no {family} mode")
    return code


def _period_code(period_s: Any) -> int:
    if isinstance(period_s, bool) or not isinstance(period_s, (int, float)) \
            or not math.isfinite(period_s):
        raise CommandArgumentError(f"update period must be a number of seconds, got {period_s!r}")
    code = int(math.floor(period_s / PERIOD_STEP_S + 0.5))
    if not _PERIOD_MIN_CODE <= code <= _PERIOD_MAX_CODE:
        raise CommandArgumentError(
            f"update period {period_s} s is outside {PERIOD_MIN_S:.1f}..{PERIOD_MAX_S:.1f} s")
    return code


def expiry_code(expiry_unix_s: int) -> int:
    """The 24-bit wire code of an expiry: whole Unix seconds modulo 2**24."""
    if isinstance(expiry_unix_s, bool) or not isinstance(expiry_unix_s, int) \
            or not 0 <= expiry_unix_s < _MAX_ABS_TIME_S:
        raise CommandArgumentError(f"expiry must be whole Unix seconds, got {expiry_unix_s!r}")
    return expiry_unix_s % EXPIRY_WINDOW_S


def reconstruct_expiry(code: int, now_unix_s: float) -> int:
    """The Unix second nearest to ``now_unix_s`` whose code is ``code`` (within +-97 days)."""
    code = _u(code, _EXPIRY_BITS, "expiry code", CommandArgumentError)
    now = int(math.floor(_time(now_unix_s, "now", CommandArgumentError)))
    delta = (code - now) % EXPIRY_WINDOW_S
    if delta >= EXPIRY_WINDOW_S // 2:
        delta -= EXPIRY_WINDOW_S
    return now + delta


def set_mode_command(command_id: int, family: tcodec.VehicleFamily | str, mode: str,
                     expiry_unix_s: int) -> Command:
    """A SET_MODE command from a mode name of the family (pymavlink spelling)."""
    try:
        custom = tcodec.custom_mode_from_name(family, mode)
        code = None if custom is None else tcodec.mode_code(family, custom)
    except tcodec.CodecError as exc:
        raise CommandArgumentError(str(exc)) from None
    if code is None or code > _MODE_MAX_CODE:
        raise CommandArgumentError(f"{mode!r} is not a flight mode of {family} that fits the code")
    return Command(command_id, CommandCode.SET_MODE, expiry_unix_s, mode_code=code)


def encode_command(command: Command) -> bytes:
    """FRMPayload (plain text) of a command for FPort :data:`COMMAND_FPORT`."""
    if not isinstance(command, Command):
        raise CommandArgumentError(f"expected a Command, got {type(command).__name__}")
    cid = _u(command.command_id, 8, "command_id", CommandArgumentError)
    try:
        code = CommandCode(command.code)
    except ValueError:
        raise UnknownCommandError(f"unknown command code {command.code!r}") from None
    out = bytes((cid, int(code))) + expiry_code(command.expiry_unix_s).to_bytes(3, "little")
    if code is CommandCode.SET_MODE:
        out += bytes((_check_mode_code(command.mode_code, None),))
    elif command.mode_code is not None:
        raise CommandArgumentError(f"{code.name} takes no flight mode")
    if code is CommandCode.SET_UPDATE_PERIOD:
        out += _period_code(command.period_s).to_bytes(2, "little")
    elif command.period_s is not None:
        raise CommandArgumentError(f"{code.name} takes no update period")
    return out


def decode_command(payload: bytes, now_unix_s: float,
                   family: tcodec.VehicleFamily | str | None = None) -> Command:
    """Strict inverse of :func:`encode_command`; the expiry is placed nearest ``now_unix_s``.

    Raises :class:`CommandError` subclasses, and nothing else, for any input it refuses.
    With ``family``, a SET_MODE code that names no mode of that family is refused too.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise CommandError(f"payload must be bytes, not {type(payload).__name__}")
    p = bytes(payload)
    if len(p) < 2:
        raise CommandLengthError(f"command payload of {len(p)} bytes: needs at least id and code")
    try:
        code = CommandCode(p[1])
    except ValueError:
        raise UnknownCommandError(f"command code {p[1]} is reserved in format v1") from None
    want = COMMAND_LENGTHS[code]
    if len(p) != want:
        raise CommandLengthError(f"{code.name} payload must be {want} bytes, got {len(p)}")
    expiry = reconstruct_expiry(int.from_bytes(p[2:5], "little"), now_unix_s)
    mode = period = None
    if code is CommandCode.SET_MODE:
        mode = _check_mode_code(p[5], family)
    elif code is CommandCode.SET_UPDATE_PERIOD:
        raw = int.from_bytes(p[5:7], "little")
        if not _PERIOD_MIN_CODE <= raw <= _PERIOD_MAX_CODE:
            raise CommandArgumentError(
                f"update-period code {raw} is outside {_PERIOD_MIN_CODE}..{_PERIOD_MAX_CODE}")
        period = round(raw * PERIOD_STEP_S, 1)
    return Command(p[0], code, expiry, mode_code=mode, period_s=period)


# --------------------------------------------------------------------------------- result report


class ResultStatus(IntEnum):
    """Who answered a command. Only FLIGHT_CONTROLLER carries a MAV_RESULT."""

    FLIGHT_CONTROLLER = 0  # COMMAND_ACK received: mav_result is its MAV_RESULT
    NOT_ALLOWED = 1        # refused on the drone: code not in its allowlist
    EXPIRED = 2            # refused on the drone: past its expiry
    REPLAY = 3             # refused on the drone: FCntDown not new (duplicate or replay)
    NO_ACK = 4             # sent to the flight controller, no COMMAND_ACK in time
    EXPIRY_TOO_FAR = 5     # refused on the drone: expiry beyond the lifetime (clock mismatch)
    BAD_COMMAND = 6        # refused on the drone: authentic, but not a valid command


@dataclass(frozen=True)
class CommandResult:
    """One result report: the command it answers, who answered, and the MAV_RESULT."""

    command_id: int
    status: ResultStatus
    mav_result: int = 0

    @property
    def accepted(self) -> bool:
        return self.status is ResultStatus.FLIGHT_CONTROLLER and self.mav_result == 0


def encode_result_report(result: CommandResult) -> bytes:
    """The 4-byte proprietary MAC command for the uplink's FOpts."""
    if not isinstance(result, CommandResult):
        raise ResultReportError(f"expected a CommandResult, got {type(result).__name__}")
    cid = _u(result.command_id, 8, "command_id", ResultReportError)
    try:
        status = ResultStatus(result.status)
    except ValueError:
        raise ResultReportError(f"unknown result status {result.status!r}") from None
    mav = _u(result.mav_result, 8, "mav_result", ResultReportError)
    if status is not ResultStatus.FLIGHT_CONTROLLER and mav:
        raise ResultReportError(f"{status.name} carries no MAV_RESULT (must be 0), got {mav}")
    return bytes((RESULT_CID, cid, int(status), mav))


def decode_result_report(data: bytes) -> CommandResult:
    """Strict inverse of :func:`encode_result_report` (exactly 4 bytes)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ResultReportError(f"result report must be bytes, not {type(data).__name__}")
    d = bytes(data)
    if len(d) != RESULT_REPORT_LEN:
        raise ResultReportError(f"result report must be {RESULT_REPORT_LEN} bytes, got {len(d)}")
    if d[0] != RESULT_CID:
        raise ResultReportError(f"CID 0x{d[0]:02X} is not the result report (0x{RESULT_CID:02X})")
    try:
        status = ResultStatus(d[2])
    except ValueError:
        raise ResultReportError(f"result status {d[2]} is reserved") from None
    if status is not ResultStatus.FLIGHT_CONTROLLER and d[3]:
        raise ResultReportError(f"{status.name} report with non-zero MAV_RESULT {d[3]}")
    return CommandResult(d[1], status, d[3])


# Uplink (end-device -> network) MAC commands of LoRaWAN 1.0 and their payload lengths
# (§5 Table 4; §5.1-5.8), so that reports can be found next to them.
_UPLINK_MAC_LENGTHS = {0x02: 0, 0x03: 1, 0x04: 0, 0x05: 1, 0x06: 2, 0x07: 1, 0x08: 0}


def results_from_fopts(fopts: bytes) -> list[CommandResult]:
    """Every result report in an uplink's FOpts, skipping standard uplink MAC commands.

    An unknown CID cannot be skipped (MAC commands carry no length), so it is an error.
    """
    if not isinstance(fopts, (bytes, bytearray, memoryview)):
        raise ResultReportError(f"FOpts must be bytes, not {type(fopts).__name__}")
    f = bytes(fopts)
    out: list[CommandResult] = []
    i = 0
    while i < len(f):
        cid = f[i]
        if cid == RESULT_CID:
            out.append(decode_result_report(f[i:i + RESULT_REPORT_LEN]))
            i += RESULT_REPORT_LEN
        elif cid in _UPLINK_MAC_LENGTHS:
            n = 1 + _UPLINK_MAC_LENGTHS[cid]
            if i + n > len(f):
                raise ResultReportError(f"MAC command 0x{cid:02X} truncated in FOpts")
            i += n
        else:
            raise ResultReportError(f"unknown MAC command CID 0x{cid:02X} in FOpts at byte {i}")
    return out


# ------------------------------------------------------------------------------------ ground side


def command_payload_to_send(command: Command, now_unix_s: float,
                            max_lifetime_s: float = MAX_COMMAND_LIFETIME_S) -> bytes:
    """The FRMPayload of a command the ground may send now, or :class:`CommandBuildError`.

    The expiry must lie in ``(now, now + max_lifetime_s]``. Call it before reserving a
    FCntDown, so a refused command does not cost a counter.
    """
    now = _time(now_unix_s, "now", CommandBuildError)
    if not isinstance(command, Command):
        raise CommandBuildError(f"expected a Command, got {type(command).__name__}")
    exp = command.expiry_unix_s
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise CommandBuildError(f"expiry must be whole Unix seconds, got {exp!r}")
    if exp <= now:
        raise CommandBuildError(f"command expires at {exp}, not after now ({now:.3f})")
    if exp - now > max_lifetime_s:
        raise CommandBuildError(
            f"command would live {exp - now:.0f} s, more than {max_lifetime_s:.0f} s")
    try:
        return encode_command(command)
    except CommandError as exc:
        raise CommandBuildError(str(exc)) from None


def build_command_downlink(command: Command, *, devaddr: int | str, nwkskey: lw.KeyLike,
                           appskey: lw.KeyLike, fcnt_down: int, now_unix_s: float,
                           max_lifetime_s: float = MAX_COMMAND_LIFETIME_S) -> bytes:
    """The unconfirmed-data-down PHYPayload carrying ``command`` on FPort 2.

    ``fcnt_down`` must be a counter reserved durably beforehand
    (``persist.GroundCounterStore.reserve_fcnt_down``, or ``ground.commands`` which does
    both): it is used once, whatever happens to the frame.
    """
    payload = command_payload_to_send(command, now_unix_s, max_lifetime_s)
    return lw.build_data_frame(devaddr, fcnt_down, payload, nwkskey=nwkskey, appskey=appskey,
                               fport=COMMAND_FPORT, uplink=False)


# ------------------------------------------------------------------------------------- drone side


class DownlinkStatus(str, Enum):
    """Verdicts of :meth:`DownlinkVerifier.process`, in the order they are checked."""

    MALFORMED = "malformed"              # not a LoRaWAN 1.0 PHYPayload
    NOT_COMMAND_FRAME = "not_command_frame"  # not unconfirmed data down (uplinks, joins, ...)
    WRONG_DEVADDR = "wrong_devaddr"      # another device's downlink
    MIC_FAILED = "mic_failed"            # forged, corrupted or another key
    DUPLICATE = "duplicate"              # FCntDown equal to the last accepted one
    REPLAY = "replay"                    # FCntDown older than the last accepted one
    OUT_OF_WINDOW = "out_of_window"      # FCntDown too far ahead (>= MAX_FCNT_GAP)
    STATE_ERROR = "state_error"          # counter could not be made durable: not acted on
    WRONG_FPORT = "wrong_fport"          # authentic, but not FPort 2
    BAD_COMMAND = "bad_command"          # authentic, FPort 2, payload refused by the decoder
    EXPIRED = "expired"                  # now past the expiry
    EXPIRY_TOO_FAR = "expiry_too_far"    # expiry beyond lifetime + clock lead
    NOT_ALLOWED = "not_allowed"          # code not in the allowlist
    ACCEPTED = "accepted"                # act on verdict.command


#: Verdicts after which the drone owes the ground a result report (the command id is known).
_REPORTED = {
    DownlinkStatus.EXPIRED: ResultStatus.EXPIRED,
    DownlinkStatus.EXPIRY_TOO_FAR: ResultStatus.EXPIRY_TOO_FAR,
    DownlinkStatus.NOT_ALLOWED: ResultStatus.NOT_ALLOWED,
}


@dataclass(frozen=True)
class DownlinkVerdict:
    """The one outcome for one received downlink."""

    status: DownlinkStatus
    detail: str = ""
    fcnt32: int | None = None
    fport: int | None = None
    command: Command | None = None

    @property
    def accepted(self) -> bool:
        return self.status is DownlinkStatus.ACCEPTED

    @property
    def advanced(self) -> bool:
        """True when this frame moved (and durably stored) the FCntDown."""
        return self.status in (DownlinkStatus.ACCEPTED, DownlinkStatus.WRONG_FPORT,
                               DownlinkStatus.BAD_COMMAND, DownlinkStatus.EXPIRED,
                               DownlinkStatus.EXPIRY_TOO_FAR, DownlinkStatus.NOT_ALLOWED)

    def refusal(self) -> CommandResult | None:
        """The result report the drone should send for a refused command (None otherwise:
        accepted commands are reported with the flight controller's answer)."""
        if self.command is None:
            return None
        status = _REPORTED.get(self.status)
        return None if status is None else CommandResult(self.command.command_id, status)


class DownlinkCounterSink(Protocol):
    """Where the verifier makes an accepted FCntDown durable (``persist.DownlinkCounterStore``).

    ``record`` must not return before the counter is on disk; it raises
    :class:`~lora_telemetry.core.errors.LoraTelemetryError` or ``OSError`` when it cannot."""

    @property
    def last_fcnt32(self) -> int | None: ...

    def record(self, fcnt32: int) -> None: ...


class DownlinkVerifier:
    """Judges command downlinks for one device (drone side); see the module docstring."""

    def __init__(self, devaddr: int | str, nwkskey: lw.KeyLike, appskey: lw.KeyLike, *,
                 counter_store: DownlinkCounterSink | None = None,
                 allowed: Iterable[CommandCode] = DEFAULT_ALLOWED,
                 family: tcodec.VehicleFamily | str | None = None,
                 max_clock_lead_s: float = DEFAULT_MAX_CLOCK_LEAD_S,
                 max_lifetime_s: float = MAX_COMMAND_LIFETIME_S) -> None:
        self.devaddr = lw.parse_dev_addr(devaddr) if isinstance(devaddr, str) else devaddr
        self._nwkskey = lw._key(nwkskey, "NwkSKey")
        self._appskey = lw._key(appskey, "AppSKey")
        try:
            self.allowed = frozenset(CommandCode(c) for c in allowed)
        except ValueError as exc:
            raise ConfigError(f"allowlist holds an unknown command code: {exc}") from None
        self.family = family
        self.max_clock_lead_s = float(max_clock_lead_s)
        self.max_lifetime_s = float(max_lifetime_s)
        self.counter_store = counter_store
        last = counter_store.last_fcnt32 if counter_store is not None else None
        self.tracker = lw.FrameCounterTracker(self.devaddr, last_fcnt32=last)
        self.totals: dict[DownlinkStatus, int] = {s: 0 for s in DownlinkStatus}

    def _done(self, verdict: DownlinkVerdict) -> DownlinkVerdict:
        self.totals[verdict.status] += 1
        return verdict

    def process(self, phy: bytes, now_unix_s: float) -> DownlinkVerdict:
        """Judge one received PHYPayload at the drone's time ``now_unix_s``."""
        V, S = DownlinkVerdict, DownlinkStatus
        _time(now_unix_s, "now", ConfigError)  # a caller's bug, not a frame's verdict
        try:
            frame = lw.parse_phy_payload(bytes(phy))
        except (LoraTelemetryError, TypeError) as exc:
            return self._done(V(S.MALFORMED, str(exc)))
        if not isinstance(frame, lw.DataFrame) or frame.mtype != lw.MType.UNCONFIRMED_DATA_DOWN:
            return self._done(V(S.NOT_COMMAND_FRAME,
                                f"{lw.MTYPE_TITLES[frame.mhdr.mtype]} is not a command frame"))
        if frame.dev_addr != self.devaddr:
            return self._done(V(S.WRONG_DEVADDR, f"DevAddr {frame.dev_addr_hex} is not ours"))
        cand = self.tracker.check(frame.fcnt)
        if not lw.verify_mic(frame, self._nwkskey, cand.fcnt32):
            return self._done(V(S.MIC_FAILED, f"MIC does not verify (FCntDown {cand.fcnt32})",
                                fcnt32=cand.fcnt32))
        if cand.status is not lw.FCntStatus.NEW:
            self.tracker.accept(cand)  # counts the duplicate/replay/out-of-window
            status = {lw.FCntStatus.DUPLICATE: S.DUPLICATE,
                      lw.FCntStatus.REPLAY: S.REPLAY}.get(cand.status, S.OUT_OF_WINDOW)
            return self._done(V(status, f"FCntDown {cand.fcnt32} after {cand.basis}",
                                fcnt32=cand.fcnt32))
        # Check, then accept: the counter is durable before anything is acted on.
        if self.counter_store is not None:
            try:
                self.counter_store.record(cand.fcnt32)
            except (LoraTelemetryError, OSError) as exc:
                return self._done(V(S.STATE_ERROR, f"FCntDown {cand.fcnt32} not stored: {exc}",
                                    fcnt32=cand.fcnt32))
        self.tracker.accept(cand)
        fc = cand.fcnt32
        if frame.fport != COMMAND_FPORT:
            return self._done(V(S.WRONG_FPORT, f"FPort {frame.fport} is not the command port "
                                f"{COMMAND_FPORT}", fcnt32=fc, fport=frame.fport))
        plain = lw.decrypt_frame_payload(frame, appskey=self._appskey, fcnt32=fc) or b""
        try:
            cmd = decode_command(plain, now_unix_s, self.family)
        except CommandError as exc:
            return self._done(V(S.BAD_COMMAND, str(exc), fcnt32=fc, fport=frame.fport))
        now = float(now_unix_s)
        if now > cmd.expiry_unix_s:
            return self._done(V(S.EXPIRED, f"expired {now - cmd.expiry_unix_s:.0f} s ago",
                                fcnt32=fc, fport=frame.fport, command=cmd))
        if cmd.expiry_unix_s - now > self.max_lifetime_s + self.max_clock_lead_s:
            return self._done(V(S.EXPIRY_TOO_FAR,
                                f"expiry {cmd.expiry_unix_s - now:.0f} s ahead, more than "
                                f"{self.max_lifetime_s:.0f} s + {self.max_clock_lead_s} s",
                                fcnt32=fc, fport=frame.fport, command=cmd))
        if cmd.code not in self.allowed:
            return self._done(V(S.NOT_ALLOWED, f"{cmd.code.name} is not allowed on this drone",
                                fcnt32=fc, fport=frame.fport, command=cmd))
        return self._done(V(S.ACCEPTED, "", fcnt32=fc, fport=frame.fport, command=cmd))
