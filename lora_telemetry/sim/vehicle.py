"""Simulated vehicles speaking MAVLink: flight-log replay and synthetic ArduCopter swarms.

Two sources feed a MAVLink endpoint exactly as flight controllers would:

* **Log replay** (:class:`LogReplayer` + :class:`ReplayTransform`): the records of a ``.tlog``,
  paced by their own timestamps (``speed`` times faster), optionally looped, moved (a shift in
  metres, or re-centred on a new origin with the geometry kept in metres) and re-addressed
  (``sysid``: every packet of the log's vehicle is re-encoded as MAVLink 2 by an encoder whose
  ``srcSystem`` is the new id, keeping component and sequence numbers), so one log can stand
  for several UAVs. Only the log's vehicle system is replayed unless asked otherwise: the GCS
  traffic recorded with it is not vehicle traffic. A log whose vehicle never has a fix (lat =
  lon = 0 throughout) replays too, with its position unknown, as the autopilot reported it.
* **Synthetic vehicles** (:class:`SyntheticVehicle` + :class:`SimulatedAutopilot`): N copters
  flying a circle, a lawnmower survey or a formation around an origin, through a mission an
  ArduCopter flies (GUIDED take-off, AUTO, RTL, LAND, disarm) with a battery that drains with
  the current drawn. :meth:`SyntheticVehicle.state_at` is the truth at any time, a pure
  function of the time; the autopilot emits HEARTBEAT (QUADROTOR, ARDUPILOTMEGA, ArduCopter
  ``custom_mode`` numbers), GLOBAL_POSITION_INT, GPS_RAW_INT, VFR_HUD, ATTITUDE, SYS_STATUS,
  BATTERY_STATUS and SYSTEM_TIME at ArduPilot-like rates, and answers
  MAV_CMD_SET_MESSAGE_INTERVAL (COMMAND_ACK) and REQUEST_DATA_STREAM (ArduPilot's stream groups,
  no ACK) as the firmware does.

:class:`VehicleSimulator` is the I/O shell: it paces either source in real time, writes the
packets to the endpoints, routes commands back to the right simulated autopilot, writes the
truth to a JSON file atomically (tmp + rename) and pushes positions to the radio medium.

Simulated time ``t`` is seconds since the simulation started, times ``speed``; the vehicles'
UTC clock (SYSTEM_TIME) is the wall-clock start plus ``t``.
"""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.codec import VehicleFamily, custom_mode_from_name
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.geo import LocalProjection
from lora_telemetry.mavlink.state import MAV_COMP_ID_AUTOPILOT1, is_autopilot_heartbeat
from lora_telemetry.mavlink.streams import DATA_STREAM_OF_MESSAGE, MAV_CMD_SET_MESSAGE_INTERVAL
from lora_telemetry.mavlink.tlog import TlogReader
from lora_telemetry.mavlink.transport import open_transport, write_transport
from lora_telemetry.mavlink.urls import parse_url
from lora_telemetry.persist import atomic_write_json
from lora_telemetry.sim.medium import MediumControl, MediumError

__all__ = [
    "PATTERNS",
    "DEFAULT_SIM_RATES_HZ",
    "VehicleTruth",
    "CirclePath",
    "PolylinePath",
    "OffsetPath",
    "SyntheticVehicle",
    "build_swarm",
    "SimulatedAutopilot",
    "LogReference",
    "find_log_reference",
    "ReplayTransform",
    "LogReplayer",
    "VehicleSimulator",
    "medium_position_sink",
]

log = logging.getLogger(__name__)

PATTERNS = ("circle", "lawnmower", "formation")

MAV_TYPE_QUADROTOR = 2
MAV_AUTOPILOT_ARDUPILOTMEGA = 3
MAV_STATE_STANDBY = 3
MAV_STATE_ACTIVE = 4
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
MAV_MODE_FLAG_GUIDED_ENABLED = 8
MAV_MODE_FLAG_STABILIZE_ENABLED = 16
MAV_MODE_FLAG_SAFETY_ARMED = 128
MAV_CMD_REQUEST_MESSAGE = 512
MAV_RESULT_ACCEPTED = 0
MAV_RESULT_DENIED = 2
MAV_RESULT_UNSUPPORTED = 3
GPS_FIX_TYPE_3D_FIX = 3
MAV_BATTERY_TYPE_LIPO = 1
MAV_BATTERY_CHARGE_STATE_OK = 1
_UINT16_MAX = 0xFFFF
_G = 9.80665

#: ArduCopter flight modes of the synthetic mission (numbers from the core's mode table).
_MODE_NUMBERS = {
    name: custom_mode_from_name(VehicleFamily.ARDUCOPTER, name)
    for name in ("GUIDED", "AUTO", "RTL", "LAND")
}

#: Flight mode in each phase of the synthetic mission.
_PHASE_MODE = {"idle": "GUIDED", "takeoff": "GUIDED", "auto": "AUTO", "rtl": "RTL",
               "land": "LAND", "landed": "LAND"}  # fmt: skip

#: What an ArduCopter telemetry port streams before anyone asks (Hz): roughly SRx_* = 2 with
#: SYSTEM_TIME and BATTERY_STATUS (stream EXTRA3) at 1 Hz. HEARTBEAT is always 1 Hz.
DEFAULT_SIM_RATES_HZ: Mapping[str, float] = {
    "GLOBAL_POSITION_INT": 2.0,
    "GPS_RAW_INT": 2.0,
    "VFR_HUD": 2.0,
    "ATTITUDE": 4.0,
    "SYS_STATUS": 2.0,
    "BATTERY_STATUS": 1.0,
    "SYSTEM_TIME": 1.0,
}

# Healthy copter sensors for SYS_STATUS: gyro, accel, mag, baro, GPS, rate/attitude/yaw/alt/xy
# control, motor outputs, RC receiver, AHRS, battery (MAV_SYS_STATUS_SENSOR bits).
_SENSORS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x400 | 0x800 | 0x1000 | 0x2000 | 0x4000 | 0x8000
_SENSORS |= 0x10000 | 0x200000 | 0x2000000


# ------------------------------------------------------------------------------------------
# Truth and trajectories
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VehicleTruth:
    """What a simulated vehicle really is at one time (SI units, MAVLink enumerations)."""

    sysid: int
    time_s: float  # simulation time
    time_unix_s: float
    time_boot_ms: int
    phase: str  # idle, takeoff, auto, rtl, land, landed
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float
    alt_rel_m: float
    east_m: float  # about the swarm origin
    north_m: float
    vn_mps: float
    ve_mps: float
    vd_mps: float
    heading_deg: float
    ground_speed_mps: float
    climb_mps: float
    roll_rad: float
    pitch_rad: float
    yaw_rad: float
    battery_pct: float
    voltage_v: float
    current_a: float
    consumed_mah: float
    mode_name: str
    custom_mode: int
    armed: bool
    system_status: int
    gps_fix_type: int
    satellites: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _heading_of(de: float, dn: float) -> float:
    return math.degrees(math.atan2(de, dn)) % 360.0


class CirclePath:
    """A circle flown clockwise (seen from above) from ``phase_rad`` (0 = north of centre)."""

    periodic = True

    def __init__(self, center_e: float, center_n: float, radius_m: float, phase_rad: float = 0.0):
        if not radius_m > 0:
            raise ConfigError(f"circle radius must be positive, got {radius_m!r}")
        self.center = (center_e, center_n)
        self.radius = radius_m
        self.phase = phase_rad
        self.length = 2 * math.pi * radius_m

    def point(self, s: float) -> tuple[float, float]:
        theta = self.phase + s / self.radius
        return (self.center[0] + self.radius * math.sin(theta),
                self.center[1] + self.radius * math.cos(theta))  # fmt: skip


class PolylinePath:
    """Straight legs through ``points`` at constant speed; a closed path starts over, an open
    one is flown back and forth (a survey repeated in reverse)."""

    def __init__(self, points: Sequence[tuple[float, float]], closed: bool = False) -> None:
        pts = [(float(e), float(n)) for e, n in points]
        if closed:
            pts.append(pts[0])
        if len(pts) < 2:
            raise ConfigError("a polyline path needs at least two points")
        self.points = pts
        self.periodic = closed
        self._cum = [0.0]
        for (e0, n0), (e1, n1) in zip(pts, pts[1:]):
            self._cum.append(self._cum[-1] + math.hypot(e1 - e0, n1 - n0))
        self.length = self._cum[-1]
        if not self.length > 0:
            raise ConfigError("a polyline path must have a non-zero length")

    def point(self, s: float) -> tuple[float, float]:
        if self.periodic:
            s %= self.length
        else:
            s %= 2 * self.length
            if s > self.length:
                s = 2 * self.length - s
        lo, hi = 0, len(self._cum) - 1
        while hi - lo > 1:  # the leg containing s
            mid = (lo + hi) // 2
            if self._cum[mid] <= s:
                lo = mid
            else:
                hi = mid
        leg = self._cum[hi] - self._cum[lo]
        f = 0.0 if leg == 0 else (s - self._cum[lo]) / leg
        (e0, n0), (e1, n1) = self.points[lo], self.points[hi]
        return e0 + f * (e1 - e0), n0 + f * (n1 - n0)


class OffsetPath:
    """A slot in a formation: a fixed offset (metres ahead, metres to the right) from a
    leader's position, turning with the leader's heading."""

    def __init__(self, leader: Any, forward_m: float, right_m: float) -> None:
        self.leader = leader
        self.forward = forward_m
        self.right = right_m
        self.length = leader.length
        self.periodic = leader.periodic

    def point(self, s: float) -> tuple[float, float]:
        e0, n0 = self.leader.point(s - 0.5)
        e1, n1 = self.leader.point(s + 0.5)
        h = math.atan2(e1 - e0, n1 - n0)
        e, n = self.leader.point(s)
        return (e + self.forward * math.sin(h) + self.right * math.cos(h),
                n + self.forward * math.cos(h) - self.right * math.sin(h))  # fmt: skip


class SyntheticVehicle:
    """One simulated ArduCopter flying ``path`` at ``alt_m`` above its home (the path's start).

    Timeline from t = 0 (simulation seconds): ``idle_s`` disarmed in GUIDED; armed GUIDED
    take-off at ``climb_mps``; AUTO along the path at ``speed_mps`` for ``mission_s``; RTL in a
    straight line home; LAND at ``land_mps``; disarmed on the ground. With ``repeat`` the whole
    cycle starts again (a fresh battery each time). The battery drains with the current of each
    phase (a 4S LiPo: 16.8 V full, 13.2 V empty, 20 mOhm of sag).
    """

    IDLE_A = 0.4
    PHASE_CURRENT_A = {"idle": IDLE_A, "takeoff": 24.0, "auto": 17.0, "rtl": 17.0,
                       "land": 12.0, "landed": IDLE_A}  # fmt: skip

    def __init__(
        self,
        sysid: int,
        path: Any,
        projection: LocalProjection,
        origin_alt_m: float,
        *,
        alt_m: float = 30.0,
        speed_mps: float = 8.0,
        mission_s: float = 120.0,
        idle_s: float = 3.0,
        climb_mps: float = 2.5,
        land_mps: float = 1.0,
        battery_start_pct: float = 100.0,
        capacity_mah: float = 5000.0,
        cells: int = 4,
        start_unix_s: float = 0.0,
        boot_ms0: int = 20_000,
        satellites: int = 14,
        repeat: bool = False,
    ) -> None:
        if not (isinstance(sysid, int) and 1 <= sysid <= 255):
            raise ConfigError(f"MAVLink system id must be in 1..255, got {sysid!r}")
        for name, value in (("alt_m", alt_m), ("speed_mps", speed_mps), ("climb_mps", climb_mps),
                            ("land_mps", land_mps), ("capacity_mah", capacity_mah)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if not mission_s >= 0 or not idle_s >= 0:
            raise ConfigError("mission_s and idle_s must not be negative")
        self.sysid = sysid
        self.path = path
        self.projection = projection
        self.origin_alt_m = float(origin_alt_m)
        self.alt_m = float(alt_m)
        self.speed = float(speed_mps)
        self.mission_s = float(mission_s)
        self.climb_mps = float(climb_mps)
        self.land_mps = float(land_mps)
        self.battery_start_pct = float(battery_start_pct)
        self.capacity_mah = float(capacity_mah)
        self.cells = cells
        self.start_unix_s = float(start_unix_s)
        self.boot_ms0 = int(boot_ms0)
        self.satellites = satellites
        self.repeat = repeat
        self.home = path.point(0.0)
        t_takeoff = float(idle_s)
        t_auto = t_takeoff + self.alt_m / self.climb_mps
        t_rtl = t_auto + self.mission_s
        self._rtl_from = path.point(self.speed * self.mission_s)
        rtl_dist = math.hypot(self._rtl_from[0] - self.home[0], self._rtl_from[1] - self.home[1])
        t_land = t_rtl + rtl_dist / self.speed
        t_landed = t_land + self.alt_m / self.land_mps
        self.phases: tuple[tuple[str, float, float], ...] = (
            ("idle", 0.0, t_takeoff),
            ("takeoff", t_takeoff, t_auto),
            ("auto", t_auto, t_rtl),
            ("rtl", t_rtl, t_land),
            ("land", t_land, t_landed),
            ("landed", t_landed, math.inf),
        )
        #: Length of one cycle when ``repeat`` (landed for as long as it idled first).
        self.cycle_s = t_landed + max(t_takeoff, 1.0)

    def _phase(self, t: float) -> tuple[str, float]:
        for name, start, end in self.phases:
            if t < end:
                return name, t - start
        return "landed", t - self.phases[-1][1]

    def _local(self, t: float) -> tuple[float, float, float, str]:
        """(east, north, height above home, phase) at cycle time t."""
        name, dt = self._phase(max(0.0, t))
        home_e, home_n = self.home
        if name == "idle":
            return home_e, home_n, 0.0, name
        if name == "takeoff":
            return home_e, home_n, min(self.alt_m, dt * self.climb_mps), name
        if name == "auto":
            e, n = self.path.point(self.speed * dt)
            return e, n, self.alt_m, name
        if name == "rtl":
            (e0, n0), dist = self._rtl_from, math.hypot(self._rtl_from[0] - home_e,
                                                        self._rtl_from[1] - home_n)  # fmt: skip
            f = 1.0 if dist == 0 else min(1.0, dt * self.speed / dist)
            return e0 + f * (home_e - e0), n0 + f * (home_n - n0), self.alt_m, name
        if name == "land":
            return home_e, home_n, max(0.0, self.alt_m - dt * self.land_mps), name
        return home_e, home_n, 0.0, name

    def _consumed_mah(self, t: float) -> float:
        total = 0.0
        for name, start, end in self.phases:
            if t <= start:
                break
            total += self.PHASE_CURRENT_A[name] * (min(t, end) - start)
        return total / 3.6  # A*s -> mAh

    def state_at(self, t: float) -> VehicleTruth:
        """The truth at simulation time ``t`` (seconds)."""
        tc = t % self.cycle_s if self.repeat else t
        e, n, up, phase = self._local(tc)
        dt = 0.05
        e0, n0, up0, _ = self._local(tc - dt)
        e1, n1, up1, _ = self._local(tc + dt)
        ve, vn, vu = (e1 - e0) / (2 * dt), (n1 - n0) / (2 * dt), (up1 - up0) / (2 * dt)
        gs = math.hypot(ve, vn)
        if gs > 0.3:
            heading = _heading_of(ve, vn)
            eb, nb, _, _ = self._local(tc - 2 * dt)
            ea, na, _, _ = self._local(tc + 2 * dt)
            turn = (_heading_of(ea - e, na - n) - _heading_of(e - eb, n - nb) + 180) % 360 - 180
            rate = math.radians(turn) / (2 * dt)
            roll = math.atan(gs * rate / _G)
        else:  # hovering: keep the heading of the leg that brought it here (or will take it)
            if phase in ("land", "landed") and self._rtl_from != self.home:
                pe, pn = self.home
                fe, fn = self._rtl_from
            else:
                (pe, pn), (fe, fn) = self.path.point(1.0), self.home
            heading = _heading_of(pe - fe, pn - fn)
            roll = 0.0
        pitch = -min(0.35, 0.02 * gs)  # nose down to fly forwards
        lat, lon = self.projection.to_geodetic(e, n)
        current = self.PHASE_CURRENT_A[phase]
        consumed = self._consumed_mah(tc)
        pct = max(0.0, self.battery_start_pct - 100.0 * consumed / self.capacity_mah)
        voltage = self.cells * (3.3 + 0.9 * pct / 100.0) - current * 0.02
        armed = phase in ("takeoff", "auto", "rtl", "land")
        mode = _PHASE_MODE[phase]
        home_amsl = self.origin_alt_m
        return VehicleTruth(
            sysid=self.sysid,
            time_s=t,
            time_unix_s=self.start_unix_s + t,
            time_boot_ms=self.boot_ms0 + int(round(t * 1000.0)),
            phase=phase,
            lat_deg=lat,
            lon_deg=lon,
            alt_amsl_m=home_amsl + up,
            alt_rel_m=up,
            east_m=e,
            north_m=n,
            vn_mps=vn,
            ve_mps=ve,
            vd_mps=-vu if vu else 0.0,
            heading_deg=heading,
            ground_speed_mps=gs,
            climb_mps=vu,
            roll_rad=roll,
            pitch_rad=pitch,
            yaw_rad=math.radians((heading + 180.0) % 360.0 - 180.0),
            battery_pct=pct,
            voltage_v=voltage,
            current_a=current,
            consumed_mah=consumed,
            mode_name=mode,
            custom_mode=_MODE_NUMBERS[mode],  # type: ignore[arg-type]
            armed=armed,
            system_status=MAV_STATE_ACTIVE if armed else MAV_STATE_STANDBY,
            gps_fix_type=GPS_FIX_TYPE_3D_FIX,
            satellites=self.satellites,
        )


def build_swarm(
    pattern: str,
    count: int,
    origin: tuple[float, float, float],
    *,
    radius_m: float = 100.0,
    alt_m: float = 30.0,
    alt_step_m: float = 5.0,
    speed_mps: float = 8.0,
    mission_s: float = 120.0,
    first_sysid: int = 1,
    lane_spacing_m: float | None = None,
    formation_spacing_m: float = 15.0,
    start_unix_s: float = 0.0,
    repeat: bool = False,
) -> list[SyntheticVehicle]:
    """``count`` vehicles flying ``pattern`` around ``origin`` (lat, lon, alt AMSL).

    circle: evenly spaced on one circle of ``radius_m``. lawnmower: the square of side
    2*``radius_m`` cut in ``count`` strips, each surveyed in lanes ``lane_spacing_m`` apart.
    formation: a V behind a leader circling at ``radius_m``, ``formation_spacing_m`` apart,
    entering AUTO together. Vehicle i flies ``alt_m + i*alt_step_m`` above its home (vertical
    separation) and, except in a formation, takes off a second after vehicle i-1.
    """
    if pattern not in PATTERNS:
        raise ConfigError(f"unknown pattern {pattern!r} (known: {', '.join(PATTERNS)})")
    if not (isinstance(count, int) and 1 <= count <= 255 - first_sysid + 1):
        raise ConfigError(f"vehicle count must be 1..{256 - first_sysid}, got {count!r}")
    if not radius_m > 0:
        raise ConfigError(f"radius must be positive, got {radius_m!r} m")
    lat0, lon0, alt0 = origin
    projection = LocalProjection(lat0, lon0)
    paths: list[Any] = []
    if pattern == "circle":
        paths = [CirclePath(0.0, 0.0, radius_m, 2 * math.pi * i / count) for i in range(count)]
    elif pattern == "lawnmower":
        width = 2 * radius_m / count
        spacing = lane_spacing_m if lane_spacing_m is not None else max(5.0, width / 4)
        if not spacing > 0:
            raise ConfigError(f"lane spacing must be positive, got {spacing!r} m")
        for i in range(count):
            x0 = -radius_m + i * width
            lanes = max(1, int(width // spacing))
            points: list[tuple[float, float]] = []
            for k in range(lanes):
                x = x0 + (k + 0.5) * width / lanes
                ends = [(x, -radius_m), (x, radius_m)]
                points.extend(ends if k % 2 == 0 else ends[::-1])
            paths.append(PolylinePath(points))
    else:
        leader = CirclePath(0.0, 0.0, radius_m, 0.0)
        paths.append(leader)
        for k in range(1, count):
            row, side = (k + 1) // 2, (1 if k % 2 else -1)
            paths.append(
                OffsetPath(leader, -row * formation_spacing_m, side * row * formation_spacing_m)
            )
    alts = [alt_m + i * alt_step_m for i in range(count)]
    if min(alts) <= 0:
        raise ConfigError(f"every vehicle needs a positive flight height, got {min(alts)} m")
    climb_mps = 2.5
    if pattern == "formation":  # take off so that all enter AUTO (the formation) together
        idles = [3.0 + (max(alts) - a) / climb_mps for a in alts]
    else:  # staggered take-offs, as a swarm launches
        idles = [3.0 + i for i in range(count)]
    return [
        SyntheticVehicle(
            first_sysid + i,
            path,
            projection,
            alt0,
            alt_m=alts[i],
            speed_mps=speed_mps,
            mission_s=mission_s,
            idle_s=idles[i],
            climb_mps=climb_mps,
            battery_start_pct=100.0 - 2.0 * (i % 5),
            start_unix_s=start_unix_s,
            boot_ms0=20_000 + 1_000 * i,
            satellites=12 + (first_sysid + i) % 6,
            repeat=repeat,
        )
        for i, path in enumerate(paths)
    ]


# ------------------------------------------------------------------------------------------
# The simulated autopilot (sans-I/O)
# ------------------------------------------------------------------------------------------


class SimulatedAutopilot:
    """The MAVLink side of a :class:`SyntheticVehicle`: what it sends when, and its answers.

    ``set_message_interval``: "accept" (ArduPilot 4.x), "unsupported" (answers
    MAV_RESULT_UNSUPPORTED) or "ignore" (no answer, as very old firmware) -- the last two
    exercise a link's REQUEST_DATA_STREAM fallback. ``mavlink1`` sends MAVLink 1 packets.
    """

    def __init__(
        self,
        vehicle: SyntheticVehicle,
        default_rates_hz: Mapping[str, float] | None = None,
        *,
        set_message_interval: str = "accept",
        mavlink1: bool = False,
    ) -> None:
        if set_message_interval not in ("accept", "unsupported", "ignore"):
            raise ConfigError(f"set_message_interval mode {set_message_interval!r} is unknown")
        self.vehicle = vehicle
        self.sysid = vehicle.sysid
        self.mode = set_message_interval
        self.mavlink1 = mavlink1
        self.mav = mavlink2.MAVLink(
            None, srcSystem=vehicle.sysid, srcComponent=MAV_COMP_ID_AUTOPILOT1
        )
        defaults = DEFAULT_SIM_RATES_HZ if default_rates_hz is None else default_rates_hz
        self.default_rates: dict[str, float] = {n: defaults.get(n, 0.0) for n in _ENCODERS}
        self.default_rates["HEARTBEAT"] = 1.0
        self.rates: dict[str, float] = dict(self.default_rates)
        self._next: dict[str, float] = {}
        self.counters: Counter[str] = Counter()

    def _pack(self, msg: Any) -> bytes:
        buf = msg.pack(self.mav, force_mavlink1=self.mavlink1)
        self.mav.seq = (self.mav.seq + 1) % 256
        self.counters[f"sent_{msg.get_type()}"] += 1
        return buf

    def due(self, t: float) -> list[bytes]:
        """Packets due at simulation time ``t`` (call often; each message keeps its rate)."""
        out: list[bytes] = []
        truth: VehicleTruth | None = None
        for name, rate in self.rates.items():
            if rate <= 0:
                continue
            period = 1.0 / rate
            nxt = self._next.get(name)
            if nxt is None or nxt > t + period:  # new, or the rate just went up
                nxt = t
            if t < nxt:
                continue
            self._next[name] = nxt + period if t - nxt < period else t + period
            truth = truth or self.vehicle.state_at(t)
            out.append(self._pack(_ENCODERS[name](self.mav, truth)))
        return out

    def handle(self, msg: Any, t: float) -> list[bytes]:
        """Answer a message addressed to this vehicle (others are ignored); returns packets."""
        mtype = msg.get_type()
        if mtype not in ("COMMAND_LONG", "REQUEST_DATA_STREAM"):
            return []
        if msg.target_system not in (0, self.sysid) or msg.target_component not in (
            0,
            MAV_COMP_ID_AUTOPILOT1,
        ):
            return []
        self.counters[f"received_{mtype}"] += 1
        if mtype == "REQUEST_DATA_STREAM":
            self._data_stream(msg.req_stream_id, msg.req_message_rate, msg.start_stop)
            return []  # ArduPilot does not acknowledge it
        if msg.command == MAV_CMD_SET_MESSAGE_INTERVAL:
            if self.mode == "ignore":
                return []
            if self.mode == "unsupported":
                return [self._ack(msg, MAV_RESULT_UNSUPPORTED)]
            result = self._set_interval(int(msg.param1), msg.param2)
            return [self._ack(msg, result)]
        if msg.command == MAV_CMD_REQUEST_MESSAGE:
            name = _NAME_OF_ID.get(int(msg.param1))
            if name is None:
                return [self._ack(msg, MAV_RESULT_DENIED)]
            return [self._ack(msg, MAV_RESULT_ACCEPTED),
                    self._pack(_ENCODERS[name](self.mav, self.vehicle.state_at(t)))]  # fmt: skip
        return [self._ack(msg, MAV_RESULT_UNSUPPORTED)]

    def _set_interval(self, msg_id: int, interval_us: float) -> int:
        name = _NAME_OF_ID.get(msg_id)
        if name is None:
            return MAV_RESULT_DENIED  # a message this vehicle cannot send
        if interval_us == -1:
            self.rates[name] = 0.0
        elif interval_us == 0:
            self.rates[name] = self.default_rates[name]
        elif interval_us > 0:
            self.rates[name] = min(1e6 / interval_us, 50.0)
        else:
            return MAV_RESULT_DENIED
        self._next.pop(name, None)
        return MAV_RESULT_ACCEPTED

    def _data_stream(self, stream_id: int, rate_hz: int, start: int) -> None:
        for name, stream in DATA_STREAM_OF_MESSAGE.items():
            if name in self.rates and (stream_id == 0 or stream == stream_id):
                self.rates[name] = float(min(rate_hz, 50)) if start else 0.0
                self._next.pop(name, None)

    def _ack(self, msg: Any, result: int) -> bytes:
        return self._pack(
            self.mav.command_ack_encode(
                msg.command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()
            )
        )


def _e7(deg: float) -> int:
    return int(round(deg * 1e7))


def _enc_heartbeat(mav: Any, s: VehicleTruth) -> Any:
    base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | MAV_MODE_FLAG_STABILIZE_ENABLED
    if s.mode_name in ("GUIDED", "AUTO", "RTL"):
        base |= MAV_MODE_FLAG_GUIDED_ENABLED
    if s.armed:
        base |= MAV_MODE_FLAG_SAFETY_ARMED
    return mav.heartbeat_encode(
        MAV_TYPE_QUADROTOR, MAV_AUTOPILOT_ARDUPILOTMEGA, base, s.custom_mode, s.system_status, 3
    )


def _enc_global_position_int(mav: Any, s: VehicleTruth) -> Any:
    return mav.global_position_int_encode(
        s.time_boot_ms % (1 << 32), _e7(s.lat_deg), _e7(s.lon_deg),
        int(round(s.alt_amsl_m * 1000)), int(round(s.alt_rel_m * 1000)),
        int(round(s.vn_mps * 100)), int(round(s.ve_mps * 100)), int(round(s.vd_mps * 100)),
        int(round(s.heading_deg * 100)) % 36000,
    )  # fmt: skip


def _enc_gps_raw_int(mav: Any, s: VehicleTruth) -> Any:
    return mav.gps_raw_int_encode(
        int(s.time_unix_s * 1e6), s.gps_fix_type, _e7(s.lat_deg), _e7(s.lon_deg),
        int(round(s.alt_amsl_m * 1000)), 70, 120, int(round(s.ground_speed_mps * 100)),
        int(round(s.heading_deg * 100)) % 36000, s.satellites,
    )  # fmt: skip


def _enc_vfr_hud(mav: Any, s: VehicleTruth) -> Any:
    throttle = 0 if not s.armed else min(100, int(35 + 3 * s.ground_speed_mps + 8 * s.climb_mps))
    return mav.vfr_hud_encode(
        s.ground_speed_mps, s.ground_speed_mps, int(round(s.heading_deg)) % 360, max(0, throttle),
        s.alt_amsl_m, s.climb_mps,
    )  # fmt: skip


def _enc_attitude(mav: Any, s: VehicleTruth) -> Any:
    return mav.attitude_encode(
        s.time_boot_ms % (1 << 32), s.roll_rad, s.pitch_rad, s.yaw_rad, 0.0, 0.0, 0.0
    )


def _enc_sys_status(mav: Any, s: VehicleTruth) -> Any:
    return mav.sys_status_encode(
        _SENSORS, _SENSORS, _SENSORS, 180, int(round(s.voltage_v * 1000)),
        int(round(s.current_a * 100)), int(round(s.battery_pct)), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip


def _enc_battery_status(mav: Any, s: VehicleTruth) -> Any:
    cells = 4
    cell_mv = int(round(s.voltage_v * 1000 / cells))
    voltages = [cell_mv] * cells + [_UINT16_MAX] * (10 - cells)
    return mav.battery_status_encode(
        0, 0, MAV_BATTERY_TYPE_LIPO, 32767, voltages, int(round(s.current_a * 100)),
        int(round(s.consumed_mah)), -1, int(round(s.battery_pct)), 0,
        MAV_BATTERY_CHARGE_STATE_OK, [0, 0, 0, 0], 0, 0,
    )  # fmt: skip


def _enc_system_time(mav: Any, s: VehicleTruth) -> Any:
    return mav.system_time_encode(int(s.time_unix_s * 1e6), s.time_boot_ms % (1 << 32))


_ENCODERS: dict[str, Callable[[Any, VehicleTruth], Any]] = {
    "HEARTBEAT": _enc_heartbeat,
    "GLOBAL_POSITION_INT": _enc_global_position_int,
    "GPS_RAW_INT": _enc_gps_raw_int,
    "VFR_HUD": _enc_vfr_hud,
    "ATTITUDE": _enc_attitude,
    "SYS_STATUS": _enc_sys_status,
    "BATTERY_STATUS": _enc_battery_status,
    "SYSTEM_TIME": _enc_system_time,
}
_NAME_OF_ID = {getattr(mavlink2, f"MAVLINK_MSG_ID_{name}"): name for name in _ENCODERS}


# ------------------------------------------------------------------------------------------
# Log replay (sans-I/O)
# ------------------------------------------------------------------------------------------

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
                        gps.fix_type >= GPS_FIX_TYPE_3D_FIX
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
    (a log that never has a fix) moves no position at all.
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
                setattr(msg, lat_f, max(-900_000_000, min(900_000_000, _e7(new_lat))))
                setattr(msg, lon_f, _e7(new_lon))
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
        if not self._moves and not readdress:
            self._note_position(msg, mtype)
            return bytes(msg.get_msgbuf())
        # Work on a copy: the same record goes through every transform of a multi-copy replay.
        try:
            work = self.mav.decode(bytearray(msg.get_msgbuf()))
        except mavlink2.MAVError:
            self.counters["repack_failed"] += 1
            return None
        moved = self._moves and self._move(work, mtype)
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
                "heading_deg": None if msg.hdg == _UINT16_MAX else msg.hdg * 0.01,
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


# ------------------------------------------------------------------------------------------
# The I/O shell
# ------------------------------------------------------------------------------------------


def medium_position_sink(
    hub: str | None, node_ids: Mapping[int, str]
) -> tuple[Callable[[int, float, float, float], None], Callable[[], None]]:
    """A ``position_sink`` that moves radio-medium node ``node_ids[sysid]`` to each vehicle's
    position (``lora_telemetry.sim.medium.MediumControl.set_position_geodetic``; the medium
    needs its origin configured), and a function closing it. The first update of each node is
    confirmed so a refusal is reported once; later ones are fire-and-forget."""
    control = MediumControl(hub)
    confirmed: set[int] = set()

    def sink(sysid: int, lat: float, lon: float, height_m: float) -> None:
        node = node_ids.get(sysid)
        if node is None:
            return
        if sysid in confirmed:
            control.set_position_geodetic(node, lat, lon, height_m)
            return
        confirmed.add(sysid)
        try:
            control.set_position_geodetic(node, lat, lon, height_m, wait=True)
        except MediumError as exc:
            log.warning("radio medium position update for %s: %s", node, exc)

    return sink, control.close


class _Output:
    """One MAVLink endpoint the simulator writes to (and reads commands from)."""

    def __init__(self, url: str) -> None:
        self.spec = parse_url(url)
        if self.spec.kind == "tlog":
            raise ConfigError(f"cannot send MAVLink to a log file ({url})")
        self.conn: Any = None
        self.retry_at = 0.0
        self.counters: Counter[str] = Counter()
        self.open()

    def open(self) -> None:
        try:
            self.conn = open_transport(self.spec)
        except (OSError, ValueError) as exc:
            self.conn = None
            self.retry_at = time.monotonic() + 1.0
            self.counters["open_failures"] += 1
            if self.counters["open_failures"] == 1:
                log.warning("cannot open %s: %s (retrying every second)", self.spec, exc)

    def write(self, buf: bytes) -> None:
        if self.conn is None:
            if time.monotonic() < self.retry_at:
                self.counters["dropped"] += 1
                return
            self.open()
            if self.conn is None:
                return
        try:
            write_transport(self.conn, self.spec, buf)
            self.counters["packets"] += 1
        except OSError as exc:
            log.warning("%s: write failed (%s); reopening", self.spec, exc)
            self.close()
            self.retry_at = time.monotonic() + 1.0

    def receive(self, limit: int = 200) -> list[Any]:
        out: list[Any] = []
        if self.conn is None:
            return out
        for _ in range(limit):
            try:
                msg = self.conn.recv_msg()
            except (OSError, EOFError) as exc:
                log.warning("%s: read failed (%s); reopening", self.spec, exc)
                self.close()
                self.retry_at = time.monotonic() + 1.0
                break
            if msg is None:
                break
            if msg.get_type() != "BAD_DATA":
                out.append(msg)
        return out

    def fileno(self) -> int | None:
        return getattr(self.conn, "fd", None) if self.conn is not None else None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


class VehicleSimulator:
    """Runs synthetic vehicles or a log replay in real time (see the module notes).

    ``outputs``: MAVLink URLs; one shared by every vehicle, or one per vehicle (synthetic) /
    per transform (replay). ``truth_path``: JSON truth written every ``truth_period_s``.
    ``position_sink(sysid, lat, lon, height_m)``: called at the same period with the height
    above home (e.g. the radio medium, whose nodes stand on the ground at height 0), for every
    vehicle whose position is known: a replayed vehicle without a fix (lat/lon None in the
    truth) is not moved, which is logged once per vehicle and counted
    (``positions_unknown_not_sent``). ``on_close`` runs once in :meth:`close` (e.g. closing
    the sink's socket).
    """

    def __init__(
        self,
        outputs: Sequence[str],
        *,
        autopilots: Sequence[SimulatedAutopilot] = (),
        replayer: LogReplayer | None = None,
        speed: float = 1.0,
        truth_path: str | os.PathLike[str] | None = None,
        truth_period_s: float = 0.5,
        position_sink: Callable[[int, float, float, float], None] | None = None,
        on_close: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bool(autopilots) == (replayer is not None):
            raise ConfigError("give either synthetic vehicles or a log replayer")
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"speed must be a positive number, got {speed!r}")
        n = len(autopilots) if autopilots else len(replayer.transforms)  # type: ignore[union-attr]
        if not outputs or len(outputs) not in (1, n):
            raise ConfigError(f"give one --out for all vehicles or one per vehicle ({n}), "
                              f"not {len(outputs)}")  # fmt: skip
        self._outputs: dict[str, _Output] = {}
        self._route: list[_Output] = []
        self._on_close = on_close
        try:
            for i in range(n):
                url = outputs[i if len(outputs) == n else 0]
                if url not in self._outputs:
                    self._outputs[url] = _Output(url)
                self._route.append(self._outputs[url])
        except LoraTelemetryError:
            self.close()
            raise
        self.autopilots = list(autopilots)
        self.replayer = replayer
        self.speed = float(speed)
        self.truth_path = truth_path
        self.truth_period_s = truth_period_s
        self.position_sink = position_sink
        self._clock = clock
        self.counters: Counter[str] = Counter()
        self._unplaced_reported: set[int] = set()
        self.sim_time_s = 0.0
        if truth_path is not None:
            try:  # an unwritable truth file fails now, not half a second into the run
                self._write_truth(self._clock())
            except ConfigError:
                self.close()
                raise

    @property
    def sysids(self) -> list[int]:
        """The system id of every simulated vehicle."""
        if self.replayer is not None:
            return [tr.out_sysid for tr in self.replayer.transforms]
        return [ap.sysid for ap in self.autopilots]

    def truth(self, t: float | None = None) -> list[dict[str, Any]]:
        """Every vehicle's true state (synthetic) or last replayed position (replay)."""
        if self.replayer is not None:
            return [tr.last_position for tr in self.replayer.transforms if tr.last_position]
        t = self.sim_time_s if t is None else t
        return [ap.vehicle.state_at(t).to_json() for ap in self.autopilots]

    def _write_truth(self, wall: float, vehicles: list[dict[str, Any]] | None = None) -> None:
        data = {"time_unix_s": wall, "sim_time_s": self.sim_time_s,
                "vehicles": self.truth() if vehicles is None else vehicles}  # fmt: skip
        try:
            atomic_write_json(self.truth_path, data, mode=0o644, durable=False)  # type: ignore[arg-type]
        except OSError as exc:
            self.counters["truth_write_errors"] += 1
            raise ConfigError(f"cannot write the truth file {self.truth_path}: {exc}") from None

    def _publish(self, wall: float) -> None:
        vehicles = self.truth()
        if self.truth_path is not None:
            self._write_truth(wall, vehicles)
        if self.position_sink is not None:
            for v in vehicles:
                if v["lat_deg"] is None or v["lon_deg"] is None:
                    self._report_unplaced(v["sysid"])
                    continue
                try:
                    self.position_sink(v["sysid"], v["lat_deg"], v["lon_deg"], v["alt_rel_m"])
                except (OSError, LoraTelemetryError) as exc:
                    self.counters["position_sink_errors"] += 1
                    log.debug("position sink: %s", exc)

    def _report_unplaced(self, sysid: int) -> None:
        self.counters["positions_unknown_not_sent"] += 1
        if sysid not in self._unplaced_reported:
            self._unplaced_reported.add(sysid)
            log.warning("vehicle %d reports no position (lat/lon 0, 0: no fix): its radio stays "
                        "where it registered in the medium until it reports one", sysid)

    def _serve_inputs(self, t: float) -> None:
        for output in self._outputs.values():
            for msg in output.receive():
                self.counters[f"received_{msg.get_type()}"] += 1
                for ap, route in zip(self.autopilots, self._route):
                    if route is output:
                        for buf in ap.handle(msg, t):
                            output.write(buf)

    def _wait(self, seconds: float) -> None:
        fds = [fd for fd in (o.fileno() for o in self._outputs.values()) if fd is not None]
        seconds = max(0.0, seconds)
        if fds:
            try:
                select.select(fds, [], [], seconds)
                return
            except (OSError, ValueError):
                pass
        time.sleep(seconds)

    def run(self, duration_s: float | None = None, stop: threading.Event | None = None) -> None:
        """Run until ``duration_s`` wall-clock seconds pass, ``stop`` is set, or a replay that
        does not loop ends."""
        start = time.monotonic()
        wall0 = self._clock()
        next_publish = 0.0
        frames = self.replayer.frames() if self.replayer is not None else None
        pending: tuple[float, list[bytes | None], Any] | None = None
        while True:
            elapsed = time.monotonic() - start
            if (duration_s is not None and elapsed >= duration_s) or (stop and stop.is_set()):
                self._publish(wall0 + elapsed)  # the final state, for whoever reads the truth
                return
            self.sim_time_s = t = elapsed * self.speed
            wait = 0.01
            if frames is None:
                for ap, output in zip(self.autopilots, self._route):
                    for buf in ap.due(t):
                        output.write(buf)
            else:
                for _ in range(2000):  # a burst at high speed still lets stop/truth through
                    if pending is None:
                        pending = next(frames, None)
                        if pending is None:
                            self._publish(self._clock())
                            return
                    due, packets, _ = pending
                    if due > elapsed:
                        wait = min(wait, due - elapsed)
                        break
                    for buf, output in zip(packets, self._route):
                        if buf is not None:
                            output.write(buf)
                    self.counters["records_sent"] += 1
                    pending = None
                else:
                    wait = 0.0  # still behind: go on right after serving the rest
            self._serve_inputs(t)
            if elapsed >= next_publish:
                next_publish = elapsed + self.truth_period_s
                self._publish(wall0 + elapsed)
            self._wait(wait)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sim_time_s": self.sim_time_s, **dict(self.counters)}
        out["outputs"] = {url: dict(o.counters) for url, o in self._outputs.items()}
        if self.replayer is not None:
            out["replay"] = dict(self.replayer.counters)
            out["transforms"] = [dict(t.counters) for t in self.replayer.transforms]
        else:
            out["vehicles"] = {ap.sysid: dict(ap.counters) for ap in self.autopilots}
        return out

    def close(self) -> None:
        for output in self._outputs.values():
            output.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> "VehicleSimulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
