"""The protocol tools of the `lora-telemetry` command and the key files they write."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lora_telemetry import keyfile
from lora_telemetry.cli.main import main
from lora_telemetry.core import lorawan as lw


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_airtime_matches_datasheet_formula(capsys: pytest.CaptureFixture[str]) -> None:
    # SF7, BW125, CR4/5, 8 preamble symbols, explicit header, CRC on, 29-byte PHYPayload (a
    # LoRaWAN frame with 16 bytes of application payload):
    # Tsym = 2^7/125 kHz = 1.024 ms; n_payload = 8 + ceil((8*29 - 28 + 28 + 16)/28) * 5 = 53;
    # T = (8 + 4.25 + 53) * 1.024 ms = 66.816 ms (SX1276 datasheet 4.1.1.7, thesis ~14396).
    out = run_json(capsys, "airtime", "--sf", "7", "--bw", "125", "--cr", "4/5", "--payload", "29")
    assert out["airtime_ms"] == pytest.approx(66.816, abs=1e-9)
    assert out["payload_symbols"] == 53
    # SF12 at 125 kHz: Tsym = 32.768 ms > 16 ms so LDRO is on (datasheet 4.1.1.6).
    out = run_json(capsys, "airtime", "--sf", "12", "--payload", "29")
    assert out["low_data_rate_optimize"] is True


def test_airtime_refuses_sf6_with_explicit_header(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airtime", "--sf", "6", "--payload", "10"]) == 2
    assert "--implicit" in capsys.readouterr().err
    assert main(["airtime", "--sf", "6", "--payload", "10", "--implicit"]) == 0


def test_encode_reproduces_thesis_frame(capsys: pytest.CaptureFixture[str], seed_vectors: dict) -> None:
    vec = seed_vectors["lorawan_uplink_thesis_annex_iii"]
    exp = vec["expected"]
    out = run_json(
        capsys, "encode", "--devaddr", exp["devaddr_hex"], "--fcnt", str(exp["fcnt"]),
        "--fport", str(exp["fport"]), "--payload-hex", exp["frm_payload_plain_hex"],
        "--nwkskey", vec["nwkskey_hex"], "--appskey", vec["appskey_hex"],
    )
    assert out["phy_payload_hex"] == vec["phy_payload_hex"]


def test_decode_thesis_frame(capsys: pytest.CaptureFixture[str], seed_vectors: dict) -> None:
    vec = seed_vectors["lorawan_uplink_thesis_annex_iii"]
    out = run_json(capsys, "decode", vec["phy_payload_hex"],
                   "--nwkskey", vec["nwkskey_hex"], "--appskey", vec["appskey_hex"])
    exp = vec["expected"]
    assert out["mtype"] == exp["mtype"]
    assert out["devaddr"] == exp["devaddr_hex"]
    assert out["fcnt"] == exp["fcnt"] and out["fport"] == exp["fport"]
    assert out["frm_payload_hex"] == exp["frm_payload_plain_hex"]
    assert out["mic_hex"] == exp["mic_hex"] and out["mic_valid"] is True


def test_decode_every_vector(capsys: pytest.CaptureFixture[str], lorawan_vectors: dict) -> None:
    for vec in lorawan_vectors["vectors"]:
        exp = vec["expected"]
        argv = ["decode", vec["phy_hex"]]
        for opt in ("nwkskey", "appskey", "appkey"):
            if vec.get(opt):
                argv += [f"--{opt}", vec[opt]]
        out = run_json(capsys, *argv)
        if "mic_valid" in exp and out.get("mic_valid") is not None:
            assert out["mic_valid"] == exp["mic_valid"], vec["id"]
        if "fcnt" in exp:
            assert out["fcnt"] == exp["fcnt"], vec["id"]
        if "payload_hex" in exp and out.get("frm_payload_decrypted"):
            assert out["frm_payload_hex"] == exp["payload_hex"], vec["id"]


@pytest.mark.parametrize("bad", ["40a21c", "zz", "", "40" * 300])
def test_decode_malformed_is_a_clear_error(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    assert main(["decode", bad]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-telemetry decode: error: ") and "Traceback" not in err


def test_decode_wrong_key_reports_invalid_mic(capsys: pytest.CaptureFixture[str], seed_vectors: dict) -> None:
    vec = seed_vectors["lorawan_uplink_thesis_annex_iii"]
    out = run_json(capsys, "decode", vec["phy_payload_hex"], "--nwkskey", "00" * 16)
    assert out["mic_valid"] is False


def test_keys_generate_is_owner_only_and_usable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.yaml"
    run_json(capsys, "keys", "generate", "--name", "uav1", "--devaddr", "26011CA2", "--out", str(path))
    run_json(capsys, "keys", "generate", "--name", "uav2", "--devaddr", "26011CA3", "--out", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    devices = keyfile.load_key_file(path)
    assert set(devices) == {"uav1", "uav2"}
    assert devices["uav1"].nwkskey != devices["uav2"].nwkskey != devices["uav1"].appskey
    assert "hidden" in repr(devices["uav1"])
    assert devices["uav1"].nwkskey.hex() not in repr(devices["uav1"]).lower()
    # The generated keys really work: a frame built with them verifies.
    d = devices["uav2"]
    phy = lw.build_data_frame(d.devaddr, 7, b"hi", nwkskey=d.nwkskey, appskey=d.appskey, fport=1)
    assert lw.decode_data_frame(phy, d.nwkskey, d.appskey).payload == b"hi"
    # Same name again without --force, or a DevAddr already taken: refused, file unchanged.
    before = path.read_bytes()
    assert main(["keys", "generate", "--name", "uav1", "--devaddr", "26011CA9", "--out", str(path)]) == 2
    assert main(["keys", "generate", "--name", "uav3", "--devaddr", "26011CA2", "--out", str(path)]) == 2
    assert path.read_bytes() == before


def test_keys_export_writes_one_device_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "keys.yaml"
    for i in range(3):
        keyfile.add_device(full, keyfile.generate_device(f"uav{i + 1}", 0x26011CA2 + i))
    out = tmp_path / "drone" / "uav2.yaml"
    result = run_json(capsys, "keys", "export", "--name", "uav2", "--from", str(full), "--out", str(out))
    assert result["devices_in_file"] == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    exported = keyfile.load_key_file(out)
    assert list(exported) == ["uav2"]
    assert exported["uav2"] == keyfile.load_key_file(full)["uav2"]
    # What a drone node does with it: its own file is fine, the full one is refused by name.
    assert keyfile.own_device_keys(out, "uav2") == exported["uav2"]
    with pytest.raises(keyfile.KeyFileError, match="2 other device.*keys export --name uav1"):
        keyfile.own_device_keys(full, "uav1")
    assert keyfile.own_device_keys(full, "uav1", allow_shared=True).name == "uav1"
    # An existing file is not overwritten without --force; an unknown name is named.
    before = out.read_bytes()
    assert main(["keys", "export", "--name", "uav1", "--from", str(full), "--out", str(out)]) == 2
    assert "exists; use --force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["keys", "export", "--name", "uav1", "--from", str(full), "--out", str(out), "--force"]) == 0
    assert list(keyfile.load_key_file(out)) == ["uav1"]
    assert main(["keys", "export", "--name", "uav9", "--from", str(full), "--out", str(tmp_path / "x")]) == 2
    assert "no device 'uav9'" in capsys.readouterr().err


def test_keys_rotate_gives_new_keys_and_a_new_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "keys.yaml"
    keyfile.add_device(full, keyfile.generate_device("uav1", 0x26011CA2))
    keyfile.add_device(full, keyfile.generate_device("uav2", 0x26011CA3))
    before = keyfile.load_key_file(full)
    result = run_json(capsys, "keys", "rotate", "--name", "uav1", "--file", str(full))
    assert "FCnt 0" in result["counters"] and "keys export --name uav1" in result["next"]
    after = keyfile.load_key_file(full)
    assert after["uav1"].devaddr == before["uav1"].devaddr
    assert (after["uav1"].nwkskey, after["uav1"].appskey) != (before["uav1"].nwkskey, before["uav1"].appskey)
    assert after["uav1"].session != before["uav1"].session
    assert after["uav2"] == before["uav2"]
    assert stat.S_IMODE(full.stat().st_mode) == 0o600


def test_drone_counter_restarts_with_new_session_keys(tmp_path: Path) -> None:
    from lora_telemetry.persist import FrameCounterStore

    path = tmp_path / "fcnt.json"
    store = FrameCounterStore(path, "26011CA2", session="aaaa")
    assert [store.take() for _ in range(40)][-1] == 39
    assert FrameCounterStore(path, "26011CA2", session="aaaa").take() > 39  # same keys: resume
    assert FrameCounterStore(path, "26011CA2", session="bbbb").take() == 0  # rotated: restart


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    keyfile.add_device(path, keyfile.generate_device("uav1", 0x26011CA2))
    os.chmod(path, 0o644)
    with pytest.raises(keyfile.KeyFileError, match="chmod 600"):
        keyfile.load_key_file(path)


@pytest.mark.parametrize("text, match", [
    ("devices: [1, 2]", "mapping"),
    ("devices:\n  uav1: {devaddr: 26011CA2}", "missing nwkskey, appskey"),
    ("devices:\n  uav1: {devaddr: 26011CA2, nwkskey: abc, appskey: abc}", "nwkskey"),
    ("devices: {a: {devaddr: 1, nwkskey: " + "0" * 32 + ", appskey: " + "0" * 32 + "},"
     " b: {devaddr: 1, nwkskey: " + "1" * 32 + ", appskey: " + "1" * 32 + "}}", "also used"),
    ("devices: {", "YAML"),
])
def test_malformed_key_files(text: str, match: str) -> None:
    with pytest.raises(keyfile.KeyFileError, match=match):
        keyfile.parse_key_file(text)


def test_cli_entry_point_runs_as_module() -> None:
    out = subprocess.run([sys.executable, "-m", "lora_telemetry.cli.main", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "airtime" in out.stdout and "decode" in out.stdout


# --- found by the fuzz harness (bench/fuzz, targets "cli" and "keyfile") ----------------------
# str.isdigit() accepts digits that int() refuses ("²", U+00B2 SUPERSCRIPT TWO, is a digit but
# not a decimal), so such arguments passed the check and int() raised a traceback.
@pytest.mark.parametrize("argv", [
    ["airtime", "--sf", "\u00b2", "--payload", "29"],
    ["airtime", "--sf", "SF\u00b2", "--payload", "29"],
    ["airtime", "--sf", "7", "--cr", "4/\u00b2", "--payload", "29"],
    ["airtime", "--sf", "7", "--cr", "\u00b2", "--payload", "29"],
])
def test_unicode_digits_are_a_one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-telemetry airtime: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("parse, text", [
    ("lora_telemetry.cli.sim_vehicle:_sysid", "\u00b2"),
    ("lora_telemetry.cli.sim_vehicle:_count", "\u00b3"),
    ("lora_telemetry.cli.sim_medium:_port", "\u00b9"),
])
def test_unicode_digits_in_sim_arguments_are_argument_errors(parse: str, text: str) -> None:
    import argparse
    import importlib

    module, name = parse.split(":")
    with pytest.raises(argparse.ArgumentTypeError):
        getattr(importlib.import_module(module), name)(text)


def test_unicode_digits_in_a_medium_hub_address_are_a_config_error() -> None:
    from lora_telemetry.core.errors import ConfigError
    from lora_telemetry.sim.medium import hub_address

    with pytest.raises(ConfigError, match="host:port"):
        hub_address("127.0.0.1:\u00b2")


@pytest.mark.parametrize("name", ["~nosuchuser_lora_telemetry/keys.yaml",
                                  pytest.param("x" * 300, id="name-too-long")])
def test_keys_list_of_an_impossible_path_is_a_one_line_error(
        capsys: pytest.CaptureFixture[str], name: str) -> None:
    # Path.expanduser raises RuntimeError for an unknown user; stat raises ENAMETOOLONG.
    assert main(["keys", "list", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-telemetry keys: error: ") and err.count("\n") == 1


def test_error_messages_quoting_line_breaks_stay_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # cli/main.py promises "a one-line message": a file name with a newline, and YAML's
    # multi-line parser messages, used to print several lines.
    assert main(["keys", "list", str(tmp_path / "two\nlines.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: {\n  uav1: [\n")
    bad.chmod(0o600)
    assert main(["keys", "list", str(bad)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# PyYAML's safe loader lets ValueError/KeyError/IndexError/AttributeError out of its scalar
# constructors and RecursionError out of deep nesting; key files that are not UTF-8 raised
# UnicodeDecodeError. All must be KeyFileError.
@pytest.mark.parametrize("text", [
    "!!int abc", "!!int", "devices: {uav1: {devaddr: 2001-02-30}}", "!!bool", "!!float",
    "!!timestamp x", pytest.param("[" * 3000, id="[x3000"), pytest.param("{a: " * 1000, id="{a:x1000"),
])
def test_key_file_yaml_the_loader_cannot_build_is_a_key_file_error(text: str) -> None:
    with pytest.raises(keyfile.KeyFileError, match="not valid YAML"):
        keyfile.parse_key_file(text)


def test_key_file_that_is_not_utf8_is_a_key_file_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_bytes(b"devices:\n  uav1: {devaddr: 26011CA2\x80}\n")
    path.chmod(0o600)
    with pytest.raises(keyfile.KeyFileError, match="not UTF-8"):
        keyfile.load_key_file(path)
