"""MAVLink input: mutated windows of the real flight logs (test data tlogs/*.tlog).

Each input is written as a .tlog and replayed through :class:`MavlinkLink` (its TlogReader,
message handling, stream requester and :class:`VehicleState`), then the same bytes, read as a
bare MAVLink stream by pymavlink, are fed to a fresh :class:`VehicleState`. Invariants: the
link and the aggregator never raise (pymavlink's own MAVError while parsing a bare stream ends
that part of the input); a sample, when there is one, encodes or raises only CodecError.
"""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core import codec as tcodec
from lora_telemetry.mavlink.link import MavlinkLink
from lora_telemetry.mavlink.state import VehicleState

from bench.fuzz.base import Target, check, testdata_dir
from bench.fuzz.targets.config_files import _TempDir, _write_private

WINDOW = 3072
CONFIG = tcodec.CodecConfig(-35.36, 149.16, 584.0, tcodec.VehicleFamily.ARDUCOPTER)
MAX_POLLS = 200


def _encode(sample: tcodec.TelemetrySample | None, family: tcodec.VehicleFamily | None) -> str:
    if sample is None:
        return "none"
    cfg = CONFIG if family is None else tcodec.CodecConfig(
        CONFIG.origin_lat_deg, CONFIG.origin_lon_deg, CONFIG.origin_alt_m, family)
    try:
        tcodec.encode(sample, cfg)
    except tcodec.CodecError:
        return "CodecError"
    return "sample"


class MavlinkTarget(Target):
    name = "mavlink"
    max_len = 4096
    timeout_s = 5.0
    tokens = (b"\xfe", b"\xfd", b"\x00\x00\x00\x00\x00\x00\x00\x00", b"\x01\x01", b"\xff\xbe")

    def __init__(self) -> None:
        self.tmp = _TempDir()
        self.path = self.tmp.path / "input.tlog"

    def seeds(self) -> list[bytes]:
        out = []
        for log in sorted((testdata_dir() / "tlogs").glob("*.tlog")):
            raw = log.read_bytes()
            for k in range(6):
                start = (len(raw) - WINDOW) * k // 6
                out.append(raw[start:start + WINDOW])
        return out

    def run(self, data: bytes) -> str:
        _write_private(self.path, data)
        link = MavlinkLink(f"tlog:{self.path}")
        try:
            for _ in range(MAX_POLLS):
                link.poll(timeout=0.0)
                if link.eof:
                    break
            check(link.eof, f"replay of {len(data)} bytes not finished after {MAX_POLLS} polls")
            link.stats()
            link.is_stale()
            replayed = _encode(link.sample(), link.state.family)
        finally:
            link.close()
        state = VehicleState(time_source="receive")
        parser = mavlink2.MAVLink(None)
        parser.robust_parsing = True
        try:
            messages = parser.parse_buffer(data) or []
        except mavlink2.MAVError:
            messages = []
        for i, msg in enumerate(messages):
            state.update(msg, 100.0 + i * 0.01)
        state.is_stale(200.0)
        state.stats()
        return f"{replayed}/{_encode(state.sample(100.0 + len(messages) * 0.01), state.family)}"

    def close(self) -> None:
        self.tmp.close()
