"""Synthetic vehicles: where N simulated copters are, and in what state, at any time.

The copters fly a circle, a lawnmower survey or a formation around an origin
(:func:`build_swarm`), through a mission an ArduCopter flies (GUIDED take-off, AUTO, RTL, LAND,
disarm) with a battery that drains with the current drawn. :meth:`SyntheticVehicle.state_at`
is the truth at any time, a pure function of the time: a :class:`VehicleTruth` in SI units
with MAVLink's enumerations (ArduCopter ``custom_mode`` numbers from the core's mode table),
which the simulated autopilot encodes and the simulator writes to its truth file.

A commanded mode change (:meth:`SyntheticVehicle.command_mode`, which the simulated autopilot
calls on an accepted MAV_CMD_NAV_RETURN_TO_LAUNCH / NAV_LAND / DO_SET_MODE / SET_MODE) replaces
the scripted mission from that time on, as a pilot's or ground station's mode change does on
ArduCopter: RTL flies straight home at the cruise speed and the height it has (ArduCopter
would first climb to RTL_ALT, 15 m by default, if lower), then descends at the landing speed
and disarms; LAND descends where it is and disarms; LOITER, BRAKE, POSHOLD and GUIDED (with no
target) hold the position and height ("hold" phase). The mode stays the commanded one, landed
included, as ArduCopter's does. A vehicle disarmed on the ground takes the mode and stays
there: ArduCopter accepts any mode while disarmed ("allow switching to any mode if disarmed",
Copter::set_mode) and does not arm by itself. The truth stays a pure function of the time and
of the commands received before it; without a command it is the scripted mission, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from lora_telemetry.core.codec import VehicleFamily, custom_mode_from_name
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.geo import LocalProjection

__all__ = [
    "PATTERNS",
    "COMMAND_MODES",
    "VehicleTruth",
    "CirclePath",
    "PolylinePath",
    "OffsetPath",
    "SyntheticVehicle",
    "build_swarm",
]

PATTERNS = ("circle", "lawnmower", "formation")

MAV_STATE_STANDBY = 3
MAV_STATE_ACTIVE = 4
GPS_FIX_TYPE_3D_FIX = 3
_G = 9.80665

#: ArduCopter flight modes of the synthetic mission (numbers from the core's mode table).
_MODE_NUMBERS = {
    name: custom_mode_from_name(VehicleFamily.ARDUCOPTER, name)
    for name in ("GUIDED", "AUTO", "RTL", "LAND")
}

#: Flight mode in each phase of the synthetic mission.
_PHASE_MODE = {"idle": "GUIDED", "takeoff": "GUIDED", "auto": "AUTO", "rtl": "RTL",
               "land": "LAND", "landed": "LAND"}  # fmt: skip

#: ArduCopter modes a synthetic vehicle flies on command, and what it does in each.
COMMAND_MODES = {"RTL": "rtl", "LAND": "land", "LOITER": "hold", "BRAKE": "hold",
                 "POSHOLD": "hold", "GUIDED": "hold"}  # fmt: skip


@dataclass(frozen=True)
class _Plan:
    """What a vehicle does from a commanded mode change on (absolute simulation times)."""

    t0: float
    mode: str
    custom_mode: int
    phases: tuple[tuple[str, float, float], ...]
    start: tuple[float, float, float]  # east, north, height where the command found it
    consumed0_mah: float


@dataclass(frozen=True)
class VehicleTruth:
    """What a simulated vehicle really is at one time (SI units, MAVLink enumerations)."""

    sysid: int
    time_s: float  # simulation time
    time_unix_s: float
    time_boot_ms: int
    phase: str  # idle, takeoff, auto, rtl, land, landed; hold (on command)
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
                       "land": 12.0, "landed": IDLE_A, "hold": 17.0}  # fmt: skip

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
        self._plans: list[_Plan] = []

    # -- commands ------------------------------------------------------------------------------

    def command_mode(self, t: float, mode: str) -> bool:
        """Switch to ArduCopter ``mode`` at simulation time ``t`` (see the module notes);
        False (nothing changes) for a mode this simulation does not fly. Commands come in time
        order: one earlier than the last is a :class:`ConfigError`."""
        mode = mode.strip().upper()
        kind = COMMAND_MODES.get(mode)
        if kind is None:
            return False
        if self._plans and t < self._plans[-1].t0:
            raise ConfigError(f"command at t={t} is earlier than the last one")
        e, n, up, phase = self._where(t)
        consumed = self._consumed(t)
        if phase in ("idle", "landed") or (up <= 0.0 and phase != "takeoff"):
            phases: tuple[tuple[str, float, float], ...] = (("landed", t, math.inf),)
            up = 0.0
        elif kind == "hold":
            phases = (("hold", t, math.inf),)
        elif kind == "land":
            t_landed = t + up / self.land_mps
            phases = (("land", t, t_landed), ("landed", t_landed, math.inf))
        else:
            dist = math.hypot(self.home[0] - e, self.home[1] - n)
            t_land = t + dist / self.speed
            t_landed = t_land + up / self.land_mps
            phases = (("rtl", t, t_land), ("land", t_land, t_landed),
                      ("landed", t_landed, math.inf))  # fmt: skip
        custom = custom_mode_from_name(VehicleFamily.ARDUCOPTER, mode)
        assert custom is not None  # every COMMAND_MODES name is an ArduCopter mode
        self._plans.append(_Plan(t, mode, custom, phases, (e, n, up), consumed))
        return True

    @property
    def commanded(self) -> bool:
        """Whether a command has replaced the scripted mission."""
        return bool(self._plans)

    def _plan_at(self, t: float) -> _Plan | None:
        for plan in reversed(self._plans):
            if t >= plan.t0:
                return plan
        return None

    def _plan_local(self, plan: _Plan, t: float) -> tuple[float, float, float, str]:
        e0, n0, up0 = plan.start
        for name, start, end in plan.phases:
            if t < end:
                break
        dt = t - start
        if name == "hold":
            return e0, n0, up0, name
        if name == "rtl":
            dist = math.hypot(self.home[0] - e0, self.home[1] - n0)
            f = 1.0 if dist == 0 else min(1.0, dt * self.speed / dist)
            return e0 + f * (self.home[0] - e0), n0 + f * (self.home[1] - n0), up0, name
        e, n = self.home if plan.phases[0][0] == "rtl" else (e0, n0)
        if name == "land":
            return e, n, max(0.0, up0 - dt * self.land_mps), name
        return e, n, 0.0, name

    def _where(self, t: float) -> tuple[float, float, float, str]:
        """(east, north, height above home, phase) at simulation time t."""
        plan = self._plan_at(t)
        if plan is not None:
            return self._plan_local(plan, t)
        return self._local(t % self.cycle_s if self.repeat else t)

    def _consumed(self, t: float) -> float:
        plan = self._plan_at(t)
        if plan is None:
            return self._consumed_mah(t % self.cycle_s if self.repeat else t)
        total = 0.0
        for name, start, end in plan.phases:
            if t <= start:
                break
            total += self.PHASE_CURRENT_A[name] * (min(t, end) - start)
        return plan.consumed0_mah + total / 3.6

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
        e, n, up, phase = self._where(t)
        dt = 0.05
        e0, n0, up0, _ = self._where(t - dt)
        e1, n1, up1, _ = self._where(t + dt)
        ve, vn, vu = (e1 - e0) / (2 * dt), (n1 - n0) / (2 * dt), (up1 - up0) / (2 * dt)
        gs = math.hypot(ve, vn)
        if gs > 0.3:
            heading = _heading_of(ve, vn)
            eb, nb, _, _ = self._where(t - 2 * dt)
            ea, na, _, _ = self._where(t + 2 * dt)
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
        consumed = self._consumed(t)
        pct = max(0.0, self.battery_start_pct - 100.0 * consumed / self.capacity_mah)
        voltage = self.cells * (3.3 + 0.9 * pct / 100.0) - current * 0.02
        armed = phase in ("takeoff", "auto", "rtl", "land", "hold")
        plan = self._plan_at(t)
        mode = _PHASE_MODE[phase] if plan is None else plan.mode
        custom_mode = _MODE_NUMBERS[mode] if plan is None else plan.custom_mode
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
            custom_mode=custom_mode,  # type: ignore[arg-type]
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
