"""What a saturated telemetry value means for the reader, and what to do about it.

The codec sends a value beyond its field's range as the field's bound and lists the field in
`TelemetrySample.saturated` (codec.py, "Saturate, never wrap"; ranges in `codec.RANGES`).
A coordinator must not take such a value for the truth, so both nodes pass the knowledge on:

* the ground node sets a bit per field in `UavTelemetry.saturated` (the numbers are
  :data:`SATURATION_BITS`, the same as the message's ``SATURATED_*`` constants), counts the
  samples in `LinkStats.saturated_samples` and turns the UAV's diagnostic to WARN with
  :func:`describe_received`: the field, the direction and the likely cause, in numbers;
* the drone node, which still has the true value, says by how much (:func:`describe_sent`),
  e.g. "altitude 3.0 m AMSL is 485.0 m below origin_alt_m 488.0 m ...".

Satellites are the exception (:data:`HARMLESS`): "38 or more" is a true statement, so that bit
is set but neither counted nor warned about.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from lora_telemetry.core.codec import RANGES, CodecConfig, TelemetrySample

#: Codec field name (as in TelemetrySample.saturated) -> bit of UavTelemetry.saturated.
SATURATION_BITS: Mapping[str, int] = {
    "lat_deg": 1,
    "lon_deg": 2,
    "alt_amsl_m": 4,
    "alt_rel_m": 8,
    "ground_speed_mps": 16,
    "climb_mps": 32,
    "battery_pct": 64,
    "voltage_v": 128,
    "satellites": 256,
}
#: Saturations that do not make a value wrong (satellites: "38 or more").
HARMLESS = frozenset({"satellites"})

_POS_M = RANGES["north_m"][1]
_ALT_M = RANGES["alt_m"][1]
_HOME_M = RANGES["home_alt_m"][1]
_ORIGIN_FIX = "set origin_lat_deg/origin_lon_deg to your flying field"
_ALT_FIX = "set origin_alt_m to the field's altitude"


def bitmask(saturated: Iterable[str]) -> int:
    """The UavTelemetry.saturated bits of a sample's saturated field names."""
    return sum(SATURATION_BITS.get(name, 0) for name in set(saturated))


def significant(saturated: Iterable[str]) -> list[str]:
    """The saturated fields whose value is wrong (sorted), i.e. all but :data:`HARMLESS`."""
    return sorted(set(saturated) - HARMLESS)


def _side(value: float, positive: str, negative: str) -> str:
    return positive if value > 0 else negative


def describe_received(sample: TelemetrySample, config: CodecConfig) -> list[str]:
    """Ground side: one sentence per wrong field of a decoded sample (the true value is not
    known here, only which bound it passed)."""
    sat = set(sample.saturated)
    out: list[str] = []
    if sample.lat_deg is not None and sample.lon_deg is not None and sat & {"lat_deg", "lon_deg"}:
        east, north = config.projection.to_local(sample.lat_deg, sample.lon_deg)
        for name, value, pos, neg in (("lat_deg", north, "north", "south"),
                                      ("lon_deg", east, "east", "west")):
            if name in sat:
                out.append(f"position more than {_POS_M:.0f} m {_side(value, pos, neg)} of the "
                           f"origin ({config.origin_lat_deg:.6f}, {config.origin_lon_deg:.6f}): "
                           f"{_ORIGIN_FIX}")
    origin_alt = config.origin_alt_m
    if "alt_amsl_m" in sat and sample.alt_amsl_m is not None:
        side = _side(sample.alt_amsl_m - origin_alt, "above", "below")
        out.append(f"altitude more than {_ALT_M:.0f} m {side} origin_alt_m {origin_alt:.1f} m: "
                   f"{_ALT_FIX}")
    elif "alt_rel_m" in sat and sample.alt_amsl_m is not None and sample.alt_rel_m is not None:
        home = sample.alt_amsl_m - sample.alt_rel_m - origin_alt
        out.append(f"home altitude more than {_HOME_M:.0f} m {_side(home, 'above', 'below')} "
                   f"origin_alt_m {origin_alt:.1f} m, so the height above home is wrong: set "
                   "origin_alt_m to the take-off altitude")
    out.extend(_describe_rates(sample, sat, exact=False))
    return out


def describe_sent(sample: TelemetrySample, config: CodecConfig,
                  saturated: Iterable[str]) -> list[str]:
    """Drone side: one sentence per wrong field, with the true value `sample` holds."""
    sat = set(saturated)
    out: list[str] = []
    if sample.lat_deg is not None and sample.lon_deg is not None and sat & {"lat_deg", "lon_deg"}:
        east, north = config.projection.to_local(sample.lat_deg, sample.lon_deg)
        out.append(f"position {abs(north):.0f} m {_side(north, 'north', 'south')}, "
                   f"{abs(east):.0f} m {_side(east, 'east', 'west')} of the origin "
                   f"({config.origin_lat_deg:.6f}, {config.origin_lon_deg:.6f}) is beyond the "
                   f"frame's +-{_POS_M:.0f} m: {_ORIGIN_FIX}")
    origin_alt = config.origin_alt_m
    if "alt_amsl_m" in sat and sample.alt_amsl_m is not None:
        d = sample.alt_amsl_m - origin_alt
        out.append(f"altitude {sample.alt_amsl_m:.1f} m AMSL is {abs(d):.1f} m "
                   f"{_side(d, 'above', 'below')} origin_alt_m {origin_alt:.1f} m, beyond the "
                   f"frame's +-{_ALT_M:.0f} m: {_ALT_FIX}")
    elif "alt_rel_m" in sat and sample.alt_amsl_m is not None and sample.alt_rel_m is not None:
        home_amsl = sample.alt_amsl_m - sample.alt_rel_m
        d = home_amsl - origin_alt
        out.append(f"home altitude {home_amsl:.1f} m AMSL is {abs(d):.1f} m "
                   f"{_side(d, 'above', 'below')} origin_alt_m {origin_alt:.1f} m, beyond the "
                   f"frame's +-{_HOME_M:.0f} m: set origin_alt_m to the take-off altitude")
    out.extend(_describe_rates(sample, sat, exact=True))
    return out


def _describe_rates(sample: TelemetrySample, sat: set[str], *, exact: bool) -> list[str]:
    out = []
    for name, what, unit, value in (
        ("ground_speed_mps", "ground speed", "m/s", sample.ground_speed_mps),
        ("climb_mps", "climb rate", "m/s", sample.climb_mps),
        ("battery_pct", "battery remaining", "%", sample.battery_pct),
        ("voltage_v", "battery voltage", "V", sample.voltage_v),
    ):
        if name not in sat or value is None:
            continue
        low, high = RANGES[name]
        bound = high if value > 0 else low
        shown = f"{value:.1f} {unit} is" if exact else "is"
        out.append(f"{what} {shown} {'above' if value > 0 else 'below'} the frame's "
                   f"{bound:g} {unit}: sent as {bound:g} {unit}")
    return out
