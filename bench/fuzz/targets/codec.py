"""The 16-byte telemetry codec (core/codec.py): decode any payload, encode any sample.

Input layout: byte 0 picks the codec configuration (bits 0-2) and the direction (bit 3:
encode a sample built from the input, else decode the input as a payload); byte 1 picks the
receive/sample time from :data:`TIMES` (or, past its end, reads it as a float64); the rest is
the payload, or the sample's fields. Invariants: decode and encode raise only CodecError; a
decoded sample re-encodes to the same payload; an encoded payload decodes, and that sample
re-encodes to the same payload again.
"""

from __future__ import annotations

import math
import struct

from lora_telemetry.core import codec as tcodec

from bench.fuzz.base import Target, check

F = tcodec.VehicleFamily
CONFIGS = (
    tcodec.CodecConfig(0.0, 0.0, 0.0, F.ARDUCOPTER),
    tcodec.CodecConfig(40.4, -3.7, 640.0, F.PX4),
    tcodec.CodecConfig(78.2, 15.6, 0.0, F.ARDUPLANE, max_clock_lead_s=0.0),
    tcodec.CodecConfig(-35.36, 149.16, 584.0, F.ARDUROVER),
    tcodec.CodecConfig(0.0, 179.999, -50.0, F.ARDUSUB, max_clock_lead_s=40.9),
    tcodec.CodecConfig(79.9, -179.999, 8000.0, F.ARDUCOPTER),
    tcodec.CodecConfig(-79.9, 0.0, -400.0, F.PX4, max_clock_lead_s=10.0),
    tcodec.CodecConfig(51.5, 0.0, 1e6, F.ARDUPLANE),
)
#: Times near the limits of the codec (1e12 s), the window (40.96 s) and zero.
TIMES = (1_700_000_000.0, 0.0, -0.01, 40.96, 1e12 - 1.0, 1e12 - 0.01, 999_999_999_999.999,
         -1e12 + 1.0, -1e12 + 40.0, 1e12 - 41.0, 1e12, -1e12, 1e11 + 0.03, 123.456,
         2**31, 2**32 + 0.5, float("nan"), float("inf"), 1e12 - 0.5, 1e12 - 20.48)
_FLOAT_FIELDS = ("lat_deg", "lon_deg", "alt_amsl_m", "alt_rel_m", "heading_deg",
                 "ground_speed_mps", "climb_mps", "battery_pct", "voltage_v")
_INT_FIELDS = ("custom_mode", "system_status", "gps_fix_type", "satellites", "failure_flags")


def _time(data: bytes) -> tuple[float, bytes]:
    sel = data[1] if len(data) > 1 else 0
    if sel < len(TIMES):
        return TIMES[sel], data[2:]
    raw = data[2:10].ljust(8, b"\0")
    return struct.unpack("<d", raw)[0], data[10:]


def _sample(t: float, body: bytes) -> tcodec.TelemetrySample:
    body = body.ljust(8 * len(_FLOAT_FIELDS) + 2 * len(_INT_FIELDS) + 1, b"\0")
    floats = struct.unpack_from(f"<{len(_FLOAT_FIELDS)}d", body)
    ints = struct.unpack_from(f"<{len(_INT_FIELDS)}h", body, 8 * len(_FLOAT_FIELDS))
    values: dict = {n: (None if v == 0.0 else v) for n, v in zip(_FLOAT_FIELDS, floats)}
    values.update({n: (None if v == -1 else v) for n, v in zip(_INT_FIELDS, ints)})
    values["failure_flags"] = abs(values["failure_flags"] or 0)
    flags = body[-1]
    return tcodec.TelemetrySample(time_unix_s=t, armed=bool(flags & 1),
                                  mode_name="OTHER" if flags & 2 else None, **values)


class CodecTarget(Target):
    name = "codec"
    max_len = 128

    def seeds(self) -> list[bytes]:
        payload = tcodec.encode(tcodec.TelemetrySample(
            1_700_000_000.0, 40.41, -3.69, 700.0, 60.0, 90.0, 12.0, -1.0, 80.0, 15.9, 5,
            armed=True, system_status=4, gps_fix_type=3, satellites=14, failure_flags=9,
        ), CONFIGS[1])[1]
        out = []
        for cfg in range(len(CONFIGS)):
            for sel in (0, 4, 5, 6, 7, 9, 18):
                out.append(bytes((cfg, sel)) + payload)
                out.append(bytes((cfg, sel)) + b"\xff" * 16)
                out.append(bytes((cfg | 8, sel)) + struct.pack("<9d5h", 40.4, -3.7, 650.0, 10.0,
                                                               359.0, 3.0, 1.0, 50.0, 12.0,
                                                               4, 4, 3, 12, 1) + b"\x01")
        return out

    def run(self, data: bytes) -> str:
        cfg = CONFIGS[(data[0] if data else 0) % len(CONFIGS)]
        encode_first = bool(data and data[0] & 8)
        t, body = _time(data)
        if encode_first:
            try:
                _, payload = tcodec.encode(_sample(t, body), cfg)
            except tcodec.CodecError:
                return "encode:CodecError"
            try:
                sample = tcodec.decode(tcodec.FPORT_V1, payload, cfg, t)
            except tcodec.CodecError as exc:
                raise AssertionError(f"an encoded payload does not decode: {exc}") from exc
            self._re_encodes(sample, payload, cfg)
            return "encode:ok"
        try:
            sample = tcodec.decode(tcodec.FPORT_V1, body, cfg, t)
        except tcodec.CodecError:
            return "decode:CodecError"
        check(math.isfinite(sample.time_unix_s), "decoded time is not finite")
        check(t + cfg.max_clock_lead_s - tcodec.TIME_WINDOW_S - 0.02 <= sample.time_unix_s
              <= t + cfg.max_clock_lead_s + 1e-3, "decoded time outside the receive window")
        self._re_encodes(sample, body, cfg)
        return "decode:ok"

    @staticmethod
    def _re_encodes(sample: tcodec.TelemetrySample, payload: bytes,
                    cfg: tcodec.CodecConfig) -> None:
        try:
            again = tcodec.encode(sample, cfg)
        except tcodec.CodecError as exc:
            raise AssertionError(f"a decoded sample does not re-encode: {exc}") from exc
        check(again == (tcodec.FPORT_V1, bytes(payload)),
              f"re-encoding changed the payload: {bytes(payload).hex()} -> {again[1].hex()}")
