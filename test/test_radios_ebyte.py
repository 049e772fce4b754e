"""Tests for the EByte custom-firmware protocol, driver and emulator.

Sources:
* ``../shared/seeds/ebyte-custom-firmware-protocol.md`` ("the seed"): "General UART packet
  format" (40 53 | info | LE16 length | 0-258 bytes), "Command Packet" table (types 0x01-0x0B,
  0x80), SET_LORA_PARAMS tables (BW 0x00-0x09, SF 0x05-0x0C, CR 0x01-0x04), SET_LORA_MODES
  table (preamble 6-65535), AIR_PKT_CMD (data max 255 + RSSI + SNR), "Messaging example".
* ``../shared/testdata/seed_vectors.json`` key ``ebyte_custom_firmware_exchange``: the
  receiver and transmitter captures, hex for hex.
* SX1276 datasheet, thesis file line ~16435: "Band 2 (LF) 410-525 MHz" (the 433 MHz band).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios import registry
from lora_telemetry.radios.ebyte.timing import RX_LATENCY, TX_LATENCY
from lora_telemetry.radios.base import (
    ModuleReset,
    RadioDisconnected,
    RadioError,
    RadioTimeout,
)
from lora_telemetry.radios.ebyte.driver import EByteRadio
from lora_telemetry.radios.ebyte import protocol as ep
from lora_telemetry.radios.ebyte.protocol import (
    AirPacketFromHost,
    AirPacketFromModule,
    FrameParser,
    GetLoraCoreName,
    GetModuleName,
    GetRssi,
    LoraCoreName,
    ModuleName,
    ReqAirPkt,
    ReqLoraModes,
    ReqLoraParams,
    Sender,
    SetLoraModes,
    SetLoraParams,
    SetRssi,
)
from lora_telemetry.radios.serial_transport import SerialTransport
from lora_telemetry.core.emulation import ToHost, Transmit
from lora_telemetry.radios.ebyte.emulator import EByteModuleLogic
from lora_telemetry.sim.emulated_serial import EmulatedSerialModule
from lora_telemetry.sim.medium import RxEvent, TxDoneEvent
from lora_telemetry.sim.pty_port import PtyPort

REPO_ROOT = Path(__file__).resolve().parent.parent

# The capture's settings, from the vectors' "meaning" fields: "implicit header, length 48, DIO
# mapping 1, CRC on, IQ normal, preamble 8, sync word 0x55" and "434000000 Hz, BW 125 kHz
# (0x07), SF9, CR 4/8 (0x04)".
SEED_PHY = PhySettings(
    frequency_hz=434_000_000, sf=9, bandwidth_hz=125_000, coding_rate=8, preamble_symbols=8,
    explicit_header=False, crc_on=True, sync_word=0x55, iq_inverted=False,
)
SEED_IMPLICIT_LENGTH = 48
# The captured air packet's data: "00 01 .. 0F", sixteen 0x55, sixteen 0xAA (48 bytes).
SEED_DATA = bytes(range(16)) + b"\x55" * 16 + b"\xAA" * 16
FAST_PHY = PhySettings(433_175_000, sf=7, bandwidth_hz=250_000, coding_rate=5)

REQ_LORA_MODES_FRAME = bytes.fromhex("40530B0000")  # type 0x0B, "Not used (0 Bytes)"


@pytest.fixture(scope="module")
def ebyte_vectors(testdata_dir: Path) -> dict:
    vectors = json.loads((testdata_dir / "seed_vectors.json").read_text())
    return vectors["ebyte_custom_firmware_exchange"]


def _steps(vectors: dict, role: str) -> list[tuple[str, bytes]]:
    return [(s["dir"], bytes.fromhex(s["hex"].replace(" ", ""))) for s in vectors[role]]


def _sender(direction: str) -> Sender:
    return Sender.HOST if direction == "host->module" else Sender.MODULE


# --- protocol: the captured frames -----------------------------------------------------------


def test_captured_frames_decode_to_the_documented_values(ebyte_vectors: dict) -> None:
    rx = [ep.decode_frame(b, _sender(d)) for d, b in _steps(ebyte_vectors, "receiver")]
    tx = [ep.decode_frame(b, _sender(d)) for d, b in _steps(ebyte_vectors, "transmitter")]
    modes = SetLoraModes(explicit_header=False, packet_length=48, crc_on=True, iq_inverted=False,
                         preamble_symbols=8, sync_word=0x55, dio_mapping=1)
    params = SetLoraParams(434_000_000, 125_000, 9, 8)
    assert rx[:4] == [modes, ReqLoraParams(), params, ReqAirPkt()]
    assert tx[:4] == rx[:4]
    assert params.bw_code == 0x07 and params.cr_code == 0x04  # "BW 125 kHz (0x07)", "CR 4/8 (0x04)"
    # "AIR_PKT_CMD from module: 48 data bytes, RSSI -42 (int16 little endian), SNR 11 (int8)"
    assert rx[4] == AirPacketFromModule(SEED_DATA, rssi_dbm=-42, snr_db=11)
    # "AIR_PKT_CMD from host: 48 data bytes followed by 3 unused RSSI/SNR bytes (zero)"
    assert tx[4] == AirPacketFromHost(SEED_DATA)


@pytest.mark.parametrize("role", ["receiver", "transmitter"])
def test_captured_frames_reencode_byte_for_byte(ebyte_vectors: dict, role: str) -> None:
    for direction, frame in _steps(ebyte_vectors, role):
        assert ep.decode_frame(frame, _sender(direction)).encode() == frame


def test_seed_phy_maps_to_the_captured_configuration(ebyte_vectors: dict) -> None:
    steps = _steps(ebyte_vectors, "receiver")
    modes, params = ep.phy_to_messages(SEED_PHY, SEED_IMPLICIT_LENGTH)
    assert modes.encode() == steps[0][1]  # 40 53 0A 08 00 01 30 01 01 00 08 00 55
    assert params.encode() == steps[2][1]  # 40 53 01 07 00 80 50 DE 19 07 09 04
    assert ep.phy_from_messages(modes, params) == SEED_PHY


def test_code_tables_match_the_seed() -> None:
    # SET_LORA_PARAMS_CMD "Bandwidth (BW)": 0x00 7.8 kHz ... 0x09 500 kHz (31.2 = nominal 31.25).
    seed_khz = {0x00: 7.8, 0x01: 10.4, 0x02: 15.6, 0x03: 20.8, 0x04: 31.2, 0x05: 41.7,
                0x06: 62.5, 0x07: 125, 0x08: 250, 0x09: 500}
    assert sorted(ep.BW_CODES) == sorted(seed_khz)
    for code, khz in seed_khz.items():
        assert ep.BW_CODES[code] / 1000 == pytest.approx(khz, abs=0.06)  # 31.2 ~ 31.25
    assert ep.BW_CODES[0x07] == 125_000
    assert ep.SF_CODES == (5, 6, 7, 8, 9, 10, 11, 12)  # 0x05 SF5 .. 0x0C SF12
    assert ep.CR_CODES == {1: 5, 2: 6, 3: 7, 4: 8}  # 0x01 4/5 .. 0x04 4/8
    for code, hz in ep.BW_CODES.items():
        assert SetLoraParams(433_000_000, hz, 7, 5).encode()[9] == code
    # Frequency 0-3, BW 4, SF 5, CR 6 (7 bytes); frequency little endian.
    assert SetLoraParams(433_175_000, 62_500, 12, 6).payload() == (
        (433_175_000).to_bytes(4, "little") + bytes([0x06, 0x0C, 0x02]))


def test_modes_fields_and_explicit_mode() -> None:
    modes, _ = ep.phy_to_messages(dataclasses.replace(
        SEED_PHY, explicit_header=True, crc_on=False, iq_inverted=True, preamble_symbols=0x1234,
        sync_word=ep.SYNC_WORD_PUBLIC))
    payload = modes.payload()
    # Packet Format 0 = explicit, length byte (only used in implicit mode), DIO mapping 1,
    # CrcOnPayload 0, InvertIQ 1, PreambleLength LE16, SyncWord 0x34 (public).
    assert payload == bytes([0x00, ep.EXPLICIT_LENGTH_BYTE, 0x01, 0x00, 0x01, 0x34, 0x12, 0x34])


def test_other_messages_encode_as_the_command_table_says() -> None:
    assert GetRssi().encode() == bytes.fromhex("4053040000")
    assert GetModuleName().encode() == bytes.fromhex("4053060000")
    assert GetLoraCoreName().encode() == bytes.fromhex("4053080000")
    assert ReqLoraModes().encode() == REQ_LORA_MODES_FRAME
    assert SetRssi(-42).encode() == bytes.fromhex("40530502 00D6FF".replace(" ", ""))
    name = ModuleName("e32-433t30d-10010-v6.2")  # the seed's example name
    assert name.encode() == bytes.fromhex("40530716 00") + b"e32-433t30d-10010-v6.2"
    assert LoraCoreName("SX1278").encode() == bytes.fromhex("4053090600") + b"SX1278"
    assert ep.decode_frame(bytes.fromhex("4053090700") + b"SX1278\x00", Sender.MODULE) == (
        LoraCoreName("SX1278"))  # a C string's NUL is not part of the name
    assert ep.nominal_power_dbm("e32-433t30d-10010-v6.2") == 30.0
    assert ep.nominal_power_dbm("E32-433T20D-32100-V3.0") == 20.0


@pytest.mark.parametrize("frame, sender, error", [
    ("40530C0000", Sender.MODULE, ep.UnknownPacketType),  # 0x0C is not in the table
    ("4053810000", Sender.HOST, ep.UnknownPacketType),
    ("4053800301" + "00" * 259, Sender.MODULE, ep.BadLength),  # 259 > 258
    ("405301060080 50DE190709", Sender.HOST, ep.BadLength),  # SET_LORA_PARAMS is 7 bytes
    ("4053020100 00", Sender.MODULE, ep.BadLength),  # REQ_LORA_PARAMS carries nothing
    ("4053800300 000000", Sender.HOST, ep.BadLength),  # AIR_PKT with no data
    ("4053020000", Sender.HOST, ep.WrongDirection),  # the host never sends REQ_LORA_PARAMS
    ("4053060000", Sender.MODULE, ep.WrongDirection),
    ("40530107008050DE190A0904", Sender.HOST, ep.BadField),  # BW code 0x0A
    ("40530107008050DE19070405", Sender.HOST, ep.BadField),  # CR code 0x05
    ("40530107008050DE19070400", Sender.HOST, ep.BadField),  # CR code 0x00
    ("40530107008050DE19070404", Sender.HOST, ep.BadField),  # SF code 0x04
    ("40530A08000130010100050055", Sender.HOST, ep.BadField),  # preamble 5 < 6
    ("40530A08000230010100080055", Sender.HOST, ep.BadField),  # packet format 2
    ("40530A08000100010100080055", Sender.HOST, ep.BadField),  # implicit, length 0
    ("40530A08000130010200080055", Sender.HOST, ep.BadField),  # CrcOnPayload 2
    ("4154020000", Sender.MODULE, ep.EByteProtocolError),  # no start of frame
    ("405302000000", Sender.MODULE, ep.BadLength),  # trailing byte
])
def test_decode_frame_rejects_with_a_specific_error(
    frame: str, sender: Sender, error: type,
) -> None:
    with pytest.raises(error):
        ep.decode_frame(bytes.fromhex(frame.replace(" ", "")), sender)
    assert issubclass(error, LoraTelemetryError)


def test_encoding_rejects_what_the_protocol_cannot_carry() -> None:
    with pytest.raises(ConfigError, match="implicit_length"):
        ep.phy_to_messages(SEED_PHY)  # implicit header without the fixed length
    with pytest.raises(ConfigError, match="6..65535"):
        ep.phy_to_messages(dataclasses.replace(SEED_PHY, preamble_symbols=5), 48)
    for bad in (b"", bytes(256)):
        with pytest.raises(ConfigError):
            AirPacketFromHost(bad)
    with pytest.raises(ConfigError):
        SetRssi(40000)
    with pytest.raises(ConfigError):
        AirPacketFromModule(b"x", -42, 200)  # SNR is an int8


def test_frequency_band_of_433_mhz_modules() -> None:
    # SX1276 datasheet "Band 2 (LF) 410-525 MHz" (thesis ~16435); the capture's 434 MHz.
    for ok in (410_000_000, 433_175_000, 434_000_000, 525_000_000):
        assert ep.check_frequency(ok) == ok
    for bad in (409_999_999, 525_000_001, 868_100_000):
        with pytest.raises(ConfigError, match="410-525 MHz"):
            ep.check_frequency(bad)


# --- protocol: the stream parser -------------------------------------------------------------


def test_parser_recovers_the_capture_after_garbage(ebyte_vectors: dict) -> None:
    module_frames = [b for d, b in _steps(ebyte_vectors, "receiver") if d == "module->host"]
    garbage = b"\x13\x37\x40\x53\xEE\x01\x00\xFF\x40"  # a false start with unknown type 0xEE
    parser = FrameParser(Sender.MODULE)
    out = parser.feed(garbage + module_frames[0] + b"\x00\x00" + module_frames[1])
    out += parser.feed(module_frames[2])
    assert out == [ReqLoraParams(), ReqAirPkt(), AirPacketFromModule(SEED_DATA, -42, 11)]
    assert parser.counters.unknown_type == 1
    assert parser.counters.discarded_bytes == len(garbage) + 2
    assert not parser.pending


def test_parser_byte_by_byte(ebyte_vectors: dict) -> None:
    stream = b"".join(b for d, b in _steps(ebyte_vectors, "transmitter") if d == "host->module")
    parser = FrameParser(Sender.HOST)
    out = [m for i in range(len(stream)) for m in parser.feed(stream[i:i + 1])]
    assert [type(m) for m in out] == [SetLoraModes, SetLoraParams, AirPacketFromHost]
    assert parser.counters.frames == 3 and parser.counters.discarded_bytes == 0


def test_parser_rejects_impossible_lengths_and_resyncs() -> None:
    parser = FrameParser(Sender.MODULE)
    # 0x0103 = 259 > 258; then REQ_AIR_PKT claiming 5 bytes; then a real frame.
    stream = bytes.fromhex("4053800301") + bytes.fromhex("4053030500") + ReqAirPkt().encode()
    out = parser.feed(stream)
    assert out == [ReqAirPkt()]
    assert parser.counters.bad_length == 2
    assert isinstance(parser.last_error, ep.BadLength)


def test_parser_skips_frames_of_the_other_direction_whole() -> None:
    parser = FrameParser(Sender.MODULE)
    # An echo of the host's SET_LORA_PARAMS whose payload hides a start of frame.
    echo = SetLoraParams(0x53400000 | 0x0B, 125_000, 9, 8).encode()
    assert b"\x40\x53" in echo[5:]
    out = parser.feed(echo + ReqLoraParams().encode())
    assert out == [ReqLoraParams()]
    assert parser.counters.wrong_direction == 1 and parser.counters.frames == 1


def test_parser_gives_up_a_stalled_false_header() -> None:
    parser = FrameParser(Sender.MODULE)
    # Garbage that looks like an AIR_PKT header announcing 16 bytes swallows the next frame...
    assert parser.feed(bytes.fromhex("4053801000") + SetRssi(-90).encode()) == []
    assert parser.pending
    # ... until the bytes stop coming (the I/O side's inter-byte timeout) and it resyncs.
    assert parser.resync() == [SetRssi(-90)]
    assert parser.counters.stalled == 1 and not parser.pending


_MODULE_MESSAGES = st.one_of(
    st.builds(AirPacketFromModule, st.binary(min_size=1, max_size=255),
              st.integers(-32768, 32767), st.integers(-128, 127)),
    st.just(ReqAirPkt()), st.just(ReqLoraParams()), st.just(ReqLoraModes()),
    st.builds(SetRssi, st.integers(-32768, 32767)),
    st.builds(ModuleName, st.text("abcdefghijklmnopqrstuvwxyz0123456789-.", max_size=40)),
)
_HOST_MESSAGES = st.one_of(
    st.builds(AirPacketFromHost, st.binary(min_size=1, max_size=255)),
    st.builds(SetLoraParams, st.integers(0, 2**32 - 1),
              st.sampled_from(sorted(ep.BW_CODES.values())), st.sampled_from(ep.SF_CODES),
              st.sampled_from([5, 6, 7, 8])),
    st.builds(SetLoraModes, st.booleans(), st.integers(1, 255), st.booleans(), st.booleans(),
              st.integers(6, 65535), st.integers(0, 255)),
    st.just(GetRssi()), st.just(GetModuleName()), st.builds(SetRssi, st.integers(-32768, 32767)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=8),
       sender=st.sampled_from(Sender))
def test_parser_never_raises_on_arbitrary_bytes(
    stream: bytes, cuts: list[int], sender: Sender,
) -> None:
    parser = FrameParser(sender)
    points = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    out = []
    for a, b in zip(points, points[1:]):
        out += parser.feed(stream[a:b])
        assert parser.buffered <= ep.HEADER_LEN + ep.MAX_PAYLOAD_LEN  # bounded memory
    while parser.pending:
        out += parser.resync()
    assert all(isinstance(m, tuple(_cls for _cls in (
        AirPacketFromHost, AirPacketFromModule, SetLoraParams, SetLoraModes, ReqAirPkt,
        ReqLoraParams, ReqLoraModes, GetRssi, SetRssi, GetModuleName, GetLoraCoreName,
        ModuleName, LoraCoreName))) for m in out)
    assert parser.counters.frames == len(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sender=st.sampled_from(Sender))
def test_parser_recovers_every_frame_between_garbage(data: st.DataObject, sender: Sender) -> None:
    messages = data.draw(st.lists(_MODULE_MESSAGES if sender is Sender.MODULE else _HOST_MESSAGES,
                                  min_size=1, max_size=6))
    # Without a checksum a parser can only be sure of garbage holding no start of frame.
    garbage = st.binary(max_size=40).filter(lambda g: ep.SOF not in g)
    stream = b""
    for msg in messages:
        stream += data.draw(garbage) + msg.encode()
    stream += data.draw(garbage)
    chunk = data.draw(st.integers(1, 64))
    parser = FrameParser(sender)
    out = [m for i in range(0, len(stream), chunk) for m in parser.feed(stream[i:i + chunk])]
    assert out == messages


# --- the module's behaviour as a state machine ------------------------------------------------


def _to_host(actions: list) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, ToHost)]


def _configured_logic() -> EByteModuleLogic:
    logic = EByteModuleLogic()
    assert _to_host(logic.boot(0.0)) == [REQ_LORA_MODES_FRAME]  # "before any radio operation"
    modes, params = ep.phy_to_messages(SEED_PHY, 48)
    logic.feed(modes.encode() + params.encode(), 0.0)
    assert logic.state == "rx" and logic.phy == SEED_PHY
    return logic


def test_module_logic_assumptions_where_the_seed_is_silent() -> None:
    logic = EByteModuleLogic()
    logic.boot(0.0)
    # GET_RSSI is "Valid only when the radio is initialized": no answer before.
    assert logic.feed(GetRssi().encode(), 0.0) == [] and logic.counters["rssi_before_init"] == 1
    # Names need no radio.
    assert _to_host(logic.feed(GetModuleName().encode(), 0.0)) == [
        ModuleName("e32-433t30d-10010-v6.2").encode()]
    # An air packet before configuration: dropped, configuration requested again.
    assert _to_host(logic.feed(AirPacketFromHost(b"x").encode(), 0.0)) == [REQ_LORA_MODES_FRAME]
    # SET_LORA_PARAMS outside the 410-525 MHz band: ignored, so no "radio ready".
    modes, _ = ep.phy_to_messages(SEED_PHY, 48)
    logic.feed(modes.encode(), 0.0)
    assert logic.feed(SetLoraParams(868_100_000, 125_000, 9, 8).encode(), 0.0) == []
    assert logic.counters["rejected_params"] == 1 and logic.state == "wait_params"


def test_module_logic_reception_filters() -> None:
    logic = _configured_logic()
    # The AIR_PKT leaves RX_LATENCY after the frame's end (ebyte/timing.py), not at once.
    assert logic.on_rx(SEED_DATA, SEED_PHY, -41.6, 10.7, True, 1.0, t_end=1.0) == []
    due = logic.next_deadline(1.0)
    assert due is not None and 1.0 + RX_LATENCY.low_s <= due <= 1.0 + RX_LATENCY.high_s
    assert logic.poll(due - 1e-6) == []
    ok = logic.poll(due)
    assert _to_host(ok) == [AirPacketFromModule(SEED_DATA, -42, 11).encode()]
    assert logic.on_rx(SEED_DATA, SEED_PHY, -40, 10, False, 1.0) == []  # CRC error
    assert logic.on_rx(SEED_DATA[:47], SEED_PHY, -40, 10, True, 1.0) == []  # implicit length
    explicit = dataclasses.replace(SEED_PHY, explicit_header=True)
    assert logic.on_rx(SEED_DATA, explicit, -40, 10, True, 1.0) == []  # other header mode
    assert logic.counters["rx_crc_error"] == 1
    assert logic.counters["rx_implicit_mismatch"] == 1
    assert logic.counters["rx_header_mode_mismatch"] == 1


def _key_on(logic: EByteModuleLogic, now: float) -> float:
    """The frame of an AIR_PKT fed at ``now`` goes on the air TX_LATENCY later (timing.py):
    nothing before, the Transmit then; returns that moment."""
    due = logic.next_deadline(now)
    assert due is not None and now + TX_LATENCY.low_s <= due <= now + TX_LATENCY.high_s
    assert logic.poll(due - 1e-6) == []
    assert logic.poll(due) == [Transmit(SEED_DATA, SEED_PHY, 30.0)]  # T30D
    return due


def test_module_logic_transmission_timing_and_listen_before_talk() -> None:
    logic = _configured_logic()
    actions = logic.feed(AirPacketFromHost(SEED_DATA).encode(), 10.0)
    assert actions == [] and logic.state == "tx"  # busy at once, on the air after TX_LATENCY
    assert logic.feed(AirPacketFromHost(b"y" * 48).encode(), 10.0) == []  # busy: dropped
    t_on = _key_on(logic, 10.0)
    airtime = SEED_PHY.time_on_air(48)
    assert logic.poll(t_on + airtime * 0.99) == []  # still on the air
    assert logic.feed(AirPacketFromHost(b"y" * 48).encode(), 10.1) == []  # busy: dropped
    # The air's TxDoneEvent (at the end of the time on air) makes it ready again.
    done = logic.handle(TxDoneEvent(airtime, t_on, t_on + airtime), t_on + airtime)
    assert _to_host(done) == [ReqAirPkt().encode()]
    # Without one, a guard ends the transmission 1 s after its time on air, counted.
    logic.feed(AirPacketFromHost(SEED_DATA).encode(), 10.5)
    t_on = _key_on(logic, 10.5)
    assert logic.poll(t_on + airtime + 0.99) == []
    assert _to_host(logic.poll(t_on + airtime + 1.0)) == [ReqAirPkt().encode()]
    assert logic.counters["tx_done_missing"] == 1
    # SET_RSSI threshold: no transmission while the channel is louder.
    logic.feed(SetRssi(-100).encode(), 11.0)
    logic.channel_rssi_dbm = -80.0
    assert logic.feed(AirPacketFromHost(SEED_DATA).encode(), 11.0) == []
    assert logic.state == "lbt"
    logic.channel_rssi_dbm = None  # back to the noise floor (about -116 dBm at 125 kHz)
    assert logic.poll(11.1) == []  # clear: the frame is on its way to the air
    _key_on(logic, 11.1)


# --- driver against a scripted module (the capture, byte for byte) ---------------------------


class ScriptedModule(threading.Thread):
    """The module end of a pty replaying a capture: asserts each host frame, writes replies."""

    def __init__(self, port: PtyPort, steps: list[tuple[str, bytes]]) -> None:
        super().__init__(daemon=True)
        self.port, self.steps = port, steps
        self.errors: list[str] = []
        self.extra = b""
        self.done = threading.Event()

    def _read_exact(self, n: int, timeout: float) -> bytes:
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            got += self.port.read(0.05)
        return got

    def run(self) -> None:
        for i, (direction, frame) in enumerate(self.steps):
            if direction == "host->module":
                got = self._read_exact(len(frame), 3.0)
                if got != frame:
                    self.errors.append(
                        f"step {i}: host sent {got.hex(' ')}, capture {frame.hex(' ')}")
                    break
            else:
                self.port.write(frame)
        self.done.set()
        self.extra = self._read_exact(1, 0.3)  # the host must not send anything more


@contextlib.contextmanager
def scripted(
    tmp_path: Path, steps: list[tuple[str, bytes]],
) -> Iterator[tuple[PtyPort, ScriptedModule]]:
    port = PtyPort(tmp_path / "scripted.tty")
    peer = ScriptedModule(port, steps)
    try:
        yield port, peer
    finally:
        peer.join(5)
        port.close()


def test_driver_receiver_role_matches_the_capture(tmp_path: Path, ebyte_vectors: dict) -> None:
    steps = _steps(ebyte_vectors, "receiver")
    with scripted(tmp_path, steps) as (port, peer):
        with EByteRadio(port.path, implicit_length=48) as radio:
            peer.start()
            radio.configure(SEED_PHY)
            frame = radio.receive(timeout=3.0)
            peer.join(5)
    assert peer.errors == [] and peer.done.is_set() and peer.extra == b""
    assert frame is not None
    assert frame.data == SEED_DATA and frame.rssi_dbm == -42 and frame.snr_db == 11
    assert frame.phy == SEED_PHY and frame.crc_ok


def test_driver_transmitter_role_matches_the_capture(tmp_path: Path, ebyte_vectors: dict) -> None:
    steps = _steps(ebyte_vectors, "transmitter")
    with scripted(tmp_path, steps) as (port, peer):
        # The capture ends with the host's AIR_PKT, so this firmware is taken at its word:
        # the send is done after the computed time on air.
        with EByteRadio(port.path, implicit_length=48, tx_done="airtime") as radio:
            peer.start()
            radio.configure(SEED_PHY)
            result = radio.send(SEED_DATA)
            peer.join(5)
    assert peer.errors == [] and peer.done.is_set() and peer.extra == b""
    assert result.airtime_s == pytest.approx(SEED_PHY.time_on_air(48))
    assert result.finished - result.started >= result.airtime_s * 0.9


def test_driver_send_waits_for_ready_and_answers_module_requests(
    tmp_path: Path, ebyte_vectors: dict,
) -> None:
    tx = _steps(ebyte_vectors, "transmitter")
    steps = tx + [
        ("module->host", ReqAirPkt().encode()),  # beyond the capture: radio ready again
        # A module restart: it asks again, the driver answers with the capture's frames.
        ("module->host", REQ_LORA_MODES_FRAME),
        tx[0], tx[1], tx[2], tx[3],
    ]
    with scripted(tmp_path, steps) as (port, peer):
        with EByteRadio(port.path, implicit_length=48) as radio:
            peer.start()
            radio.configure(SEED_PHY)
            result = radio.send(SEED_DATA)
            assert result.finished >= result.started
            assert radio.receive(timeout=1.0) is None  # meanwhile the restart was answered
            peer.join(5)
            assert radio.stats()["resets"] == 1
    assert peer.errors == [] and peer.done.is_set() and peer.extra == b""


def test_driver_rejects_what_the_module_cannot_do(tmp_path: Path) -> None:
    port = PtyPort(tmp_path / "silent.tty")
    try:
        with EByteRadio(port.path, implicit_length=48, answer_timeout=0.2, retries=1) as radio:
            with pytest.raises(RadioError, match="not configured"):
                radio.send(b"x")
            with pytest.raises(RadioError, match="not configured"):
                radio.receive(0.1)
            with pytest.raises(RadioError, match="410-525 MHz"):
                radio.configure(dataclasses.replace(SEED_PHY, frequency_hz=868_100_000))
            with pytest.raises(RadioError, match="6..65535"):
                radio.configure(dataclasses.replace(SEED_PHY, preamble_symbols=4))
            # A module that never answers: a bounded RadioTimeout, not a hang.
            with pytest.raises(RadioTimeout, match="2 attempts"):
                radio.configure(SEED_PHY)
            with pytest.raises(RadioTimeout):
                radio.module_name()
        with EByteRadio(port.path) as radio:
            with pytest.raises(RadioError, match="implicit_length"):
                radio.configure(SEED_PHY)  # implicit header without the driver option
        with pytest.raises(ConfigError):
            EByteRadio(port.path, implicit_length=0)
    finally:
        port.close()
    with pytest.raises(RadioDisconnected):
        EByteRadio(str(tmp_path / "no-such-port"))


# --- the emulator reproduces the module side of the capture ----------------------------------


class StubAir:
    """An in-process air honouring `sim.medium.MediumClient`'s contract, with fixed RSSI/SNR
    (deterministic, no hub process): a frame reaches clients listening with the same
    frequency, SF, bandwidth, sync word and IQ since before it started, after its airtime."""

    def __init__(self, rssi_dbm: float = -60.0, snr_db: float = 9.0) -> None:
        self.rssi_dbm, self.snr_db = rssi_dbm, snr_db
        self.clients: dict[str, StubClient] = {}
        self.transmissions: list[tuple[str, bytes, PhySettings, float | None]] = []
        self.lock = threading.Lock()
        self.timers: list[threading.Timer] = []

    def client(self, node_id: str) -> "StubClient":
        self.clients[node_id] = StubClient(self, node_id)
        return self.clients[node_id]

    def transmit(
        self, sender: "StubClient", data: bytes, phy: PhySettings, power: float | None,
    ) -> float:
        airtime = phy.time_on_air(len(data))
        t_start = time.time()
        with self.lock:
            self.transmissions.append((sender.node_id, bytes(data), phy, power))
        timer = threading.Timer(airtime, self._finish, (sender, bytes(data), phy, t_start, airtime))
        timer.daemon = True
        self.timers.append(timer)
        timer.start()
        return airtime

    def _finish(self, sender: "StubClient", data: bytes, phy: PhySettings, t_start: float,
                airtime: float) -> None:
        t_end = t_start + airtime
        for client in list(self.clients.values()):
            rx = client.rx_phy
            if client is sender or rx is None or client.listen_since > t_start:
                continue
            if (rx.frequency_hz, rx.sf, rx.bandwidth_hz, rx.sync_word, rx.iq_inverted) == (
                    phy.frequency_hz, phy.sf, phy.bandwidth_hz, phy.sync_word, phy.iq_inverted):
                client.push(RxEvent(data, phy, self.rssi_dbm, self.snr_db, True,
                                    sender.node_id, t_start, t_end))
        sender.push(TxDoneEvent(airtime, t_start, t_end))

    def close(self) -> None:
        for timer in self.timers:
            timer.cancel()
        for client in self.clients.values():
            client.close()


class StubClient:
    def __init__(self, air: StubAir, node_id: str) -> None:
        self.air, self.node_id = air, node_id
        self.rx_phy: PhySettings | None = None
        self.listen_since = 0.0
        self.events: queue.Queue = queue.Queue()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)

    def set_position(self, x_m: float, y_m: float, z_m: float) -> None:
        pass

    def listen(self, phy: PhySettings) -> None:
        self.rx_phy, self.listen_since = phy, time.time()

    def standby(self) -> None:
        self.rx_phy = None

    def transmit(self, data: bytes, phy: PhySettings, power_dbm: float | None = None) -> float:
        self.rx_phy = None  # half duplex: standby after the transmission
        return self.air.transmit(self, data, phy, power_dbm)

    def push(self, event: object) -> None:
        self.events.put(event)
        with contextlib.suppress(OSError):
            os.write(self._w, b"e")

    def next_event(self, timeout: float | None = 0.5) -> object | None:
        try:
            event = self.events.get(timeout=timeout) if timeout else self.events.get_nowait()
        except queue.Empty:
            return None
        with contextlib.suppress(OSError):
            os.read(self._r, 1)
        return event

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


def EByteEmulator(name: str, link: Path, client: object | None,
                  **options: object) -> EmulatedSerialModule:
    """The EByte firmware logic on a pty, run by the device loop (what `sim module` builds)."""
    return EmulatedSerialModule(EByteModuleLogic(name=name, **options), name, link, client,
                                baud=registry.family("ebyte").default_baud)


@contextlib.contextmanager
def running(emu: EmulatedSerialModule) -> Iterator[EmulatedSerialModule]:
    """Serve in a thread; returns once the module has powered on (so a driver opened next
    starts from a booted module, as with real hardware powered before the host connects)."""
    thread = threading.Thread(target=emu.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 3
    while emu.counters.get("boots", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    # and its boot request has crossed the UART (a real module powered long before)
    assert emu.wait_line_idle()
    try:
        yield emu
    finally:
        emu.stop()
        thread.join(3)
        emu.close()
    assert not thread.is_alive()


@pytest.fixture
def air() -> Iterator[StubAir]:
    stub = StubAir()
    yield stub
    stub.close()


def _read_exact(transport: SerialTransport, n: int, timeout: float = 3.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += transport.read(min(0.05, n))
    return got


@pytest.mark.parametrize("role", ["receiver", "transmitter"])
def test_emulator_reproduces_the_capture(tmp_path: Path, ebyte_vectors: dict, air: StubAir,
                                         role: str) -> None:
    client = air.client("emu")
    emu = EByteEmulator("emu", tmp_path / "emu.tty", client)
    # The host's port is open before the module powers on (pyserial flushes input on open).
    with SerialTransport(emu.path, 115200) as host, running(emu):
        # Power-on: REQ_LORA_MODES. The capture's host opened its port later and never saw it.
        assert _read_exact(host, 5) == REQ_LORA_MODES_FRAME
        for direction, frame in _steps(ebyte_vectors, role):
            if direction == "host->module":
                host.write(frame)
            elif frame.startswith(b"\x40\x53\x80"):  # the air packet the module heard
                client.push(RxEvent(SEED_DATA, SEED_PHY, -42.0, 11.0, True, "peer", 0.0, 0.4))
                assert _read_exact(host, len(frame)) == frame
            else:
                assert _read_exact(host, len(frame)) == frame
        if role == "transmitter":
            # The host's AIR_PKT went on the air with the bytes and settings it configured...
            deadline = time.monotonic() + 2
            while not air.transmissions and time.monotonic() < deadline:
                time.sleep(0.01)
            assert air.transmissions == [("emu", SEED_DATA, SEED_PHY, 30.0)]  # T30D: 30 dBm
            # ... and after its time on air (0.44 s) the module is ready again.
            assert _read_exact(host, 5) == ReqAirPkt().encode()
            assert client.rx_phy == SEED_PHY  # back in RX
        assert host.read(0.2) == b""  # nothing else
        assert emu.logic.state == "rx" and emu.logic.phy == SEED_PHY


# --- driver + emulator -----------------------------------------------------------------------


@contextlib.contextmanager
def node(tmp_path: Path, name: str, air: StubAir | None, **driver_kw: object) -> Iterator[
        tuple[EmulatedSerialModule, EByteRadio]]:
    emu = EByteEmulator(name, tmp_path / f"{name}.tty", air.client(name) if air else None)
    kw = {"implicit_length": 48, "answer_timeout": 0.5, **driver_kw}
    with running(emu), EByteRadio(emu.path, **kw) as radio:  # type: ignore[arg-type]
        yield emu, radio


def test_two_ebyte_nodes_over_the_air(tmp_path: Path, air: StubAir) -> None:
    with node(tmp_path, "uav", air) as (_, tx), node(tmp_path, "gnd", air) as (_, rx):
        tx.configure(SEED_PHY)
        rx.configure(SEED_PHY)
        result = tx.send(SEED_DATA)
        assert result.airtime_s == pytest.approx(SEED_PHY.time_on_air(48))
        assert result.finished - result.started >= result.airtime_s * 0.9
        frame = rx.receive(timeout=2.0)
        assert frame is not None and frame.data == SEED_DATA
        assert (frame.rssi_dbm, frame.snr_db) == (-60.0, 9.0)  # StubAir's figures, rounded
        assert air.transmissions[0][1:3] == (SEED_DATA, SEED_PHY)
        # Explicit header, another setting: still talking, and the IQ-inverted receiver
        # does not hear normal-IQ frames.
        rx.configure(FAST_PHY)
        tx.configure(FAST_PHY)
        tx.send(b"hello")
        assert rx.receive(timeout=1.0).data == b"hello"  # type: ignore[union-attr]
        rx.configure(dataclasses.replace(FAST_PHY, iq_inverted=True))
        tx.send(b"unheard")
        assert rx.receive(timeout=0.3) is None


def test_boot_request_crossing_the_configuration(tmp_path: Path, air: StubAir) -> None:
    # The driver's port is open before the module powers on: its boot REQ_LORA_MODES crosses
    # our SET_LORA_MODES, both get answered, and the second handshake's REQ_AIR_PKT must not
    # be taken for the end of the next transmission.
    emu = EByteEmulator("boot", tmp_path / "boot.tty", air.client("boot"))
    with EByteRadio(emu.path, implicit_length=48, answer_timeout=0.5) as radio, running(emu):
        time.sleep(0.1)  # the boot request is waiting in the driver's input
        radio.configure(SEED_PHY)
        result = radio.send(SEED_DATA)
        assert result.finished - result.started >= SEED_PHY.time_on_air(48) * 0.9
        assert len(air.transmissions) == 1 and radio.stats()["resets"] == 0
        assert radio.send(SEED_DATA).finished > result.finished


def test_info_reports_what_the_protocol_knows(tmp_path: Path) -> None:
    with node(tmp_path, "info", None) as (emu, radio):
        before = radio.info()
        assert before["module_name"] == "e32-433t30d-10010-v6.2"  # the seed's examples
        assert before["loracore_name"] == "SX1278"
        assert before["rssi_dbm"] is None  # GET_RSSI is valid only once the radio is on
        radio.configure(SEED_PHY)
        radio.set_rssi_threshold(-90)
        emu.set_channel_rssi(-97.4)
        info = radio.info()
        assert info["rssi_dbm"] == -97 and info["rssi_threshold_dbm"] == -90
        assert info["nominal_tx_power_dbm"] == 30.0 and info["phy"] == SEED_PHY
        assert emu.logic.rssi_threshold == -90
        assert "e32-433t30d" in radio.name


# --- faults ----------------------------------------------------------------------------------


def test_fault_garbage_is_skipped_and_counted(tmp_path: Path) -> None:
    with node(tmp_path, "garbage", None) as (emu, radio):
        radio.configure(SEED_PHY)
        emu.inject_garbage()  # 13 37 40 53 EE 01 00 FF 40: a false header, type 0xEE
        assert radio.read_rssi() < -100
        assert radio.stats()["parser.unknown_type"] == 1
        assert radio.stats()["parser.discarded_bytes"] == 9
        # A false header announcing 16 bytes swallows the answer until the bytes stop coming.
        emu.inject_garbage(bytes.fromhex("4053801000"))
        assert radio.read_rssi() < -100
        assert radio.stats()["parser.stalled"] == 1


def test_fault_spontaneous_reset_is_answered(tmp_path: Path, air: StubAir) -> None:
    with node(tmp_path, "reset", air) as (emu, radio):
        radio.configure(SEED_PHY)
        radio.set_rssi_threshold(-80)
        emu.reset()
        assert radio.receive(timeout=0.5) is None
        assert radio.stats()["resets"] == 1
        assert emu.logic.state == "rx" and emu.logic.phy == SEED_PHY  # configuration restored
        assert emu.logic.rssi_threshold == -80  # and the forgotten threshold re-sent
        assert emu.counters["boots"] == 2
        radio.send(SEED_DATA)  # works again


def test_fault_reset_while_transmitting_raises_module_reset(tmp_path: Path, air: StubAir) -> None:
    with node(tmp_path, "resettx", air) as (emu, radio):
        radio.configure(SEED_PHY)
        emu.reset(during_next_tx=True)
        with pytest.raises(ModuleReset, match="restored"):
            radio.send(SEED_DATA)
        assert emu.logic.state == "rx" and emu.logic.phy == SEED_PHY
        assert radio.send(SEED_DATA).airtime_s > 0


def test_fault_dropped_answers(tmp_path: Path) -> None:
    with node(tmp_path, "drop", None, answer_timeout=0.2, retries=2) as (emu, radio):
        emu.drop_answers(1)  # REQ_LORA_PARAMS lost: SET_LORA_MODES is sent again
        radio.configure(SEED_PHY)
        assert radio.stats()["retries"] == 1 and emu.counters["dropped_answers"] == 1
        emu.drop_answers(1)  # the REQ_AIR_PKT after the transmission is lost
        with pytest.raises(RadioTimeout, match="REQ_AIR_PKT"):
            radio.send(SEED_DATA, timeout=1.0)
        emu.drop_answers(100)
        with pytest.raises(RadioTimeout, match="3 attempts"):
            radio.configure(SEED_PHY)
        assert radio.phy is None  # the module's state is unknown
        emu.drop_answers(0)
        radio.configure(SEED_PHY)
        radio.send(SEED_DATA)


def test_fault_unplugged_port(tmp_path: Path, air: StubAir) -> None:
    with node(tmp_path, "unplug", air) as (emu, radio):
        radio.configure(SEED_PHY)
        emu.unplug()
        with pytest.raises(RadioDisconnected):
            radio.receive(timeout=1.0)
        with pytest.raises(RadioDisconnected):
            radio.send(SEED_DATA)
        emu.replug()  # power-on: the module forgot everything
        radio.reconnect(timeout=2.0)
        assert emu.logic.state == "rx" and emu.logic.phy == SEED_PHY
        radio.send(SEED_DATA)
        assert radio.stats()["reconnects"] == 1


def test_fault_busy_channel_blocks_transmission(tmp_path: Path, air: StubAir) -> None:
    emu = EByteEmulator("lbt", tmp_path / "lbt.tty", air.client("lbt"), lbt_timeout_s=0.3)
    with running(emu), EByteRadio(emu.path, implicit_length=48, answer_timeout=0.5) as radio:
        radio.configure(SEED_PHY)
        radio.set_rssi_threshold(-90)
        emu.set_channel_rssi(-70.0)  # louder than the threshold: the module will not transmit
        radio.send(SEED_DATA)  # the firmware reports ready again after giving up
        assert air.transmissions == [] and emu.counters.get("lbt_dropped") == 1, emu.counters
        emu.set_channel_rssi(None)
        radio.send(SEED_DATA)
        assert len(air.transmissions) == 1


# --- with the real radio medium (hub process) -------------------------------------------------


@pytest.fixture
def medium_hub() -> Iterator[tuple[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lora_telemetry.cli.sim_medium", "--port", "0", "--json",
         "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = queue.Queue()
        threading.Thread(target=lambda: line.put(proc.stdout.readline()), daemon=True).start()
        try:
            first = line.get(timeout=10)
        except queue.Empty:
            pytest.fail("medium hub did not start")
        ready = json.loads(first)
        yield ready["host"], ready["port"]
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_air_packet_reaches_the_real_medium(tmp_path: Path, medium_hub: tuple[str, int]) -> None:
    from lora_telemetry.sim.medium import MediumClient, MediumControl

    with contextlib.ExitStack() as stack:
        sniffer = stack.enter_context(MediumClient("sniffer", medium_hub, (100.0, 0.0, 0.0)))
        client = stack.enter_context(MediumClient("ebyte", medium_hub, (0.0, 0.0, 0.0)))
        control = stack.enter_context(MediumControl(medium_hub))
        emu = stack.enter_context(running(EByteEmulator("ebyte", tmp_path / "m.tty", client)))
        radio = stack.enter_context(EByteRadio(emu.path, implicit_length=48))
        radio.configure(SEED_PHY)
        sniffer.listen(SEED_PHY)
        assert control.ping()
        result = radio.send(SEED_DATA)
        event = sniffer.next_event(timeout=2.0)
        assert isinstance(event, RxEvent)
        assert event.data == SEED_DATA and event.tx_node == "ebyte"
        assert event.phy == SEED_PHY  # SET_LORA_MODES/SET_LORA_PARAMS settings on the air
        assert event.t_end - event.t_start == pytest.approx(result.airtime_s, abs=1e-6)
        # A frame from elsewhere on the air reaches the host as AIR_PKT with the medium's
        # RSSI/SNR, rounded to the protocol's integers.
        control.inject(bytes(range(48)), SEED_PHY, position_m=(50.0, 0.0, 0.0))
        frame = radio.receive(timeout=2.0)
        assert frame is not None and frame.data == bytes(range(48))
        assert frame.rssi_dbm == float(round(frame.rssi_dbm)) and -120 < frame.rssi_dbm < 0
        assert frame.snr_db == float(round(frame.snr_db))
