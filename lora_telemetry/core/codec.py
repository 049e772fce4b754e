"""Telemetry codec: one vehicle state in one self-contained 16-byte LoRaWAN FRMPayload.

The full field-by-field specification, with its bit diagram, is ``docs/wire-format.md``
("Telemetry payload"); this module is its implementation, and :data:`LAYOUT_V1`,
:data:`RESOLUTION` and :data:`RANGES` are the figures the document and the tests share.

Decisions worth knowing:

* **Self-contained frames.** The thesis lost 2-75 % of the frames at 252-1040 m (Tables
  4.5.8-4.5.9, thesis lines ~2860-2890), so no frame refers to an earlier one: there is no
  delta coding, no key frame, no sequence state.
* **16 bytes.** With the 13 bytes of LoRaWAN overhead (MHDR 1 + FHDR 7 + FPort 1 + MIC 4) a
  frame is 29 bytes on the air. The list of fields needs a little more than 128 bits at the
  required resolutions, so three ranges were trimmed: the timestamp has 20 ms steps, the
  altitude is +-255 m about the origin, and the home altitude +-63 m about it (rationale in the
  document).
* **Versioned by FPort.** FPort 1 is format v1. The decoder refuses every other FPort, and any
  payload that a v1 encoder cannot have produced (wrong length, reserved codes), with
  :class:`CodecError`, the only exception :func:`decode` raises.
* **Saturate, never wrap.** A value beyond its range is sent as the field's saturation code and
  comes back as the nearest bound, listed in :attr:`TelemetrySample.saturated`. A value that is
  not available (``None`` or NaN) is sent as the field's unknown code and comes back as
  ``None``.
* **Local frame.** Position is east/north metres from a configured origin
  (:class:`CodecConfig`), altitude is metres above the origin's altitude; both ends must share
  the configuration, the way they share keys.
* **Time modulo a window.** The sample time travels as 20 ms ticks modulo 40.96 s; the receiver
  puts it back on the time line with its own receive time (:func:`reconstruct_time`). Senders
  must not transmit samples older than ``TIME_WINDOW_S - max_clock_lead_s``.
* **Flight modes.** One 5-bit code per vehicle family (implied by the device's configuration):
  for ArduPilot the code *is* ``custom_mode`` (every ArduPilot mode number so far is below 30);
  for PX4 it indexes a table of main/sub modes. Names are those of pymavlink's mode maps; the
  numbers are protocol facts copied from the MAVLink and autopilot definitions (pymavlink is not
  imported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from lora_telemetry.core.errors import ConfigError, MalformedFrameError
from lora_telemetry.core.geo import LocalProjection

__all__ = [
    "CodecError",
    "VehicleFamily",
    "TelemetrySample",
    "CodecConfig",
    "encode",
    "decode",
    "reconstruct_time",
    "time_code",
    "vehicle_family",
    "mode_code",
    "mode_from_code",
    "mode_name",
    "custom_mode_from_name",
    "px4_custom_mode",
    "FLIGHT_MODES",
    "PX4_NAME_ALIASES",
    "MODE_CODE_OTHER",
    "MODE_CODE_UNKNOWN",
    "FPORT_V1",
    "SUPPORTED_FPORTS",
    "PAYLOAD_SIZE_V1",
    "MAX_PAYLOAD_SIZE",
    "TIME_STEP_S",
    "TIME_WINDOW_S",
    "DEFAULT_MAX_CLOCK_LEAD_S",
    "LAYOUT_V1",
    "RESOLUTION",
    "RANGES",
    "HL_FAILURE_FLAGS",
    "FAILURE_FLAGS_MASK",
]


class CodecError(MalformedFrameError):
    """A telemetry payload or sample this codec cannot accept (unknown FPort, bad length...)."""


# --------------------------------------------------------------------------------------------
# Format v1: layout and scales
# --------------------------------------------------------------------------------------------

#: LoRaWAN FPort of format v1 (FPorts 1..223 are application specific, LoRaWAN 1.0 section
#: 4.3.2, thesis line ~4241).
FPORT_V1 = 1
SUPPORTED_FPORTS = frozenset({FPORT_V1})
PAYLOAD_SIZE_V1 = 16
#: The codec's budget for any format version: the issue's 16-byte FRMPayload.
MAX_PAYLOAD_SIZE = 16

#: (wire field, bits), most significant first. The 128 bits are packed big-endian.
LAYOUT_V1: tuple[tuple[str, int], ...] = (
    ("time", 11),
    ("east", 14),
    ("north", 14),
    ("alt", 10),
    ("home_alt", 8),
    ("heading", 8),
    ("ground_speed", 8),
    ("climb", 7),
    ("battery", 7),
    ("voltage", 9),
    ("mode", 5),
    ("state", 13),
    ("failure_flags", 14),
)
assert sum(bits for _, bits in LAYOUT_V1) == 8 * PAYLOAD_SIZE_V1

TIME_STEP_S = 0.02
_TIME_TICKS = 1 << 11
#: The timestamp repeats every 40.96 s.
TIME_WINDOW_S = _TIME_TICKS * TIME_STEP_S
#: How far the sender's clock may run ahead of the receiver's (both GPS/NTP-disciplined).
DEFAULT_MAX_CLOCK_LEAD_S = 1.0

_POS_STEP_M = 0.5
_ALT_STEP_M = 0.5
_HEADING_STEP_DEG = 2.0
_SPEED_STEP_MPS = 0.2
_VOLT_STEP_V = 0.1
# Beyond this many altitude steps a relative altitude certainly saturates the home field; the
# bound only keeps the rounding of absurd readings finite.
_ALT_LIMIT_TICKS = 1e9
# Times beyond +-1e12 s (year ~33700) are refused: they are garbage, and 20 ms steps would no
# longer be representable in a float. The limit applies to the time on the wire's 20 ms grid,
# on both sides (:func:`_check_sample_time`), so every decoded sample re-encodes.
_MAX_ABS_TIME_S = 1e12

# Signed fields: the most negative code means unknown, +-(2**(bits-1) - 1) means saturated and
# everything in between is exact. Unsigned fields: all ones means unknown, the code after the
# last exact one means saturated.
_GS_MAX_CODE = 253
_BATTERY_MAX_CODE = 100
_VOLT_MAX_CODE = 509
_HEADING_CODES = 180
_HEADING_UNKNOWN = 255

# The 13-bit "state" field packs four small enumerations in mixed radix:
#   state = ((armed * 10 + system_status) * 10 + gps_fix_type) * 40 + satellites
_STATUS_RADIX = 10  # MAV_STATE 0..8, 9 = unknown
_FIX_RADIX = 10  # GPS_FIX_TYPE 0..8, 9 = unknown
_SATS_RADIX = 40  # 0..37 exact, 38 = 38 or more, 39 = unknown
_STATUS_UNKNOWN = 9
_FIX_UNKNOWN = 9
_SATS_MAX = 37
_SATS_SATURATED = 38
_SATS_UNKNOWN = 39
_STATE_CODES = 2 * _STATUS_RADIX * _FIX_RADIX * _SATS_RADIX  # 8000 of 8192

#: HL_FAILURE_FLAG bits of MAVLink common.xml, as carried in HIGH_LATENCY2.failure_flags.
HL_FAILURE_FLAGS: Mapping[str, int] = {
    "GPS": 1,
    "DIFFERENTIAL_PRESSURE": 2,
    "ABSOLUTE_PRESSURE": 4,
    "3D_ACCEL": 8,
    "3D_GYRO": 16,
    "3D_MAG": 32,
    "TERRAIN": 64,
    "BATTERY": 128,
    "RC_RECEIVER": 256,
    "OFFBOARD_LINK": 512,
    "ENGINE": 1024,
    "GEOFENCE": 2048,
    "ESTIMATOR": 4096,
    "MISSION": 8192,
}
FAILURE_FLAGS_MASK = (1 << 14) - 1

#: Step of every quantised quantity; a decoded value is within half a step of the original.
#: ``position_m`` is the horizontal step, in metres, of the east/north grid about the origin.
RESOLUTION: Mapping[str, float] = {
    "time_unix_s": TIME_STEP_S,
    "position_m": _POS_STEP_M,
    "alt_amsl_m": _ALT_STEP_M,
    "alt_rel_m": _ALT_STEP_M,
    "heading_deg": _HEADING_STEP_DEG,
    "ground_speed_mps": _SPEED_STEP_MPS,
    "climb_mps": _SPEED_STEP_MPS,
    "battery_pct": 1.0,
    "voltage_v": _VOLT_STEP_V,
}

#: Largest and smallest values sent exactly (beyond them by more than half a step: saturated).
#: Position and altitudes are relative to the origin of :class:`CodecConfig`; ``home_alt_m`` is
#: the home altitude (``alt_amsl_m - alt_rel_m``) minus the origin's altitude.
RANGES: Mapping[str, tuple[float, float]] = {
    "east_m": (-4095.0, 4095.0),
    "north_m": (-4095.0, 4095.0),
    "alt_m": (-255.0, 255.0),
    "home_alt_m": (-63.0, 63.0),
    "ground_speed_mps": (0.0, 50.6),
    "climb_mps": (-12.4, 12.4),
    "battery_pct": (0.0, 100.0),
    "voltage_v": (0.0, 50.9),
    "satellites": (0, _SATS_MAX),
}


# --------------------------------------------------------------------------------------------
# Flight modes
# --------------------------------------------------------------------------------------------


class VehicleFamily(str, Enum):
    """Whose flight-mode numbers a device's ``custom_mode`` uses."""

    ARDUCOPTER = "arducopter"
    ARDUPLANE = "arduplane"
    ARDUROVER = "ardurover"
    ARDUSUB = "ardusub"
    PX4 = "px4"


MODE_CODE_OTHER = 30
MODE_CODE_UNKNOWN = 31
_ARDUPILOT_MAX_CODE = 29

_ARDUCOPTER_MODES = {
    0: "STABILIZE", 1: "ACRO", 2: "ALT_HOLD", 3: "AUTO", 4: "GUIDED", 5: "LOITER", 6: "RTL",
    7: "CIRCLE", 8: "POSITION", 9: "LAND", 10: "OF_LOITER", 11: "DRIFT", 13: "SPORT",
    14: "FLIP", 15: "AUTOTUNE", 16: "POSHOLD", 17: "BRAKE", 18: "THROW", 19: "AVOID_ADSB",
    20: "GUIDED_NOGPS", 21: "SMART_RTL", 22: "FLOWHOLD", 23: "FOLLOW", 24: "ZIGZAG",
    25: "SYSTEMID", 26: "AUTOROTATE", 27: "AUTO_RTL", 28: "TURTLE", 29: "RATE_ACRO",
}  # fmt: skip
_ARDUPLANE_MODES = {
    0: "MANUAL", 1: "CIRCLE", 2: "STABILIZE", 3: "TRAINING", 4: "ACRO", 5: "FBWA", 6: "FBWB",
    7: "CRUISE", 8: "AUTOTUNE", 10: "AUTO", 11: "RTL", 12: "LOITER", 13: "TAKEOFF",
    14: "AVOID_ADSB", 15: "GUIDED", 16: "INITIALISING", 17: "QSTABILIZE", 18: "QHOVER",
    19: "QLOITER", 20: "QLAND", 21: "QRTL", 22: "QAUTOTUNE", 23: "QACRO", 24: "THERMAL",
    25: "LOITERALTQLAND", 26: "AUTOLAND",
}  # fmt: skip
_ARDUROVER_MODES = {
    0: "MANUAL", 1: "ACRO", 2: "LEARNING", 3: "STEERING", 4: "HOLD", 5: "LOITER", 6: "FOLLOW",
    7: "SIMPLE", 8: "DOCK", 9: "CIRCLE", 10: "AUTO", 11: "RTL", 12: "SMART_RTL", 15: "GUIDED",
    16: "INITIALISING",
}  # fmt: skip
# pymavlink's map stops at MANUAL; MOTOR_DETECT (20) and SURFTRAK (21) are ArduSub's own
# Mode::Number values.
_ARDUSUB_MODES = {
    0: "STABILIZE", 1: "ACRO", 2: "ALT_HOLD", 3: "AUTO", 4: "GUIDED", 7: "CIRCLE",
    9: "SURFACE", 16: "POSHOLD", 19: "MANUAL", 20: "MOTOR_DETECT", 21: "SURFTRAK",
}  # fmt: skip


def px4_custom_mode(main_mode: int, sub_mode: int = 0) -> int:
    """PX4's HEARTBEAT.custom_mode: main mode in bits 16-23, sub mode in bits 24-31."""
    return (main_mode << 16) | (sub_mode << 24)


# (wire code, main mode, sub mode, name). Append only: codes are part of format v1.
_PX4_TABLE: tuple[tuple[int, int, int, str], ...] = (
    (0, 1, 0, "MANUAL"),
    (1, 2, 0, "ALTCTL"),
    (2, 3, 0, "POSCTL"),
    (3, 3, 1, "POSCTL_ORBIT"),
    (4, 3, 2, "POSCTL_SLOW"),
    (5, 4, 1, "AUTO_READY"),
    (6, 4, 2, "AUTO_TAKEOFF"),
    (7, 4, 3, "AUTO_LOITER"),
    (8, 4, 4, "AUTO_MISSION"),
    (9, 4, 5, "AUTO_RTL"),
    (10, 4, 6, "AUTO_LAND"),
    (11, 4, 7, "AUTO_RTGS"),
    (12, 4, 8, "AUTO_FOLLOW_TARGET"),
    (13, 4, 9, "AUTO_PRECLAND"),
    (14, 4, 10, "AUTO_VTOL_TAKEOFF"),
    (15, 5, 0, "ACRO"),
    (16, 6, 0, "OFFBOARD"),
    (17, 7, 0, "STABILIZED"),
    (18, 8, 0, "RATTITUDE"),
    (19, 10, 0, "TERMINATION"),
    # PX4 "external" modes: modes registered from a companion computer (ROS 2).
    (20, 4, 11, "AUTO_EXTERNAL1"),
    (21, 4, 12, "AUTO_EXTERNAL2"),
    (22, 4, 13, "AUTO_EXTERNAL3"),
    (23, 4, 14, "AUTO_EXTERNAL4"),
    (24, 4, 15, "AUTO_EXTERNAL5"),
    (25, 4, 16, "AUTO_EXTERNAL6"),
    (26, 4, 17, "AUTO_EXTERNAL7"),
    (27, 4, 18, "AUTO_EXTERNAL8"),
)
_PX4_MODES = {px4_custom_mode(main, sub): name for _, main, sub, name in _PX4_TABLE}
_PX4_CODE_BY_CUSTOM = {px4_custom_mode(main, sub): code for code, main, sub, _ in _PX4_TABLE}
_PX4_CUSTOM_BY_CODE = {code: px4_custom_mode(main, sub) for code, main, sub, _ in _PX4_TABLE}

#: custom_mode -> name, per family.
FLIGHT_MODES: Mapping[VehicleFamily, Mapping[int, str]] = {
    VehicleFamily.ARDUCOPTER: _ARDUCOPTER_MODES,
    VehicleFamily.ARDUPLANE: _ARDUPLANE_MODES,
    VehicleFamily.ARDUROVER: _ARDUROVER_MODES,
    VehicleFamily.ARDUSUB: _ARDUSUB_MODES,
    VehicleFamily.PX4: _PX4_MODES,
}

#: pymavlink's HEARTBEAT spelling of PX4 auto modes (``mavutil.mode_string_v10``) -> our name.
PX4_NAME_ALIASES: Mapping[str, str] = {
    "MISSION": "AUTO_MISSION",
    "LOITER": "AUTO_LOITER",
    "RTL": "AUTO_RTL",
    "LAND": "AUTO_LAND",
    "TAKEOFF": "AUTO_TAKEOFF",
    "FOLLOWME": "AUTO_FOLLOW_TARGET",
    "RTGS": "AUTO_RTGS",
}

# MAV_AUTOPILOT and MAV_TYPE numbers (MAVLink common.xml).
_MAV_AUTOPILOT_ARDUPILOTMEGA = 3
_MAV_AUTOPILOT_PX4 = 12
_COPTER_TYPES = frozenset({2, 3, 4, 13, 14, 15, 29, 35, 43})
_PLANE_TYPES = frozenset({1, 19, 20, 21})
_ROVER_TYPES = frozenset({10, 11})
_SUB_TYPES = frozenset({12})


def vehicle_family(autopilot: int, mav_type: int) -> VehicleFamily | None:
    """Family of a vehicle from its HEARTBEAT ``autopilot`` and ``type``; None if not covered."""
    if autopilot == _MAV_AUTOPILOT_PX4:
        return VehicleFamily.PX4
    if autopilot != _MAV_AUTOPILOT_ARDUPILOTMEGA:
        return None
    for types, family in (
        (_COPTER_TYPES, VehicleFamily.ARDUCOPTER),
        (_PLANE_TYPES, VehicleFamily.ARDUPLANE),
        (_ROVER_TYPES, VehicleFamily.ARDUROVER),
        (_SUB_TYPES, VehicleFamily.ARDUSUB),
    ):
        if mav_type in types:
            return family
    return None


def _family(value: object) -> VehicleFamily:
    try:
        return VehicleFamily(value)
    except ValueError:
        known = ", ".join(f.value for f in VehicleFamily)
        raise CodecError(f"unknown vehicle family {value!r} (known: {known})") from None


def mode_code(family: VehicleFamily | str, custom_mode: int | None) -> int:
    """5-bit wire code of a ``custom_mode``: table code, MODE_CODE_OTHER or MODE_CODE_UNKNOWN."""
    fam = _family(family)
    if custom_mode is None:
        return MODE_CODE_UNKNOWN
    if isinstance(custom_mode, bool) or not isinstance(custom_mode, int):
        raise CodecError(f"custom_mode must be an int or None, not {custom_mode!r}")
    if fam is VehicleFamily.PX4:
        return _PX4_CODE_BY_CUSTOM.get(custom_mode, MODE_CODE_OTHER)
    return custom_mode if 0 <= custom_mode <= _ARDUPILOT_MAX_CODE else MODE_CODE_OTHER


def mode_name(family: VehicleFamily | str, custom_mode: int | None) -> str | None:
    """pymavlink-style name of a ``custom_mode`` ("Mode(n)" if unnamed), None if unknown."""
    if custom_mode is None:
        return None
    name = FLIGHT_MODES[_family(family)].get(custom_mode)
    return name if name is not None else f"Mode({custom_mode})"


def mode_from_code(family: VehicleFamily | str, code: int) -> tuple[int | None, str | None]:
    """(custom_mode, name) of a wire code; ``(None, "OTHER")`` and ``(None, None)`` for the
    other/unknown codes. Raises :class:`CodecError` for a code reserved in this family."""
    fam = _family(family)
    if code == MODE_CODE_UNKNOWN:
        return None, None
    if code == MODE_CODE_OTHER:
        return None, "OTHER"
    if fam is VehicleFamily.PX4:
        custom = _PX4_CUSTOM_BY_CODE.get(code)
        if custom is None:
            raise CodecError(f"flight-mode code {code} is reserved for PX4 in format v1")
        return custom, _PX4_MODES[custom]
    if not 0 <= code <= _ARDUPILOT_MAX_CODE:
        raise CodecError(f"flight-mode code {code} is outside the 5-bit field")
    return code, mode_name(fam, code)


def custom_mode_from_name(family: VehicleFamily | str, name: str) -> int | None:
    """``custom_mode`` of a mode name (case-insensitive; PX4 also takes pymavlink's spelling)."""
    fam = _family(family)
    wanted = name.strip().upper()
    if fam is VehicleFamily.PX4:
        wanted = PX4_NAME_ALIASES.get(wanted, wanted)
    for custom, known in FLIGHT_MODES[fam].items():
        if known == wanted:
            return custom
    return None


# --------------------------------------------------------------------------------------------
# Samples and configuration
# --------------------------------------------------------------------------------------------


@dataclass
class TelemetrySample:
    """One vehicle state, in SI units; ``None`` means "not available".

    Angles follow MAVLink: ``heading_deg`` is clockwise from true north. ``climb_mps`` is
    positive upwards. ``custom_mode``, ``system_status`` (MAV_STATE), ``gps_fix_type``
    (GPS_FIX_TYPE) and ``failure_flags`` (HL_FAILURE_FLAG bits) are MAVLink numbers.
    ``mode_name`` and ``saturated`` are filled in by :func:`decode`: ``mode_name`` is "OTHER"
    when the sender's mode has no code in the format, and ``saturated`` names the fields whose
    true value lay beyond the wire range (their value is then just past the bound).
    :func:`encode` ignores both, except that ``custom_mode=None`` with ``mode_name="OTHER"`` is
    sent as "other", so that every decoded sample re-encodes to the same payload.
    """

    time_unix_s: float
    lat_deg: float | None = None
    lon_deg: float | None = None
    alt_amsl_m: float | None = None
    alt_rel_m: float | None = None
    heading_deg: float | None = None
    ground_speed_mps: float | None = None
    climb_mps: float | None = None
    battery_pct: float | None = None
    voltage_v: float | None = None
    custom_mode: int | None = None
    mode_name: str | None = None
    armed: bool = False
    system_status: int | None = None
    gps_fix_type: int | None = None
    satellites: int | None = None
    failure_flags: int = 0
    saturated: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CodecConfig:
    """What sender and receiver of one device must agree on, besides the keys.

    ``origin_*`` define the operating area (east/north/altitude are relative to it);
    ``family`` says how the device numbers its flight modes; ``max_clock_lead_s`` is how far
    the sender's clock may run ahead of the receiver's when timestamps are reconstructed.
    """

    origin_lat_deg: float
    origin_lon_deg: float
    origin_alt_m: float
    family: VehicleFamily
    max_clock_lead_s: float = DEFAULT_MAX_CLOCK_LEAD_S
    projection: LocalProjection = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # LocalProjection validates the latitude/longitude and raises ConfigError.
        object.__setattr__(
            self, "projection", LocalProjection(self.origin_lat_deg, self.origin_lon_deg)
        )
        alt = self.origin_alt_m
        if isinstance(alt, bool) or not isinstance(alt, (int, float)) or not math.isfinite(alt):
            raise ConfigError(f"origin altitude must be a finite number, got {alt!r}")
        try:
            object.__setattr__(self, "family", VehicleFamily(self.family))
        except ValueError:
            known = ", ".join(f.value for f in VehicleFamily)
            raise ConfigError(f"unknown vehicle family {self.family!r} (known: {known})") from None
        lead = self.max_clock_lead_s
        if (
            isinstance(lead, bool)
            or not isinstance(lead, (int, float))
            or not 0.0 <= lead < TIME_WINDOW_S
        ):
            raise ConfigError(
                f"max_clock_lead_s must be in [0, {TIME_WINDOW_S}) s, got {lead!r}"
            )


# --------------------------------------------------------------------------------------------
# Quantisation helpers
# --------------------------------------------------------------------------------------------


def _number(name: str, value: object) -> float | None:
    """A real number or None (NaN counts as None); anything else is a CodecError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CodecError(f"{name} must be a number or None, not {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range: saturates like +-inf
        value = math.inf if value > 0 else -math.inf
    return None if math.isnan(value) else value


def _round(x: float) -> int:
    """Round half up, the same on every platform (x is finite)."""
    return math.floor(x + 0.5)


def _q_signed(value: float | None, step: float, bits: int) -> int:
    unknown = -(1 << (bits - 1))
    sat = (1 << (bits - 1)) - 1
    if value is None or math.isnan(value):  # NaN: e.g. inf - inf of two bad readings
        return unknown
    x = value / step
    if x >= sat - 0.5:  # also +inf
        return sat
    if x < -(sat - 0.5):  # round half up: -(sat - 0.5) itself is still exact
        return -sat
    return _round(x)


def _q_unsigned(value: float | None, step: float, max_code: int, unknown: int) -> int:
    """Exact codes 0..max_code, max_code+1 saturated; negative readings count as unknown."""
    if value is None or math.isnan(value):
        return unknown
    x = value / step
    if x >= max_code + 0.5:
        return max_code + 1
    if x < -0.5:
        return unknown
    return _round(x)


def _check_sample_time(tick: int, what: object) -> None:
    """Refuse a sample time (20 ms tick) beyond the codec's limit, in encode and decode alike."""
    if not abs(tick * TIME_STEP_S) < _MAX_ABS_TIME_S:
        raise CodecError(f"sample time {what!r} is beyond the codec's +-{_MAX_ABS_TIME_S:g} s")


def time_code(time_unix_s: float) -> int:
    """The 11-bit wire timestamp: 20 ms ticks since the epoch, modulo 2048."""
    return _round(time_unix_s / TIME_STEP_S) % _TIME_TICKS


def reconstruct_time(
    code: int,
    receive_time_unix_s: float,
    max_clock_lead_s: float = DEFAULT_MAX_CLOCK_LEAD_S,
) -> float:
    """Sample time of a wire timestamp: the latest time congruent to ``code`` that is not later
    than ``receive_time + max_clock_lead_s``. Correct for every sample that is less than
    ``TIME_WINDOW_S - max_clock_lead_s`` old when received; older ones come out a whole number
    of windows too late."""
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < _TIME_TICKS:
        raise CodecError(f"time code must be an int in 0..{_TIME_TICKS - 1}, got {code!r}")
    for name, value in (("receive time", receive_time_unix_s), ("clock lead", max_clock_lead_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CodecError(f"{name} must be a number, got {value!r}")
    if not abs(receive_time_unix_s) < _MAX_ABS_TIME_S:
        raise CodecError(f"receive time is not a plausible Unix time: {receive_time_unix_s!r}")
    if not 0.0 <= max_clock_lead_s < TIME_WINDOW_S:
        raise CodecError(f"clock lead must be in [0, {TIME_WINDOW_S}) s, got {max_clock_lead_s!r}")
    latest_tick = math.floor((receive_time_unix_s + max_clock_lead_s) / TIME_STEP_S)
    tick = latest_tick - ((latest_tick - code) % _TIME_TICKS)
    _check_sample_time(tick, tick * TIME_STEP_S)
    return tick * TIME_STEP_S


def _signed_field(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) else raw


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


def _enum_code(name: str, value: object, radix_unknown: int) -> int:
    if value is None:
        return radix_unknown
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{name} must be an int or None, not {value!r}")
    # A value this format does not know yet (a future MAV_STATE, say) is sent as unknown.
    return value if 0 <= value < radix_unknown else radix_unknown


def _encode_fields_v1(sample: TelemetrySample, config: CodecConfig) -> dict[str, int]:
    t = _number("time_unix_s", sample.time_unix_s)
    if t is None or not abs(t) < _MAX_ABS_TIME_S:
        raise CodecError(f"time_unix_s is not a plausible Unix time: {sample.time_unix_s!r}")
    _check_sample_time(_round(t / TIME_STEP_S), t)

    # Position: east/north of the origin; unknown unless both coordinates are known.
    lat = _number("lat_deg", sample.lat_deg)
    lon = _number("lon_deg", sample.lon_deg)
    bits_pos = 14
    if lat is None or lon is None:
        east = north = -(1 << (bits_pos - 1))
    else:
        if not -90.0 <= lat <= 90.0:
            raise CodecError(f"lat_deg {lat} is not a latitude")
        if not math.isfinite(lon):
            raise CodecError(f"lon_deg {lon} is not a longitude")
        e_m, n_m = config.projection.to_local(lat, lon)
        east = _q_signed(e_m, _POS_STEP_M, bits_pos)
        north = _q_signed(n_m, _POS_STEP_M, bits_pos)

    # Altitude above the origin's altitude, and the home altitude relative to the same origin,
    # chosen so that alt - home is exactly the quantised alt_rel.
    amsl = _number("alt_amsl_m", sample.alt_amsl_m)
    rel = _number("alt_rel_m", sample.alt_rel_m)
    alt_unknown, alt_sat = -(1 << 9), (1 << 9) - 1
    home_unknown, home_sat = -(1 << 7), (1 << 7) - 1
    alt = _q_signed(None if amsl is None else amsl - config.origin_alt_m, _ALT_STEP_M, 10)
    if alt == alt_unknown or rel is None:
        home = home_unknown
    elif abs(alt) == alt_sat:
        # The altitude is already wrong; send the home altitude on its own.
        home = _q_signed(amsl - rel - config.origin_alt_m, _ALT_STEP_M, 8)
    else:
        rel_x = rel / _ALT_STEP_M
        if rel_x >= _ALT_LIMIT_TICKS:  # also +inf: the home is far below
            home = -home_sat
        elif rel_x <= -_ALT_LIMIT_TICKS:
            home = home_sat
        else:
            home = max(-home_sat, min(home_sat, alt - _round(rel_x)))

    heading_val = _number("heading_deg", sample.heading_deg)
    if heading_val is None or not math.isfinite(heading_val):
        heading = _HEADING_UNKNOWN
    else:
        heading = _round(heading_val / _HEADING_STEP_DEG) % _HEADING_CODES

    gs = _q_unsigned(
        _number("ground_speed_mps", sample.ground_speed_mps), _SPEED_STEP_MPS, _GS_MAX_CODE, 255
    )
    climb = _q_signed(_number("climb_mps", sample.climb_mps), _SPEED_STEP_MPS, 7)
    battery = _q_unsigned(_number("battery_pct", sample.battery_pct), 1.0, _BATTERY_MAX_CODE, 127)
    voltage = _q_unsigned(_number("voltage_v", sample.voltage_v), _VOLT_STEP_V, _VOLT_MAX_CODE, 511)

    mode = mode_code(config.family, sample.custom_mode)
    if sample.custom_mode is None and sample.mode_name == "OTHER":
        mode = MODE_CODE_OTHER  # a decoded "other" re-encodes as itself

    status = _enum_code("system_status", sample.system_status, _STATUS_UNKNOWN)
    fix = _enum_code("gps_fix_type", sample.gps_fix_type, _FIX_UNKNOWN)
    sats_val = _number("satellites", sample.satellites)
    if sats_val is None or sats_val < -0.5:
        sats = _SATS_UNKNOWN
    elif sats_val >= _SATS_MAX + 0.5:
        sats = _SATS_SATURATED
    else:
        sats = _round(sats_val)
    armed = 1 if sample.armed else 0
    state = ((armed * _STATUS_RADIX + status) * _FIX_RADIX + fix) * _SATS_RADIX + sats

    flags = sample.failure_flags
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
        raise CodecError(f"failure_flags must be a non-negative int, not {flags!r}")

    return {
        "time": time_code(t),
        "east": east,
        "north": north,
        "alt": alt,
        "home_alt": home,
        "heading": heading,
        "ground_speed": gs,
        "climb": climb,
        "battery": battery,
        "voltage": voltage,
        "mode": mode,
        "state": state,
        # Bits above HL_FAILURE_FLAG_MISSION (none defined yet) do not fit format v1.
        "failure_flags": flags & FAILURE_FLAGS_MASK,
    }


def _pack(fields: Mapping[str, int], layout: tuple[tuple[str, int], ...]) -> bytes:
    acc = 0
    total = 0
    for name, bits in layout:
        acc = (acc << bits) | (fields[name] & ((1 << bits) - 1))
        total += bits
    return acc.to_bytes(total // 8, "big")


def encode(sample: TelemetrySample, config: CodecConfig) -> tuple[int, bytes]:
    """(FPort, FRMPayload) of a sample in the newest format. Out-of-range values saturate;
    only an impossible sample (no finite time, a latitude beyond +-90 deg, a value of the wrong
    type) raises :class:`CodecError`."""
    if not isinstance(sample, TelemetrySample):
        raise CodecError(f"expected a TelemetrySample, got {type(sample).__name__}")
    if not isinstance(config, CodecConfig):
        raise CodecError(f"expected a CodecConfig, got {type(config).__name__}")
    payload = _pack(_encode_fields_v1(sample, config), LAYOUT_V1)
    return FPORT_V1, payload


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------


def _unpack(payload: bytes, layout: tuple[tuple[str, int], ...]) -> dict[str, int]:
    acc = int.from_bytes(payload, "big")
    shift = 8 * len(payload)
    out: dict[str, int] = {}
    for name, bits in layout:
        shift -= bits
        out[name] = (acc >> shift) & ((1 << bits) - 1)
    return out


def _decode_signed(
    raw: int, bits: int, step: float, name: str, saturated: set[str]
) -> tuple[int | None, float | None]:
    """(code, value): code None when unknown; saturation is recorded under ``name``."""
    code = _signed_field(raw, bits)
    if code == -(1 << (bits - 1)):
        return None, None
    if abs(code) == (1 << (bits - 1)) - 1:
        saturated.add(name)
    return code, code * step


def _decode_unsigned(
    code: int, max_code: int, unknown: int, step: float, name: str, saturated: set[str]
) -> float | None:
    if code == unknown:
        return None
    if code == max_code + 1:
        saturated.add(name)
    elif code > max_code:
        raise CodecError(f"{name} code {code} is reserved in format v1")
    return code * step


def _decode_v1(
    payload: bytes, config: CodecConfig, receive_time_unix_s: float
) -> TelemetrySample:
    if len(payload) != PAYLOAD_SIZE_V1:
        raise CodecError(
            f"telemetry v1 payload must be {PAYLOAD_SIZE_V1} bytes, got {len(payload)}"
        )
    raw = _unpack(payload, LAYOUT_V1)
    sat: set[str] = set()

    east, east_m = _decode_signed(raw["east"], 14, _POS_STEP_M, "lon_deg", sat)
    north, north_m = _decode_signed(raw["north"], 14, _POS_STEP_M, "lat_deg", sat)
    if (east is None) != (north is None):
        raise CodecError("position is half unknown (east and north disagree)")
    lat = lon = None
    if east_m is not None and north_m is not None:
        lat, lon = config.projection.to_geodetic(east_m, north_m)

    alt, alt_m = _decode_signed(raw["alt"], 10, _ALT_STEP_M, "alt_amsl_m", sat)
    home, _ = _decode_signed(raw["home_alt"], 8, _ALT_STEP_M, "home_alt", sat)
    amsl = rel = None
    if alt is None:
        if home is not None:
            raise CodecError("home altitude given without an altitude")
    else:
        amsl = config.origin_alt_m + alt_m
        if home is not None:
            rel = (alt - home) * _ALT_STEP_M
            if "alt_amsl_m" in sat or "home_alt" in sat:
                sat.add("alt_rel_m")
    sat.discard("home_alt")

    heading = None
    if raw["heading"] != _HEADING_UNKNOWN:
        if raw["heading"] >= _HEADING_CODES:
            raise CodecError(f"heading code {raw['heading']} is reserved in format v1")
        heading = raw["heading"] * _HEADING_STEP_DEG

    gs = _decode_unsigned(
        raw["ground_speed"], _GS_MAX_CODE, 255, _SPEED_STEP_MPS, "ground_speed_mps", sat
    )
    _, climb = _decode_signed(raw["climb"], 7, _SPEED_STEP_MPS, "climb_mps", sat)
    battery = _decode_unsigned(raw["battery"], _BATTERY_MAX_CODE, 127, 1.0, "battery_pct", sat)
    voltage = _decode_unsigned(raw["voltage"], _VOLT_MAX_CODE, 511, _VOLT_STEP_V, "voltage_v", sat)

    custom_mode, name = mode_from_code(config.family, raw["mode"])

    state = raw["state"]
    if state >= _STATE_CODES:
        raise CodecError(f"state code {state} is reserved in format v1")
    state, sats_code = divmod(state, _SATS_RADIX)
    state, fix_code = divmod(state, _FIX_RADIX)
    armed, status_code = divmod(state, _STATUS_RADIX)
    if sats_code == _SATS_UNKNOWN:
        sats = None
    else:
        sats = sats_code
        if sats_code == _SATS_SATURATED:
            sat.add("satellites")

    return TelemetrySample(
        time_unix_s=reconstruct_time(raw["time"], receive_time_unix_s, config.max_clock_lead_s),
        lat_deg=lat,
        lon_deg=lon,
        alt_amsl_m=amsl,
        alt_rel_m=rel,
        heading_deg=heading,
        ground_speed_mps=gs,
        climb_mps=climb,
        battery_pct=battery,
        voltage_v=voltage,
        custom_mode=custom_mode,
        mode_name=name,
        armed=bool(armed),
        system_status=None if status_code == _STATUS_UNKNOWN else status_code,
        gps_fix_type=None if fix_code == _FIX_UNKNOWN else fix_code,
        satellites=sats,
        failure_flags=raw["failure_flags"],
        saturated=frozenset(sat),
    )


_DECODERS = {FPORT_V1: _decode_v1}


def decode(
    fport: int, payload: bytes, config: CodecConfig, receive_time_unix_s: float
) -> TelemetrySample:
    """Sample carried by a decrypted FRMPayload received at ``receive_time_unix_s``.

    Raises :class:`CodecError`, and nothing else, for any FPort, payload or argument it
    cannot decode.
    """
    if isinstance(fport, bool) or not isinstance(fport, int):
        raise CodecError(f"FPort must be an int, not {type(fport).__name__}")
    decoder = _DECODERS.get(fport)
    if decoder is None:
        if fport == 0:
            why = "FPort 0 carries MAC commands, not telemetry"
        elif 224 <= fport <= 255:
            why = f"FPort {fport} is reserved for LoRaWAN standard extensions"
        elif 1 <= fport <= 223:
            why = f"FPort {fport} is not a telemetry format this decoder knows"
        else:
            why = f"FPort {fport} is outside 0..255"
        known = ", ".join(str(p) for p in sorted(SUPPORTED_FPORTS))
        raise CodecError(f"{why} (telemetry FPorts: {known})")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise CodecError(f"payload must be bytes, not {type(payload).__name__}")
    if not isinstance(config, CodecConfig):
        raise CodecError(f"expected a CodecConfig, got {type(config).__name__}")
    rx = receive_time_unix_s
    if isinstance(rx, bool) or not isinstance(rx, (int, float)) or not abs(rx) < _MAX_ABS_TIME_S:
        raise CodecError(f"receive time is not a plausible Unix time: {rx!r}")
    return decoder(bytes(payload), config, float(rx))
