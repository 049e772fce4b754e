"""A UAV's health as the ground sees it: one level and one sentence for /diagnostics.

The order says what a person should look at first: a counter that went back (the UAV's
frames are all refused, and only new keys fix it) before silence, silence before saturated
values (frames arrive, but a value in them is only a bound; see core/saturation.py).
Levels are plain strings ("ok", "warn", "stale"); the node maps them to DiagnosticStatus.
"""

from __future__ import annotations

from lora_telemetry.core.gateway import COUNTER_WENT_BACK_AFTER, LinkCounters


def uav_health(name: str, link: LinkCounters, now: float, stale_after_s: float) -> tuple[str, str]:
    """(level, message) of one UAV's diagnostic."""
    if link.replays_in_a_row >= COUNTER_WENT_BACK_AFTER:
        return "warn", (
            f"{link.replays_in_a_row} authentic frames in a row with old counters (newest FCnt "
            f"{link.last_replayed_fcnt32}, last accepted {link.last_fcnt32}): the UAV's counter "
            "went back (its fcnt_state_file lost?) or frames are being replayed; give it new "
            f"keys: lora-telemetry keys rotate --name {name}")
    if link.last_rx_time is None:
        return "stale", "never heard"
    age = link.age_s(now)
    if age > stale_after_s:
        return "stale", f"silent for {age:.0f} s"
    if link.last_saturated_time is not None and now - link.last_saturated_time <= stale_after_s:
        return "warn", "saturated: " + "; ".join(link.saturation_notes)
    return "ok", "fresh"
