"""Printing results for people (aligned `key: value` lines) or machines (`--json`)."""

from __future__ import annotations

import json
from typing import Any, Mapping


def emit(args: Any, result: Mapping[str, Any]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, sort_keys=False))
        return
    width = max((len(k) for k in result), default=0)
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.3f}".rstrip("0").rstrip(".")
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif value is None:
            value = "-"
        print(f"{key:<{width}}  {value}")
