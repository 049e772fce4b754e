"""Turning ROS parameters or YAML values into typed configuration fields, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lora_telemetry.core.errors import ConfigError


def coerce(name: str, value: Any, kind: str) -> Any:
    """`value` as the dataclass field type `kind` ("int", "float", "str"); ints may be written
    as strings ("0x34"), floats as ints. Anything else is a ConfigError naming the parameter."""
    try:
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


def expand_user(path: str | os.PathLike[str], what: str,
                error: type[ConfigError] = ConfigError) -> str:
    """``path`` with a leading ``~`` or ``~user`` expanded; an unknown user (Path.expanduser
    raises RuntimeError) or a home that cannot be found is ``error``, not a traceback."""
    try:
        return str(Path(path).expanduser())
    except RuntimeError as exc:
        raise error(f"{what} {str(path)!r}: cannot expand '~': {exc}") from None
