"""Node parameters: plain YAML numbers are accepted, bad values are one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rostest_support import require_ros

require_ros()

from lora_telemetry import keyfile  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run_drone(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    keys = tmp_path / "keys.yaml"
    if not keys.exists():
        keyfile.add_device(keys, keyfile.generate_device("uav1", 0x260B0001))
    params = ["uav_name:=uav1", "mavlink_url:=udpin:127.0.0.1:9", "radio_port:=/nonexistent",
              f"key_file:={keys}", f"fcnt_state_file:={tmp_path / 'f.json'}",
              "origin_lat_deg:=47.0", "origin_lon_deg:=8.0", *overrides]
    if not any(o.startswith("origin_alt_m") for o in overrides):
        params.append("origin_alt_m:=400.0")
    argv = [sys.executable, "-m", "lora_telemetry.nodes.drone_node", "--ros-args"]
    for p in params:
        argv += ["-p", p]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=6)
    except subprocess.TimeoutExpired as exc:  # the node came up and kept running: fine
        def text(b: bytes | str | None) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return subprocess.CompletedProcess(argv, None, text(exc.stdout), text(exc.stderr))


def test_integer_where_a_float_is_expected_is_accepted(tmp_path: Path) -> None:
    out = run_drone(tmp_path, "origin_alt_m:=488")  # YAML `488`, not `488.0`
    assert "Traceback" not in (out.stderr or "")
    assert out.returncode is None, out.stderr  # still running when the timeout hit


def test_drone_refuses_a_key_file_with_other_devices_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keyfile.add_device(keys, keyfile.generate_device("uav1", 0x260B0001))
    keyfile.add_device(keys, keyfile.generate_device("uav2", 0x260B0002))
    out = run_drone(tmp_path)
    assert out.returncode == 2, out.stderr
    line = [ln for ln in out.stderr.splitlines() if "error" in ln]
    assert len(line) == 1 and "keys export --name uav1" in line[0] and "uav2" in line[0]
    assert "Traceback" not in out.stderr
    # Explicitly allowed: the node starts.
    assert run_drone(tmp_path, "allow_shared_key_file:=true").returncode is None


@pytest.mark.parametrize("node", ["drone", "ground"])
def test_nodes_refuse_to_start_without_the_origin(tmp_path: Path, node: str) -> None:
    keys = tmp_path / "keys.yaml"
    keyfile.add_device(keys, keyfile.generate_device("uav1", 0x260B0001))
    config = REPO / "config" / f"{node}.yaml"  # the shipped file leaves the origin unset
    argv = [sys.executable, "-m", f"lora_telemetry.nodes.{node}_node", "--ros-args",
            "--params-file", str(config), "-p", f"key_file:={keys}",
            "-p", f"fcnt_state_file:={tmp_path / 'state.json'}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert out.returncode == 2, out.stderr
    assert "origin is not set" in out.stderr and "origin_lat_deg" in out.stderr
    assert "Traceback" not in out.stderr
    # The placeholder of older parameter files, 0, 0, is refused too.
    zero = argv + ["-p", "origin_lat_deg:=0.0", "-p", "origin_lon_deg:=0.0", "-p", "origin_alt_m:=0.0"]
    out = subprocess.run(zero, capture_output=True, text=True, timeout=20)
    assert out.returncode == 2 and "unset placeholder" in out.stderr, out.stderr


@pytest.mark.parametrize("override, words", [
    ("spreading_factor:=seven", "spreading_factor"),
    ("radio_type:=lora", "radio_type"),
    ("update_period_s:=-1.0", "update_period_s"),
])
def test_bad_parameters_are_one_line_errors(tmp_path: Path, override: str, words: str) -> None:
    out = run_drone(tmp_path, override)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and words in out.stderr
