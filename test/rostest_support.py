"""Helpers for tests that need ROS 2 (rclpy and the generated messages)."""

from __future__ import annotations

import os

import pytest


def require_ros() -> None:
    """Skip the calling test module when ROS 2 is not importable.

    `make test` sets LORA_TELEMETRY_REQUIRE_ROS=1: there a missing ROS 2 is a failure, not a
    skip, so a broken set-up can never pass as green.
    """
    try:
        import rclpy  # noqa: F401

        import lora_telemetry.msg  # noqa: F401
    except ImportError as exc:
        if os.environ.get("LORA_TELEMETRY_REQUIRE_ROS") == "1":
            raise
        pytest.skip(f"ROS 2 not available: {exc}", allow_module_level=True)
