"""Benchmark: the fastest update rate one UAV can sustain, per data rate, under the duty cycle.

Runs the drone node's own send loop (`drone.runtime.DroneRuntime`) on a simulated clock: a
fake flight controller with a new state every 0.1 s (10 Hz), a fake radio that takes the
frame's time on air, and ``update_period_s`` far below any duty-cycle interval, so that the
regulator is the only limit. Every frame is our 29 bytes: 16-byte telemetry payload + 13 bytes
of LoRaWAN (MHDR 1, FHDR 7, FPort 1, MIC 4). For each channel and LoRa data rate it reports the
measured cadence next to the computed limits: airtime / duty cycle (frame + LoRaWAN T_off, spec
7.1.2, thesis line ~5164) and the long-run interval once the node's ledger also enforces the
sliding hour window of 2006/771/EC (line ~3465), see `steady_interval`. Two simulated hours
hold two whole periods of that steady state, so the measured mean lands on it.

Channels (`CHANNELS`):
* EU868 868.1 MHz: sub-band g1, 1 % (thesis lines ~2676-2682: "los canales en frecuencia
  868 MHz disponen de una limitación del 1%");
* EU868 869.525 MHz: sub-band g3, 10 %, the channel the thesis used at 868 MHz (line ~2682);
* EU433 433.175 MHz: ETSI 10 %, LoRaWAN EU433 channel 0, the thesis's 433 MHz channel
  (line ~2676);
* the same EU433 channel capped at LoRaWAN's own 1 % (`Region.lorawan_duty_cycle`, spec 7.4.2).

Thesis figures shown alongside (only where the thesis measured: the 10 % channels, DR0-DR5):
the "Ritmo Envío" (seconds per received message) of Table 4.5.2, minimum payload (lines
2524-2555; best: DR5 2.28 s at 433 MHz, line 2538, and 2.24 s at 868 MHz, line 2552; the text
quotes "un ritmo mínimo entre mensajes de 2,25s", line 2468), and of Table 4.5.3, 32-byte
messages (lines 2558-2589), the size closest to our 29-byte frame. The table's own columns
give the bytes each message counted: bitrate x time / received = 49.12 x 125.41 / 55 = 112
bits = 14 bytes for Table 4.5.2, 256 bits = 32 bytes for Table 4.5.3.

The thesis sent with the RN2483's LoRaWAN stack (`mac tx uncnf`, line ~9035). A class A device
sends no new uplink before its RX2 window has passed (spec, line 3916); the RN2483 answers
`mac_tx_ok` "after the end of the second Receive window" (command reference, line ~19937) and
refuses `mac tx` with `busy` until then (line 19887). So the thesis's short-message cadence
cannot go below airtime + RECEIVE_DELAY2 (2 s) + the RX2 window: the "clsA" column. Our node
sends raw LoRa frames and is bound by the duty cycle alone.

Keys of bench/results/rate.json: see `KEYS_DOC` (also written into the file as "keys").

Usage: python bench/bench_rate.py [--hours H] [--seed N] [--jobs N].
Writes bench/results/rate.json. About 60 s of CPU (the node's loop wakes every 0.1 s of
simulated time and secures ~90 000 frames), spread over --jobs worker processes.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from bisect import bisect_left
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_result  # noqa: E402
from lora_telemetry.core import codec as tcodec  # noqa: E402
from lora_telemetry.core.dutycycle import DutyCycleLedger  # noqa: E402
from lora_telemetry.core.regions import Region, get_region  # noqa: E402
from lora_telemetry.drone.config import DroneConfig  # noqa: E402
from lora_telemetry.drone.runtime import DroneRuntime, SentFrame  # noqa: E402
from lora_telemetry.drone.transmitters import LORAWAN_OVERHEAD, RawUplinkTransmitter  # noqa: E402
from lora_telemetry.keyfile import DeviceKeys  # noqa: E402
from lora_telemetry.radios.base import RawRadio, RxFrame, TxResult  # noqa: E402

PAYLOAD_BYTES = tcodec.MAX_PAYLOAD_SIZE  # 16
FRAME_BYTES = PAYLOAD_BYTES + LORAWAN_OVERHEAD  # 29
HOUR_S = 3600.0
T0 = 1_763_700_000.0  # simulated Unix time of the start of each run
VEHICLE_RATE_HZ = 10.0
UPDATE_PERIOD_S = 0.01  # "as fast as allowed": far below every duty-cycle interval
DEVICE_KEYS = DeviceKeys("bench", 0x26011CA2, bytes(range(16)), bytes(range(16, 32)))


@dataclass(frozen=True)
class Channel:
    """One channel the benchmarks run on."""

    key: str  # stable identifier in the JSON
    region: str
    frequency_hz: int
    cap: float | None  # extra duty-cycle cap on top of ETSI (LoRaWAN EU433: 1 %)
    thesis_band: str | None  # which thesis rows measured this channel ("433"/"868")
    note: str

    def ledger(self, policy: str = "both") -> DutyCycleLedger:
        return DutyCycleLedger(policy=policy, cap=self.cap)

    @property
    def duty_cycle(self) -> float:
        return self.ledger().limit(self.frequency_hz)

    @property
    def label(self) -> str:
        return f"{self.region} {self.frequency_hz / 1e6:g} {self.duty_cycle:.0%}"


def _lorawan_cap(region: str) -> float | None:
    return get_region(region).lorawan_duty_cycle


CHANNELS: tuple[Channel, ...] = (
    Channel("eu868_868.1_g1", "EU868", 868_100_000, None, None,
            "sub-band g1 868.0-868.6 MHz, 1 % (thesis ~2680; LoRaWAN default channel)"),
    Channel("eu868_869.525_g3", "EU868", 869_525_000, None, "868",
            "sub-band g3 869.4-869.65 MHz, 10 %: the thesis's 868 MHz channel (~2682)"),
    Channel("eu433_433.175_etsi", "EU433", 433_175_000, None, "433",
            "ETSI 433.05-434.79 MHz, 10 %: the thesis's 433 MHz channel (~2676)"),
    Channel("eu433_433.175_lorawan", "EU433", 433_175_000, _lorawan_cap("EU433"), None,
            "same channel at LoRaWAN EU433's 1 % (spec 7.4.2, Region.lorawan_duty_cycle)"),
)

# Thesis Table 4.5.2 (minimum payload, 14-byte messages; lines 2524-2555) and Table 4.5.3
# (32-byte messages; lines 2558-2589): "Ritmo Envío (s)" per DR, both at 10 % duty cycle.
THESIS_TABLE_4_5_2_S = {
    "433": {0: 11.43, 1: 6.64, 2: 2.92, 3: 2.42, 4: 2.32, 5: 2.28},  # lines 2528-2538
    "868": {0: 11.36, 1: 6.63, 2: 2.92, 3: 2.41, 4: 2.32, 5: 2.24},  # lines 2542-2552
}
THESIS_TABLE_4_5_3_S = {
    "433": {0: 16.65, 1: 9.95, 2: 4.53, 3: 2.53, 4: 2.40, 5: 2.33},  # lines 2562-2572
    "868": {0: 16.65, 1: 9.95, 2: 4.67, 3: 2.57, 4: 2.40, 5: 2.33},  # lines 2576-2586
}

KEYS_DOC = {
    "rows": "one per channel x LoRa uplink DR (FSK DR7 is not a LoRa rate)",
    "rows[].channel": "channel key (see 'channels')",
    "rows[].dr, sf, bandwidth_hz": "LoRaWAN data rate and its modulation (spec Tables 14/31)",
    "rows[].duty_cycle": "effective duty-cycle limit of the channel's sub-band (0..1)",
    "rows[].frame_bytes": "PHYPayload bytes per update (16 payload + 13 LoRaWAN)",
    "rows[].airtime_ms": "time on air of one frame (SX1276 datasheet 4.1.1.7)",
    "rows[].toff_interval_s": "airtime / duty_cycle: frame + LoRaWAN T_off, the textbook limit",
    "rows[].computed_interval_s": "long-run limit under T_off and the 1 h sliding window"
                                  " (policy 'both'): airtime + W (1 - dc) / floor(dc W / airtime),"
                                  " W = 3600 s; see steady_interval()",
    "rows[].computed_updates_per_s": "1 / computed_interval_s",
    "rows[].class_a_floor_s": "airtime + RECEIVE_DELAY2: the earliest next uplink of a LoRaWAN"
                              " class A stack that waits for RX2 (RN2483 'mac tx', as the"
                              " thesis sent); the RX2 window's own length comes on top",
    "rows[].measured.frames": "frames the drone runtime sent in the simulated run",
    "rows[].measured.mean_interval_s": "mean time between consecutive frame starts",
    "rows[].measured.min_interval_s": "shortest time between consecutive frame starts",
    "rows[].measured.updates_per_s": "1 / mean_interval_s",
    "rows[].measured.airtime_fraction_worst_hour": "most airtime in any 3600 s window / 3600 s",
    "rows[].measured.mean_sample_age_s": "mean age of the vehicle state when its frame went out",
    "rows[].measured_over_computed": "measured.mean_interval_s / computed_interval_s",
    "rows[].thesis_4_5_2_interval_s": "thesis Table 4.5.2 'Ritmo Envío' (14-byte messages),"
                                      " null where the thesis did not measure",
    "rows[].thesis_4_5_3_interval_s": "thesis Table 4.5.3 'Ritmo Envío' (32-byte messages)",
    "simulated_hours": "simulated time per row",
    "wall_s": "wall-clock seconds the whole benchmark took",
}


# -- fakes on a simulated clock (as in test/test_drone_runtime.py) ----------------------------
class Clock:
    def __init__(self, t: float) -> None:
        self.t = t


class FakeVehicle:
    """A flight controller with a new state every 0.1 s, circling the origin at 8 m/s."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._last: tuple[int, tcodec.TelemetrySample] | None = None

    def sample(self, now: float | None = None) -> tcodec.TelemetrySample:
        k = math.floor((self.clock.t - T0) * VEHICLE_RATE_HZ + 1e-9)
        if self._last is None or self._last[0] != k:
            self._last = (k, self._make(k))
        return self._last[1]

    def _make(self, k: int) -> tcodec.TelemetrySample:
        t = T0 + k / VEHICLE_RATE_HZ
        angle = (t - T0) * 8.0 / 200.0  # 200 m radius
        return tcodec.TelemetrySample(
            time_unix_s=t, lat_deg=47.3977 + 200.0 * math.sin(angle) / 111_195.0,
            lon_deg=8.5456 + 200.0 * math.cos(angle) / 75_000.0, alt_amsl_m=450.0,
            alt_rel_m=50.0, heading_deg=90.0, ground_speed_mps=8.0, climb_mps=0.0,
            battery_pct=80.0, voltage_v=15.8, custom_mode=3, armed=True, system_status=4,
            gps_fix_type=3, satellites=14, failure_flags=0)

    def is_stale(self, now: float | None = None) -> bool:
        return False


class FakeRadio(RawRadio):
    """Sends instantly on the simulated clock; the clock advances by the time on air, as a
    real module blocks until its 'radio_tx_ok'."""

    name = "bench fake radio"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._phy = None

    @property
    def phy(self):  # type: ignore[override]
        return self._phy

    def configure(self, phy) -> None:  # type: ignore[override]
        self._phy = phy

    def send(self, data: bytes, timeout: float | None = None) -> TxResult:
        at = self._phy.time_on_air(len(data))
        start = self.clock.t
        self.clock.t = start + at
        return TxResult(at, start, start + at)

    def receive(self, timeout: float) -> RxFrame | None:
        return None

    def reconnect(self, timeout: float = 10.0) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def take(self) -> int:
        self.n += 1
        return self.n - 1


# -- measurement helpers ------------------------------------------------------------------------
def worst_window_airtime(starts: Sequence[float], airtimes: Sequence[float],
                         window_s: float = HOUR_S) -> float:
    """Most airtime inside any window [s, s + window_s) (frames sorted, not overlapping).

    The fullest window can always be slid right until it opens with a frame start, so only
    those windows are checked; the last frame inside may be cut by the window's end.
    """
    cum = [0.0]
    for a in airtimes:
        cum.append(cum[-1] + a)
    best = 0.0
    for i, s in enumerate(starts):
        j = bisect_left(starts, s + window_s, i)  # frames i..j-1 start inside
        cut = max(0.0, starts[j - 1] + airtimes[j - 1] - (s + window_s))
        best = max(best, cum[j] - cum[i] - cut)
    return best


def steady_interval(airtime_s: float, duty_cycle: float, window_s: float = HOUR_S) -> float:
    """Long-run mean interval between frames of one length under T_off *and* the hour window.

    T_off alone spaces frames airtime/dc apart, but then a window can hold
    K + 1 = floor(dc W / a) + 1 starts, slightly over budget. The ledger ("both") lets K
    frames go at the T_off spacing and holds frame K + 1 until enough of frame 1 has left its
    window: K a + (W - T) <= dc W, so the pattern repeats every T = W (1 - dc) + K a, a mean
    interval of a + W (1 - dc) / K (equal to a / dc when dc W / a is a whole number).
    """
    k = math.floor(duty_cycle * window_s / airtime_s + 1e-9)
    if k < 1:
        raise ValueError("frame longer than the window budget")
    return max(airtime_s / duty_cycle, airtime_s + window_s * (1 - duty_cycle) / k)


def interval_stats(starts: Sequence[float]) -> tuple[float | None, float | None]:
    if len(starts) < 2:
        return None, None
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    return (starts[-1] - starts[0]) / len(gaps), min(gaps)


def lora_drs(region: Region) -> list[int]:
    return [dr for dr in region.uplink_drs if region.data_rate(dr).is_lora]


def _rnd(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


# -- one row ------------------------------------------------------------------------------------
def measure(channel: Channel, dr: int, sim_s: float, seed: int) -> dict[str, Any]:
    region = get_region(channel.region)
    rate = region.data_rate(dr)
    phy = region.phy(dr, channel.frequency_hz)
    airtime = phy.time_on_air(FRAME_BYTES)
    dc = channel.duty_cycle
    toff = airtime / dc
    computed = steady_interval(airtime, dc)

    clock = Clock(T0)
    cfg = DroneConfig(
        uav_name="bench", mavlink_url="udpin:127.0.0.1:14550", radio_port="/dev/null",
        key_file="/nonexistent", fcnt_state_file="/nonexistent",
        origin_lat_deg=47.3977, origin_lon_deg=8.5456, origin_alt_m=400.0,
        frequency_hz=channel.frequency_hz, spreading_factor=rate.sf,
        bandwidth_hz=rate.bandwidth_hz, update_period_s=UPDATE_PERIOD_S)
    assert cfg.phy.time_on_air(FRAME_BYTES) == airtime, "node PHY differs from the region's"
    starts: list[float] = []
    airtimes: list[float] = []
    ages: list[float] = []

    def on_sent(frame: SentFrame) -> None:
        starts.append(frame.report.started)
        airtimes.append(frame.report.airtime_s)
        ages.append(frame.report.started - frame.sample.time_unix_s)

    tx = RawUplinkTransmitter(lambda: FakeRadio(clock), cfg.phy, DEVICE_KEYS)
    rt = DroneRuntime(cfg, FakeVehicle(clock), tx, _Counter(), rng=random.Random(seed),
                      on_sent=on_sent)
    if channel.cap is not None:
        # The node's ledger applies ETSI limits; a LoRaWAN-compliant EU433 node adds the 1 %
        # cap. Same ledger class and scheduler, only the cap differs.
        rt.ledger = channel.ledger(cfg.duty_cycle_policy)
        rt.scheduler.ledger = rt.ledger
    end = T0 + sim_s
    while clock.t < end:
        wake = rt.step(clock.t)
        clock.t = max(clock.t + 1e-6, min(wake, end))

    mean, shortest = interval_stats(starts)
    worst = worst_window_airtime(starts, airtimes)
    return {
        "channel": channel.key,
        "region": channel.region,
        "frequency_hz": channel.frequency_hz,
        "dr": dr,
        "sf": rate.sf,
        "bandwidth_hz": rate.bandwidth_hz,
        "duty_cycle": dc,
        "frame_bytes": FRAME_BYTES,
        "airtime_ms": round(airtime * 1000, 3),
        "toff_interval_s": round(toff, 6),
        "computed_interval_s": round(computed, 6),
        "computed_updates_per_s": round(1 / computed, 5),
        "class_a_floor_s": round(airtime + region.receive_delay2_s, 6),
        "measured": {
            "frames": len(starts),
            "mean_interval_s": _rnd(mean, 6),
            "min_interval_s": _rnd(shortest, 6),
            "updates_per_s": _rnd(None if mean is None else 1 / mean, 5),
            "airtime_fraction_worst_hour": round(worst / HOUR_S, 6),
            "mean_sample_age_s": _rnd(sum(ages) / len(ages) if ages else None, 4),
        },
        "measured_over_computed": _rnd(None if mean is None else mean / computed, 6),
        "thesis_4_5_2_interval_s": THESIS_TABLE_4_5_2_S.get(channel.thesis_band or "", {}).get(dr),
        "thesis_4_5_3_interval_s": THESIS_TABLE_4_5_3_S.get(channel.thesis_band or "", {}).get(dr),
    }


def _measure_job(job: tuple[int, int, float, int]) -> dict[str, Any]:
    index, dr, sim_s, seed = job
    return measure(CHANNELS[index], dr, sim_s, seed)


def run_all(sim_s: float, seed: int, jobs: int) -> list[dict[str, Any]]:
    """Every channel x DR row; rows are independent, so they may run in worker processes."""
    work = [(i, dr, sim_s, seed) for i, ch in enumerate(CHANNELS)
            for dr in lora_drs(get_region(ch.region))]
    if jobs <= 1:
        return [_measure_job(w) for w in work]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_measure_job, work))


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours per row")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes (rows are independent)")
    args = ap.parse_args(argv)
    if not (math.isfinite(args.hours) and args.hours > 0):
        ap.error("--hours must be a positive number")

    wall0 = time.perf_counter()
    rows = run_all(args.hours * HOUR_S, args.seed, max(1, args.jobs))
    wall = time.perf_counter() - wall0

    print(f"Fastest sustainable update rate per UAV, {FRAME_BYTES}-byte frames "
          f"({PAYLOAD_BYTES} B payload + {LORAWAN_OVERHEAD} B LoRaWAN), drone runtime on a "
          f"simulated clock, {args.hours:g} h per row")
    for ch in CHANNELS:
        print(f"\n{ch.label}: {ch.note}")
        table = []
        for r in (r for r in rows if r["channel"] == ch.key):
            m = r["measured"]
            table.append([
                f"DR{r['dr']}", f"SF{r['sf']}/{r['bandwidth_hz'] // 1000}",
                _f(r["airtime_ms"], ".3f"), _f(r["toff_interval_s"], ".3f"),
                _f(r["computed_interval_s"], ".3f"),
                _f(m["mean_interval_s"], ".3f"), _f(m["min_interval_s"], ".3f"),
                _f(m["updates_per_s"], ".4f"),
                _f(100 * m["airtime_fraction_worst_hour"], ".3f"), m["frames"],
                _f(m["mean_sample_age_s"], ".3f"), _f(r["class_a_floor_s"], ".2f"),
                _f(r["thesis_4_5_2_interval_s"], ".2f"), _f(r["thesis_4_5_3_interval_s"], ".2f"),
            ])
        print_table(["DR", "mod", "air ms", "a/dc s", "limit s", "meas s", "min s", "upd/s",
                     "worst h %", "frames", "age s", "clsA s", "th4.5.2 s", "th4.5.3 s"], table)
    print("\na/dc = airtime/duty cycle (frame + T_off); limit = long-run interval with the 1 h"
          "\nwindow enforced too (a + W(1-dc)/floor(dcW/a)); meas/min = mean/shortest interval"
          "\nthe runtime achieved;"
          "\nworst h % = airtime in the worst 1 h window; age = state age when sent;"
          "\nclsA = airtime + RECEIVE_DELAY2 (2 s), the floor of a class A stack that waits for"
          "\nRX2 (the thesis's RN2483 'mac tx'); th4.5.2/th4.5.3 = thesis 'Ritmo Envío' (s) for"
          "\n14-/32-byte messages at 10 % (Tables 4.5.2/4.5.3, lines 2524-2589).")
    print(f"\n{len(rows)} rows in {wall:.1f} s wall time ({max(1, args.jobs)} processes)")
    path = write_result("rate", {
        "keys": KEYS_DOC,
        "simulated_hours": args.hours,
        "seed": args.seed,
        "jobs": max(1, args.jobs),
        "payload_bytes": PAYLOAD_BYTES,
        "frame_bytes": FRAME_BYTES,
        "vehicle_rate_hz": VEHICLE_RATE_HZ,
        "update_period_s": UPDATE_PERIOD_S,
        "channels": [{"key": c.key, "region": c.region, "frequency_hz": c.frequency_hz,
                      "duty_cycle": c.duty_cycle, "cap": c.cap, "note": c.note}
                     for c in CHANNELS],
        "thesis": {
            "table_4_5_2_interval_s": THESIS_TABLE_4_5_2_S,
            "table_4_5_3_interval_s": THESIS_TABLE_4_5_3_S,
            "source": "uav-swarm-lora-thesis-with-datasheets.txt lines 2524-2555 (Table 4.5.2)"
                      " and 2558-2589 (Table 4.5.3); 10 % duty cycle, 869.525/433.175 MHz"
                      " (lines 2668-2682); best DR5 2.28 s (line 2538) and 2.24 s (line 2552)",
        },
        "rows": rows,
        "wall_s": round(wall, 2),
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
