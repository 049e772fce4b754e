"""Small helpers every node shares: parameters from dataclass fields, main() boilerplate."""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any, Callable

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.readiness import announce_failed

_DEFAULT_FOR_TYPE = {"str": "", "float": math.nan, "int": 0, "bool": False}


def declare_dataclass_parameters(node: Node, cls: type) -> dict[str, Any]:
    """Declare one ROS parameter per dataclass field and return the values that were set.

    Fields without a default are declared with an empty value of their type; values left
    empty are omitted, so the dataclass reports them as missing by name. Parameters are
    dynamically typed (`origin_alt_m: 488` is as good as `488.0`); the config dataclass
    converts and validates them with clear messages.
    """
    dynamic = ParameterDescriptor(dynamic_typing=True)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING
        default = f.default if has_default else _DEFAULT_FOR_TYPE[str(f.type)]
        value = node.declare_parameter(f.name, default, dynamic).value
        if not has_default and (value == "" or (isinstance(value, float) and math.isnan(value))):
            continue
        values[f.name] = value
    return values


def run_node(make_node: Callable[[], Node], name: str) -> int:
    """rclpy init/spin/shutdown with clean exits on Ctrl-C, SIGTERM and configuration errors."""
    rclpy.init()
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (LoraTelemetryError, ParameterException) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        announce_failed(str(exc))
        return 2
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def log_event(node: Node, level: str, text: str) -> None:
    """Log at "info", "warn" or "error". One call site per severity: rclpy refuses a
    severity change at the same call site."""
    log = node.get_logger()
    if level == "error":
        log.error(text)
    elif level == "warn":
        log.warning(text)
    else:
        log.info(text)
