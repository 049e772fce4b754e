"""Carrying a vehicle state forward to a later time with its measured velocity.

Under TDMA the drone takes the newest state just before its slot and sends it as the state
*at the slot's on-air time* (issue 13, "freshest state"): the flight controller's newest
position is up to 0.1 s old (10 Hz streams), so the position is moved along the velocity the
same message reported (GLOBAL_POSITION_INT vx/vy/vz: north, east, down in cm/s) for the time
between the two. Over 0.1 s at 8 m/s that is 0.8 m, more than the codec's 0.5 m step; the
extrapolation error is the acceleration term (a/2 dt^2: 5 mm at 1 m/s^2 over 0.1 s).

Decisions: the step is limited to ``max_dt_s`` (1 s; beyond it a state is too old to carry
forward and is sent as it is); a missing velocity moves nothing.
"""

from __future__ import annotations

from lora_telemetry.core.geo import LocalProjection

MAX_DT_S = 1.0


def extrapolate(lat_deg: float, lon_deg: float, alt_m: float | None,
                velocity_ned_mps: tuple[float, float, float] | None,
                dt_s: float) -> tuple[float, float, float | None]:
    """(lat, lon, alt) ``dt_s`` later along ``velocity_ned_mps`` (north, east, down)."""
    if velocity_ned_mps is None or not 0.0 < dt_s <= MAX_DT_S:
        return lat_deg, lon_deg, alt_m
    north, east, down = velocity_ned_mps
    lat, lon = LocalProjection(lat_deg, lon_deg).to_geodetic(east * dt_s, north * dt_s)
    return lat, lon, None if alt_m is None else alt_m - down * dt_s
