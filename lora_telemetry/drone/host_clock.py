"""Emulation only: give this process a host clock that is off and drifts, as a companion
computer without NTP has (or a SITL whose clock ran 6.5 s behind its host, issue 13).

`skew_host_clock(offset_s, drift_ppm)` replaces ``time.time`` for the whole process, so
everything that reads the host clock (the MAVLink link's receive times, the radio drivers'
receive times, log records, ROS stamps) sees the same wrong clock, as on a real machine;
``time.monotonic`` and the waits are untouched. The drone node does this when its
``sim_clock_offset_s``/``sim_clock_drift_ppm`` parameters are set, and only then.
"""

from __future__ import annotations

import time

_true_time = time.time


def skew_host_clock(offset_s: float, drift_ppm: float) -> None:
    """From now on ``time.time()`` returns true time + offset + drift since this call."""
    start = _true_time()

    def skewed() -> float:
        now = _true_time()
        return now + offset_s + (now - start) * drift_ppm * 1e-6

    setattr(time, "time", skewed)
