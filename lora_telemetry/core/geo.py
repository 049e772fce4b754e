"""Local east/north projection around an origin, and great-circle distance.

A swarm works inside an operating area of a few kilometres around a configured origin (the
thesis tested links up to 1040 m, Tables 4.5.8-4.5.9, thesis lines ~2860-2890). Inside such an
area a flat east/north frame in metres is what the telemetry codec, the simulated radio medium
and the vehicle simulators need, so the one projection lives here.

Decisions worth knowing:

* The projection is equirectangular about the origin, scaled with the WGS-84 radii of
  curvature *at the origin*: north = M(lat0)*dlat, east = N(lat0)*cos(lat0)*dlon. It is exactly
  invertible (``to_geodetic(*to_local(p)) == p`` to float precision), which is what a codec
  needs: the only error of a lat/lon round trip through the wire is the quantisation of the
  metres. As a map of true ground distances it is accurate to about ``d*tan(lat0)/R`` relative
  error at distance d from the origin (0.06 % at 4 km and 45 deg), which the radio medium can
  ignore.
* Longitude differences are taken modulo 360 deg, so an area that straddles the antimeridian
  works; results are normalised to [-180, 180).
* Origins beyond +-80 deg latitude are refused: there the meridians converge so fast that the
  east scale varies by several per cent across a few kilometres. Every inhabited place but the
  far north of Svalbard and Greenland is inside the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lora_telemetry.core.errors import ConfigError

__all__ = [
    "WGS84_A_M",
    "WGS84_F",
    "MEAN_EARTH_RADIUS_M",
    "MAX_ORIGIN_LAT_DEG",
    "LocalProjection",
    "normalize_lon_deg",
    "haversine_m",
]

#: WGS-84 semi-major axis (m) and flattening.
WGS84_A_M = 6378137.0
WGS84_F = 1.0 / 298.257223563
_E2 = WGS84_F * (2.0 - WGS84_F)
#: IUGG mean Earth radius (m), for great-circle distances.
MEAN_EARTH_RADIUS_M = 6371008.8
#: Largest |latitude| accepted for a projection origin (see module notes).
MAX_ORIGIN_LAT_DEG = 80.0


def normalize_lon_deg(lon_deg: float) -> float:
    """Longitude wrapped into [-180, 180)."""
    wrapped = math.fmod(lon_deg + 180.0, 360.0)
    if wrapped < 0.0:
        wrapped += 360.0
    return wrapped - 180.0


def _check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LocalProjection:
    """East/north metres about ``(origin_lat_deg, origin_lon_deg)``; see the module notes."""

    origin_lat_deg: float
    origin_lon_deg: float
    #: Metres per radian of latitude (meridional radius M) at the origin.
    m_per_rad_north: float = field(init=False, repr=False, compare=False)
    #: Metres per radian of longitude (N*cos(lat)) at the origin.
    m_per_rad_east: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lat = _check_finite("origin latitude", self.origin_lat_deg)
        lon = _check_finite("origin longitude", self.origin_lon_deg)
        if abs(lat) > MAX_ORIGIN_LAT_DEG:
            raise ConfigError(
                f"origin latitude {lat} deg is beyond +-{MAX_ORIGIN_LAT_DEG} deg, where a local "
                "flat projection is no longer accurate"
            )
        if not -180.0 <= lon <= 180.0:
            raise ConfigError(f"origin longitude {lon} deg is outside [-180, 180]")
        phi = math.radians(lat)
        w = math.sqrt(1.0 - _E2 * math.sin(phi) ** 2)
        object.__setattr__(self, "origin_lat_deg", lat)
        object.__setattr__(self, "origin_lon_deg", normalize_lon_deg(lon))
        object.__setattr__(self, "m_per_rad_north", WGS84_A_M * (1.0 - _E2) / w**3)
        object.__setattr__(self, "m_per_rad_east", WGS84_A_M / w * math.cos(phi))

    def to_local(self, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        """(east_m, north_m) of a point; the caller checks that the inputs are finite."""
        dlon = normalize_lon_deg(lon_deg - self.origin_lon_deg)
        east = math.radians(dlon) * self.m_per_rad_east
        north = math.radians(lat_deg - self.origin_lat_deg) * self.m_per_rad_north
        return east, north

    def to_geodetic(self, east_m: float, north_m: float) -> tuple[float, float]:
        """(lat_deg, lon_deg) of a local point, the exact inverse of :meth:`to_local`."""
        lat = self.origin_lat_deg + math.degrees(north_m / self.m_per_rad_north)
        lon = normalize_lon_deg(self.origin_lon_deg + math.degrees(east_m / self.m_per_rad_east))
        return lat, lon


def haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance in metres on the mean-radius sphere (about 0.3 % accurate)."""
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp = p2 - p1
    dl = math.radians(normalize_lon_deg(lon2_deg - lon1_deg))
    h = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * MEAN_EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
