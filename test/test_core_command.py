"""Commands over the downlink (issue 14): codec, result report, drone verifier, ground builder.

Figures and where they come from (LoRaWAN Specification 1.0 in the thesis file):
* MType 011 = unconfirmed data down, MHDR 0x60 (§4.2.1 Table 1);
* Dir = 1 in A_i and B0 for downlinks (§4.3.3.1, §4.4), FCntDown's low 16 bits on air and
  the receiver's counter kept in sync only when it has incremented (§4.3.1.5);
* MAX_FCNT_GAP = 16384 (§7.1.8);
* FPort 1..223 application specific (§4.3.2): FPort 2 = commands, FPort 1 = telemetry;
* MAC command CIDs 0x80..0xFF proprietary (§5 Table 4), FOpts at most 15 bytes (§4.3.1.6).
Keys: the thesis end node's (~line 8950), as in test_core_gateway.py.
"""

from __future__ import annotations

import json

import pytest

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import command as c
from lora_telemetry.core import gateway as gw
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.ground.commands import build_downlink_for
from lora_telemetry.persist import (DownlinkCounterStore, GroundCounterStore, StateFileError,
                                    session_fingerprint)

NWK = bytes.fromhex("437009D0F91CF5F9694E4EB2AE7EB9D3")
APP = bytes.fromhex("A4109C150E2492D5479A782645758B3B")
ADDR = 0x26011CA2
T0 = 1_700_000_000
CODEC = tcodec.CodecConfig(41.2750, 1.9870, 4.0, tcodec.VehicleFamily.ARDUCOPTER)
S = c.DownlinkStatus


def rtl(cid: int = 7, expiry: int = T0 + 300) -> c.Command:
    return c.Command(cid, c.CommandCode.RETURN_TO_LAUNCH, expiry)


def down(cmd: c.Command, fcnt: int, *, nwk: bytes = NWK, now: float = T0) -> bytes:
    return c.build_command_downlink(cmd, devaddr=ADDR, nwkskey=nwk, appskey=APP,
                                    fcnt_down=fcnt, now_unix_s=now)


# ------------------------------------------------------------------------------------ codec


def test_worked_example_of_wire_format_md() -> None:
    """docs/wire-format.md, "Commands (downlink) and their results", worked example."""
    cmd = rtl()
    # 1700000300 mod 2**24 = 5501484 = 0x53F22C, little-endian
    assert c.encode_command(cmd).hex(" ") == "07 01 2c f2 53"
    phy = down(cmd, 0)
    assert phy.hex(" ") == "60 a2 1c 01 26 00 00 00 02 f8 c5 a3 77 32 32 92 ba 15"
    assert phy[0] == 0x60  # §4.2.1: MType 011, Major 00
    # Recomputed with pycryptodome alone: A_1 and B0 with Dir = 1 (§4.3.3.1, §4.4).
    from Crypto.Cipher import AES
    from Crypto.Hash import CMAC
    a1 = bytes((1, 0, 0, 0, 0, 1)) + ADDR.to_bytes(4, "little") + bytes(4) + bytes((0, 1))
    ks = AES.new(APP, AES.MODE_ECB).encrypt(a1)
    msg = phy[:9] + bytes(x ^ y for x, y in zip(bytes.fromhex("07012cf253"), ks))
    b0 = bytes((0x49, 0, 0, 0, 0, 1)) + ADDR.to_bytes(4, "little") + bytes(4) + bytes((0, len(msg)))
    assert msg + CMAC.new(NWK, msg=b0 + msg, ciphermod=AES).digest()[:4] == phy
    report = c.encode_result_report(c.CommandResult(7, c.ResultStatus.FLIGHT_CONTROLLER, 0))
    assert report.hex(" ") == "80 07 00 00"
    refused = c.encode_result_report(c.CommandResult(7, c.ResultStatus.NOT_ALLOWED))
    assert refused.hex(" ") == "80 07 01 00"


def test_round_trip_every_code() -> None:
    cmds = [
        rtl(0), c.Command(255, c.CommandCode.LAND, T0 + 1), c.Command(3, c.CommandCode.HOLD, T0),
        c.set_mode_command(9, "arducopter", "guided", T0 + 60),
        c.set_mode_command(10, "px4", "RTL", T0 + 60),
        c.Command(11, c.CommandCode.SET_UPDATE_PERIOD, T0 + 60, period_s=2.5),
        c.Command(12, c.CommandCode.SET_UPDATE_PERIOD, T0 + 60, period_s=c.PERIOD_MAX_S),
    ]
    for cmd in cmds:
        p = c.encode_command(cmd)
        assert len(p) == c.COMMAND_LENGTHS[cmd.code]
        assert c.decode_command(p, T0 + 10) == cmd
    guided = cmds[3]
    assert guided.mode_code == 4 and guided.custom_mode("arducopter") == 4
    px4 = cmds[4]
    assert px4.mode_name("px4") == "AUTO_RTL"
    assert px4.custom_mode("px4") == tcodec.px4_custom_mode(4, 5)


def test_expiry_is_placed_nearest_now() -> None:
    code = c.expiry_code(T0 + 300)
    assert c.reconstruct_expiry(code, T0) == T0 + 300
    assert c.reconstruct_expiry(code, T0 + c.EXPIRY_WINDOW_S) == T0 + 300 + c.EXPIRY_WINDOW_S
    assert c.reconstruct_expiry(code, T0 + 400.9) == T0 + 300  # an expired one stays in the past


@pytest.mark.parametrize("payload, exc", [
    (b"", c.CommandLengthError),
    (b"\x07", c.CommandLengthError),
    (b"\x07\x01\x00\x00", c.CommandLengthError),          # RTL needs 5
    (b"\x07\x01\x00\x00\x00\x00", c.CommandLengthError),  # RTL takes no argument
    (b"\x07\x00\x00\x00\x00", c.UnknownCommandError),     # code 0 reserved
    (b"\x07\x06\x00\x00\x00", c.UnknownCommandError),
    (b"\x07\x04\x00\x00\x00\x1e", c.CommandArgumentError),  # mode code 30 = "other"
    (b"\x07\x05\x00\x00\x00\x00\x00", c.CommandArgumentError),  # period 0
    (b"\x07\x05\x00\x00\x00\x71\x17", c.CommandArgumentError),  # 6001 = 600.1 s
    ("0701", c.CommandError),
])
def test_strict_decoding(payload: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        c.decode_command(payload, T0)  # type: ignore[arg-type]


def test_mode_checked_against_family() -> None:
    p = b"\x07\x04\x00\x00\x00\x0c"  # ArduCopter has no mode 12
    assert c.decode_command(p, T0).mode_code == 12
    with pytest.raises(c.CommandArgumentError):
        c.decode_command(p, T0, "arducopter")
    with pytest.raises(c.CommandArgumentError):
        c.decode_command(b"\x07\x04\x00\x00\x00\x1c", T0, "px4")  # PX4 code 28 reserved
    with pytest.raises(c.CommandArgumentError):
        c.set_mode_command(1, "arducopter", "NO_SUCH_MODE", T0)


def test_fuzz_decoder_raises_only_command_errors() -> None:
    import random
    rnd = random.Random(14)
    for _ in range(3000):
        p = bytes(rnd.randrange(256) for _ in range(rnd.randrange(9)))
        try:
            cmd = c.decode_command(p, T0)
        except c.CommandError:
            continue
        assert c.encode_command(cmd) == p


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(cid=st.integers(0, 255), code=st.sampled_from(list(c.CommandCode)),
                  dt=st.integers(-10**6, 10**6), mode=st.integers(0, 29),
                  period=st.integers(1, 6000))
def test_round_trip_property(cid: int, code: c.CommandCode, dt: int, mode: int,
                             period: int) -> None:
    cmd = c.Command(cid, code, T0 + dt,
                    mode_code=mode if code is c.CommandCode.SET_MODE else None,
                    period_s=round(period * 0.1, 1)
                    if code is c.CommandCode.SET_UPDATE_PERIOD else None)
    assert c.decode_command(c.encode_command(cmd), T0) == cmd


# ----------------------------------------------------------------------------- result report


def test_result_report_round_trip_and_strictness() -> None:
    for r in (c.CommandResult(0, c.ResultStatus.FLIGHT_CONTROLLER, 255),
              c.CommandResult(255, c.ResultStatus.NO_ACK)):
        assert c.decode_result_report(c.encode_result_report(r)) == r
    for bad in (b"", b"\x80\x01\x00", b"\x81\x01\x00\x00", b"\x80\x01\x07\x00",
                b"\x80\x01\x02\x05", b"\x80\x01\x00\x00\x00"):
        with pytest.raises(c.ResultReportError):
            c.decode_result_report(bad)
    with pytest.raises(c.ResultReportError):
        c.encode_result_report(c.CommandResult(1, c.ResultStatus.EXPIRED, 3))
    with pytest.raises(c.ResultReportError):
        c.encode_result_report(c.CommandResult(256, c.ResultStatus.EXPIRED))


def test_results_from_fopts_skips_standard_mac_commands() -> None:
    r1 = c.CommandResult(1, c.ResultStatus.FLIGHT_CONTROLLER, 0)
    r2 = c.CommandResult(2, c.ResultStatus.REPLAY)
    fopts = b"\x03\x07" + c.encode_result_report(r1) + b"\x06\xff\x0a" + c.encode_result_report(r2)
    assert len(fopts) <= 15  # §4.3.1.6
    assert c.results_from_fopts(fopts) == [r1, r2]
    assert c.results_from_fopts(b"") == []
    for bad in (b"\x06\xff", b"\x01", b"\x80\x01"):
        with pytest.raises(c.ResultReportError):
            c.results_from_fopts(bad)


def test_old_ground_software_keeps_decoding_telemetry_with_a_report() -> None:
    """The report rides in FOpts: FPort 1 and the 16-byte payload are untouched."""
    sample = tcodec.TelemetrySample(time_unix_s=float(T0), lat_deg=41.2750, lon_deg=1.9870)
    fport, payload = tcodec.encode(sample, CODEC)
    report = c.encode_result_report(c.CommandResult(7, c.ResultStatus.FLIGHT_CONTROLLER, 0))
    phy = lw.build_data_frame(ADDR, 5, payload, nwkskey=NWK, appskey=APP, fport=fport,
                              fopts=report)
    assert len(phy) == 29 + 4 and phy[5] == 0x04  # FOptsLen 4 in FCtrl (§4.3.1)
    gateway = gw.Gateway([gw.Device("uav1", ADDR, NWK, APP, CODEC)])
    v = gateway.process(phy, crc_ok=True, rx_time=T0 + 0.2)
    assert v.status == gw.ACCEPTED and v.sample is not None
    assert c.results_from_fopts(lw.parse_data_frame(phy).fopts)[0].command_id == 7


# ----------------------------------------------------------------------------- drone verifier


def test_verifier_one_verdict_per_frame_and_every_verdict_counted(tmp_path) -> None:
    store = DownlinkCounterStore(tmp_path / "uav1.fcnt.down.json", "26011CA2")
    v = c.DownlinkVerifier(ADDR, NWK, APP, counter_store=store)
    now = T0 + 5.0
    ok = down(rtl(1), 10)
    assert v.process(ok, now).accepted and store.last_fcnt32 == 10
    cases = [
        (ok, S.DUPLICATE),                                       # same frame again
        (down(rtl(2), 9), S.REPLAY),                             # old FCntDown, genuine MIC
        (down(rtl(3), 11, nwk=bytes(16)), S.MIC_FAILED),         # forged: wrong key
        (down(rtl(4), 10 + lw.MAX_FCNT_GAP + 1), S.OUT_OF_WINDOW),
        (b"\x60\x01", S.MALFORMED),
        (lw.build_data_frame(ADDR, 12, b"x", nwkskey=NWK, appskey=APP, fport=2),
         S.NOT_COMMAND_FRAME),                                   # an uplink
        (lw.build_data_frame(ADDR, 12, b"\x07\x01\x2c\xf2\x53", nwkskey=NWK, appskey=APP,
                             fport=2, uplink=False, confirmed=True), S.NOT_COMMAND_FRAME),
        (lw.build_data_frame(0x01020304, 12, b"x", nwkskey=NWK, appskey=APP, fport=2,
                             uplink=False), S.WRONG_DEVADDR),
        (lw.build_data_frame(ADDR, 13, b"\x07\x01", nwkskey=NWK, appskey=APP, fport=3,
                             uplink=False), S.WRONG_FPORT),
        (lw.build_data_frame(ADDR, 14, b"\x07\x09\x00\x00\x00", nwkskey=NWK, appskey=APP,
                             fport=2, uplink=False), S.BAD_COMMAND),
        (down(rtl(5, expiry=T0 + 1), 15), S.EXPIRED),
        (down(c.Command(6, c.CommandCode.SET_MODE, T0 + 60, mode_code=4), 16), S.NOT_ALLOWED),
        (down(c.Command(8, c.CommandCode.LAND, T0 + 60), 17), S.ACCEPTED),
    ]
    for phy, want in cases:
        got = v.process(phy, now)
        assert got.status is want, (want, got)
    assert v.totals[S.ACCEPTED] == 2 and sum(v.totals.values()) == len(cases) + 1
    assert v.tracker.replays == 1 and v.tracker.duplicates == 1
    assert store.last_fcnt32 == 17 and store.writes == 6  # every advancing verdict, durably


def test_refusals_carry_their_report() -> None:
    v = c.DownlinkVerifier(ADDR, NWK, APP)
    r = v.process(down(rtl(5, expiry=T0 + 1), 0), T0 + 2.0)
    assert r.status is S.EXPIRED and r.advanced
    assert r.refusal() == c.CommandResult(5, c.ResultStatus.EXPIRED)
    far = c.build_command_downlink(rtl(6, expiry=T0 + 3000), devaddr=ADDR, nwkskey=NWK,
                                   appskey=APP, fcnt_down=1, now_unix_s=T0)
    r = v.process(far, T0 - 1000.0)  # the drone's clock is 1000 s behind
    assert r.status is S.EXPIRY_TOO_FAR
    assert r.refusal() == c.CommandResult(6, c.ResultStatus.EXPIRY_TOO_FAR)
    assert v.process(down(rtl(7), 2), T0).refusal() is None  # accepted: the FC answers


def test_allowlist_is_configurable() -> None:
    v = c.DownlinkVerifier(ADDR, NWK, APP, allowed=[c.CommandCode.SET_MODE],
                           family="arducopter")
    assert v.process(down(c.set_mode_command(1, "arducopter", "LOITER", T0 + 60), 0), T0).accepted
    assert v.process(down(rtl(2), 1), T0).status is S.NOT_ALLOWED
    bad = lw.build_data_frame(ADDR, 2, b"\x03\x04\x2c\xf2\x53\x0c", nwkskey=NWK, appskey=APP,
                              fport=2, uplink=False)
    assert v.process(bad, T0).status is S.BAD_COMMAND  # mode 12 names no ArduCopter mode
    with pytest.raises(ConfigError):
        c.DownlinkVerifier(ADDR, NWK, APP, allowed=[99])


def test_counter_is_stored_before_acting_and_survives_restart(tmp_path) -> None:
    path = tmp_path / "uav1.fcnt.down.json"
    sess = session_fingerprint(NWK, APP)
    recorded = down(rtl(1), 3)
    v = c.DownlinkVerifier(ADDR, NWK, APP, counter_store=DownlinkCounterStore(path, "26011CA2",
                                                                              session=sess))
    assert v.process(recorded, T0).accepted
    assert json.loads(path.read_text())["last_fcnt_down"] == 3
    # Drone restarts; the recorded frame is replayed within its expiry.
    v2 = c.DownlinkVerifier(ADDR, NWK, APP, counter_store=DownlinkCounterStore(path, "26011CA2",
                                                                               session=sess))
    assert v2.process(recorded, T0 + 1).status is S.DUPLICATE
    # New keys: a new session, counters restart.
    assert DownlinkCounterStore(path, "26011CA2", session="other").last_fcnt32 is None


def test_state_error_means_not_acted_on(tmp_path) -> None:
    class Broken:
        last_fcnt32 = None

        def record(self, fcnt32: int) -> None:
            raise StateFileError("disk full")

    v = c.DownlinkVerifier(ADDR, NWK, APP, counter_store=Broken())
    r = v.process(down(rtl(), 0), T0)
    assert r.status is S.STATE_ERROR and r.command is None and not r.advanced
    assert v.tracker.last_fcnt32 is None  # not accepted in memory either


def test_downlink_counter_file_is_strict(tmp_path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"devaddr": "26011CA2", "last_fcnt_down": -1}')
    with pytest.raises(StateFileError):
        DownlinkCounterStore(path, "26011CA2")
    path.write_text("not json")
    with pytest.raises(StateFileError):
        DownlinkCounterStore(path, "26011CA2")
    s = DownlinkCounterStore(tmp_path / "e.json", "26011CA2")
    s.record(5)
    with pytest.raises(StateFileError):
        s.record(5)  # never goes back


def test_verifier_rejects_a_bad_now() -> None:
    v = c.DownlinkVerifier(ADDR, NWK, APP)
    with pytest.raises(ConfigError):
        v.process(down(rtl(), 0), float("nan"))


# ----------------------------------------------------------------------------- ground builder


def test_ground_restart_does_not_reuse_fcnt_down(tmp_path) -> None:
    path = tmp_path / "ground.counters.json"
    device = gw.Device("uav1", ADDR, NWK, APP, CODEC)
    store = GroundCounterStore(path)
    store.record_uplinks({ADDR: (session_fingerprint(NWK, APP), 41)})
    a = build_downlink_for(store, device, rtl(1), T0)
    b = build_downlink_for(store, device, rtl(2), T0)
    assert (a.fcnt_down, b.fcnt_down) == (0, 1)
    # Restart: the reopened store continues above every counter handed out.
    store2 = GroundCounterStore(path)
    assert store2.known(ADDR).fcnt_down_next == 2 and store2.known(ADDR).fcnt_up == 41
    c3 = build_downlink_for(store2, device, rtl(3), T0)
    assert c3.fcnt_down == 2
    v = c.DownlinkVerifier(ADDR, NWK, APP)
    assert [v.process(x.phy, T0).status for x in (a, b, c3)] == [S.ACCEPTED] * 3


def test_ground_refuses_bad_commands_without_spending_a_counter(tmp_path) -> None:
    store = GroundCounterStore(tmp_path / "g.json")
    device = gw.Device("uav1", ADDR, NWK, APP, CODEC)
    for bad in (rtl(expiry=T0), rtl(expiry=T0 + c.MAX_COMMAND_LIFETIME_S + 1), rtl(cid=256),
                c.Command(1, c.CommandCode.SET_UPDATE_PERIOD, T0 + 60, period_s=0.01)):
        with pytest.raises(c.CommandBuildError):
            build_downlink_for(store, device, bad, T0)
    assert store.known(ADDR) is None and store.writes == 0


def test_new_session_starts_fcnt_down_at_zero(tmp_path) -> None:
    store = GroundCounterStore(tmp_path / "g.json")
    assert store.reserve_fcnt_down(ADDR, "s1") == 0
    assert store.reserve_fcnt_down(ADDR, "s1") == 1
    assert store.reserve_fcnt_down(ADDR, "s2") == 0


def test_errors_are_package_errors() -> None:
    assert issubclass(c.CommandError, LoraTelemetryError)
    assert issubclass(c.CommandBuildError, ConfigError)
