"""Benchmark: what the ground's durable frame counters cost, and what a slow disk does.

1. **Write cost**: `GroundCounterStore.record_uplinks` (JSON, temporary file, fsync, rename,
   fsync of the directory: persist.atomic_write_json) for a swarm of `--devices` UAVs, on the
   directory given (default: a temporary directory on the disk holding bench/results) and,
   for comparison, on /dev/shm (memory: the cost without the disk).
2. **Slow disk**: the real `DurableDelivery` fed at the channel's full rate (one 29-byte frame
   every 66.8 ms at SF7/125 kHz, about 15 frames/s, from `--devices` UAVs in turn) while every
   write is made to take `--slow-ms` longer, as a cheap SD card can. Reported: frames
   delivered, writes per frame (group commit: one write covers every frame that arrived while
   the previous one was on its way), and the publication delay it adds.

Usage: python bench/bench_state.py [--writes N] [--devices N] [--slow-ms 0,20,100,300]
[--dir DIR]. Writes bench/results/state.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, print_table, write_result  # noqa: E402
from lora_telemetry.core import codec as tcodec  # noqa: E402
from lora_telemetry.core import gateway as gw  # noqa: E402
from lora_telemetry.core import lorawan as lw  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.ground.delivery import DurableDelivery  # noqa: E402
from lora_telemetry.ground.runtime import restore_counters  # noqa: E402
from lora_telemetry.persist import GroundCounterStore  # noqa: E402
from lora_telemetry.radios.base import RxFrame  # noqa: E402

CODEC = tcodec.CodecConfig(47.3977, 8.5456, 488.0, "arducopter")
PHY = PhySettings(433_175_000, 7, 125_000)
FRAME_S = PHY.time_on_air(29)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write_cost(directory: Path, devices: int, writes: int) -> dict[str, float]:
    store = GroundCounterStore(directory / "gateway.fcnt.json")
    times = []
    for n in range(writes):
        t0 = time.perf_counter()
        store.record_uplinks({0x260B0000 + (n % devices): ("s" * 16, n)})
        times.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * statistics.median(times), "p99_ms": 1e3 * _percentile(times, 0.99),
            "max_ms": 1e3 * max(times), "file_bytes": store.path.stat().st_size}


class SlowStore(GroundCounterStore):
    """The real store, each write made `extra_s` slower (a slow SD card)."""

    def __init__(self, path: Path, extra_s: float) -> None:
        super().__init__(path)
        self.extra_s = extra_s

    def record_uplinks(self, accepted):  # type: ignore[override]
        time.sleep(self.extra_s)
        super().record_uplinks(accepted)


def slow_disk(directory: Path, devices: int, extra_ms: float, seconds: float) -> dict[str, float]:
    keys = [(0x260B0001 + i, bytes([i]) * 16, bytes([i + 100]) * 16) for i in range(devices)]
    gateway = gw.Gateway([gw.Device(f"uav{i + 1}", a, n, s, CODEC) for i, (a, n, s) in enumerate(keys)])
    store = SlowStore(directory / f"slow-{extra_ms:g}.fcnt.json", extra_ms / 1e3)
    delays: list[float] = []
    delivered = 0

    def deliver(frame: RxFrame, verdict: gw.Verdict) -> None:
        nonlocal delivered
        delivered += verdict.accepted
        delays.append(time.time() - frame.time)

    delivery = DurableDelivery(store, restore_counters(gateway, store), deliver)
    stop = threading.Event()
    thread = threading.Thread(target=delivery.run, args=(stop,))
    thread.start()
    frames = int(seconds / FRAME_S)
    t_next = time.monotonic()
    for n in range(frames):  # the receive thread at the channel's full rate
        addr, nwk, app = keys[n % devices]
        now = time.time()
        sample = tcodec.TelemetrySample(now, lat_deg=47.398, lon_deg=8.546, alt_amsl_m=500.0)
        fport, payload = tcodec.encode(sample, CODEC)
        data = lw.build_data_frame(addr, n // devices, payload, nwkskey=nwk, appskey=app, fport=fport)
        delivery.submit(RxFrame(data, PHY, time=now),
                        gateway.process(data, crc_ok=True, rx_time=now))
        t_next += FRAME_S
        time.sleep(max(0.0, t_next - time.monotonic()))
    stop.set()
    thread.join(30.0)
    writes = delivery.counters["state_writes"]
    return {"slow_ms": extra_ms, "frames": frames, "delivered": delivered,
            "writes_per_frame": round(writes / frames, 3),
            "delay_median_ms": 1e3 * statistics.median(delays),
            "delay_max_ms": 1e3 * max(delays)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--devices", type=int, default=12)
    parser.add_argument("--slow-ms", default="0,20,100,300")
    parser.add_argument("--seconds", type=float, default=10.0, help="per slow-disk row")
    parser.add_argument("--dir", type=Path, help="directory to measure (default: beside bench/results)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir or REPO) as disk:
        rows.append({"where": "disk", **write_cost(Path(disk), args.devices, args.writes)})
        if Path("/dev/shm").is_dir():
            with tempfile.TemporaryDirectory(dir="/dev/shm") as memory:
                rows.append({"where": "memory (/dev/shm)",
                             **write_cost(Path(memory), args.devices, args.writes)})
        print(f"durable write of {args.devices} devices' counters ({args.writes} writes):")
        print_table(["where", "median ms", "p99 ms", "max ms", "bytes"],
                    [[r["where"], r["median_ms"], r["p99_ms"], r["max_ms"], r["file_bytes"]]
                     for r in rows])
        slow = [slow_disk(Path(disk), args.devices, float(ms), args.seconds)
                for ms in args.slow_ms.split(",")]
    print(f"\nfull channel rate ({1 / FRAME_S:.1f} frames/s), each write slowed by slow_ms:")
    print_table(["slow ms", "frames", "delivered", "writes/frame", "delay median ms", "delay max ms"],
                [[r["slow_ms"], r["frames"], r["delivered"], r["writes_per_frame"],
                  r["delay_median_ms"], r["delay_max_ms"]] for r in slow])
    write_result("state", {"devices": args.devices, "write_cost": rows, "slow_disk": slow,
                           "frame_interval_s": FRAME_S})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
