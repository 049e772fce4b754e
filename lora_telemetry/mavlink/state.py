"""One vehicle's state, aggregated from MAVLink messages (sans-I/O).

Feed :meth:`VehicleState.update` every message a link receives, with the time it was received;
ask :meth:`VehicleState.sample` for a :class:`~lora_telemetry.core.codec.TelemetrySample` when a
frame is due. Nothing here reads a clock or a socket, so a replayed log, a live serial link and
a unit test with a fake clock all drive the same code.

Decisions worth knowing:

* **One autopilot.** A MAVLink network carries the GCS (255), radios, cameras, gimbals and
  companion computers beside the flight controller (the ArduSub log in the test data has
  components 1/1, 1/100 camera, 1/194 onboard computer and 1/220 GPS, and a GCS at 255/190).
  The state locks onto one autopilot: the configured system id, or else the first HEARTBEAT
  from component
  ``component_id`` (1, MAV_COMP_ID_AUTOPILOT1) with a real autopilot (not
  MAV_AUTOPILOT_INVALID) and a vehicle MAV_TYPE. Every other source is counted and ignored.
* **Newest wins, per field.** Several messages carry the same quantity (heading in
  GLOBAL_POSITION_INT and VFR_HUD, battery in SYS_STATUS and BATTERY_STATUS); each field keeps
  the newest valid value and the time it arrived, and a field older than ``field_timeout_s``
  reads as unknown, so a sample never presents an old battery reading as current.
* **Stale means silent.** The vehicle is stale when none of HEARTBEAT/GLOBAL_POSITION_INT
  arrived for ``stale_timeout_s``: the flight controller (or the link to it) went quiet.
* **Reboots.** A flight controller that reboots forgets the stream rates it was asked for. The
  state reports a reboot when ``time_boot_ms`` of SYSTEM_TIME, ATTITUDE or GLOBAL_POSITION_INT
  restarts (falls by more than a second, to less than half its value), and a "resumed" event
  when messages return after a stale period (a reboot too long to see otherwise); the link
  re-requests its streams on either. Packet sequence numbers are not used: they wrap every 256
  packets and jump with every lost packet.
* **Sample time.** With ``time_source="auto"`` the sample time is the autopilot's UTC clock
  (SYSTEM_TIME.time_unix_usec, mapped onto the position's ``time_boot_ms``: the measurement
  time, without the link's delay) when it has one that agrees with the host clock within
  ``max_clock_offset_s`` (SITL and replayed logs carry other clocks: the VTOL log's is 16 s
  behind its own record times); otherwise, and always with ``time_source="receive"`` (log
  replay), the receive time. With ``time_source="gps"`` (TDMA) the rule turns round: the
  autopilot's UTC is the reference whatever the host clock says (core/timesync.py warns
  about a host clock that disagrees), and every plausible SYSTEM_TIME is also kept as a
  (GPS time, receive time) pair for the drone's TimeKeeper (:meth:`VehicleState.take_time_samples`).
* **Velocity** (GLOBAL_POSITION_INT vx/vy/vz, north/east/down) is kept with the position, so
  a sample can be carried forward to the instant it goes on the air (core/kinematics.py).
* **Mode names** come from the core codec's table (what the ground decodes); pymavlink's name
  (``mavutil.mode_string_v10``) is kept beside it and disagreements are counted.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Mapping

from pymavlink import mavutil

from lora_telemetry.core.codec import (
    HL_FAILURE_FLAGS,
    PX4_NAME_ALIASES,
    TelemetrySample,
    VehicleFamily,
    mode_name,
    vehicle_family,
)
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.kinematics import extrapolate

__all__ = [
    "MAV_AUTOPILOT_INVALID",
    "MAV_COMP_ID_AUTOPILOT1",
    "NON_VEHICLE_TYPES",
    "EVENT_AUTOPILOT",
    "EVENT_REBOOT",
    "EVENT_RESUMED",
    "UpdateResult",
    "VehicleState",
    "is_autopilot_heartbeat",
    "failure_flags_from_sys_status",
]

MAV_AUTOPILOT_INVALID = 8
MAV_AUTOPILOT_PX4 = 12
MAV_COMP_ID_AUTOPILOT1 = 1
_MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
_MAV_MODE_FLAG_SAFETY_ARMED = 128

#: MAV_TYPEs that are not vehicles (common.xml): antenna tracker, GCS, onboard controller,
#: gimbal, ADS-B, camera, charging station, FLARM, servo, OpenDroneID, battery, parachute, log,
#: OSD, IMU, GPS, winch, illuminator, gripper.
NON_VEHICLE_TYPES = frozenset(
    {5, 6, 18, 26, 27, 30, 31, 32, 33, 34, 36, 37, 38, 39, 40, 41, 42, 44, 48}
)

#: Events :meth:`VehicleState.update` reports.
EVENT_AUTOPILOT = "autopilot_selected"
EVENT_REBOOT = "reboot"
EVENT_RESUMED = "resumed"

_UINT16_MAX = 0xFFFF
# SYSTEM_TIME.time_unix_usec is believed between 2015-01-01 and 2100-01-01 (ArduPilot sends 0
# until its GPS has the time).
_MIN_PLAUSIBLE_UNIX_S = 1_420_070_400.0
_MAX_PLAUSIBLE_UNIX_S = 4_102_444_800.0

# MAV_SYS_STATUS_SENSOR bits (common.xml) -> HL_FAILURE_FLAG name, as HIGH_LATENCY2 reports them.
_SENSOR_TO_FAILURE: tuple[tuple[int, str], ...] = (
    (0x1 | 0x20000, "3D_GYRO"),  # 3D_GYRO, 3D_GYRO2
    (0x2 | 0x40000, "3D_ACCEL"),  # 3D_ACCEL, 3D_ACCEL2
    (0x4 | 0x80000, "3D_MAG"),  # 3D_MAG, 3D_MAG2
    (0x8, "ABSOLUTE_PRESSURE"),
    (0x10, "DIFFERENTIAL_PRESSURE"),
    (0x20, "GPS"),
    (0x10000, "RC_RECEIVER"),
    (0x100000, "GEOFENCE"),
    (0x200000, "ESTIMATOR"),  # MAV_SYS_STATUS_AHRS
    (0x400000, "TERRAIN"),
    (0x2000000, "BATTERY"),
)

# Messages whose time_boot_ms steps backwards only when the flight controller restarted.
_BOOT_CLOCK_MESSAGES = ("SYSTEM_TIME", "ATTITUDE", "GLOBAL_POSITION_INT")


def is_autopilot_heartbeat(autopilot: int, mav_type: int) -> bool:
    """True for the HEARTBEAT of a flight controller (not a GCS, camera, gimbal, radio...)."""
    return autopilot != MAV_AUTOPILOT_INVALID and mav_type not in NON_VEHICLE_TYPES


def failure_flags_from_sys_status(present: int, enabled: int, health: int) -> int:
    """HL_FAILURE_FLAG bits of the sensors SYS_STATUS reports present, enabled and unhealthy."""
    bad = present & enabled & ~health
    flags = 0
    for bits, name in _SENSOR_TO_FAILURE:
        if bad & bits:
            flags |= HL_FAILURE_FLAGS[name]
    return flags


@dataclass(frozen=True)
class UpdateResult:
    """What one message did: whether it came from the autopilot, and any events it raised."""

    accepted: bool
    events: tuple[str, ...] = ()


class _HeartbeatView:
    """The attributes ``mavutil.mode_string_v10`` reads, from a message's field mapping."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.autopilot = fields["autopilot"]
        self.base_mode = fields["base_mode"]
        self.custom_mode = fields["custom_mode"]
        self.type = fields["type"]

    @staticmethod
    def get_type() -> str:
        return "HEARTBEAT"


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class VehicleState:
    """Aggregates one autopilot's messages into a state with per-field freshness.

    ``system_id``: lock onto this MAVLink system (None: the first autopilot heartbeat).
    ``component_id``: the autopilot's component (MAV_COMP_ID_AUTOPILOT1).
    ``stale_timeout_s``: silence (no HEARTBEAT/GLOBAL_POSITION_INT) after which the vehicle is
    stale. ``field_timeout_s``: age after which a field reads as unknown (None: never).
    ``time_source``: "auto" (autopilot UTC when it has it and it agrees with the host),
    "gps" (autopilot UTC whenever it has it) or "receive" (always receive time).
    ``max_clock_offset_s``: the autopilot's UTC is believed only within this of the receive
    time (the codec needs sender and receiver clocks that agree, so the host's is right).
    """

    def __init__(
        self,
        system_id: int | None = None,
        component_id: int = MAV_COMP_ID_AUTOPILOT1,
        stale_timeout_s: float = 3.0,
        field_timeout_s: float | None = 10.0,
        time_source: str = "auto",
        reboot_backstep_s: float = 1.0,
        max_clock_offset_s: float = 2.0,
    ) -> None:
        if system_id is not None and not (
            isinstance(system_id, int) and not isinstance(system_id, bool) and 1 <= system_id <= 255
        ):
            raise ConfigError(f"MAVLink system id must be an int in 1..255, got {system_id!r}")
        if not (isinstance(component_id, int) and 1 <= component_id <= 255):
            raise ConfigError(f"MAVLink component id must be in 1..255, got {component_id!r}")
        timeouts = (("stale_timeout_s", stale_timeout_s), ("field_timeout_s", field_timeout_s))
        for name, value in timeouts:
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value > 0
            ):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if stale_timeout_s is None:
            raise ConfigError("stale_timeout_s must be a positive number of seconds, got None")
        if time_source not in ("auto", "gps", "receive"):
            raise ConfigError(f"time_source must be 'auto', 'gps' or 'receive', got {time_source!r}")
        self.wanted_system_id = system_id
        self.component_id = component_id
        self.stale_timeout_s = float(stale_timeout_s)
        self.field_timeout_s = None if field_timeout_s is None else float(field_timeout_s)
        self.time_source = time_source
        self.reboot_backstep_s = float(reboot_backstep_s)
        self.max_clock_offset_s = float(max_clock_offset_s)

        #: (system id, component id) of the autopilot, once selected.
        self.autopilot: tuple[int, int] | None = None
        self.family: VehicleFamily | None = None
        self.mav_type: int | None = None
        self.autopilot_type: int | None = None
        #: pymavlink's name of the latest mode (``mavutil.mode_string_v10``).
        self.pymavlink_mode: str | None = None

        self._fields: dict[str, tuple[Any, float]] = {}
        self._staged: dict[str, tuple[Any, float]] = {}
        self._last_watched_rx: float | None = None
        self._was_stale = False
        self._boot_ms: dict[str, int] = {}
        self._boot_offset_s: float | None = None  # UTC - time since boot, from SYSTEM_TIME
        self._position_boot_ms: int | None = None
        self._last_rx: float | None = None
        #: (SYSTEM_TIME UTC, receive time) pairs not yet taken (time_source "gps")
        self._time_samples: deque[tuple[float, float]] = deque(maxlen=64)

        self.messages_by_type: Counter[str] = Counter()
        self.ignored_by_source: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    # ---------------------------------------------------------------------------------------
    # Input
    # ---------------------------------------------------------------------------------------

    def update(
        self,
        msg: Any,
        now: float,
        src_system: int | None = None,
        src_component: int | None = None,
    ) -> UpdateResult:
        """Take one message received at ``now`` (seconds).

        ``msg`` is a pymavlink message, or a dict shaped like ``msg.to_dict()`` (its
        ``mavpackettype`` names the type); a dict's source comes from ``src_system`` /
        ``src_component``, defaulting to 1/1. Never raises for a bad message: it is counted
        (``counters["malformed"]``) and ignored.
        """
        if isinstance(msg, Mapping):
            mtype = str(msg.get("mavpackettype", ""))
            fields: Mapping[str, Any] = msg
            sysid = 1 if src_system is None else src_system
            compid = 1 if src_component is None else src_component
        else:
            try:
                mtype = msg.get_type()
                sysid = msg.get_srcSystem() if src_system is None else src_system
                compid = msg.get_srcComponent() if src_component is None else src_component
            except AttributeError:
                self.counters["malformed"] += 1
                return UpdateResult(False)
            fields = vars(msg)

        events: list[str] = []
        if self.autopilot is None:
            if mtype == "HEARTBEAT" and self._select(fields, sysid, compid):
                events.append(EVENT_AUTOPILOT)
            else:
                self.counters["before_autopilot"] += 1
                return UpdateResult(False)
        elif (sysid, compid) != self.autopilot:
            self.ignored_by_source[f"{sysid}/{compid}"] += 1
            return UpdateResult(False)

        handler = _HANDLERS.get(mtype)
        if handler is not None:
            self._staged = {}
            try:
                handler(self, fields, now, events)
            except (KeyError, TypeError, ValueError, OverflowError, IndexError):
                self.counters["malformed"] += 1
                return UpdateResult(False, tuple(events))
            self._fields.update(self._staged)

        self.messages_by_type[mtype] += 1
        self._last_rx = now
        if mtype in ("HEARTBEAT", "GLOBAL_POSITION_INT"):
            if self._was_stale or (
                self._last_watched_rx is not None
                and now - self._last_watched_rx > self.stale_timeout_s
            ):
                events.append(EVENT_RESUMED)
                self.counters["resumed"] += 1
                self._was_stale = False
            self._last_watched_rx = now
        return UpdateResult(True, tuple(events))

    def _select(self, fields: Mapping[str, Any], sysid: int, compid: int) -> bool:
        try:
            autopilot, mav_type = int(fields["autopilot"]), int(fields["type"])
        except (KeyError, TypeError, ValueError):
            return False
        if compid != self.component_id or not is_autopilot_heartbeat(autopilot, mav_type):
            return False
        if self.wanted_system_id is not None and sysid != self.wanted_system_id:
            return False
        self.autopilot = (sysid, compid)
        return True

    def _set(self, name: str, value: Any, now: float) -> None:
        self._staged[name] = (value, now)

    def _check_boot_clock(self, mtype: str, boot_ms: int, events: list[str]) -> None:
        last = self._boot_ms.get(mtype)
        # A restarted clock, not a glitch: back by more than the tolerance and to less than half
        # its value (the VTOL SITL log in the test data steps back 1.2 s at 611 s, no reboot).
        if (
            last is not None
            and boot_ms < last - self.reboot_backstep_s * 1000.0
            and boot_ms < last / 2
        ):
            events.append(EVENT_REBOOT)
            self.counters["reboots"] += 1
            self._boot_ms.clear()
            self._boot_offset_s = None
            self._position_boot_ms = None
        self._boot_ms[mtype] = boot_ms

    # -- per-message handlers ----------------------------------------------------------------
    # Each handler converts every field it needs before changing anything (``_set`` is staged
    # and committed by :meth:`update`), so a malformed message leaves no half-applied update.

    def _on_heartbeat(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        autopilot, mav_type = int(f["autopilot"]), int(f["type"])
        base_mode, custom = int(f["base_mode"]), int(f["custom_mode"])
        system_status = int(f["system_status"])
        try:
            pymavlink_mode = mavutil.mode_string_v10(_HeartbeatView(f))
        except (AttributeError, KeyError, TypeError):
            pymavlink_mode = None
        self.autopilot_type, self.mav_type = autopilot, mav_type
        self.family = vehicle_family(autopilot, mav_type)
        self.pymavlink_mode = pymavlink_mode
        custom_ok = autopilot == MAV_AUTOPILOT_PX4 or base_mode & _MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        custom_mode = custom if custom_ok else None
        self._set("custom_mode", custom_mode, now)
        self._set("mode_name", self._mode_name(custom_mode), now)
        self._set("armed", bool(base_mode & _MAV_MODE_FLAG_SAFETY_ARMED), now)
        self._set("system_status", system_status, now)

    def _mode_name(self, custom_mode: int | None) -> str | None:
        """The codec's name when it knows the mode; pymavlink's otherwise."""
        ours = mode_name(self.family, custom_mode) if self.family is not None else None
        theirs = self.pymavlink_mode
        if self.family is VehicleFamily.PX4 and theirs is not None:
            theirs = PX4_NAME_ALIASES.get(theirs, theirs)
        if ours is None or ours.startswith("Mode("):
            if theirs is not None and theirs != "UNKNOWN" and not theirs.startswith("Mode("):
                return theirs
            return ours if ours is not None else theirs
        if theirs is not None and theirs != ours and not theirs.startswith("Mode("):
            self.counters["mode_name_mismatch"] += 1
        return ours

    def _on_global_position_int(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        boot_ms, lat, lon = int(f["time_boot_ms"]), int(f["lat"]), int(f["lon"])
        alt, rel, hdg = int(f["alt"]), int(f["relative_alt"]), int(f["hdg"])
        vx, vy, vz = int(f["vx"]), int(f["vy"]), int(f["vz"])
        if lat == 0 and lon == 0:
            position = None  # ArduPilot's "no position yet"
        elif abs(lat) > 900_000_000 or abs(lon) > 1_800_000_000:
            self.counters["invalid_position"] += 1
            position = None
        else:
            position = (lat * 1e-7, lon * 1e-7)
        self._check_boot_clock("GLOBAL_POSITION_INT", boot_ms, events)
        self._set("position", position, now)
        self._set("alt_amsl_m", alt * 1e-3, now)
        self._set("alt_rel_m", rel * 1e-3, now)
        if hdg != _UINT16_MAX and 0 <= hdg < 36000:
            self._set("heading_deg", hdg * 0.01, now)
        self._set("ground_speed_mps", math.hypot(vx, vy) * 0.01, now)
        self._set("climb_mps", -vz * 0.01, now)
        self._set("velocity_ned_mps", (vx * 0.01, vy * 0.01, vz * 0.01), now)
        self._position_boot_ms = boot_ms

    def _on_gps_raw_int(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        fix, sats = int(f["fix_type"]), int(f["satellites_visible"])
        self._set("gps_fix_type", fix, now)
        self._set("satellites", None if sats == 255 else sats, now)

    def _on_vfr_hud(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        gs, climb, hdg = _finite(f["groundspeed"]), _finite(f["climb"]), int(f["heading"])
        if gs is not None and gs >= 0:
            self._set("ground_speed_mps", gs, now)
        if climb is not None:
            self._set("climb_mps", climb, now)
        if 0 <= hdg <= 360:
            self._set("heading_deg", float(hdg % 360), now)

    def _on_attitude(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        boot_ms = int(f["time_boot_ms"])
        angles = {name: _finite(f[name]) for name in ("roll", "pitch", "yaw")}
        self._check_boot_clock("ATTITUDE", boot_ms, events)
        for name, value in angles.items():
            if value is not None:
                self._set(f"{name}_rad", value, now)

    def _on_sys_status(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        mv, pct = int(f["voltage_battery"]), int(f["battery_remaining"])
        ca = int(f["current_battery"])
        flags = failure_flags_from_sys_status(
            int(f["onboard_control_sensors_present"]),
            int(f["onboard_control_sensors_enabled"]),
            int(f["onboard_control_sensors_health"]),
        )
        # UINT16_MAX is "not sent"; 0 V is what ArduPilot reports without a battery monitor.
        if 0 < mv < _UINT16_MAX:
            self._set("voltage_v", mv * 1e-3, now)
        if 0 <= pct <= 100:
            self._set("battery_pct", float(pct), now)
        if ca >= 0:
            self._set("current_a", ca * 0.01, now)
        self._set("failure_flags", flags, now)

    def _on_battery_status(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        if int(f["id"]) != 0:
            return  # only the primary battery is the vehicle's battery
        cells = [int(v) for v in f["voltages"] if int(v) != _UINT16_MAX]
        cells += [int(v) for v in (f.get("voltages_ext") or ()) if 0 < int(v) < _UINT16_MAX]
        pct, ca = int(f["battery_remaining"]), int(f["current_battery"])
        total_mv = sum(cells)
        if total_mv > 0:
            self._set("voltage_v", total_mv * 1e-3, now)
        if 0 <= pct <= 100:
            self._set("battery_pct", float(pct), now)
        if ca >= 0:
            self._set("current_a", ca * 0.01, now)

    def _on_system_time(self, f: Mapping[str, Any], now: float, events: list[str]) -> None:
        boot_ms, unix_s = int(f["time_boot_ms"]), int(f["time_unix_usec"]) * 1e-6
        self._check_boot_clock("SYSTEM_TIME", boot_ms, events)
        if not _MIN_PLAUSIBLE_UNIX_S <= unix_s <= _MAX_PLAUSIBLE_UNIX_S:
            self.counters["system_time_unset"] += 1
        elif self.time_source == "gps":
            self._time_samples.append((unix_s, now))
            self._boot_offset_s = unix_s - boot_ms * 1e-3
            self._set("autopilot_unix_s", unix_s, now)
        elif abs(unix_s - now) > self.max_clock_offset_s:
            # A clock this far from ours is not UTC (SITL, a replayed log, a GPS still
            # settling); the receive time is the better sample time.
            self.counters["system_time_disagrees"] += 1
            self._boot_offset_s = None
        else:
            self._boot_offset_s = unix_s - boot_ms * 1e-3
            self._set("autopilot_unix_s", unix_s, now)

    # ---------------------------------------------------------------------------------------
    # Output
    # ---------------------------------------------------------------------------------------

    def value(self, name: str, now: float | None = None) -> Any:
        """A field's newest value; None if never received or (with ``now``) expired."""
        entry = self._fields.get(name)
        if entry is None:
            return None
        if now is not None and self.field_timeout_s is not None:
            if now - entry[1] > self.field_timeout_s:
                return None
        return entry[0]

    def age(self, name: str, now: float) -> float | None:
        """Seconds since the field was last updated, None if it never was."""
        entry = self._fields.get(name)
        return None if entry is None else now - entry[1]

    def ages(self, now: float) -> dict[str, float]:
        """Every received field's age in seconds."""
        return {name: now - rx for name, (_, rx) in self._fields.items()}

    def is_stale(self, now: float) -> bool:
        """True when no HEARTBEAT/GLOBAL_POSITION_INT arrived in the last ``stale_timeout_s``."""
        stale = self._last_watched_rx is None or now - self._last_watched_rx > self.stale_timeout_s
        if stale and self._last_watched_rx is not None and not self._was_stale:
            self._was_stale = True
            self.counters["stale_periods"] += 1
        return stale

    @property
    def last_receive_time(self) -> float | None:
        """Receive time of the newest message accepted from the autopilot."""
        return self._last_rx

    def sample_time(self) -> float | None:
        """Time of the newest position (see the module notes), or of the newest message."""
        pos = self._fields.get("position")
        if (
            self.time_source in ("auto", "gps")
            and self._boot_offset_s is not None
            and self._position_boot_ms is not None
        ):
            return self._boot_offset_s + self._position_boot_ms * 1e-3
        if pos is not None:
            return pos[1]
        return self._last_rx

    def take_time_samples(self) -> list[tuple[float, float]]:
        """The (GPS time, receive time) pairs of SYSTEM_TIME since the last call."""
        samples = list(self._time_samples)
        self._time_samples.clear()
        return samples

    def sample(self, now: float, *, at_time: float | None = None,
               clock_offset_s: float = 0.0) -> TelemetrySample | None:
        """The current state as a telemetry sample; None before any autopilot message.

        ``at_time``: carry the position forward along the measured velocity to this time (the
        sample's time becomes it; core/kinematics.py). ``clock_offset_s`` converts receive
        times to the time scale of ``at_time`` when the sample time is a receive time (GPS
        time = host time + offset)."""
        t = self.sample_time()
        if t is None:
            return None
        if not self._sample_time_is_autopilot():
            t += clock_offset_s
        position = self.value("position", now)
        lat, lon = position if position is not None else (None, None)
        alt = self.value("alt_amsl_m", now)
        rel = self.value("alt_rel_m", now)
        if at_time is not None:
            if lat is not None and lon is not None:
                before = alt
                lat, lon, alt = extrapolate(lat, lon, alt, self.value("velocity_ned_mps", now),
                                            at_time - t)
                if rel is not None and alt is not None and before is not None:
                    rel += alt - before
            t = at_time
        armed = self.value("armed", now)
        flags = self.value("failure_flags", now)
        return TelemetrySample(
            time_unix_s=t,
            lat_deg=lat,
            lon_deg=lon,
            alt_amsl_m=alt,
            alt_rel_m=rel,
            heading_deg=self.value("heading_deg", now),
            ground_speed_mps=self.value("ground_speed_mps", now),
            climb_mps=self.value("climb_mps", now),
            battery_pct=self.value("battery_pct", now),
            voltage_v=self.value("voltage_v", now),
            custom_mode=self.value("custom_mode", now),
            mode_name=self.value("mode_name", now),
            armed=bool(armed),
            system_status=self.value("system_status", now),
            gps_fix_type=self.value("gps_fix_type", now),
            satellites=self.value("satellites", now),
            failure_flags=int(flags) if flags is not None else 0,
        )

    def _sample_time_is_autopilot(self) -> bool:
        return (self.time_source in ("auto", "gps") and self._boot_offset_s is not None
                and self._position_boot_ms is not None)

    def stats(self) -> dict[str, Any]:
        """Counters as plain data (for diagnostics and JSON)."""
        return {
            "autopilot": None if self.autopilot is None else list(self.autopilot),
            "messages_by_type": dict(self.messages_by_type),
            "ignored_by_source": dict(self.ignored_by_source),
            **{k: v for k, v in self.counters.items()},
        }


_HANDLERS = {
    "HEARTBEAT": VehicleState._on_heartbeat,
    "GLOBAL_POSITION_INT": VehicleState._on_global_position_int,
    "GPS_RAW_INT": VehicleState._on_gps_raw_int,
    "VFR_HUD": VehicleState._on_vfr_hud,
    "ATTITUDE": VehicleState._on_attitude,
    "SYS_STATUS": VehicleState._on_sys_status,
    "BATTERY_STATUS": VehicleState._on_battery_status,
    "SYSTEM_TIME": VehicleState._on_system_time,
}
