"""Benchmark: what the ground node costs, per received frame, idle, and in memory over time.

Starts the radio medium and the real `ground_node` process (SX1276 driver on the emulated
chip), registers `--uavs` devices, then:

1. idle: CPU time of the ground node process over `--idle-seconds` with a silent band;
2. load: valid telemetry frames injected into the medium back to back, as fast as the channel
   carries them (one 29-byte frame every 66.8 ms plus a 2 ms gap: ~14.5 frames/s, the highest
   rate one SF7 channel allows), for `--minutes`, sampling CPU time and resident memory.

CPU per frame = (CPU during load - idle CPU rate x load time) / frames accepted; it includes
the emulated chip's share (in the same process), so a Raspberry Pi with a real SX1276 does a
little less work. Memory: RSS at start and end of the load and its slope (flat = no leak).
The full-length measurement of the issue is `--minutes 10`; the default stays under 5 min.

Usage: python bench/bench_gateway.py [--minutes M] [--idle-seconds S] [--uavs N]
Writes bench/results/gateway.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_table, write_result  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="load duration (default 3)")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--uavs", type=int, default=4)
    args = ap.parse_args(argv)

    import yaml

    from lora_telemetry import keyfile
    from lora_telemetry.core import codec as tcodec
    from lora_telemetry.core import lorawan as lw
    from lora_telemetry.core.phy import PhySettings
    from lora_telemetry.sim.medium import MediumControl
    from lora_telemetry.sim.processes import ProcessGroup, python_module
    from lora_telemetry.sim.swarm import free_udp_ports, ros_env

    run = Path(tempfile.mkdtemp(prefix="lora_bench_gateway_"))
    names = [f"uav{i + 1}" for i in range(args.uavs)]
    devices = {n: keyfile.generate_device(n, 0x260B0001 + i) for i, n in enumerate(names)}
    keyfile.write_key_file(run / "keys.yaml", devices)
    origin = (47.3977, 8.5456, 488.0)
    (port,) = free_udp_ports(1)
    (run / "ground.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        "radio": "emulator", "medium": f"127.0.0.1:{port}", "key_file": str(run / "keys.yaml"),
        "origin_lat_deg": origin[0], "origin_lon_deg": origin[1], "origin_alt_m": origin[2],
        "devices": {n: {"system_id": i + 1} for i, n in enumerate(names)}}}}))
    phy = PhySettings(433_175_000, 7, 125_000)
    cfg = tcodec.CodecConfig(*origin, "arducopter")
    group = ProcessGroup(run / "logs", env=ros_env(log_dir=str(run / "ros_log")))
    try:
        group.start("medium", python_module("lora_telemetry.cli.sim_medium", "--port", str(port)),
                    ready="medium")
        ground = group.start("ground", python_module(
            "lora_telemetry.nodes.ground_node", "--ros-args", "--params-file", str(run / "ground.yaml")),
            ready="ground")
        pid = ground.pid
        control = MediumControl(("127.0.0.1", port))
        time.sleep(2.0)  # let start-up work settle
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle_cpu = cpu_seconds(pid) - c0
        idle_rate = idle_cpu / (time.monotonic() - t0)

        samples = []
        frames = 0
        fcnt = 0
        load_s = args.minutes * 60.0
        c1, start = cpu_seconds(pid), time.monotonic()
        next_sample = start
        while time.monotonic() - start < load_s:
            if time.monotonic() >= next_sample:
                samples.append((round(time.monotonic() - start, 1), round(rss_mib(pid), 2)))
                next_sample += 10.0
            name = names[frames % len(names)]
            dev = devices[name]
            east = 50.0 * (frames % len(names))
            lat, lon = cfg.projection.to_geodetic(east, 100.0)
            sample = tcodec.TelemetrySample(time.time(), lat_deg=lat, lon_deg=lon, alt_amsl_m=520.0,
                                            alt_rel_m=32.0, heading_deg=90.0, ground_speed_mps=8.0,
                                            climb_mps=0.0, battery_pct=80.0, voltage_v=15.8,
                                            custom_mode=3, armed=True, system_status=4,
                                            gps_fix_type=3, satellites=12)
            fport, payload = tcodec.encode(sample, cfg)
            if frames % len(names) == 0:
                fcnt += 1
            data = lw.build_data_frame(dev.devaddr, fcnt, payload, nwkskey=dev.nwkskey,
                                       appskey=dev.appskey, fport=fport)
            reply = control.inject(data, phy, tx_node=name, position_m=(east, 100.0, 30.0))
            frames += 1
            time.sleep(max(0.0, reply["t_end"] - time.time()) + 0.002)
        load_cpu = cpu_seconds(pid) - c1
        elapsed = time.monotonic() - start
        samples.append((round(elapsed, 1), round(rss_mib(pid), 2)))
        stats = control.stats()
        delivered = stats.get("delivered", frames)
        if not ground.alive():
            print("ground node died during the load:\n" + ground.tail(), file=sys.stderr)
            return 1
    finally:
        group.stop_all()

    per_frame_ms = (load_cpu - idle_rate * elapsed) / max(1, delivered) * 1000.0
    half = [r for t, r in samples if t >= elapsed / 2]
    slope = ((samples[-1][1] - half[0]) / ((elapsed / 2) / 60.0)) if len(half) > 1 else 0.0
    result = {
        "uavs": args.uavs, "load_minutes": round(elapsed / 60.0, 2), "frames_injected": frames,
        "frames_delivered_to_gateway": delivered, "frame_rate_hz": round(frames / elapsed, 2),
        "idle_cpu_percent": round(100.0 * idle_rate, 3),
        "cpu_ms_per_frame": round(per_frame_ms, 3),
        "load_cpu_percent": round(100.0 * load_cpu / elapsed, 2),
        "rss_mib_start": samples[0][1], "rss_mib_end": samples[-1][1],
        "rss_slope_mib_per_min_second_half": round(slope, 3),
        "rss_samples": samples,
    }
    print(f"Ground node (SX1276 driver + emulated chip), {args.uavs} UAVs, frames back to back "
          f"at {result['frame_rate_hz']} frames/s for {result['load_minutes']} min")
    print_table(["measure", "value"], [
        ["idle CPU (% of one core)", result["idle_cpu_percent"]],
        ["CPU per received frame (ms)", result["cpu_ms_per_frame"]],
        ["CPU under full channel load (%)", result["load_cpu_percent"]],
        ["RSS at start of load (MiB)", result["rss_mib_start"]],
        ["RSS at end of load (MiB)", result["rss_mib_end"]],
        ["RSS slope, second half (MiB/min)", result["rss_slope_mib_per_min_second_half"]],
    ])
    write_result("gateway", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
