"""Turning ROS parameters or YAML values into typed configuration fields, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from lora_telemetry.core.errors import ConfigError


#: The operating area's origin: every drone node and the ground node must share it.
ORIGIN_PARAMETERS = ("origin_lat_deg", "origin_lon_deg", "origin_alt_m")

_ORIGIN_HOW = ("your flying field's latitude, longitude and altitude above mean sea level, the "
               "same on every drone node and the ground node (positions travel as offsets "
               "within 4 km of it, altitudes within 255 m of origin_alt_m)")


def missing_parameters(kind: str, missing: list[str]) -> ConfigError:
    """The error for parameters without a default that were not given; the origin gets its
    own explanation, since leaving it unset is the usual first-run mistake."""
    origin = [n for n in missing if n in ORIGIN_PARAMETERS]
    if origin:
        return ConfigError(f"the origin is not set: give {', '.join(origin)}: {_ORIGIN_HOW}")
    return ConfigError(f"missing {kind} parameter(s): {', '.join(missing)}")


def check_origin(lat_deg: float, lon_deg: float) -> None:
    """Refuse 0, 0: the placeholder of older parameter files, not a flying field (it lies in
    the Gulf of Guinea), and with it every position would saturate without a word."""
    if lat_deg == 0.0 and lon_deg == 0.0:
        raise ConfigError(f"origin_lat_deg, origin_lon_deg are 0, 0, the unset placeholder: set "
                          f"them and origin_alt_m to {_ORIGIN_HOW}")


def coerce(name: str, value: Any, kind: str) -> Any:
    """`value` as the dataclass field type `kind` ("int", "float", "str", "bool"); ints may be
    written as strings ("0x34"), floats as ints, booleans as "true"/"false" (launch arguments
    are strings). Anything else is a ConfigError naming the parameter."""
    try:
        if kind == "bool":
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value, 0) if isinstance(value, str) else int(value)
        if kind == "float":
            if isinstance(value, bool) or isinstance(value, str):
                raise ValueError
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
        raise ConfigError(f"parameter {name}: {value!r} is not a valid {kind}") from None
    return value


def launch_overrides(given: Mapping[str, str], kinds: Mapping[str, str]) -> dict[str, Any]:
    """The launch arguments a user gave, typed for the node's parameters.

    Launch files declare every overridable argument with the empty default, meaning "not
    given: the parameter file's value stands"; only the others override (`kinds` gives each
    one's type: "str", "float", "int" or "bool"). Always passing the arguments' defaults would
    silently replace what a user wrote in the parameter file."""
    out: dict[str, Any] = {}
    for name, text in given.items():
        if text == "":
            continue
        kind = kinds[name]
        if kind == "float":
            try:
                value: Any = float(text)
            except ValueError:
                raise ConfigError(f"launch argument {name}:={text!r} is not a number") from None
        elif kind == "int":
            try:
                value = int(text, 0)
            except ValueError:
                raise ConfigError(f"launch argument {name}:={text!r} is not an integer") from None
        else:
            value = coerce(name, text, kind)
        out[name] = value
    return out


def parameter_in_file(path: str, name: str) -> Any:
    """A node parameter's value in a ROS 2 parameter file (any node section), or None."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"parameter file {path}: {exc}") from None
    if not isinstance(data, dict):
        return None
    for section in data.values():
        params = section.get("ros__parameters") if isinstance(section, dict) else None
        if isinstance(params, dict) and name in params:
            return params[name]
    return None


def expand_user(path: str | os.PathLike[str], what: str,
                error: type[ConfigError] = ConfigError) -> str:
    """``path`` with a leading ``~`` or ``~user`` expanded; an unknown user (Path.expanduser
    raises RuntimeError) or a home that cannot be found is ``error``, not a traceback."""
    try:
        return str(Path(path).expanduser())
    except RuntimeError as exc:
        raise error(f"{what} {str(path)!r}: cannot expand '~': {exc}") from None
