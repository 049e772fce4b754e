"""Node parameters: plain YAML numbers are accepted, bad values are one-line errors."""

from __future__ import annotations

import math
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


# --- parameter mappings that crashed the loaders (found by the fuzz harness, bench/fuzz,
# target "params"; each used to escape as the exception named in its id) ----------------------

from lora_telemetry import params  # noqa: E402
from lora_telemetry.core.errors import ConfigError  # noqa: E402
from lora_telemetry.drone.config import DroneConfig  # noqa: E402
from lora_telemetry.ground.config import GroundConfig  # noqa: E402

DRONE = {"uav_name": "uav1", "mavlink_url": "udpin:127.0.0.1:14550", "radio_port": "/dev/null",
         "key_file": "/k.yaml", "fcnt_state_file": "/f.json", "origin_lat_deg": 47.0,
         "origin_lon_deg": 8.0, "origin_alt_m": 400.0}
GROUND = {"key_file": "/k.yaml", "origin_lat_deg": 47.0, "origin_lon_deg": 8.0,
          "origin_alt_m": 400.0, "devices": {"uav1": {"system_id": 1}}}


def test_the_base_mappings_load() -> None:
    DroneConfig.from_mapping(DRONE)
    GroundConfig.from_mapping(GROUND)


@pytest.mark.parametrize("change", [
    pytest.param({1: "x"}, id="TypeError-int-key"),
    pytest.param({None: "x"}, id="TypeError-None-key"),
    pytest.param({"origin_lat_deg": 10**400}, id="OverflowError-int-for-float"),
    pytest.param({"key_file": "~nosuchuser_lora_telemetry/k.yaml"}, id="RuntimeError-tilde-user"),
    pytest.param({"fcnt_state_file": "~nosuchuser_lora_telemetry/f"}, id="RuntimeError-tilde-user2"),
])
def test_drone_parameters_that_crashed_are_config_errors(change: dict) -> None:
    with pytest.raises(ConfigError):
        DroneConfig.from_mapping({**DRONE, **change})


@pytest.mark.parametrize("change", [
    pytest.param({1: "x"}, id="AttributeError-int-key"),
    pytest.param({"devices": ["uav1"]}, id="TypeError-devices-list"),
    pytest.param({"devices": "uav1"}, id="TypeError-devices-str"),
    pytest.param({"devices": {"uav1": {1: 2, None: 3}}}, id="TypeError-device-field-keys"),
    pytest.param({"origin_alt_m": -(10**400)}, id="OverflowError-int-for-float"),
    pytest.param({"key_file": "~nosuchuser_lora_telemetry/k.yaml"}, id="RuntimeError-tilde-user"),
])
def test_ground_parameters_that_crashed_are_config_errors(change: dict) -> None:
    with pytest.raises(ConfigError):
        GroundConfig.from_mapping({**GROUND, **change})


# Periods and timeouts must be finite: `update_period_s: .inf` used to be accepted (a drone
# that never sends), as were the other periods and the ground's rate and timeouts.
@pytest.mark.parametrize("name", ["update_period_s", "max_sample_age_s", "stale_timeout_s",
                                  "reconnect_backoff_max_s", "diagnostics_period_s"])
@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0])
def test_drone_periods_must_be_finite_and_positive(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=name):
        DroneConfig.from_mapping({**DRONE, name: value})


@pytest.mark.parametrize("name", ["state_rate_hz", "stale_after_s", "receive_timeout_s"])
@pytest.mark.parametrize("value", [math.inf, math.nan, 0.0])
def test_ground_rates_and_timeouts_must_be_finite_and_positive(name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=name):
        GroundConfig.from_mapping({**GROUND, name: value})


@pytest.mark.parametrize("kind", ["int", "float"])
def test_coerce_of_an_int_beyond_float_range_is_a_config_error(kind: str) -> None:
    with pytest.raises(ConfigError, match="parameter p"):
        params.coerce("p", 10**400 if kind == "float" else math.inf, kind)
