"""Benchmark: end-to-end latency, MAVLink state at the drone node -> ROS 2 message on the ground.

Runs the hardware-free swarm (the processes `make demo` starts) and, for every frame, splits
the latency with timestamps the system already publishes:

* wait:    sample time of the vehicle state (its MAVLink position, stamped by the autopilot's
           clock) -> the drone node hands the frame to the module (`/<uav>/lora/tx` stamp):
           newest-state scheduling (ALOHA jitter, duty cycle), encoding, AES/CMAC;
* air:     -> the gateway driver has read the frame (`/lora/rx` stamp): serial command to the
           module, module timing, time on air (computed separately), SX1276 IRQ and SPI;
* ground:  -> a subscriber receives `/swarm/<uav>/telemetry`: MIC check, decode, DDS.

All processes share this machine's clock, as the thesis synchronised its end node and gateway
with NTP for Table 4.5.7 (thesis lines ~2738-2791: 0.937-0.969 s at DR5, 0.94-3.17 s over
DR0-DR5, with maximum-size payloads).

Usage: python bench/bench_latency.py [--uavs N] [--duration S] [--period S]
Writes bench/results/latency.json.
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

from bench.common import print_table, write_result  # noqa: E402

THESIS_TABLE_4_5_7_S = {"433 MHz DR5": 0.969, "868 MHz DR5": 0.937, "433 MHz DR0": 3.111,
                        "868 MHz DR0": 3.174}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def p(q: float) -> float:
        return round(v[min(len(v) - 1, int(q * len(v)))] * 1000.0, 2)

    return {"n": len(v), "mean_ms": round(statistics.fmean(v) * 1000.0, 2),
            "p50_ms": p(0.50), "p95_ms": p(0.95), "p99_ms": p(0.99), "max_ms": round(v[-1] * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uavs", type=int, default=2)
    ap.add_argument("--duration", type=float, default=90.0, help="seconds of measurement")
    ap.add_argument("--period", type=float, default=2.0)
    args = ap.parse_args(argv)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from lora_telemetry.core.phy import PhySettings
    from lora_telemetry.msg import RadioFrame, UavTelemetry
    from lora_telemetry.nodes.ros_convert import stamp_to_float
    from lora_telemetry.sim.processes import ProcessGroup
    from lora_telemetry.sim.swarm import SwarmOptions, plan_swarm, ros_env, start_swarm

    run_dir = Path(tempfile.mkdtemp(prefix="lora_bench_latency_"))
    options = SwarmOptions(uavs=args.uavs, update_period_s=args.period, seed=7)
    plan = plan_swarm(options, run_dir)
    airtime = PhySettings(options.frequency_hz, options.spreading_factor, 125_000).time_on_air(29)
    tx: dict[bytes, float] = {}
    rx: dict[bytes, float] = {}
    got: list[tuple[str, int, float, float]] = []  # uav, fcnt16, sample time, received at
    lock = threading.Lock()

    def on_tx(m: RadioFrame) -> None:
        with lock:
            tx[bytes(m.data)] = stamp_to_float(m.header.stamp)

    def on_rx(m: RadioFrame) -> None:
        if m.status == "accepted":
            with lock:
                rx[bytes(m.data)] = stamp_to_float(m.header.stamp)

    def on_telemetry(name: str, m: UavTelemetry) -> None:
        now = time.time()
        with lock:
            got.append((name, m.link.frame_counter & 0xFFFF, stamp_to_float(m.header.stamp), now))

    group = ProcessGroup(run_dir / "logs", env=ros_env(log_dir=str(run_dir / "ros_log")))
    try:
        start_swarm(plan, group)
        rclpy.init()
        node = rclpy.create_node("latency_probe")
        node.create_subscription(RadioFrame, "/lora/rx", on_rx, qos_profile_sensor_data)
        for name in plan.uav_names:
            node.create_subscription(RadioFrame, f"/{name}/lora/tx", on_tx, qos_profile_sensor_data)
            node.create_subscription(UavTelemetry, f"/swarm/{name}/telemetry",
                                     lambda m, n=name: on_telemetry(n, m),
                                     QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        ex = SingleThreadedExecutor()
        ex.add_node(node)
        deadline = time.monotonic() + args.duration + 5.0
        while time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.1)
        ex.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    finally:
        group.stop_all()

    # Join the three views of each frame on (UAV, 16-bit counter) via the frame bytes.
    wait, air, ground, total = [], [], [], []
    frames_by_key = {}
    for data in tx:
        if len(data) >= 8:
            frames_by_key[(data[1:5], data[6] | data[7] << 8)] = data
    devaddrs = {}
    from lora_telemetry.keyfile import load_key_file
    for name, dev in load_key_file(plan.key_file).items():
        devaddrs[name] = dev.devaddr.to_bytes(4, "little")
    for name, fcnt16, sample_t, recv_t in got:
        data = frames_by_key.get((devaddrs[name], fcnt16))
        if data is None or data not in rx:
            continue
        t_tx, t_rx = tx[data], rx[data]
        wait.append(t_tx - sample_t)
        air.append(t_rx - t_tx)
        ground.append(recv_t - t_rx)
        total.append(recv_t - sample_t)

    rows_spec = [("total (state -> ROS message)", total), ("wait (scheduling, encode, secure)", wait),
                 ("air (serial, module, airtime, SPI)", air), ("ground (verify, decode, DDS)", ground)]
    result = {name: percentiles(vals) for name, vals in rows_spec}
    air_overhead = [a - airtime for a in air]
    result["air minus time on air"] = percentiles(air_overhead)
    print(f"End-to-end latency, {args.uavs} UAVs, period {args.period:g} s, SF7/125 kHz, "
          f"29-byte frames ({airtime * 1000:.1f} ms on air), {len(total)} frames")
    print_table(["part", "n", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [[k, v.get("n", 0), v.get("mean_ms", "-"), v.get("p50_ms", "-"), v.get("p95_ms", "-"),
                  v.get("p99_ms", "-"), v.get("max_ms", "-")] for k, v in result.items()])
    print("thesis Table 4.5.7 (max payload, NTP-synchronised): " +
          ", ".join(f"{k} {v:.3f} s" for k, v in THESIS_TABLE_4_5_7_S.items()))
    write_result("latency", {"uavs": args.uavs, "period_s": args.period, "airtime_ms": airtime * 1e3,
                             "frames": len(total), "latency": result,
                             "thesis_table_4_5_7_s": THESIS_TABLE_4_5_7_S})
    return 0 if total else 1


if __name__ == "__main__":
    raise SystemExit(main())
