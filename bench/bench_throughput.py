"""Benchmark: bulk goodput per data rate with maximum-size frames, under the duty cycle.

A bulk sender always has the next frame ready: for every channel of `bench_rate.CHANNELS`
(EU868 868.1 MHz 1 %, 869.525 MHz 10 %, EU433 433.175 MHz 10 % and at LoRaWAN's 1 %) and
every LoRa data rate, the node's `UplinkScheduler` with a `DutyCycleLedger` (policy "both":
T_off and the 1 h sliding window) is fed maximum-size frames on a simulated clock, and the
achieved cadence is measured. Frame = N + 13 bytes (MHDR 1, FHDR 7, FPort 1, MIC 4), N the
largest application payload of the region (LoRaWAN 1.0 Tables 16/33, repeater compatible, and
Tables 17/34, not repeater compatible; thesis lines ~5352-5376 and ~6189-6212). Goodput =
N * 8 / interval; "frame bit/s" = (N + 13) * 8 / interval counts the LoRaWAN overhead too.

Thesis figures (10 % channels, DR0-DR5), Table 4.5.6 "Throughput Ajustado con el Máximo
Payload" (lines 2696-2729): 10/10 received at an adjusted cadence of 28.25 / 15.75 / 7.25 /
7.00 / 7.50 / 4.50 s, 445.80 bit/s at DR5 433 MHz (line 2710) and 445.71 bit/s at DR5 868 MHz
(line 2724); and the first phase, Table 4.5.5 (lines 2624-2655, DR5: 4.25 s, 479.84 /
480.07 bit/s). The thesis's bitrate counts whole messages of 64/64/64/128/255/255 bytes
(Table 4.5.1, lines 2372-2384; check: 445.80 bit/s x 45.76 s / 10 = 2040 bits = 255 bytes).
Those are exactly the largest PHYPayloads of spec Table 17 (M + 5: 64, 64, 64, 128, 255, 255),
i.e. our no-repeater frames N + 13, so the thesis's bit/s compares with our "frame bit/s" of
the no-repeater rows, and its application goodput was (size - 13) * 8 / cadence.

Keys of bench/results/throughput.json: see `KEYS_DOC` (also written into the file as "keys").

Usage: python bench/bench_throughput.py [--hours H] [--seed N].
Writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_rate import (  # noqa: E402
    CHANNELS, HOUR_S, Channel, interval_stats, lora_drs, steady_interval, worst_window_airtime,
)
from bench.common import print_table, write_result  # noqa: E402
from lora_telemetry.core.access import AlohaPolicy, UplinkScheduler  # noqa: E402
from lora_telemetry.core.regions import get_region  # noqa: E402
from lora_telemetry.drone.transmitters import LORAWAN_OVERHEAD  # noqa: E402

UPDATE_PERIOD_S = 0.01  # the access policy's target period: far below any duty-cycle limit
PAYLOAD_TABLES = {"repeater": True, "no_repeater": False}

# Thesis Table 4.5.6 (lines 2696-2729), per band and DR: (received, adjusted cadence s,
# total time s, bitrate bit/s). Same figures at 433 and 868 MHz except DR5's last digits.
_T456_COMMON = {0: ("10/10", 28.25, 282.52, 18.12), 1: ("10/10", 15.75, 157.52, 32.50),
                2: ("10/10", 7.25, 72.52, 70.60), 3: ("10/10", 7.00, 70.27, 145.72),
                4: ("10/10", 7.50, 75.77, 269.24)}
THESIS_TABLE_4_5_6 = {
    "433": {**_T456_COMMON, 5: ("10/10", 4.50, 45.76, 445.80)},  # lines 2700-2710
    "868": {**_T456_COMMON, 5: ("10/10", 4.50, 45.77, 445.71)},  # lines 2714-2724
}
# Thesis Table 4.5.5 (lines 2624-2655): (received, time s, cadence s, bitrate bit/s).
THESIS_TABLE_4_5_5 = {
    "433": {0: (5, 126.65, 25.33, 20.21), 1: (9, 126.35, 14.04, 36.47),  # lines 2628-2638
            2: (18, 125.99, 7.00, 73.15), 3: (27, 186.30, 6.90, 148.41),
            4: (39, 291.38, 7.47, 273.05), 5: (69, 293.35, 4.25, 479.84)},
    "868": {0: (5, 126.89, 25.38, 20.17), 1: (9, 126.53, 14.06, 36.42),  # lines 2642-2652
            2: (18, 126.06, 7.00, 73.11), 3: (26, 186.71, 7.18, 142.60),
            # DR4 as printed: 193.56 s, yet 39 x 7.53 s = 293.7 s and 39 x 2040 bits /
            # 271.02 bit/s = 293.56 s: a typo for 293.56.
            4: (39, 193.56, 7.53, 271.02), 5: (69, 293.21, 4.25, 480.07)},
}
# Bytes per message the thesis counted (Table 4.5.1, lines 2372-2384).
THESIS_MESSAGE_BYTES = {0: 64, 1: 64, 2: 64, 3: 128, 4: 255, 5: 255}

KEYS_DOC = {
    "rows": "one per channel x LoRa uplink DR x payload table",
    "rows[].channel": "channel key (see 'channels')",
    "rows[].payload_table": "'repeater' (spec Tables 16/33, LoRaWAN's default) or"
                            " 'no_repeater' (Tables 17/34; = the thesis's message sizes)",
    "rows[].dr, sf, bandwidth_hz": "LoRaWAN data rate and its modulation",
    "rows[].duty_cycle": "effective duty-cycle limit of the channel's sub-band (0..1)",
    "rows[].app_payload_bytes": "N: largest FRMPayload at this DR (no FOpts)",
    "rows[].frame_bytes": "PHYPayload: N + 13",
    "rows[].airtime_ms": "time on air of one frame (SX1276 datasheet 4.1.1.7)",
    "rows[].toff_interval_s": "airtime / duty_cycle (frame + LoRaWAN T_off)",
    "rows[].computed_interval_s": "long-run limit under T_off and the 1 h window"
                                  " (bench_rate.steady_interval)",
    "rows[].computed_goodput_bps": "N * 8 / computed_interval_s",
    "rows[].toff_goodput_bps": "N * 8 / toff_interval_s (what T_off alone would allow)",
    "rows[].measured.frames": "frames the scheduler released in the simulated run",
    "rows[].measured.mean_interval_s": "mean time between consecutive frame starts",
    "rows[].measured.min_interval_s": "shortest time between consecutive frame starts",
    "rows[].measured.goodput_bps": "N * 8 / mean_interval_s: application bits per second",
    "rows[].measured.frame_bps": "(N + 13) * 8 / mean_interval_s: the thesis's way of counting",
    "rows[].measured.airtime_fraction_worst_hour": "most airtime in any 3600 s window / 3600 s",
    "rows[].thesis": "10 % channels, DR0-DR5 only (else null): Table 4.5.6 'adjusted' cadence,"
                     " time and bitrate, Table 4.5.5 first-phase cadence and bitrate, the"
                     " message size they count and the application goodput it implies",
    "simulated_hours": "simulated time per row",
    "wall_s": "wall-clock seconds the whole benchmark took",
}


def measure(channel: Channel, dr: int, repeater: bool, sim_s: float,
            seed: int) -> dict[str, Any]:
    region = get_region(channel.region)
    rate = region.data_rate(dr)
    n = region.max_app_payload(dr, repeater=repeater)
    frame = n + LORAWAN_OVERHEAD
    airtime = region.phy(dr, channel.frequency_hz).time_on_air(frame)
    dc = channel.duty_cycle
    computed = steady_interval(airtime, dc)

    scheduler: UplinkScheduler[int] = UplinkScheduler(
        channel.ledger(), AlohaPolicy(UPDATE_PERIOD_S, rng=random.Random(seed)),
        channel.frequency_hz)
    starts: list[float] = []
    t, seq = 0.0, 0
    scheduler.offer(seq, airtime, t)
    while True:
        start = scheduler.next_start(t)
        assert start is not None
        if start >= sim_s:
            break
        t = start
        if scheduler.due(t) is None:  # (cannot happen: next_start said it is due)
            raise RuntimeError(f"scheduler withheld a due frame at t={t}")
        scheduler.sent(t, airtime)
        starts.append(t)
        t += airtime  # the radio is busy; the bulk sender then has the next chunk ready
        seq += 1
        scheduler.offer(seq, airtime, t)

    mean, shortest = interval_stats(starts)
    worst = worst_window_airtime(starts, [airtime] * len(starts))
    thesis = None
    band = channel.thesis_band
    if band is not None and dr in THESIS_TABLE_4_5_6[band]:
        received, cadence, total_s, bps = THESIS_TABLE_4_5_6[band][dr]
        p_received, p_time, p_cadence, p_bps = THESIS_TABLE_4_5_5[band][dr]
        size = THESIS_MESSAGE_BYTES[dr]
        thesis = {
            "message_bytes": size,
            "table_4_5_6": {"received": received, "adjusted_interval_s": cadence,
                            "total_time_s": total_s, "bitrate_bps": bps},
            "table_4_5_5": {"received": p_received, "total_time_s": p_time,
                            "interval_s": p_cadence, "bitrate_bps": p_bps},
            "app_goodput_bps": round((size - LORAWAN_OVERHEAD) * 8 / cadence, 2),
        }
    return {
        "channel": channel.key,
        "region": channel.region,
        "frequency_hz": channel.frequency_hz,
        "payload_table": "repeater" if repeater else "no_repeater",
        "dr": dr,
        "sf": rate.sf,
        "bandwidth_hz": rate.bandwidth_hz,
        "duty_cycle": dc,
        "app_payload_bytes": n,
        "frame_bytes": frame,
        "airtime_ms": round(airtime * 1000, 3),
        "toff_interval_s": round(airtime / dc, 6),
        "computed_interval_s": round(computed, 6),
        "computed_goodput_bps": round(n * 8 / computed, 3),
        "toff_goodput_bps": round(n * 8 * dc / airtime, 3),
        "measured": {
            "frames": len(starts),
            "mean_interval_s": None if mean is None else round(mean, 6),
            "min_interval_s": None if shortest is None else round(shortest, 6),
            "goodput_bps": None if mean is None else round(n * 8 / mean, 3),
            "frame_bps": None if mean is None else round(frame * 8 / mean, 3),
            "airtime_fraction_worst_hour": round(worst / HOUR_S, 6),
        },
        "thesis": thesis,
    }


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def _short(channel: Channel) -> str:
    return f"{channel.frequency_hz / 1e6:g} {channel.duty_cycle:.0%}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours per row")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if not (math.isfinite(args.hours) and args.hours > 0):
        ap.error("--hours must be a positive number")

    wall0 = time.perf_counter()
    rows = [measure(ch, dr, repeater, args.hours * HOUR_S, args.seed)
            for repeater in PAYLOAD_TABLES.values()
            for ch in CHANNELS for dr in lora_drs(get_region(ch.region))]
    wall = time.perf_counter() - wall0
    by_key = {c.key: c for c in CHANNELS}

    print(f"Bulk goodput with maximum-size frames, scheduler + duty-cycle ledger on a simulated"
          f" clock, {args.hours:g} h per row")
    for table, title in (("repeater", "A. repeater-compatible N (LoRaWAN 1.0 Tables 16/33)"),
                         ("no_repeater", "B. not-repeater-compatible N (Tables 17/34): frames"
                                         " of the thesis's sizes, vs thesis Tables 4.5.6/4.5.5")):
        print(f"\n{title}")
        out = []
        for r in (r for r in rows if r["payload_table"] == table):
            m, th = r["measured"], r["thesis"]
            line = [
                f"{r['region']} {_short(by_key[r['channel']])}", f"DR{r['dr']}",
                r["app_payload_bytes"], r["frame_bytes"], _f(r["airtime_ms"], ".3f"),
                _f(r["toff_interval_s"], ".3f"), _f(r["computed_interval_s"], ".3f"),
                _f(m["mean_interval_s"], ".3f"),
                _f(100 * m["airtime_fraction_worst_hour"], ".3f"),
                _f(m["goodput_bps"], ".2f"), _f(r["toff_goodput_bps"], ".2f"),
                _f(m["frame_bps"], ".2f"),
            ]
            if table == "no_repeater":
                line += ["-", "-", "-", "-"] if th is None else [
                    th["message_bytes"], _f(th["table_4_5_6"]["adjusted_interval_s"], ".2f"),
                    _f(th["table_4_5_6"]["bitrate_bps"], ".2f"),
                    _f(th["app_goodput_bps"], ".2f")]
            out.append(line)
        headers = ["channel", "DR", "N B", "frame B", "air ms", "a/dc s", "limit s", "meas s",
                   "worst h %", "goodput b/s", "a/dc b/s", "frame b/s"]
        if table == "no_repeater":
            headers += ["th B", "th4.5.6 s", "th b/s", "th app b/s"]
        print_table(headers, out)
    print("\nN = application payload; a/dc = airtime/duty cycle (frame + T_off); limit = long-run"
          "\ninterval with the 1 h window too; meas = mean interval achieved; goodput = N*8/meas;"
          "\na/dc b/s = N*8/(a/dc); frame b/s = (N+13)*8/meas (the thesis counts whole messages);"
          "\nth = thesis Table 4.5.6 at 10 % (lines 2696-2729): message bytes, adjusted cadence,"
          "\nits bit/s, and the application goodput that implies ((bytes-13)*8/cadence).")
    print(f"\n{len(rows)} rows in {wall:.2f} s wall time")

    path = write_result("throughput", {
        "keys": KEYS_DOC,
        "simulated_hours": args.hours,
        "seed": args.seed,
        "lorawan_overhead_bytes": LORAWAN_OVERHEAD,
        "update_period_s": UPDATE_PERIOD_S,
        "channels": [{"key": c.key, "region": c.region, "frequency_hz": c.frequency_hz,
                      "duty_cycle": c.duty_cycle, "cap": c.cap, "note": c.note}
                     for c in CHANNELS],
        "thesis": {
            "table_4_5_6": {b: {str(dr): list(v) for dr, v in rows_.items()}
                            for b, rows_ in THESIS_TABLE_4_5_6.items()},
            "table_4_5_6_columns": ["received", "adjusted_interval_s", "total_time_s",
                                    "bitrate_bps"],
            "table_4_5_5": {b: {str(dr): list(v) for dr, v in rows_.items()}
                            for b, rows_ in THESIS_TABLE_4_5_5.items()},
            "table_4_5_5_columns": ["received", "total_time_s", "interval_s", "bitrate_bps"],
            "message_bytes": {str(dr): b for dr, b in THESIS_MESSAGE_BYTES.items()},
            "source": "uav-swarm-lora-thesis-with-datasheets.txt lines 2696-2729 (Table 4.5.6),"
                      " 2624-2655 (Table 4.5.5), 2372-2384 (Table 4.5.1 message sizes);"
                      " 10 % duty cycle at 433.175 and 869.525 MHz (lines 2668-2682)",
        },
        "rows": rows,
        "wall_s": round(wall, 2),
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
