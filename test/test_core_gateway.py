"""The gateway pipeline: every frame gets one verdict, and only authentic new frames pass."""

from __future__ import annotations

import math

import pytest

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core import gateway as gw
from lora_telemetry.core.errors import ConfigError

NWK = bytes.fromhex("437009D0F91CF5F9694E4EB2AE7EB9D3")  # thesis end-node keys (~line 8950)
APP = bytes.fromhex("A4109C150E2492D5479A782645758B3B")
ADDR = 0x26011CA2
CODEC = tcodec.CodecConfig(41.2750, 1.9870, 4.0, tcodec.VehicleFamily.ARDUCOPTER)
T0 = 1_763_700_000.0


def sample(t: float, north_m: float = 0.0) -> tcodec.TelemetrySample:
    lat = CODEC.origin_lat_deg + north_m / 111_132.0
    return tcodec.TelemetrySample(
        time_unix_s=t, lat_deg=lat, lon_deg=CODEC.origin_lon_deg, alt_amsl_m=54.0, alt_rel_m=50.0,
        heading_deg=90.0, ground_speed_mps=5.0, climb_mps=0.0, battery_pct=80.0, voltage_v=15.8,
        custom_mode=4, armed=True, system_status=4, gps_fix_type=3, satellites=12,
    )


def frame(fcnt: int, t: float, *, nwk: bytes = NWK, addr: int = ADDR, north_m: float = 0.0) -> bytes:
    fport, payload = tcodec.encode(sample(t, north_m), CODEC)
    return lw.build_data_frame(addr, fcnt, payload, nwkskey=nwk, appskey=APP, fport=fport)


@pytest.fixture
def gateway() -> gw.Gateway:
    return gw.Gateway([gw.Device("uav1", ADDR, NWK, APP, CODEC, system_id=1)])


def test_accepts_and_decodes(gateway: gw.Gateway) -> None:
    v = gateway.process(frame(0, T0, north_m=100.0), crc_ok=True, rx_time=T0 + 0.3,
                        rssi_dbm=-90, snr_db=7)
    assert v.status == gw.ACCEPTED and v.device and v.device.name == "uav1"
    assert v.sample is not None
    assert abs((v.sample.lat_deg - CODEC.origin_lat_deg) * 111_132.0 - 100.0) <= 0.5
    assert v.latency_s == pytest.approx(0.3, abs=tcodec.TIME_STEP_S)
    link = gateway.links["uav1"]
    assert link.received == 1 and link.mean_rssi_dbm == -90


def test_rejections_are_counted_and_never_decoded(gateway: gw.Gateway) -> None:
    ok = frame(5, T0)
    assert gateway.process(ok, crc_ok=True, rx_time=T0 + 1).accepted
    cases = [
        (ok, gw.DUPLICATE),                                  # same frame again
        (frame(3, T0), gw.REPLAY),                           # older counter, genuine MIC
        (frame(6, T0, nwk=bytes(16)), gw.MIC_FAILED),        # forged: wrong key
        (frame(7, T0, addr=0x01020304), gw.UNKNOWN_DEVADDR),
        (b"\x40\x01", gw.MALFORMED),
        (lw.build_join_request(bytes(16), 1, 2, 3), gw.NOT_UPLINK),
    ]
    for data, status in cases:
        v = gateway.process(data, crc_ok=True, rx_time=T0 + 2)
        assert v.status == status, (status, v.detail)
        assert v.sample is None
    assert gateway.process(ok, crc_ok=False, rx_time=T0 + 2).status == gw.CRC_ERROR
    link = gateway.links["uav1"]
    assert (link.received, link.duplicates, link.replays, link.mic_failures) == (1, 1, 1, 1)
    # A forged frame did not advance the counter: the genuine next frame still passes.
    assert gateway.process(frame(6, T0), crc_ok=True, rx_time=T0 + 3).accepted


def test_gaps_count_as_lost_and_feed_delivery_ratio(gateway: gw.Gateway) -> None:
    for fc in (0, 1, 4, 5):
        assert gateway.process(frame(fc, T0), crc_ok=True, rx_time=T0 + 1).accepted
    link = gateway.links["uav1"]
    assert link.lost == 2 and link.delivery_ratio == pytest.approx(4 / 6)


def test_unknown_devaddr_reported_once(gateway: gw.Gateway) -> None:
    firsts = [gateway.process(frame(i, T0, addr=0x0A0B0C0D), crc_ok=True, rx_time=T0).first_report
              for i in range(3)]
    assert firsts == [True, False, False]
    assert gateway.unknown_devaddrs == {0x0A0B0C0D: 3}


def test_unknown_devaddr_table_is_bounded(gateway: gw.Gateway) -> None:
    # Fuzzing found +70 MB for 1,000,000 frames with random DevAddrs: anyone in range could
    # grow the table without bound. It now keeps the MAX_UNKNOWN_DEVADDRS most recent.
    cap = gw.MAX_UNKNOWN_DEVADDRS
    data = frame(1, T0, addr=0x0A000000)
    for i in range(3 * cap):
        addr = 0x0A000000 + i
        forged = addr.to_bytes(4, "little")
        v = gateway.process(data[:1] + forged + data[5:], crc_ok=True, rx_time=T0)
        assert v.status == gw.UNKNOWN_DEVADDR and v.first_report
    assert len(gateway.unknown_devaddrs) == cap
    assert gateway.unknown_devaddrs_forgotten == 2 * cap
    # The most recently heard stay; an address heard often is kept while it keeps sending.
    assert 0x0A000000 + 3 * cap - 1 in gateway.unknown_devaddrs
    assert 0x0A000000 not in gateway.unknown_devaddrs
    assert gateway.totals[gw.UNKNOWN_DEVADDR] == 3 * cap


def test_authentic_frame_with_garbage_payload_is_a_decode_error(gateway: gw.Gateway) -> None:
    data = lw.build_data_frame(ADDR, 1, b"\x00" * 3, nwkskey=NWK, appskey=APP, fport=1)
    v = gateway.process(data, crc_ok=True, rx_time=T0)
    assert v.status == gw.DECODE_ERROR and gateway.links["uav1"].decode_errors == 1


def test_duplicate_devaddr_in_registry_is_refused() -> None:
    d = gw.Device("uav1", ADDR, NWK, APP, CODEC)
    with pytest.raises(ConfigError, match="registered twice"):
        gw.Gateway([d, gw.Device("uav2", ADDR, NWK, APP, CODEC)])


def test_link_counters_before_any_frame(gateway: gw.Gateway) -> None:
    link = gateway.links["uav1"]
    assert math.isnan(link.delivery_ratio) and math.isinf(link.age_s(T0))
