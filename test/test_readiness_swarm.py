"""Log wording plays no part in starting the swarm: every process of a one-UAV swarm runs with
its standard output and error sent to /dev/null (so not one human log line reaches the
ProcessGroup, nor the old ready regexes), and `start_swarm` still starts every kind in
order, each on its own announcement, with the data the announcements carry."""

from __future__ import annotations

import sys

import pytest

from rostest_support import require_ros

require_ros()

from lora_telemetry.sim.processes import ProcessGroup  # noqa: E402
from lora_telemetry.sim.swarm import SwarmOptions, plan_swarm, ros_env, start_swarm  # noqa: E402

pytestmark = pytest.mark.slow

# Runs `python -m MODULE ARGS...` with fds 1 and 2 on /dev/null: Python's prints and the ROS
# loggers' (written by rcutils in C) alike.
SILENCED = ("import os, runpy, sys; null = os.open(os.devnull, os.O_WRONLY); "
            "os.dup2(null, 1); os.dup2(null, 2); sys.argv = sys.argv[1:]; "
            "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def silenced(argv: list[str]) -> list[str]:
    assert argv[:2] == [sys.executable, "-m"], argv
    return [sys.executable, "-c", SILENCED, *argv[2:]]


def test_a_swarm_whose_processes_print_nothing_starts_on_their_announcements(tmp_path) -> None:
    plan = plan_swarm(SwarmOptions(uavs=1, radios="ebyte", update_period_s=1.0, seed=4), tmp_path)
    for spec in plan.specs:
        spec.argv = silenced(spec.argv)
    group = ProcessGroup(tmp_path / "logs", env=ros_env(log_dir=str(tmp_path / "ros_log")))
    try:
        start_swarm(plan, group)
        by_name = {c.name: c for c in group.children}
        assert list(by_name) == ["medium", "module-uav1", "vehicles", "drone-uav1", "ground"]
        assert not group.dead(), [(c.name, c.popen.returncode) for c in group.dead()]
        for child in group.children:
            assert child.lines == [], (child.name, child.lines)  # nothing printed at all
            assert child.ready is not None and child.ready.pid == child.pid, child.name
        assert [c.ready.kind for c in group.children] == [
            "medium", "module", "vehicle", "drone", "ground"]
        assert by_name["medium"].ready["port"] == plan.medium_port
        assert by_name["module-uav1"].ready["path"] == str(tmp_path / "tty" / "uav1.tty")
        assert by_name["vehicles"].ready["vehicles"] == [1]
        drone = by_name["drone-uav1"].ready
        assert drone["uav"] == "uav1" and drone["radio_open"] is True, drone
        ground = by_name["ground"].ready
        assert ground["listening"] is True and ground["frequency_hz"] == 433_175_000, ground
    finally:
        group.stop_all()
