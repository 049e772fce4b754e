"""RN2483 driver, its sans-I/O protocol and the RN2483 emulator.

Figures come from the RN2483 Command Reference User's Guide (DS40001784F) in the thesis file
(``../shared/seeds/uav-swarm-lora-thesis-with-datasheets.txt``, lines ~19150-21694; section
numbers below are the guide's), the RN2483 datasheet Table 2-5 (thesis ~10567) and the
seed vectors (``rn2483_abp_setup_thesis``, ``lorawan_uplink_thesis_annex_iii``).

The end-to-end tests run the real medium hub (:class:`MediumHub` in a thread) and real
pseudo-terminals; a "sniffer" MediumClient listens to what the emulator puts on the air.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from lora_telemetry.core.lorawan import build_data_frame, decode_data_frame, parse_data_frame
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.regions import EU433, EU868
from lora_telemetry.radios.rn2483 import protocol as P
from lora_telemetry.radios.base import (
    ModuleReset,
    NoSuchDevice,
    RadioBusy,
    RadioDisconnected,
    RadioError,
    RadioTimeout,
)
from lora_telemetry.radios.rn2483.driver import RN2483Radio
from lora_telemetry.sim.medium import MediumClient, MediumControl, MediumHub, RxEvent
from lora_telemetry.sim.medium_model import MediumModel
from lora_telemetry.sim.pty_port import PtyPort
from lora_telemetry.radios.rn2483.emulator import RN2483ModuleLogic
from lora_telemetry.sim.emulated_serial import EmulatedSerialModule

REPO = Path(__file__).resolve().parent.parent
NWKSKEY = "437009D0F91CF5F9694E4EB2AE7EB9D3"  # seed_vectors rn2483_abp_setup_thesis
APPSKEY = "A4109C150E2492D5479A782645758B3B"
DEVADDR = "26011CA2"


# ============================================================================ sans-I/O protocol

def _start(proto: P.RN2483Protocol, cmd: P.Command, final: float = 5.0) -> None:
    proto.send(cmd, now=0.0, timeout=1.0, final_timeout=final)


def _feed(proto: P.RN2483Protocol, *lines: str, now: float = 0.1) -> list[P.Event]:
    return proto.receive_data("".join(f"{ln}\r\n" for ln in lines).encode(), now)


MAC_TX = P.mac_tx(False, 1, b"\x01")
JOIN = P.mac_join("abp")
RADIO_TX = P.radio_tx(b"Hello")
RADIO_RX = P.radio_rx(0)
SET = P.mac_set("dr", 5)

# (command, first answer, exception). 2.4.2 lists mac tx's first answers, 2.4.3 mac join's,
# 2.5.1/2.5.2 radio rx/tx's; 2.2: every command may answer invalid_param.
FIRST_STAGE_ERRORS = [
    (MAC_TX, "invalid_param", P.InvalidParam),
    (MAC_TX, "not_joined", P.NotJoined),
    (MAC_TX, "no_free_ch", P.NoFreeChannel),
    (MAC_TX, "silent", P.Silent),
    (MAC_TX, "frame_counter_err_rejoin_needed", P.FrameCounterRolledOver),
    (MAC_TX, "busy", P.MacBusy),
    (MAC_TX, "mac_paused", P.MacPaused),
    (MAC_TX, "invalid_data_len", P.InvalidDataLength),
    (JOIN, "invalid_param", P.InvalidParam),
    (JOIN, "keys_not_init", P.KeysNotInitialised),
    (JOIN, "no_free_ch", P.NoFreeChannel),
    (JOIN, "silent", P.Silent),
    (JOIN, "busy", P.MacBusy),
    (JOIN, "mac_paused", P.MacPaused),
    (RADIO_TX, "invalid_param", P.InvalidParam),
    (RADIO_TX, "busy", P.MacBusy),
    (RADIO_RX, "invalid_param", P.InvalidParam),
    (RADIO_RX, "busy", P.MacBusy),
    (SET, "invalid_param", P.InvalidParam),
    (P.radio_get("rssi"), "invalid_param", P.InvalidParam),  # pre-1.0.5 firmware
]

# Second answers after "ok" (2.4.2: mac_err, invalid_data_len; 2.4.3: denied;
# 2.5.1/2.5.2: radio_err).
SECOND_STAGE_ERRORS = [
    (MAC_TX, "mac_err", P.MacTxFailed),
    (MAC_TX, "invalid_data_len", P.InvalidDataLength),
    (JOIN, "denied", P.JoinDenied),
    (RADIO_TX, "radio_err", P.RadioOperationFailed),
    (RADIO_RX, "radio_err", P.RadioOperationFailed),
]


@pytest.mark.parametrize("cmd,answer,exc", FIRST_STAGE_ERRORS,
                         ids=[f"{c.text.split()[1]}-{a}" for c, a, _ in FIRST_STAGE_ERRORS])
def test_every_documented_first_answer_error_is_specific(cmd, answer, exc):
    proto = P.RN2483Protocol()
    _start(proto, cmd)
    (event,) = _feed(proto, answer)
    assert isinstance(event, P.Failed) and event.stage == 1
    assert type(event.error) is exc and event.error.response == answer
    assert isinstance(event.error, RadioError)
    assert proto.pending is None  # ready for the next command


@pytest.mark.parametrize("cmd,answer,exc", SECOND_STAGE_ERRORS,
                         ids=[f"{c.text.split()[1]}-{a}" for c, a, _ in SECOND_STAGE_ERRORS])
def test_every_documented_second_answer_error_is_specific(cmd, answer, exc):
    proto = P.RN2483Protocol()
    _start(proto, cmd)
    accepted, failed = _feed(proto, "ok", answer)
    assert isinstance(accepted, P.Accepted)
    assert isinstance(failed, P.Failed) and failed.stage == 2 and type(failed.error) is exc


def test_every_error_string_of_the_guide_has_a_class():
    # Every descriptive error of sections 2.4.2, 2.4.3, 2.5.1 and 2.5.2, and invalid_param (2.2).
    documented = {"invalid_param", "not_joined", "no_free_ch", "silent",
                  "frame_counter_err_rejoin_needed", "busy", "mac_paused", "invalid_data_len",
                  "keys_not_init", "denied", "mac_err", "radio_err"}
    assert set(P.ERROR_RESPONSES) == documented
    # busy and no_free_ch mean "try again later": callers can catch RadioBusy.
    assert issubclass(P.MacBusy, RadioBusy) and issubclass(P.NoFreeChannel, RadioBusy)


def test_two_stage_successes_and_the_auto_reply_sequence():
    proto = P.RN2483Protocol()
    _start(proto, MAC_TX)
    events = _feed(proto, "ok", "mac_tx_ok")
    assert isinstance(events[0], P.Accepted)
    assert events[1].value == P.MacTxOutcome(None)
    # 2.4.2 example with automatic reply: "ok", "mac_rx 1 AC", "mac_rx 1 AF", "mac_tx_ok".
    _start(proto, P.mac_tx(True, 4, b"\xab"))
    events = _feed(proto, "ok", "mac_rx 1 AC", "mac_rx 1 AF", "mac_tx_ok")
    assert isinstance(events[1], P.Completed)
    assert events[1].value.downlink == P.Downlink(1, b"\xac")
    assert isinstance(events[2], P.UnsolicitedDownlink)
    assert events[2].downlink == P.Downlink(1, b"\xaf")
    assert isinstance(events[3], P.Garbage)  # the trailing mac_tx_ok answers nothing pending
    _start(proto, JOIN)
    assert _feed(proto, "ok", "accepted")[1].value == "accepted"
    _start(proto, RADIO_TX)
    assert _feed(proto, "ok", "radio_tx_ok")[1].value == "radio_tx_ok"
    _start(proto, RADIO_RX)
    # 2.5.2 example payload "48656c6C6F" (mixed case) is "Hello".
    assert _feed(proto, "ok", "radio_rx 48656c6C6F")[1].value == b"Hello"


@pytest.mark.parametrize("cmd,answer,value", [
    (P.mac_pause(), "4294967295", 4294967295),  # 2.4.6: the maximum when idle
    (P.mac_pause(), "0", 0),
    (P.radio_get("snr"), "-12", -12),  # 2.5.5.16: signed, -128..127
    (P.radio_get("snr"), "-128", -128),
    (P.radio_get("rssi"), "-63", -63),
    (P.mac_get("upctr"), "10", 10),
    (P.mac_get_ch("drrange", 0), "0 5", (0, 5)),  # Table 2-10
    (P.mac_get("rx2", 868), "0 869525000", (0, 869525000)),  # 2.4.9.12 default
    (P.mac_get("adr"), "off", False),
    (P.sys_get_hweui(), "0004A30B001A55ED", "0004A30B001A55ED"),
])
def test_value_answers_are_parsed(cmd, answer, value):
    proto = P.RN2483Protocol()
    _start(proto, cmd)
    (event,) = _feed(proto, answer)
    assert isinstance(event, P.Completed) and event.value == value


def test_mac_rx_with_a_digit_that_is_not_a_decimal_is_other() -> None:
    # Found while fuzzing (bench/fuzz): "²".isdigit() is True but int("²") raises, so a
    # classify_line call on such text (it is public; the framer itself passes only ASCII)
    # raised ValueError instead of classifying the line.
    assert P.classify_line("mac_rx \u00b2 0A").kind is P.LineKind.OTHER



def test_a_value_that_does_not_parse_is_garbage_not_the_answer():
    proto = P.RN2483Protocol()
    _start(proto, P.radio_get("snr"))
    (event,) = _feed(proto, "200")  # outside -128..127
    assert isinstance(event, P.Garbage) and proto.pending is not None
    assert proto.check_timeout(5.0)[0].last_garbage == "200"


def test_banner_answers_reset_and_reports_spontaneous_reboots():
    banner = "RN2483 1.0.5 Oct 31 2018 15:06:52"  # format of 2.3.2: [HW] [FW] [Date] [Time]
    version = P.parse_banner(banner)
    assert version is not None
    assert (version.model, version.firmware, version.date, version.time) == (
        "RN2483", (1, 0, 5), "Oct 31 2018", "15:06:52")
    assert P.parse_banner("RN2483 1.0.1 Dec 15 2015 09:38:09").firmware == (1, 0, 1)
    assert P.parse_banner("RN2483 garbage") is None
    proto = P.RN2483Protocol()
    _start(proto, P.sys_reset())
    assert _feed(proto, banner)[0].value == version
    _start(proto, P.sys_get_ver())
    assert _feed(proto, banner)[0].value == version
    # A banner while waiting for something else: the module rebooted mid-command.
    _start(proto, MAC_TX)
    accepted, reset = _feed(proto, "ok", banner)
    assert isinstance(reset, P.ResetDetected) and reset.during is MAC_TX
    assert proto.pending is None
    (idle,) = _feed(proto, banner)
    assert isinstance(idle, P.ResetDetected) and idle.during is None
    assert proto.resets_detected == 2


def test_framing_survives_split_chunks_noise_and_overlong_lines():
    proto = P.RN2483Protocol()
    _start(proto, SET)
    assert proto.receive_data(b"o", 0.1) == []
    assert proto.receive_data(b"k\r", 0.1) == []
    (done,) = proto.receive_data(b"\n", 0.1)
    assert isinstance(done, P.Completed)
    _start(proto, SET)
    events = proto.receive_data(b"\x00\xfe\x13\x80\xff#~garbage\r\n\xffok\r\n", 0.2)
    assert isinstance(events[0], P.Garbage) and events[0].text == "#~garbage"
    assert isinstance(events[1], P.Completed)
    assert proto.framer.garbage_bytes == 6 and proto.garbage_lines == 1
    _start(proto, SET)
    assert proto.receive_data(b"x" * 5000 + b"\r\n", 0.3) == []
    assert proto.framer.overlong_lines == 1
    assert isinstance(proto.receive_data(b"ok\r\n", 0.3)[0], P.Completed)


def test_deadlines_bound_both_stages():
    proto = P.RN2483Protocol()
    proto.send(MAC_TX, now=10.0, timeout=1.0, final_timeout=3.0)
    assert proto.check_timeout(10.9) == []
    (timed_out,) = proto.check_timeout(11.0)
    assert isinstance(timed_out, P.TimedOut) and timed_out.stage == 1
    proto.send(MAC_TX, now=20.0, timeout=1.0, final_timeout=3.0)
    proto.receive_data(b"ok\r\n", 20.5)  # the second deadline counts from the "ok"
    assert proto.check_timeout(23.4) == []
    assert proto.check_timeout(23.5)[0].stage == 2
    proto.send(SET, now=30.0, timeout=1.0)
    with pytest.raises(RadioBusy):
        proto.send(SET, now=30.1, timeout=1.0)


@pytest.mark.parametrize("param,value,ok", [
    ("pwr", -3, True), ("pwr", 15, True), ("pwr", -4, False), ("pwr", 16, False),  # 2.5.4.4
    ("bw", 125, True), ("bw", 250, True), ("bw", 500, True), ("bw", "62.5", False),  # 2.5.4.16
    ("cr", "4/5", True), ("cr", 8, True), ("cr", "4/9", False),  # 2.5.4.13
    ("sf", "sf7", True), ("sf", 12, True), ("sf", "sf6", False),  # 2.5.4.5
    ("freq", 433050000, True), ("freq", 434790000, True), ("freq", 863000000, True),
    ("freq", 870000000, True), ("freq", 433049999, False), ("freq", 434790001, False),
    ("freq", 862999999, False), ("freq", 870000001, False),  # 2.5.4.3
    ("sync", "12", True), ("sync", 0x34, True), ("sync", "ZZ", False),  # 2.5.4.15
    ("iqi", "on", True), ("iqi", False, True), ("iqi", "maybe", False),  # 2.5.4.12
    ("wdt", 0, True), ("wdt", 4294967295, True), ("wdt", 4294967296, False),  # 2.5.4.14
    ("prlen", 65535, True), ("prlen", 65536, False),  # 2.5.4.10
    ("mod", "lora", True), ("mod", "ook", False),  # 2.5.4.2
])
def test_radio_set_ranges_are_checked_before_sending(param, value, ok):
    if ok:
        assert P.radio_set(param, value).text.startswith(f"radio set {param} ")
    else:
        with pytest.raises(P.RN2483ArgumentError):
            P.radio_set(param, value)


def test_mac_argument_ranges():
    assert P.mac_set("pwridx", 0, band=433).text == "mac set pwridx 0"  # 0..5 on 433 (2.4.8.7)
    with pytest.raises(P.RN2483ArgumentError):
        P.mac_set("pwridx", 0, band=868)  # 1..5 on 868
    for port in (0, 224):  # 2.4.2: 1..223
        with pytest.raises(P.RN2483ArgumentError):
            P.mac_tx(False, port, b"\x00")
    with pytest.raises(P.RN2483ArgumentError):
        P.mac_set_ch("freq", 0, 868100000)  # default channels 0-2 keep their frequency
    assert P.mac_set_ch("dcycle", 0, 9).text == "mac set ch dcycle 0 9"
    with pytest.raises(P.RN2483ArgumentError):
        P.mac_set("upctr", 2 ** 32)
    with pytest.raises(P.RN2483ArgumentError):
        P.Command("mac save\r\nsys reset")  # no way to smuggle a second command
    assert P.mac_set("nwkskey", NWKSKEY).secret_free_text == "mac set nwkskey " + "*" * 32


# ===================================================================== through pseudo-terminals

@pytest.fixture
def hub():
    hub = MediumHub(MediumModel(seed=3), port=0)
    thread = threading.Thread(target=hub.serve, daemon=True)
    thread.start()
    yield hub
    hub.stop()
    thread.join(timeout=2.0)
    hub.close()


class Sniffer:
    """A listening MediumClient collecting every frame it hears."""

    def __init__(self, hub: MediumHub, phy: PhySettings, name: str = "sniffer") -> None:
        self.client = MediumClient(name, hub.address, position_m=(30.0, 0.0, 0.0))
        self.client.listen(phy)

    def next_frame(self, timeout: float = 3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.client.next_event(timeout=deadline - time.monotonic())
            if isinstance(event, RxEvent):
                return event
        raise AssertionError("no frame heard on the medium")


@pytest.fixture
def world(tmp_path, hub):
    """Factory of emulator + driver pairs on the medium; everything is closed afterwards."""
    made: list = []

    def module(name: str = "uav1", *, medium: bool = True, **options) -> EmulatedSerialModule:
        client = MediumClient(name, hub.address, position_m=(0.0, 0.0, 0.0)) if medium else None
        if client is not None:
            made.append(client)  # closed after the emulator (made is closed in reverse)
        logic = RN2483ModuleLogic(name, seed=7, **options)
        emu = EmulatedSerialModule(logic, name, tmp_path / f"{name}.tty", client,
                                   baud=P.BAUDRATE)
        emu.start()
        assert emu.wait_line_idle()  # its banner is out, as on a module powered long before
        made.append(emu)
        return emu

    def radio(emu: EmulatedSerialModule, **options) -> RN2483Radio:
        r = RN2483Radio(emu.path, **options)
        made.append(r)
        return r

    def sniffer(phy: PhySettings) -> Sniffer:
        s = Sniffer(hub, phy, f"sniffer{len(made)}")
        made.append(s.client)
        return s

    world = type("World", (), {})()
    world.module, world.radio, world.sniffer, world.hub = module, radio, sniffer, hub
    yield world
    for thing in reversed(made):
        thing.close()


def _fast_lorawan(radio: RN2483Radio, band: int = 868, dcycle: int = 0, **kw) -> None:
    """ABP on 868.1 MHz DR5 with short receive windows (RX1 after 100 ms, RX2 at DR5)."""
    region = EU868 if band == 868 else EU433
    freq = region.default_channels_hz[0]
    options = dict(rxdelay1_ms=100, rx2=(5, freq))
    options.update(kw)
    radio.lorawan_setup(band, freq, 5, 1, DEVADDR, NWKSKEY, APPSKEY, dcycle, **options)


def test_thesis_setup_sequence_and_annex_iii_frame_on_the_air(world, seed_vectors):
    """seed_vectors rn2483_abp_setup_thesis: the thesis end node's commands (thesis ~8880-8990)
    and lorawan_uplink_thesis_annex_iii: FCnt 1, FPort 1, "LoRa" -> 40a21c01...e385ce96."""
    vec = seed_vectors["rn2483_abp_setup_thesis"]
    uplink = seed_vectors["lorawan_uplink_thesis_annex_iii"]
    assert vec["serial"]["baudrate"] == P.BAUDRATE and vec["serial"]["line_end"] == "\\r\\n"
    emu = world.module(band=433)
    radio = world.radio(emu)
    # "mac reset 433", channel 0 only (433.175 MHz, Table 2-10), dcycle 9 = 10 %, DR5, pwridx 0.
    radio.lorawan_setup(433, 433_175_000, 5, 0, DEVADDR, NWKSKEY, APPSKEY, 9)
    sent = list(emu.logic.commands)
    assert sent[0] == "sys get ver"  # the driver's probe
    assert sent[1:12] == vec["commands"][:11]
    assert emu.logic.mac.joined and emu.logic.mac.channels[0].dcycle == 9

    sniffer = world.sniffer(EU433.phy(5, 433_175_000))
    radio.mac_set_upctr(1)
    result = radio.mac_tx(1, b"LoRa")
    # vector: "mac tx uncnf 1 <hex payload>"
    assert emu.logic.commands[-1] == "mac tx uncnf 1 4C6F5261"
    heard = sniffer.next_frame()
    assert heard.data.hex() == uplink["phy_payload_hex"]
    decoded = decode_data_frame(heard.data, NWKSKEY, APPSKEY)
    assert decoded.payload == b"LoRa" and decoded.mic_valid
    assert decoded.frame.fcnt == 1 and decoded.frame.fport == 1
    # DR5 = SF7/125 kHz (LoRaWAN 1.0 Table 31), uplink CRC on, IQ normal, sync 0x34,
    # pwridx 0 = 10 dBm on EU433 (Table 31).
    assert (heard.phy.sf, heard.phy.bandwidth_hz, heard.phy.sync_word) == (7, 125_000, 0x34)
    assert heard.phy.crc_on and not heard.phy.iq_inverted
    assert emu.logic.transmissions[-1][2].tx_power_dbm == 10
    assert result.fcnt == 1 and result.downlink is None
    assert result.airtime_s == pytest.approx(EU433.phy(5).time_on_air(17))
    assert radio.upctr == 2 and radio.mac_get_upctr() == 2  # 2.4.9.18: the next counter
    # dcycle 9: "(100/10) - 1 = 9" -> 10 % (2.4.8.19.2): the channel rests 9 x the airtime.
    ledger = emu.logic.mac.channels[0].ledger
    assert ledger.limit(433_175_000) == pytest.approx(0.10)
    t_start = emu.logic.transmissions[-1][0]
    assert ledger.next_allowed(433_175_000, 0.01, t_start) == pytest.approx(
        t_start + 10 * result.airtime_s, abs=0.005)


def test_duty_cycle_refusal_is_no_free_ch(world):
    emu = world.module()
    radio = world.radio(emu)
    # dcycle 65535: 100/65536 % - the channel rests ~65535 x the airtime after a frame.
    _fast_lorawan(radio, dcycle=65535)
    first = radio.mac_tx(2, b"\x01\x02")
    # The second answer comes after RX2 opened: RECEIVE_DELAY1 (100 ms here) + 1 s after the
    # frame (2.4.8.13), never right after the airtime.
    assert first.finished - first.started >= first.airtime_s + 0.1 + 1.0
    with pytest.raises(P.NoFreeChannel) as err:
        radio.mac_tx(2, b"\x01\x02")
    assert isinstance(err.value, RadioBusy)
    # The refused uplink used no frame counter.
    assert radio.mac_get_upctr() == first.fcnt + 1 == radio.upctr
    assert emu.counters["no_free_ch"] == 1


def test_mac_errors_through_the_pty(world):
    emu = world.module()
    radio = world.radio(emu, command_timeout=1.0)
    with pytest.raises(P.NotJoined):
        radio.raw("mac tx uncnf 1 AA")
    assert radio.raw("mac reset 868") == "ok"
    with pytest.raises(P.KeysNotInitialised):  # mac reset forgets the keys (2.4.1 note)
        radio.raw("mac join abp")
    with pytest.raises(P.InvalidParam):
        radio.raw("mac set dr 9")  # 2.4.8.8: 0..7
    with pytest.raises(P.InvalidParam):
        radio.raw("mac set ch freq 1 868900000")  # default channels cannot move
    with pytest.raises(P.InvalidParam):
        radio.raw("bogus command")
    with pytest.raises(P.MacBusy):
        radio.raw("radio tx 00")  # no mac pause first (2.5.2 note)
    _fast_lorawan(radio)
    with pytest.raises(P.InvalidDataLength):
        radio.mac_tx(1, bytes(223))  # DR5 on EU868: N = 222 (LoRaWAN 1.0 Table 16)
    emu.set_silent(True)
    time.sleep(0.05)
    with pytest.raises(P.Silent):
        radio.mac_tx(1, b"\x00")
    assert radio.raw("mac forceENABLE") == "ok"  # 2.4.5
    radio.raw("mac pause")
    with pytest.raises(P.MacPaused):
        radio.raw("mac tx uncnf 1 AA")
    radio.mac_set_upctr(0xFFFFFFFF)
    # mac_tx meets mac_paused (paused behind its back), resumes and sends.
    assert radio.mac_tx(1, b"\x00").fcnt == 0xFFFFFFFF
    assert emu.logic.commands.count("mac resume") == 1
    with pytest.raises(P.FrameCounterRolledOver):
        radio.mac_tx(1, b"\x00")
    assert radio.raw("mac get ch dcycle 0") == "0" and radio.mac_get("band") == 868


def test_confirmed_uplink_without_ack_ends_in_mac_err(world):
    emu = world.module(rx_windows="detect")  # windows only as long as preamble detection
    radio = world.radio(emu)
    _fast_lorawan(radio, retx=1)
    with pytest.raises(P.MacTxFailed):
        radio.mac_tx(5, b"\x42", confirmed=True)
    # retx 1: the frame went out twice with the same counter (2.4.8.11), then mac_err.
    frames = [parse_data_frame(data) for _, data, _ in emu.logic.transmissions]
    assert [(f.fcnt, f.confirmed) for f in frames] == [(0, True), (0, True)]


def test_downlink_in_rx1_comes_back_as_mac_rx(world):
    emu = world.module()
    radio = world.radio(emu)
    _fast_lorawan(radio, rxdelay1_ms=300)
    freq = EU868.default_channels_hz[0]
    sniffer = world.sniffer(EU868.phy(5, freq))
    control = MediumControl(world.hub.address)
    downlink = build_data_frame(DEVADDR, 0, b"\xac", nwkskey=NWKSKEY, appskey=APPSKEY,
                                fport=3, uplink=False)

    def gateway() -> None:  # answer in RX1: same channel, DR5, inverted IQ, 300 ms after TX end
        heard = sniffer.next_frame(timeout=5.0)
        time.sleep(max(0.0, heard.t_end + 0.300 - time.time()))
        control.inject(downlink, EU868.phy(5, freq, uplink=False), position_m=(30.0, 0, 0))

    thread = threading.Thread(target=gateway)
    thread.start()
    try:
        result = radio.mac_tx(1, b"\x10")
    finally:
        thread.join(timeout=6.0)
        control.close()
    assert result.downlink == P.Downlink(3, b"\xac")
    assert radio.mac_get("dnctr") == 1  # the next downlink counter


def test_p2p_tx_reaches_the_air_with_the_configured_phy(world):
    emu = world.module()
    radio = world.radio(emu)
    phy = PhySettings(frequency_hz=868_300_000, sf=9, bandwidth_hz=250_000, coding_rate=7,
                      preamble_symbols=10, crc_on=True, sync_word=0x12, iq_inverted=False,
                      tx_power_dbm=14)
    radio.configure(phy)
    assert "mac pause" in emu.logic.commands and radio.phy == phy
    sniffer = world.sniffer(phy)
    result = radio.send(b"hello swarm")
    heard = sniffer.next_frame()
    assert heard.data == b"hello swarm"
    # `radio set pwr 14` puts out 13.5 dBm on 868 MHz (datasheet Table 2-5).
    assert heard.phy == dataclasses.replace(phy, tx_power_dbm=13.5)
    assert result.airtime_s == pytest.approx(phy.time_on_air(11))
    assert result.finished - result.started >= result.airtime_s * 0.9


def test_p2p_receive_reports_frame_snr_and_rssi_or_times_out(world):
    emu = world.module()
    radio = world.radio(emu)
    phy = PhySettings(frequency_hz=868_100_000, sf=7, bandwidth_hz=125_000)
    radio.configure(phy)
    control = MediumControl(world.hub.address)
    try:
        timer = threading.Timer(0.3, lambda: control.inject(b"\xca\xfe", phy,
                                                            position_m=(100.0, 0, 0)))
        timer.start()
        frame = radio.receive(3.0)
        timer.join()
    finally:
        control.close()
    assert frame is not None and frame.data == b"\xca\xfe"
    assert isinstance(frame.snr_db, float) and -128 <= frame.snr_db <= 127  # 2.5.5.16
    assert frame.rssi_dbm is not None and frame.rssi_dbm < 0  # firmware 1.0.5 has radio get rssi
    assert radio.receive(0.3) is None  # radio_err after the watchdog: a time-out, not an error
    assert radio.stats()["rx_timeouts"] == 1
    assert "radio set wdt 300" in emu.logic.commands  # the window, bounded by the watchdog
    # ... which is put back to the default at once, so a frame sent next (TDMA: listen, then
    # send in the own slot) goes out without a `radio set wdt` in front of it.
    assert radio.raw("radio get wdt") == 15000


def test_old_firmware_without_radio_get_rssi(world):
    emu = world.module(firmware="1.0.1", banner_date="Dec 15 2015 09:38:09")
    radio = world.radio(emu, probe=False)  # unknown firmware: the driver has to ask
    assert radio.radio_get_rssi() is None  # invalid_param on 1.0.1, handled
    assert radio.radio_get_rssi() is None  # and not asked again
    assert sum(c == "radio get rssi" for c in emu.logic.commands) == 1
    assert radio.radio_get_snr() == -128  # "Default: -128" (2.5.5.16)


# ------------------------------------------------------------------------------ injected faults

def test_garbage_is_counted_not_fatal(world):
    emu = world.module()
    radio = world.radio(emu)
    emu.inject_garbage()
    time.sleep(0.1)
    assert radio.sys_get_hweui() == f"{emu.logic.hweui:016X}"
    emu.inject_garbage(b"\x00\x01noise\r\nmac_tx_ok\r\n")
    assert radio.mac_get("dr") == 5  # typed answer: "noise" cannot pass for a data rate
    assert radio.stats()["garbage_lines"] >= 3 and radio.stats()["garbage_bytes"] >= 7


def test_dropped_answer_times_out_then_recovers(world):
    emu = world.module()
    radio = world.radio(emu, command_timeout=0.4)
    emu.drop_answers(1)
    time.sleep(0.05)
    t0 = time.monotonic()
    with pytest.raises(RadioTimeout):
        radio.sys_get_hweui()
    assert time.monotonic() - t0 < 2.0
    assert radio.sys_get_hweui() == f"{emu.logic.hweui:016X}"
    assert radio.stats()["timeouts"] == 1


def test_reset_while_idle_is_recovered_with_the_frame_counter(world):
    emu = world.module(rx_windows="detect")
    radio = world.radio(emu)
    _fast_lorawan(radio)  # saved to EEPROM with upctr 0
    first = radio.mac_tx(1, b"\x01")
    emu.reset()  # the module restores upctr 0 from EEPROM and is not joined
    time.sleep(0.1)
    second = radio.mac_tx(1, b"\x02")  # re-applied automatically before this command
    assert (first.fcnt, second.fcnt) == (0, 1)
    assert parse_data_frame(emu.logic.transmissions[-1][1]).fcnt == 1  # not 0 again: no replay
    assert radio.stats()["resets_detected"] == 1 and radio.stats()["reconfigurations"] == 1


def test_reset_during_an_uplink_raises_then_recovers(world):
    emu = world.module()
    radio = world.radio(emu)
    _fast_lorawan(radio)

    def reset_after_ok() -> None:
        deadline = time.monotonic() + 3.0
        while emu.counters["uplinks"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        emu.reset()

    thread = threading.Thread(target=reset_after_ok)
    thread.start()
    with pytest.raises(ModuleReset):
        radio.mac_tx(1, b"\x01")
    thread.join()
    result = radio.mac_tx(1, b"\x02")
    assert result.fcnt == 1  # the interrupted frame had taken counter 0
    assert emu.logic.mac.joined


def test_reset_during_configuration_is_transparent(world):
    emu = world.module()
    radio = world.radio(emu)
    phy = PhySettings(frequency_hz=869_525_000, sf=10, bandwidth_hz=125_000)
    radio.configure(phy)
    emu.reset()  # radio settings back to defaults (sf12, 868.1 MHz, 2.5.5)
    radio.configure(dataclasses.replace(phy, sf=8))
    logic = emu.logic
    assert (logic.radio.sf, logic.radio.freq, logic.mac.paused) == (8, 869_525_000, True)
    assert radio.stats()["resets_detected"] == 1


def test_unplug_raises_disconnected_and_reopen_reapplies(world):
    emu = world.module()
    radio = world.radio(emu)
    phy = PhySettings(frequency_hz=868_500_000, sf=8, bandwidth_hz=125_000)
    radio.configure(phy)
    emu.unplug(replug_after=0.5)
    time.sleep(0.1)
    with pytest.raises(RadioDisconnected):
        radio.send(b"\x01")
    radio.reconnect(timeout=5.0)
    logic = emu.logic
    assert (logic.radio.sf, logic.radio.freq, logic.mac.paused) == (8, 868_500_000, True)
    sniffer = world.sniffer(phy)
    radio.send(b"\x02")
    assert sniffer.next_frame().data == b"\x02"
    assert radio.stats()["reconnects"] == 1


def test_unplugged_for_good_gives_up_in_time(world):
    emu = world.module(medium=False)
    radio = world.radio(emu)
    emu.unplug()
    time.sleep(0.1)
    with pytest.raises(RadioDisconnected):
        radio.sys_get_hweui()
    t0 = time.monotonic()
    with pytest.raises(RadioDisconnected):
        radio.reconnect(timeout=0.5)
    assert time.monotonic() - t0 < 2.0


def test_silent_port_is_no_such_device(tmp_path):
    pty = PtyPort(tmp_path / "nothing.tty")
    try:
        with pytest.raises(NoSuchDevice):
            RN2483Radio(pty.path, command_timeout=0.3)
    finally:
        pty.close()


# ------------------------------------------------------------------------------------------ CLI

def test_radio_info_cli(world):
    import argparse

    from lora_telemetry.cli import radio_tool

    emu = world.module(medium=False)
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true")
    radio_tool.register(parser.add_subparsers(dest="command"), common)
    args = parser.parse_args(["radio", "info", "--type", "rn2483", "--port", emu.path, "--json"])
    out = io.StringIO()
    with redirect_stdout(out):
        assert args.func(args) == 0
    info = json.loads(out.getvalue())
    assert info["firmware"] == "1.0.5" and info["hweui"] == f"{emu.logic.hweui:016X}"


def test_sim_module_process_serves_a_pty_and_a_control_socket(tmp_path):
    import socket

    link, ctl, me = tmp_path / "proc.tty", tmp_path / "proc.ctl", tmp_path / "me.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lora_telemetry.cli.sim_module", "--type", "rn2483",
         "--name", "proc", "--link", str(link), "--no-medium", "--control", str(ctl)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        line = proc.stdout.readline().strip()
        assert line == str(link)
        with RN2483Radio(line) as radio:
            assert radio.version.model == "RN2483"
            sock.bind(str(me))
            sock.settimeout(3.0)
            sock.sendto(b"garbage", str(ctl))
            assert sock.recv(64) == b"ok\n"
            sock.sendto(b"explode", str(ctl))
            assert sock.recv(200).startswith(b"error: unknown command")
            time.sleep(0.1)
            assert radio.sys_get_hweui()  # still fine after the noise
            assert radio.stats()["garbage_lines"] == 1
    finally:
        sock.close()
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0 and not link.exists() and not ctl.exists()
