"""Log replay (sans-I/O): the records of a ``.tlog`` as a flight controller would send them.

:class:`LogReplayer` + :class:`ReplayTransform`: the records of a ``.tlog``, paced by their own
timestamps (``speed`` times faster), optionally looped, moved (a shift in metres, or re-centred
on a new origin with the geometry kept in metres) and re-addressed (``sysid``: every packet of
the log's vehicle is re-encoded as MAVLink 2 by an encoder whose ``srcSystem`` is the new id,
keeping component and sequence numbers), so one log can stand for several UAVs. Only the log's
vehicle system is replayed unless asked otherwise: the GCS traffic recorded with it is not
vehicle traffic. A log whose vehicle never has a fix (lat = lon = 0 throughout) replays too,
with its position unknown, as the autopilot reported it. :func:`find_log_reference` finds the
log's vehicle and the fix a re-centred replay anchors on.

Logs are read with the link's own :class:`~lora_telemetry.mavlink.tlog.TlogReader`, so the
replay and a drone node replaying the same log see the same records.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.geo import LocalProjection
from lora_telemetry.mavlink.state import MAV_COMP_ID_AUTOPILOT1, is_autopilot_heartbeat
from lora_telemetry.mavlink.tlog import TlogReader
from lora_telemetry.sim.vehicle.encoding import UINT16_MAX, degrees_to_e7

__all__ = [
    "LogReference",
    "GNSS_ALTITUDE_AGREEMENT_M",
    "find_log_reference",
    "ReplayTransform",
    "LogReplayer",
]

log = logging.getLogger(__package__)  # the package's one logger (see its notes)

#: Messages carrying a position as int32 degrees * 1e7: (latitude field, longitude field).
_POSITION_FIELDS: Mapping[str, tuple[str, str]] = {
    "GLOBAL_POSITION_INT": ("lat", "lon"),
    "GLOBAL_POSITION_INT_COV": ("lat", "lon"),
    "GPS_RAW_INT": ("lat", "lon"),
    "GPS2_RAW": ("lat", "lon"),
    "GPS_INPUT": ("lat", "lon"),
    "HOME_POSITION": ("latitude", "longitude"),
    "GPS_GLOBAL_ORIGIN": ("latitude", "longitude"),
    "POSITION_TARGET_GLOBAL_INT": ("lat_int", "lon_int"),
    "SIMSTATE": ("lat", "lng"),
    "AHRS2": ("lat", "lng"),
    "AHRS3": ("lat", "lng"),
    "TERRAIN_REPORT": ("lat", "lon"),
    "HIGH_LATENCY2": ("latitude", "longitude"),
}
#: AMSL altitudes moved with a re-centred origin: message -> ((field, metres per unit), ...).
#: Every AMSL altitude an autopilot sends moves by the same difference, so that all of them
#: keep agreeing; heights above home, terrain or the EKF origin (relative_alt, current_height,
#: LOCAL_POSITION_NED.z, HOME_POSITION.z...) are not AMSL and stay as logged.
_ALTITUDE_FIELDS: Mapping[str, tuple[tuple[str, float], ...]] = {
    "GLOBAL_POSITION_INT": (("alt", 1e-3),),
    "GLOBAL_POSITION_INT_COV": (("alt", 1e-3),),
    "GPS_RAW_INT": (("alt", 1e-3), ("alt_ellipsoid", 1e-3)),
    "GPS2_RAW": (("alt", 1e-3), ("alt_ellipsoid", 1e-3)),
    "GPS_INPUT": (("alt", 1.0),),
    "HOME_POSITION": (("altitude", 1e-3),),
    "GPS_GLOBAL_ORIGIN": (("altitude", 1e-3),),
    "POSITION_TARGET_GLOBAL_INT": (("alt", 1.0),),  # in the AMSL frames only, see below
    "TERRAIN_REPORT": (("terrain_height", 1.0),),
    "HIGH_LATENCY2": (("altitude", 1.0),),  # not target_altitude: its frame is unspecified
    "ALTITUDE": (("altitude_amsl", 1.0),),
    "VFR_HUD": (("alt", 1.0),),
    "AHRS2": (("altitude", 1.0),),
    "AHRS3": (("altitude", 1.0),),
}
#: Messages whose altitude is AMSL only in some coordinate frames: (frame field, AMSL frames
#: MAV_FRAME_GLOBAL = 0 and MAV_FRAME_GLOBAL_INT = 5; relative and terrain frames stay).
_ALTITUDE_FRAME: Mapping[str, tuple[str, frozenset[int]]] = {
    "POSITION_TARGET_GLOBAL_INT": ("coordinate_frame", frozenset({0, 5})),
}
#: Optional MAVLink 2 extension fields: 0 is what a sender that does not fill them (and every
#: MAVLink 1 packet) carries, so 0 means "absent" and is not moved.
_ABSENT_WHEN_ZERO = frozenset({"alt_ellipsoid"})


def _amsl_altitude_fields(msg: Any, mtype: str) -> tuple[tuple[str, float], ...]:
    """The AMSL altitude fields (name, metres per unit) this message carries."""
    frame = _ALTITUDE_FRAME.get(mtype)
    if frame is not None and getattr(msg, frame[0]) not in frame[1]:
        return ()
    return tuple((name, unit) for name, unit in _ALTITUDE_FIELDS.get(mtype, ())
                 if not (name in _ABSENT_WHEN_ZERO and getattr(msg, name) == 0))


@dataclass(frozen=True)
class LogReference:
    """The vehicle in a log: its system id and the anchor a re-centred replay puts on the new
    origin: its first valid fix (lat, lon, AMSL altitude).

    ArduPilot streams a position before its EKF has an altitude origin (the rover log reports
    -0.17 m for a second, beside a GNSS altitude of 1583 m), and anchoring on that would move
    every later altitude 1583 m too high. So the anchor is the first GLOBAL_POSITION_INT with
    a position whose altitude agrees (within :data:`GNSS_ALTITUDE_AGREEMENT_M`) with the
    latest 3D GNSS fix (GPS_RAW_INT); a log where none agrees (or without GPS_RAW_INT) takes
    its first position.

    A log that never has a fix (every GLOBAL_POSITION_INT at lat = lon = 0, ArduPilot's "no
    position") has no horizontal anchor: ``lat_deg``/``lon_deg`` are None, positions are
    replayed as they are (unknown), and the altitude of its first GLOBAL_POSITION_INT still
    anchors the altitudes (None if it has none: altitudes then stay as logged too)."""

    sysid: int
    lat_deg: float | None
    lon_deg: float | None
    alt_m: float | None


#: How close a fix's altitude must be to the GNSS altitude to anchor a replay (the rule of
#: the codec's log tests: an EKF without an altitude origin is off by hundreds of metres).
GNSS_ALTITUDE_AGREEMENT_M = 10.0


def find_log_reference(path: str | os.PathLike[str]) -> LogReference:
    """The log's autopilot (first autopilot HEARTBEAT from component 1) and its first valid
    fix (which may come before that heartbeat); see :class:`LogReference`."""
    if not Path(path).is_file():
        raise ConfigError(f"MAVLink log {str(path)!r} does not exist or is not a file")
    try:
        reader = TlogReader(path)
    except OSError as exc:
        raise ConfigError(f"cannot read MAVLink log {str(path)!r}: {exc}") from None
    sysid: int | None = None
    first_position: dict[int, LogReference] = {}
    valid_position: dict[int, LogReference] = {}
    first_altitude: dict[int, float] = {}
    gnss: dict[int, Any] = {}  # latest GPS_RAW_INT per system
    try:
        while True:
            msg = reader.recv_msg()
            if msg is None:
                break
            mtype = msg.get_type()
            src = msg.get_srcSystem() if mtype != "BAD_DATA" else None
            if mtype == "GPS_RAW_INT":
                gnss[src] = msg
            elif mtype == "GLOBAL_POSITION_INT":
                first_altitude.setdefault(src, msg.alt * 1e-3)
                if (msg.lat, msg.lon) != (0, 0):
                    fix = LogReference(src, msg.lat * 1e-7, msg.lon * 1e-7, msg.alt * 1e-3)
                    first_position.setdefault(src, fix)
                    gps = gnss.get(src)
                    if src not in valid_position and gps is not None and (
                        gps.fix_type >= mavlink2.GPS_FIX_TYPE_3D_FIX
                        and abs(msg.alt - gps.alt) * 1e-3 <= GNSS_ALTITUDE_AGREEMENT_M
                    ):
                        valid_position[src] = fix
            elif (
                sysid is None
                and mtype == "HEARTBEAT"
                and msg.get_srcComponent() == MAV_COMP_ID_AUTOPILOT1
                and is_autopilot_heartbeat(msg.autopilot, msg.type)
            ):
                sysid = src
            if sysid is not None and sysid in valid_position:
                return valid_position[sysid]
    finally:
        reader.close()
    if sysid is None:
        raise ConfigError(f"{path}: no autopilot HEARTBEAT in the log")
    if sysid in first_position:
        return first_position[sysid]
    return LogReference(sysid, None, None, first_altitude.get(sysid))


class ReplayTransform:
    """Re-addresses and moves the packets of one log vehicle; :meth:`apply` gives the bytes to
    send for one message (None: not sent).

    ``sysid``: new source system (None: keep). ``shift_east_m``/``shift_north_m``: move every
    position by that much. ``origin``: (lat, lon[, alt]) to re-centre the log's reference
    position on (then the shift is applied about it; with an altitude, AMSL altitudes move by
    the difference). ``keep_other_systems``: pass other systems' packets through unchanged.
    Positions at lat = lon = 0 ("no fix") are never moved; a reference without a position
    (a log that never has a fix) moves no position at all. ``gps_clock``: SYSTEM_TIME's
    ``time_unix_usec`` becomes this clock's time when the record goes out, as a flight
    controller's GPS says now, not when the log was flown (TDMA slots follow it); None keeps
    the logged time.
    """

    def __init__(
        self,
        reference: LogReference,
        *,
        sysid: int | None = None,
        shift_east_m: float = 0.0,
        shift_north_m: float = 0.0,
        origin: Sequence[float] | None = None,
        keep_other_systems: bool = False,
        gps_clock: Callable[[], float] | None = None,
    ) -> None:
        if sysid is not None and not (isinstance(sysid, int) and 1 <= sysid <= 255):
            raise ConfigError(f"--sysid must be in 1..255, got {sysid!r}")
        for name, value in (("shift_east_m", shift_east_m), ("shift_north_m", shift_north_m)):
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be finite, got {value!r}")
        self.reference = reference
        self.sysid = sysid
        self.shift = (float(shift_east_m), float(shift_north_m))
        self.keep_other_systems = keep_other_systems
        self.gps_clock = gps_clock
        self._ref_proj: LocalProjection | None = None
        if reference.lat_deg is not None and reference.lon_deg is not None:
            self._ref_proj = LocalProjection(reference.lat_deg, reference.lon_deg)
        self._target_proj = self._ref_proj
        self._dalt_m = 0.0
        if origin is not None:
            if len(origin) not in (2, 3):
                raise ConfigError("origin must be lat,lon or lat,lon,alt")
            self._target_proj = LocalProjection(origin[0], origin[1])
            if len(origin) == 3 and reference.alt_m is not None:
                self._dalt_m = float(origin[2]) - reference.alt_m
        moves_positions = self._ref_proj is not None and (
            origin is not None or self.shift != (0.0, 0.0))
        self._moves = moves_positions or self._dalt_m != 0.0
        self.mav = mavlink2.MAVLink(None)
        self.counters: Counter[str] = Counter()
        #: Newest GLOBAL_POSITION_INT sent (after the transform): the replay's truth.
        self.last_position: dict[str, Any] | None = None

    @property
    def out_sysid(self) -> int:
        return self.sysid if self.sysid is not None else self.reference.sysid

    def _move(self, msg: Any, mtype: str) -> bool:
        changed = False
        fields = _POSITION_FIELDS.get(mtype)
        if fields is not None and self._ref_proj is not None and self._target_proj is not None:
            lat_f, lon_f = fields
            lat, lon = getattr(msg, lat_f), getattr(msg, lon_f)
            if (lat, lon) != (0, 0) and abs(lat) <= 900_000_000:
                e, n = self._ref_proj.to_local(lat * 1e-7, lon * 1e-7)
                new_lat, new_lon = self._target_proj.to_geodetic(
                    e + self.shift[0], n + self.shift[1]
                )
                setattr(msg, lat_f, max(-900_000_000, min(900_000_000, degrees_to_e7(new_lat))))
                setattr(msg, lon_f, degrees_to_e7(new_lon))
                changed = True
        if self._dalt_m != 0.0:
            for name, unit in _amsl_altitude_fields(msg, mtype):
                logged = getattr(msg, name)
                value = logged + self._dalt_m / unit
                setattr(msg, name, int(round(value)) if isinstance(logged, int) else float(value))
                changed = True
        return changed

    def apply(self, msg: Any) -> bytes | None:
        mtype = msg.get_type()
        if mtype == "BAD_DATA":
            self.counters["bad_data_dropped"] += 1
            return None
        if msg.get_srcSystem() != self.reference.sysid:
            if self.keep_other_systems and not mtype.startswith("UNKNOWN_"):
                return bytes(msg.get_msgbuf())
            self.counters["other_system_dropped"] += 1
            return None
        readdress = self.sysid is not None and self.sysid != self.reference.sysid
        if mtype.startswith("UNKNOWN_"):
            if readdress or self._moves:  # no definition: cannot be re-encoded
                self.counters["unknown_dropped"] += 1
                return None
            return bytes(msg.get_msgbuf())
        retime = self.gps_clock is not None and mtype == "SYSTEM_TIME"
        if not self._moves and not readdress and not retime:
            self._note_position(msg, mtype)
            return bytes(msg.get_msgbuf())
        # Work on a copy: the same record goes through every transform of a multi-copy replay.
        try:
            work = self.mav.decode(bytearray(msg.get_msgbuf()))
        except mavlink2.MAVError:
            self.counters["repack_failed"] += 1
            return None
        moved = self._moves and self._move(work, mtype)
        if retime:
            assert self.gps_clock is not None
            work.time_unix_usec = int(self.gps_clock() * 1e6)
            moved = True
        self._note_position(work, mtype)
        if not moved and not readdress:
            return bytes(msg.get_msgbuf())
        self.mav.srcSystem = self.out_sysid
        self.mav.srcComponent = msg.get_srcComponent()
        self.mav.seq = msg.get_seq()
        try:
            return bytes(work.pack(self.mav))
        except Exception as exc:  # noqa: BLE001 - pymavlink raises struct.error and friends
            self.counters["repack_failed"] += 1
            log.debug("cannot re-encode %s: %s", mtype, exc)
            return None

    def _note_position(self, msg: Any, mtype: str) -> None:
        if mtype == "GLOBAL_POSITION_INT":
            known = (msg.lat, msg.lon) != (0, 0)  # 0, 0: the autopilot has no position (yet)
            self.last_position = {
                "sysid": self.out_sysid,
                "lat_deg": msg.lat * 1e-7 if known else None,
                "lon_deg": msg.lon * 1e-7 if known else None,
                "alt_amsl_m": msg.alt * 1e-3,
                "alt_rel_m": msg.relative_alt * 1e-3,
                "heading_deg": None if msg.hdg == UINT16_MAX else msg.hdg * 0.01,
                "time_boot_ms": msg.time_boot_ms,
            }


class LogReplayer:
    """Paces a log's records by their timestamps: :meth:`frames` yields
    ``(due_s, [packet or None per transform], message)``, ``due_s`` in wall-clock seconds from
    the start (log time divided by ``speed``), across loops when ``loop`` (one second of
    silence between passes)."""

    GAP_BETWEEN_LOOPS_S = 1.0
    MAX_STEP_S = 60.0  # a longer forward jump in a log is a corrupt timestamp

    def __init__(
        self,
        path: str | os.PathLike[str],
        transforms: Sequence[ReplayTransform],
        *,
        speed: float = 1.0,
        loop: bool = False,
    ) -> None:
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"replay speed must be a positive number, got {speed!r}")
        if not Path(path).is_file():
            raise ConfigError(f"MAVLink log {str(path)!r} does not exist or is not a file")
        self.path = path
        self.transforms = list(transforms)
        self.speed = float(speed)
        self.loop = loop
        self.counters: Counter[str] = Counter()
        self.passes = 0

    def frames(self) -> Iterator[tuple[float, list[bytes | None], Any]]:
        offset = 0.0
        while True:
            try:
                reader = TlogReader(self.path)
            except OSError as exc:
                raise ConfigError(f"cannot read MAVLink log {str(self.path)!r}: {exc}") from None
            first = last = None
            try:
                while True:
                    msg = reader.recv_msg()
                    if msg is None:
                        break
                    ts = getattr(msg, "_timestamp", None)
                    if ts is None:  # bad data: not replayed
                        self.counters["bad_data"] += 1
                        continue
                    if first is None:
                        first = last = ts
                    elif not (last <= ts <= last + self.MAX_STEP_S):  # type: ignore[operator]
                        self.counters["bad_timestamps"] += 1
                        ts = last
                    last = ts
                    packets = [t.apply(msg) for t in self.transforms]
                    self.counters["records"] += 1
                    yield offset + (ts - first) / self.speed, packets, msg
            finally:
                reader.close()
            self.passes += 1
            if not self.loop or first is None:
                return
            duration = (last - first) / self.speed  # type: ignore[operator]
            offset += duration + self.GAP_BETWEEN_LOOPS_S
