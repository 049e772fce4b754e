"""`lora-telemetry sim swarm`: the whole system with no hardware, and a live table.

Starts the processes `launch/swarm_sim.launch.py` starts (radio medium, emulated modules on
pseudo-terminals, vehicle simulator, drone nodes, ground node on an emulated SX1276), watches
the ROS 2 topics a swarm coordinator would read, and on exit (duration or Ctrl-C) stops every
process and optionally writes a JSON summary.
"""

from __future__ import annotations

from typing import Sequence

import argparse
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.node_config import ACCESS_MODES
from lora_telemetry.persist import atomic_write_json
from lora_telemetry.sim.processes import ProcessError, ProcessGroup
from lora_telemetry.sim.swarm import (
    DEFAULT_PERIOD_S, LORAWAN_MODES, SwarmOptions, plan_swarm, radio_mixes, ros_env, start_swarm,
)

#: Frames sent in the last seconds of a run may still be on their way: they do not count.
CLOSING_MARGIN_S = 3.0


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from lora_telemetry.cli.sim_group import get_sim_subparsers

    p = get_sim_subparsers(subparsers, common).add_parser(
        "swarm", parents=[common], help="run the hardware-free swarm with a live table",
        description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uavs", type=int, default=4, help="number of UAVs (default 4)")
    p.add_argument("--duration", type=float, default=0.0,
                   help="seconds to run after start-up (default: until Ctrl-C)")
    p.add_argument("--summary-json", metavar="PATH", help="write per-UAV results here at the end")
    p.add_argument("--radios", choices=radio_mixes(), default="mix",
                   help="module per UAV: mix cycles through every emulated family (default), "
                        "or one family for all")
    p.add_argument("--log", action="append", default=[], metavar="TLOG",
                   help="replay this flight log instead of synthetic vehicles (repeatable)")
    p.add_argument("--pattern", choices=("formation", "circle", "lawnmower"), default="formation")
    p.add_argument("--period", type=float, default=None,
                   help="update period per UAV (TDMA: the superframe), s (default: 1 under "
                        "TDMA, 2 under ALOHA, README)")
    p.add_argument("--sf", type=int, default=7, help="spreading factor (default 7)")
    p.add_argument("--seed", type=int, default=1, help="radio medium seed")
    p.add_argument("--speed", type=float, default=1.0, help="vehicle simulation time factor")
    p.add_argument("--lorawan-mode", choices=LORAWAN_MODES, default="raw",
                   help="LoRaWAN framing: ours over the module's raw radio (raw, default), or "
                        "the module's own stack where it has one (module)")
    p.add_argument("--access", choices=ACCESS_MODES, default="tdma",
                   help="medium access: tdma (default: GPS-time slots, one per UAV, in "
                        "superframes of --period, with the ground's beacon) or aloha")
    p.add_argument("--run-dir", metavar="DIR",
                   help="keep keys, parameters and logs here (default: a temporary directory)")
    p.add_argument("--warmup", type=float, default=8.0,
                   help="seconds after start-up before frames count for the summary")
    p.add_argument("--no-table", action="store_true", help="do not draw the live table")


def run(args: argparse.Namespace) -> int:
    if args.duration < 0 or (args.duration and args.duration <= args.warmup):
        raise ConfigError("--duration must be longer than --warmup (default 8 s)")
    options = SwarmOptions(uavs=args.uavs, radios=args.radios, logs=tuple(args.log),
                           pattern=args.pattern,
                           update_period_s=args.period or DEFAULT_PERIOD_S[args.access],
                           spreading_factor=args.sf, seed=args.seed, speed=args.speed,
                           lorawan_mode=args.lorawan_mode, access=args.access)
    keep = args.run_dir is not None
    run_dir = Path(args.run_dir) if keep else Path(tempfile.mkdtemp(prefix="lora_sim_swarm_"))
    plan = plan_swarm(options, run_dir)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    group = ProcessGroup(run_dir / "logs", env=ros_env(log_dir=str(run_dir / "ros_log")))
    try:
        print(f"lora_telemetry swarm: {options.uavs} UAVs, run directory {run_dir}", flush=True)
        try:
            start_swarm(plan, group, on_start=lambda batch: print(
                "  starting " + ", ".join(s.name for s in batch), flush=True))
        except ProcessError as exc:
            print(f"lora-telemetry sim swarm: error: {exc}", file=sys.stderr)
            return 1
        if stop.is_set():
            return 130
        return _watch(args, plan, group, stop)
    finally:
        group.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            shutil.rmtree(run_dir / "tty", ignore_errors=True)


def _watch(args: argparse.Namespace, plan, group: ProcessGroup, stop: threading.Event) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from lora_telemetry.nodes.swarm_monitor import SwarmMonitor
    from lora_telemetry.sim import swarm_report as report

    rclpy.init(args=[], signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    monitor = SwarmMonitor(plan.uav_names, time.time)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    spin = threading.Thread(target=_spin, args=(executor, stop), daemon=True)
    spin.start()
    radios = {n: plan.options.radio_of(i) for i, n in enumerate(plan.uav_names)}
    airtime = PhySettings(plan.options.frequency_hz, plan.options.spreading_factor,
                          125_000).time_on_air(29)
    started = time.time()
    measure_from = started + args.warmup
    tty = sys.stdout.isatty() and not args.no_table
    failed: list[str] = []
    next_draw = started
    try:
        while not stop.is_set():
            now = time.time()
            if args.duration and now - started >= args.duration:
                break
            dead = group.dead()
            if dead:
                failed = [f"{c.name} exited with {c.popen.returncode}; log {c.log_path}:\n{c.tail()}"
                          for c in dead]
                break
            if now >= next_draw and not args.no_table:
                rows = report.table_rows(monitor.snapshot(), radios)
                title = (f"lora_telemetry swarm  {time.strftime('%H:%M:%S')}  {len(plan.uav_names)} "
                         f"UAVs  {plan.options.frequency_hz / 1e6:.3f} MHz SF{plan.options.spreading_factor}"
                         f"  {plan.options.access.upper()} period {plan.options.update_period_s:g} s"
                         "   (Ctrl-C stops)")
                text = report.render_table(rows, title)
                print(("\x1b[H\x1b[2J" + text) if tty else text + "\n", flush=True)
                next_draw = now + (1.0 if tty else 5.0)
            stop.wait(0.2)
        ended = time.time()
        records = monitor.snapshot()
        summary = report.summarize(
            records, radios=radios, window=(measure_from, ended - CLOSING_MARGIN_S),
            period_s=plan.options.update_period_s, airtime_s=airtime,
            truth=_truth_fn(plan), duration_s=ended - started, access=plan.options.access)
        summary["failed_processes"] = failed
        if args.summary_json:
            atomic_write_json(args.summary_json, summary, mode=0o644)
        _print_summary(summary)
        if failed:
            print("lora-telemetry sim swarm: error: " + "\n".join(failed), file=sys.stderr)
            return 1
        return 0
    finally:
        stop.set()
        spin.join(2.0)
        executor.shutdown()
        monitor.destroy_node()
        rclpy.try_shutdown()


def _spin(executor, stop: threading.Event) -> None:
    while not stop.is_set():
        executor.spin_once(timeout_sec=0.2)


def _truth_fn(plan):
    """Exact truth for synthetic vehicles: the simulator's trajectories are pure functions of
    time, rebuilt here from the same parameters and the simulator's start time."""
    if plan.options.logs:
        return None
    import json

    from lora_telemetry.sim.vehicle import build_swarm

    try:
        data = json.loads(plan.truth_path.read_text())
        first = data["vehicles"][0]
        start = first["time_unix_s"] - first["time_s"]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    o = plan.options
    vehicles = build_swarm(o.pattern, o.uavs, o.origin, radius_m=o.radius_m,
                           start_unix_s=start, repeat=True)
    by_name = {f"uav{v.sysid}": v for v in vehicles}

    def truth(name: str, t_unix: float):
        v = by_name.get(name)
        if v is None:
            return None
        s = v.state_at((t_unix - start) * o.speed)
        return s.lat_deg, s.lon_deg, s.alt_amsl_m, s.ground_speed_mps, s.climb_mps
    return truth


def _print_summary(s: dict) -> None:
    if s["measurement_window_empty"]:
        print(f"\nsummary: empty measurement window (the run lasted {s['duration_s']:.0f} s, "
              f"not longer than the warm-up plus the {CLOSING_MARGIN_S:g} s closing margin): "
              "no frames counted")
        return
    age = s["state_age_p95_s"]
    print(f"\nsummary over {s['measurement_window_s']:.0f} s ({s['access'].upper()}): delivery "
          f"{_pct(s['delivery_ratio'])}, worst UAV {s['updates_per_s_min'] or 0:.3f} updates/s, "
          f"state age p95 {'-' if age is None else f'{1e3 * age:.1f} ms'} (airtime "
          f"{1e3 * s['frame_airtime_s']:.1f} ms)")
    print(f"  delivery {_pct(s['delivery_ratio'])} "
          f"(pure ALOHA with {s['uavs']} senders at load G={s['offered_load']:.3f} predicts "
          f"{_pct(s['aloha_expected_delivery_ratio'])}; with capture at the measured RSSIs "
          f"{_pct(s['aloha_with_capture_delivery_ratio'])})")
    for name, u in s["per_uav"].items():
        err = u.get("max_position_error_m")
        print(f"  {name:6} {u['radio']:7} sent {u['frames_sent']:4}  received {u['frames_received']:4}"
              f"  delivery {_pct(u['delivery_ratio']):>6}  latency {u['mean_latency_s'] or math.nan:.3f} s"
              + ("" if err is None else f"  max position error {err:.2f} m"))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m lora_telemetry.cli.sim_swarm``), same options."""
    from lora_telemetry.cli.standalone import standalone_main

    return standalone_main("lora-telemetry sim swarm", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
