"""TDMA capacity: how many UAVs one channel holds against superframe period, SF and duty cycle.

Pure arithmetic over the project's own planner (core/tdma.plan_schedule, max_swarm): no
simulation. For each spreading factor (125 kHz, CR 4/5, 8-symbol preamble, explicit header,
CRC on: the link's defaults), each period and each duty cycle (the EU sub-bands the
duty-cycle ledger knows: 10 % at 433.05-434.79 MHz, 1 % at 868.0-868.6 MHz; 2006/771/EC
annex, core/dutycycle.py) it prints:

* ``uavs``: the most uplink slots a superframe holds (beacon slot + N uplink slots of
  airtime + 2 guards; guard 5 ms, docs/timing.md);
* ``uplink_every`` k: each UAV sends in one superframe of k, so that one 29-byte frame per k
  periods stays within the duty cycle; ``update_s`` = k x period;
* ``beacon_every``: the beacon interval the gateway's duty cycle allows.

Writes bench/results/tdma_capacity.json (rows) and prints a Markdown table
(docs/timing.md carries it). Usage: ``python bench/bench_tdma_capacity.py [--guard-ms G]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import write_result  # noqa: E402
from lora_telemetry.core.beacon import BEACON_BYTES  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.core.tdma import UPLINK_FRAME_BYTES, frame_airtimes, max_swarm  # noqa: E402

SFS = (7, 8, 9, 10)
PERIODS_S = (0.5, 1.0, 2.0, 5.0)
BANDS = (("433.175 MHz, 10 %", 433_175_000, 0.10), ("868.1 MHz, 1 %", 868_100_000, 0.01))


def rows(guard_s: float) -> list[dict]:
    out = []
    for band, freq, duty in BANDS:
        for sf in SFS:
            phy = PhySettings(freq, sf, 125_000)
            beacon_s, uplink_s = frame_airtimes(phy, BEACON_BYTES, UPLINK_FRAME_BYTES)
            for period in PERIODS_S:
                n = max_swarm(period, beacon_s, uplink_s, guard_s)
                every = max(1, math.ceil(uplink_s / (period * duty) - 1e-9))
                beacon_every = max(1, math.ceil(beacon_s / (period * duty) - 1e-9))
                out.append({"band": band, "frequency_hz": freq, "duty_cycle": duty, "sf": sf,
                            "period_s": period, "uplink_airtime_s": uplink_s,
                            "beacon_airtime_s": beacon_s, "guard_s": guard_s, "uavs": n,
                            "uplink_every": every, "update_s": every * period,
                            "beacon_every": beacon_every})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guard-ms", type=float, default=5.0)
    args = ap.parse_args(argv)
    if not (math.isfinite(args.guard_ms) and 0 < args.guard_ms < 100):
        ap.error("--guard-ms: choose a number of milliseconds in (0, 100)")
    table = rows(args.guard_ms / 1000)
    print("| band | SF | uplink / beacon airtime | " + " | ".join(f"{p:g} s" for p in PERIODS_S) + " |")
    print("|---|---|---|" + "---|" * len(PERIODS_S))
    for band, _, _ in BANDS:
        for sf in SFS:
            cells = [r for r in table if r["band"] == band and r["sf"] == sf]
            first = cells[0]
            text = []
            for r in cells:
                if r["uavs"] == 0:
                    text.append("-")
                    continue
                t = f"{r['uavs']}"
                if r["uplink_every"] > 1:
                    t += f", each {r['update_s']:g} s"
                if r["beacon_every"] > 1:
                    t += f", beacon /{r['beacon_every']}"
                text.append(t)
            print(f"| {band} | {sf} | {1e3 * first['uplink_airtime_s']:.1f} / "
                  f"{1e3 * first['beacon_airtime_s']:.1f} ms | " + " | ".join(text) + " |")
    path = write_result("tdma_capacity", {"guard_s": args.guard_ms / 1000, "rows": table})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
