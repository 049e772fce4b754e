"""Turning what the swarm monitor saw into the live table and the end-of-run summary."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core.aloha import finite_aloha_success, offered_load, pure_aloha_success
from lora_telemetry.core.geo import haversine_m
from lora_telemetry.sim.medium_model import MediumParams

CAPTURE_MARGIN_DB = MediumParams().capture_margin_db

# Codec resolution (docs/wire-format.md): 0.5 m steps per axis, so a position is off by at
# most 0.25 m east and north (0.354 m horizontally) and 0.25 m vertically; the 20 ms time step
# adds up to half a step of motion.
HORIZONTAL_TOLERANCE_M = math.hypot(0.25, 0.25)
VERTICAL_TOLERANCE_M = 0.25

TruthFn = Callable[[str, float], "tuple[float, float, float, float, float] | None"]


def fmt(value: float | None, spec: str, unknown: str = "-") -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return unknown
    return format(value, spec)


def table_rows(records: Mapping[str, Any], radios: Mapping[str, str]) -> list[list[str]]:
    rows = []
    for name, rec in records.items():
        m = rec.latest
        sent = len(rec.sent)
        got = sum(1 for f in rec.sent if f in rec.received)
        ratio = got / sent if sent else math.nan
        if m is None:
            rows.append([name, radios.get(name, ""), "waiting", "-", "-", "-", "-", "-",
                         fmt(ratio, ".0%"), "-", "-"])
            continue
        rows.append([
            name, radios.get(name, ""), m.flight_mode + ("" if m.armed else " (disarmed)"),
            f"{m.latitude_deg:.6f}, {m.longitude_deg:.6f}", fmt(m.altitude_relative_m, ".1f"),
            fmt(m.battery_remaining_pct, ".0f"), fmt(m.link.rssi_dbm, ".0f"),
            fmt(m.link.snr_db, ".1f"), fmt(ratio, ".0%") + f" ({got}/{sent})",
            fmt(m.link.latency_s, ".2f"), fmt(rec.age_s, ".1f") + (" STALE" if rec.stale else ""),
        ])
    return rows


HEADERS = ["UAV", "radio", "mode", "position (lat, lon)", "alt m", "batt %", "RSSI dBm",
           "SNR dB", "delivered", "latency s", "age s"]


def render_table(rows: list[list[str]], title: str) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(HEADERS)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def summarize(records: Mapping[str, Any], *, radios: Mapping[str, str], window: tuple[float, float],
              period_s: float, airtime_s: float, truth: TruthFn | None,
              duration_s: float, access: str = "aloha") -> dict[str, Any]:
    """Per-UAV results over the frames sent inside `window` (start, end).

    A window that ends before it starts (a run that stopped, or whose processes died, before
    the warm-up and the closing margin left any time) is empty: no frame counts, its length is
    0, and ``measurement_window_empty`` says so; a negative length is never reported."""
    t0, t1 = window
    empty = not t1 > t0
    if empty:
        t1 = t0
    per_uav: dict[str, Any] = {}
    tot_sent = tot_got = 0
    all_ages: list[float] = []
    for name, rec in records.items():
        sent = [] if empty else [f for f, t in rec.sent.items() if t0 <= t <= t1]
        got = [rec.received[f] for f in sent if f in rec.received]
        tot_sent += len(sent)
        tot_got += len(got)
        lat = [r.latency_s for r in got if not math.isnan(r.latency_s)]
        # The state's age as a coordinator sees it: its arrival on /swarm/<uav>/telemetry
        # minus its sample time (both on this host's clock, which is the ground's).
        ages = [r.rx_time - r.sample_time for r in got]
        all_ages += ages
        entry: dict[str, Any] = {
            "radio": radios.get(name, ""),
            "frames_sent": len(sent),
            "frames_received": len(got),
            "delivery_ratio": round(len(got) / len(sent), 4) if sent else None,
            "mean_latency_s": round(sum(lat) / len(lat), 4) if lat else None,
            "max_latency_s": round(max(lat), 4) if lat else None,
            "updates_per_s": round(len(got) / (t1 - t0), 4) if t1 > t0 else None,
            "state_age_p95_s": round(percentile(ages, 95), 4) if ages else None,
        }
        link = rec.link
        if link is not None and link.tdma_slot:  # the ground's view of this UAV's slot timing
            entry.update(tdma_slot=int(link.tdma_slot),
                         slot_error_mean_ms=_finite_or_none(link.slot_error_mean_ms),
                         slot_error_p95_ms=_finite_or_none(link.slot_error_p95_ms),
                         frames_outside_slot=int(link.frames_outside_slot))
        if truth is not None:
            h_err = v_err = 0.0
            ok = bool(got)
            for r in got:
                true = truth(name, r.sample_time)
                if true is None:
                    continue
                tlat, tlon, talt, gs, climb = true
                h = haversine_m(r.lat, r.lon, tlat, tlon)
                v = abs(r.alt_amsl - talt)
                h_err, v_err = max(h_err, h), max(v_err, v)
                slack = tcodec.TIME_STEP_S / 2
                ok &= h <= HORIZONTAL_TOLERANCE_M + gs * slack + 1e-6
                ok &= v <= VERTICAL_TOLERANCE_M + abs(climb) * slack + 1e-6
            entry.update(max_position_error_m=round(h_err, 3),
                         max_altitude_error_m=round(v_err, 3), positions_within_resolution=ok)
        per_uav[name] = entry
    n = len(records)
    load = offered_load(n, airtime_s, period_s)
    expected = finite_aloha_success(n, airtime_s, period_s)
    with_capture = _aloha_with_capture(records, per_uav, airtime_s, period_s)
    overall = tot_got / tot_sent if tot_sent else None
    return {
        "access": access,
        "uavs": n,
        "duration_s": round(duration_s, 1),
        "measurement_window_s": round(t1 - t0, 1),
        "measurement_window_empty": empty,
        "update_period_s": period_s,
        "frame_airtime_s": airtime_s,
        "offered_load": round(load, 4),
        "aloha_expected_delivery_ratio": round(expected, 4),
        "aloha_poisson_delivery_ratio": round(pure_aloha_success(load), 4),
        "delivery_ratio": round(overall, 4) if overall is not None else None,
        "delivery_vs_aloha_points": round(100 * (overall - expected), 2) if overall is not None else None,
        # The same collision rule, but a frame survives interferers received >= the capture
        # margin weaker (mixed swarms of 10 dBm and 30 dBm modules capture each other).
        "aloha_with_capture_delivery_ratio": (round(with_capture, 4) if with_capture is not None
                                              else None),
        "delivery_vs_aloha_with_capture_points": (
            round(100 * (overall - with_capture), 2)
            if overall is not None and with_capture is not None else None),
        "all_uavs_received": all(v["frames_received"] > 0 for v in per_uav.values()),
        "all_positions_within_resolution": (
            all(v.get("positions_within_resolution", False) for v in per_uav.values())
            if truth is not None else None),
        "updates_per_s_min": min((v["updates_per_s"] for v in per_uav.values()
                                  if v["updates_per_s"] is not None), default=None),
        "state_age_p50_s": round(percentile(all_ages, 50), 4) if all_ages else None,
        "state_age_p95_s": round(percentile(all_ages, 95), 4) if all_ages else None,
        "per_uav": per_uav,
    }


def _finite_or_none(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def _aloha_with_capture(records: Mapping[str, Any], per_uav: Mapping[str, Any], airtime_s: float,
                        period_s: float, margin_db: float = CAPTURE_MARGIN_DB) -> float | None:
    """Pure ALOHA with capture, from each UAV's mean RSSI at the gateway: a frame of UAV i is
    lost when a frame of UAV j starts within its vulnerable period and j is not at least
    `margin_db` weaker. Weighted by frames sent; None until every UAV has an RSSI."""
    rssi = {}
    for name, rec in records.items():
        if rec.link is None or math.isnan(rec.link.mean_rssi_dbm):
            return None
        rssi[name] = rec.link.mean_rssi_dbm
    vulnerable = min(1.0, 2.0 * airtime_s / period_s)
    total = weighted = 0.0
    for name in records:
        p = 1.0
        for other in records:
            if other != name and rssi[other] > rssi[name] - margin_db:
                p *= 1.0 - vulnerable
        sent = per_uav[name]["frames_sent"]
        total += sent
        weighted += sent * p
    return weighted / total if total else None
