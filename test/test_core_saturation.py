"""Saturated values reach the reader: bits, counts and explanations with numbers.

Ranges are the codec's (docs/wire-format.md, codec.RANGES): +-4095 m east/north, +-255 m
of altitude and +-63 m of home altitude about the origin, 50.6 m/s, +-12.4 m/s, 100 %, 50.9 V.
"""

from __future__ import annotations

import pytest

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import gateway as gw
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core import saturation
from lora_telemetry.ground.health import uav_health

ORIGIN = (47.3977, 8.5456, 488.0)
CODEC = tcodec.CodecConfig(*ORIGIN, "arducopter")
T0 = 1_763_700_000.0
ADDR, NWK, APP = 0x260B0001, bytes(range(16)), bytes(range(16, 32))


def roundtrip(sample: tcodec.TelemetrySample) -> tcodec.TelemetrySample:
    fport, payload = tcodec.encode(sample, CODEC)
    return tcodec.decode(fport, payload, CODEC, sample.time_unix_s)


def test_bits_match_the_message_constants() -> None:
    from rostest_support import require_ros

    require_ros()
    from lora_telemetry.msg import UavTelemetry

    names = {"lat_deg": "LATITUDE", "lon_deg": "LONGITUDE", "alt_amsl_m": "ALTITUDE",
             "alt_rel_m": "ALTITUDE_RELATIVE", "ground_speed_mps": "GROUND_SPEED",
             "climb_mps": "CLIMB_RATE", "battery_pct": "BATTERY", "voltage_v": "VOLTAGE",
             "satellites": "SATELLITES"}
    assert set(names) == set(saturation.SATURATION_BITS)
    for field, const in names.items():
        assert getattr(UavTelemetry, f"SATURATED_{const}") == saturation.SATURATION_BITS[field]
    bits = list(saturation.SATURATION_BITS.values())
    assert len(set(bits)) == len(bits) and all(b & (b - 1) == 0 for b in bits)


def test_a_real_flight_at_3_m_amsl_with_a_488_m_origin() -> None:
    # The reviewer's case: a multicopter log flown at about 3 m AMSL replayed around the
    # demo's 488 m origin came out at -192 m AMSL... with nothing saying it was wrong.
    truth = tcodec.TelemetrySample(T0, lat_deg=47.398, lon_deg=8.546, alt_amsl_m=3.0, alt_rel_m=1.0)
    got = roundtrip(truth)
    assert "alt_amsl_m" in got.saturated
    assert got.alt_amsl_m == pytest.approx(488.0 - 255.5)
    assert saturation.bitmask(got.saturated) & saturation.SATURATION_BITS["alt_amsl_m"]
    (sent,) = saturation.describe_sent(truth, CODEC, saturation.significant(got.saturated))
    assert "altitude 3.0 m AMSL is 485.0 m below origin_alt_m 488.0 m" in sent
    assert "set origin_alt_m" in sent
    (received,) = saturation.describe_received(got, CODEC)
    assert "more than 255 m below origin_alt_m 488.0 m" in received


@pytest.mark.parametrize("changes, field, words", [
    ({"lat_deg": 47.45}, "lat_deg", "north"),  # 5.8 km north of the origin
    ({"lon_deg": 8.45}, "lon_deg", "west"),
    ({"alt_amsl_m": 800.0}, "alt_amsl_m", "above origin_alt_m"),
    ({"alt_amsl_m": 600.0, "alt_rel_m": 10.0}, "alt_rel_m", "home altitude"),  # home 590 m
    ({"ground_speed_mps": 70.0}, "ground_speed_mps", "above the frame's 50.6 m/s"),
    ({"climb_mps": -20.0}, "climb_mps", "below the frame's -12.4 m/s"),
    ({"voltage_v": 60.0}, "voltage_v", "above the frame's 50.9 V"),
    ({"battery_pct": 120.0}, "battery_pct", "above the frame's 100 %"),
])
def test_each_field_is_flagged_and_explained(changes: dict, field: str, words: str) -> None:
    base = dict(time_unix_s=T0, lat_deg=47.398, lon_deg=8.546, alt_amsl_m=500.0, alt_rel_m=12.0)
    truth = tcodec.TelemetrySample(**{**base, **changes})
    got = roundtrip(truth)
    # An altitude beyond the window also makes the height above home wrong (codec.py).
    expected = ["alt_amsl_m", "alt_rel_m"] if field == "alt_amsl_m" else [field]
    assert saturation.significant(got.saturated) == expected
    texts = saturation.describe_received(got, CODEC) + saturation.describe_sent(truth, CODEC, expected)
    assert len(texts) == 2 and all(words in t for t in texts), texts


def test_satellites_are_flagged_but_harmless() -> None:
    got = roundtrip(tcodec.TelemetrySample(T0, satellites=45))
    assert got.saturated == frozenset({"satellites"})
    assert saturation.bitmask(got.saturated) == saturation.SATURATION_BITS["satellites"]
    assert saturation.significant(got.saturated) == []


def test_gateway_counts_and_explains_saturated_samples() -> None:
    gateway = gw.Gateway([gw.Device("uav1", ADDR, NWK, APP, CODEC)])
    for n, alt in enumerate((500.0, 3.0, 3.0, 500.0)):
        fport, payload = tcodec.encode(tcodec.TelemetrySample(T0 + n, alt_amsl_m=alt), CODEC)
        data = lw.build_data_frame(ADDR, n, payload, nwkskey=NWK, appskey=APP, fport=fport)
        assert gateway.process(data, crc_ok=True, rx_time=T0 + n).accepted
    link = gateway.links["uav1"]
    assert link.saturated_samples == 2 and link.saturated_by_field == {"alt_amsl_m": 2}
    level, text = uav_health("uav1", link, T0 + 4, 10.0)
    assert level == "warn" and "255 m below origin_alt_m 488.0 m" in text
    # It stays a warning while recent, then the UAV is simply fresh again.
    link.last_rx_time = T0 + 30
    assert uav_health("uav1", link, T0 + 30, 10.0) == ("ok", "fresh")
