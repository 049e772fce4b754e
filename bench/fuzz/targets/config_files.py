"""Files a person edits: key files (keyfile.py) and parameter files (config/*.yaml).

* keyfile: the input is a key file's bytes, written owner-only and read by ``load_key_file``:
  KeyFileError or devices; devices written back read back the same.
* params: byte 0 picks drone, ground (nested or flat ``devices.<uav>.<field>`` names, as ROS
  parameters arrive) or medium; the rest is the YAML text of the parameter file. Drone and
  ground files are parsed here with PyYAML (standing in for the ROS parameter loader, which
  is not under test: its own YAML errors end the input) and the mapping goes to
  ``from_mapping`` and ``params.coerce``; a medium file goes to ``load_medium_params`` whole.
  ConfigError only; a configuration that loads has finite, positive periods and timeouts.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lora_telemetry import keyfile, params
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.drone.config import DroneConfig
from lora_telemetry.ground.config import GroundConfig
from lora_telemetry.sim.medium import load_medium_params

from bench.fuzz.base import REPO, Target, check, fixture_key

YAML_TOKENS = (
    b"!!int ", b"!!float ", b"!!timestamp ", b"!!str ", b"!!binary ", b"!!bool ", b"!!null ",
    b"2001-02-30", b"2001-12-14t21:59:43.10-05:00", b"[", b"]", b"{", b"}", b"&a ", b"*a",
    b"? ", b"- ", b": ", b"\n  ", b"\n", b"~", b"~nosuchuser/x", b"<<: ", b"'", b'"', b"#",
    b"%YAML 1.1\n---\n", b"---\n", b"...\n", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\t",
    b"!!python/object:os.system ", b"[" * 64, b"1: 2", b"null", b"true", b".inf", b"-.inf",
    b".nan", b"1e999",
)
#: Placeholder for the harness's own key file in ground parameter files (keeps inputs
#: independent of the temporary directory, so a crash file replays anywhere).
KEY_FILE_PLACEHOLDER = "FUZZ_KEY_FILE"

_KEYS = {
    name: keyfile.DeviceKeys(name, addr, fixture_key(f"{name} nwkskey"), fixture_key(f"{name} appskey"))
    for name, addr in (("uav1", 0x26011CA2), ("uav2", 0x26011234))
}


class _TempDir:
    """One private temporary directory per target, removed by close()."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lora_telemetry_fuzz_")
        self.path = Path(self._tmp.name)

    def close(self) -> None:
        self._tmp.cleanup()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class KeyFileTarget(Target):
    name = "keyfile"
    max_len = 2048
    tokens = YAML_TOKENS + (b"devices:", b"devaddr: ", b"nwkskey: ", b"appskey: ", b"0x")

    def __init__(self) -> None:
        self.tmp = _TempDir()
        self.path = self.tmp.path / "keys.yaml"
        self.copy = self.tmp.path / "copy.yaml"

    def seeds(self) -> list[bytes]:
        keyfile.write_key_file(self.path, _KEYS)
        full = self.path.read_bytes()
        return [full, full.replace(b"26011CA2", b"26011234"), b"", b"devices: {}\n",
                b"devices:\n  uav1: {devaddr: 26011CA2, nwkskey: " + b"0" * 32 + b", appskey: "
                + b"F" * 32 + b"}\n"]

    def run(self, data: bytes) -> str:
        _write_private(self.path, data)
        try:
            devices = keyfile.load_key_file(self.path)
        except keyfile.KeyFileError:
            return "KeyFileError"
        if devices:
            keyfile.write_key_file(self.copy, devices)
            check(keyfile.load_key_file(self.copy) == devices, "key file does not round-trip")
        return f"devices:{min(len(devices), 3)}"

    def close(self) -> None:
        self.tmp.close()


def _strip_comments(text: str) -> str:
    lines = (re.sub(r"\s+#.*$", "", line) for line in text.splitlines())
    return "\n".join(line for line in lines if line.strip() and not line.lstrip().startswith("#")) + "\n"


def _ros_parameters(data: Any) -> Any:
    """The ``/**: ros__parameters:`` mapping of a ROS parameter file, else the whole file."""
    if isinstance(data, Mapping):
        node = data.get("/**")
        if isinstance(node, Mapping) and "ros__parameters" in node:
            return node["ros__parameters"]
    return data


def _flatten(values: Mapping) -> dict:
    """ROS parameter names: nested mappings become dotted names (devices.uav1.system_id)."""
    out: dict = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            for sub, inner in _flatten(value).items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


_PERIODS = {
    DroneConfig: ("update_period_s", "max_sample_age_s", "stale_timeout_s",
                  "reconnect_backoff_max_s", "diagnostics_period_s"),
    GroundConfig: ("state_rate_hz", "stale_after_s", "receive_timeout_s"),
}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: What the stand-in ROS parameter loader may raise on hostile text (its errors end an input).
_LOADER_ERRORS = (yaml.YAMLError, ValueError, KeyError, IndexError, AttributeError, TypeError,
                  RecursionError)


class ParamsTarget(Target):
    name = "params"
    max_len = 3072
    tokens = YAML_TOKENS + tuple(f"{name}: ".encode() for cfg in _PERIODS for name in _PERIODS[cfg])

    def __init__(self) -> None:
        self.tmp = _TempDir()
        self.key_file = self.tmp.path / "keys.yaml"
        keyfile.write_key_file(self.key_file, _KEYS)
        self.medium_file = self.tmp.path / "medium.yaml"

    def seeds(self) -> list[bytes]:
        out = []
        for kind, name in enumerate(("drone", "ground", "medium")):
            text = (REPO / "config" / f"{name}.yaml").read_text()
            if name == "ground":
                text = re.sub(r"key_file: .*", f"key_file: {KEY_FILE_PLACEHOLDER}", text)
            for variant in (text, _strip_comments(text)):
                out.append(bytes((kind,)) + variant.encode())
                if name == "ground":
                    out.append(bytes((kind | 4,)) + variant.encode())
        return out

    def run(self, data: bytes) -> str:
        kind = (data[0] if data else 0) % 3
        body = data[1:]
        if kind == 2:
            _write_private(self.medium_file, body)
            try:
                load_medium_params(self.medium_file)
            except ConfigError:
                return "medium:ConfigError"
            return "medium:ok"
        try:
            values = _ros_parameters(yaml.load(body, Loader=_YAML_LOADER))
        except _LOADER_ERRORS as exc:
            return f"loader:{type(exc).__name__}"
        if not isinstance(values, Mapping):
            return "loader:not-a-mapping"
        cls = DroneConfig if kind == 0 else GroundConfig
        if kind == 1:
            values = {k: (str(self.key_file) if v == KEY_FILE_PLACEHOLDER else v)
                      for k, v in values.items()}
            if data[0] & 4:
                values = _flatten(values)
        for name, value in list(values.items())[:64]:
            for field_kind in ("int", "float", "str"):
                try:
                    params.coerce(str(name), value, field_kind)
                except ConfigError:
                    pass
        try:
            config = cls.from_mapping(values)
        except ConfigError:
            return f"{cls.__name__}:ConfigError"
        for name in _PERIODS[cls]:
            value = getattr(config, name)
            check(math.isfinite(value) and value > 0, f"{name} = {value!r} accepted")
        if isinstance(config, GroundConfig) and config.key_file == str(self.key_file):
            try:
                config.registry()
            except ConfigError:
                return "registry:ConfigError"
        return f"{cls.__name__}:ok"

    def close(self) -> None:
        self.tmp.close()
