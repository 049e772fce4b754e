"""Benchmark: bytes and airtime per telemetry update, and the cost of building/checking it.

Compares, per update:
* `lora_telemetry`: this project's 16-byte codec in a LoRaWAN frame (13 bytes overhead);
* `thesis_text`: the thesis end node's 47-byte text sentence sent with `mac tx uncnf 1`
  (thesis file ~line 9026: "'Si crees que puedes, ya estas a medio camino.'"), also LoRaWAN;
* `mavlink_high_latency2`: MAVLink's HIGH_LATENCY2 message (42-byte payload, id 235, made for
  low-bandwidth links), as a MAVLink v2 packet (12 bytes header+CRC) in a LoRaWAN frame.
Airtime per SF7..SF12 at 125 kHz, CR 4/5, 8-symbol preamble, explicit header, CRC on
(core.phy, SX1276 datasheet 4.1.1.7). Then microseconds per encode+secure (codec + AES +
CMAC) and per verify+decode (gateway pipeline) for our codec.

Usage: python bench/bench_codec.py [--iterations N]. Writes bench/results/codec.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_result  # noqa: E402
from lora_telemetry.core import codec as tcodec  # noqa: E402
from lora_telemetry.core import gateway as gw  # noqa: E402
from lora_telemetry.core import lorawan as lw  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402

LORAWAN_OVERHEAD = 13
THESIS_SENTENCE = bytes.fromhex(
    "27536920637265657320717565207075656465732c2079612065737461732061206d6564696f"
    "2063616d696e6f2e27")
HL2_PAYLOAD = 42  # MAVLink common.xml HIGH_LATENCY2 wire size
MAVLINK2_OVERHEAD = 12  # STX, len, incompat, compat, seq, sysid, compid, msgid(3), CRC(2)
NWK = bytes(range(16))
APP = bytes(range(16, 32))
CONFIG = tcodec.CodecConfig(47.3977, 8.5456, 400.0, tcodec.VehicleFamily.ARDUCOPTER)


def airtimes(frame_bytes: int) -> dict[str, float]:
    return {f"SF{sf}": round(PhySettings(868_100_000, sf, 125_000).airtime_ms(frame_bytes), 3)
            for sf in range(7, 13)}


def sample(t: float) -> tcodec.TelemetrySample:
    return tcodec.TelemetrySample(
        time_unix_s=t, lat_deg=47.3981, lon_deg=8.5461, alt_amsl_m=452.5, alt_rel_m=50.0,
        heading_deg=271.0, ground_speed_mps=8.4, climb_mps=-0.6, battery_pct=71.0,
        voltage_v=15.6, custom_mode=3, armed=True, system_status=4, gps_fix_type=3,
        satellites=14, failure_flags=0)


def time_us(fn, iterations: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - t0) / iterations * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=5000)
    args = ap.parse_args(argv)

    fport, payload = tcodec.encode(sample(1_763_700_000.0), CONFIG)
    codecs = [
        ("lora_telemetry", len(payload), len(payload) + LORAWAN_OVERHEAD),
        ("thesis_text", len(THESIS_SENTENCE), len(THESIS_SENTENCE) + LORAWAN_OVERHEAD),
        ("mavlink_high_latency2", HL2_PAYLOAD, HL2_PAYLOAD + MAVLINK2_OVERHEAD + LORAWAN_OVERHEAD),
    ]
    rows, out = [], []
    for name, payload_bytes, frame_bytes in codecs:
        at = airtimes(frame_bytes)
        out.append({"name": name, "payload_bytes": payload_bytes, "frame_bytes": frame_bytes,
                    "airtime_ms": at})
        rows.append([name, payload_bytes, frame_bytes, *at.values()])

    gateway = gw.Gateway([gw.Device("uav1", 0x26011CA2, NWK, APP, CONFIG)])
    counter = iter(range(10**9))
    t0 = 1_763_700_000.0

    def encode_secure() -> bytes:
        fp, pl = tcodec.encode(sample(t0), CONFIG)
        return lw.build_data_frame(0x26011CA2, next(counter), pl, nwkskey=NWK, appskey=APP, fport=fp)

    frames = [encode_secure() for _ in range(args.iterations + 1)]
    it = iter(frames)

    def verify_decode() -> None:
        v = gateway.process(next(it), crc_ok=True, rx_time=t0 + 0.1)
        assert v.accepted, v

    enc_us = time_us(encode_secure, args.iterations)
    dec_us = time_us(verify_decode, args.iterations)
    out[0]["encode_secure_us"] = round(enc_us, 2)
    out[0]["verify_decode_us"] = round(dec_us, 2)

    print("Bytes and airtime per telemetry update (125 kHz, CR 4/5, preamble 8, CRC on)")
    print_table(["codec", "payload B", "frame B", *[f"SF{sf} ms" for sf in range(7, 13)]], rows)
    print(f"\nlora_telemetry: encode+secure {enc_us:.1f} us, verify+decode {dec_us:.1f} us "
          f"per update ({args.iterations} iterations)")
    path = write_result("codec", {"codecs": out, "iterations": args.iterations})
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
