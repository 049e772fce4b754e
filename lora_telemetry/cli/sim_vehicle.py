"""`lora-telemetry sim vehicle`: simulated flight controllers on a MAVLink endpoint.

Replays a ``.tlog`` (``--log``) or flies synthetic ArduCopters (``--pattern``), sending what a
flight controller sends to ``--out`` (default ``udpout:127.0.0.1:14550``; repeat ``--out`` to
give each vehicle its own endpoint). Once every output has been opened (one that cannot be
is retried every second) it prints one start line (a JSON object with ``--json``) and
announces ``{"ready": "vehicle", "vehicles", "out"}`` to a parent with a ready channel
(lora_telemetry/readiness.py); SIGTERM or Ctrl-C stop it cleanly and print the counters. See
``lora_telemetry.sim.vehicle``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
from typing import Any, Sequence

from lora_telemetry.cli.sim_group import get_sim_subparsers
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.readiness import announce_ready
from lora_telemetry.sim.vehicle import (
    PATTERNS,
    LogReplayer,
    ReplayTransform,
    SYSTEM_TIME_DELAY,
    SimulatedAutopilot,
    VehicleSimulator,
    build_swarm,
    find_log_reference,
    medium_position_sink,
)

DEFAULT_OUT = "udpout:127.0.0.1:14550"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number")
    return value


def _sysid(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"system id {text!r} must be an integer in 1..255")
    return int(text)


def _count(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"count {text!r} must be an integer in 1..255")
    return int(text)


def _origin(text: str) -> tuple[float, ...]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) not in (2, 3) or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"origin {text!r} must be LAT,LON or LAT,LON,ALT")
    if not (-90 <= values[0] <= 90 and -180 <= values[1] <= 180):
        raise argparse.ArgumentTypeError(f"origin {text!r} is not a place on Earth")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--log", metavar="TLOG", help="replay this telemetry log")
    source.add_argument("--pattern", choices=PATTERNS, help="fly synthetic vehicles")
    parser.add_argument("--out", action="append", metavar="URL",
                        help=f"MAVLink endpoint (default {DEFAULT_OUT}); repeat for one per "
                             "vehicle (udpout:, udpin:, tcp:, tcpin:, serial device)")
    parser.add_argument("--count", type=_count, default=1,
                        help="number of vehicles (replay: copies of the log, --spacing-m apart)")
    parser.add_argument("--sysid", type=_sysid,
                        help="system id of the first vehicle (replay: rewrite the log's; "
                             "synthetic: default 1); vehicle i gets sysid+i")
    parser.add_argument("--speed", type=_positive, default=1.0, help="time factor (default 1)")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--duration", type=_positive, metavar="S",
                        help="stop after S seconds (default: run until SIGTERM/Ctrl-C)")
    parser.add_argument("--origin", type=_origin, metavar="LAT,LON[,ALT]",
                        help="synthetic: centre of the pattern (default 47.3977,8.5456,488); "
                             "replay: re-centre the log's first position here (with ALT, every "
                             "AMSL altitude moves by ALT minus that position's altitude)")
    parser.add_argument("--shift-north-m", type=_finite, default=0.0, metavar="M")
    parser.add_argument("--shift-east-m", type=_finite, default=0.0, metavar="M")
    parser.add_argument("--spacing-m", type=_finite, default=30.0, metavar="M",
                        help="replay with --count > 1: east offset between copies (default 30)")
    parser.add_argument("--keep-other-systems", action="store_true",
                        help="replay: also send the GCS/other systems' packets of the log")
    syn = parser.add_argument_group("synthetic vehicles")
    syn.add_argument("--radius-m", type=_positive, default=100.0)
    syn.add_argument("--alt-m", type=_positive, default=30.0, help="flight height above home")
    syn.add_argument("--alt-step-m", type=_finite, default=5.0, help="extra height per vehicle")
    syn.add_argument("--speed-mps", type=_positive, default=8.0, help="cruise speed")
    syn.add_argument("--mission-s", type=_positive, default=120.0, help="time in AUTO")
    syn.add_argument("--lane-spacing-m", type=_positive, help="lawnmower lane spacing")
    syn.add_argument("--formation-spacing-m", type=_positive, default=15.0)
    syn.add_argument("--no-default-streams", action="store_true",
                     help="send only HEARTBEAT until streams are requested (SRx = 0)")
    syn.add_argument("--set-message-interval", choices=("accept", "unsupported", "ignore"),
                     default="accept", help="how to answer MAV_CMD_SET_MESSAGE_INTERVAL")
    syn.add_argument("--mavlink1", action="store_true", help="send MAVLink 1 packets")
    syn.add_argument("--system-time-delay", action="store_true",
                     help="stamp SYSTEM_TIME as a flight controller hands it over: 0-2.5 ms "
                          "old (its 400 Hz scheduler loop)")
    parser.add_argument("--system-time-now", action="store_true",
                        help="replay: SYSTEM_TIME says the time it is sent, not the logged "
                             "time (what a flight controller's GPS says; needed for TDMA)")
    parser.add_argument("--truth-json", metavar="PATH",
                        help="write every vehicle's true state here (atomically)")
    parser.add_argument("--truth-interval", type=_positive, default=0.5, metavar="S")
    parser.add_argument("--medium", metavar="HOST:PORT",
                        help="send vehicle positions to this radio medium hub")
    parser.add_argument("--medium-node", action="append", metavar="ID",
                        help="medium node id per vehicle, or one template with {sysid}/{index} "
                             "(default uav{sysid})")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `sim vehicle` (creating the `sim` group if needed)."""
    parser = get_sim_subparsers(subparsers, common).add_parser(
        "vehicle",
        parents=[common],
        help="simulated flight controllers: replay a .tlog or fly a synthetic swarm",
        description=__doc__.splitlines()[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def _node_ids(args: argparse.Namespace, sysids: list[int]) -> dict[int, str]:
    names = args.medium_node or ["uav{sysid}"]
    if len(names) == 1:
        try:
            return {s: names[0].format(sysid=s, index=i) for i, s in enumerate(sysids)}
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"--medium-node template {names[0]!r}: only {{sysid}} and {{index}} ({exc})"
            ) from None
    if len(names) != len(sysids):
        raise ConfigError(f"give one --medium-node per vehicle ({len(sysids)}) or one template")
    return dict(zip(sysids, names))


def build(args: argparse.Namespace) -> VehicleSimulator:
    """The simulator the arguments describe (raises ConfigError for unusable ones)."""
    outputs = args.out or [DEFAULT_OUT]
    if args.log is not None:
        reference = find_log_reference(args.log)
        first = args.sysid
        if first is not None and first + args.count - 1 > 255:
            raise ConfigError("--sysid + --count goes past system id 255")
        if first is None and args.count > 1:
            first = reference.sysid
        transforms = [
            ReplayTransform(
                reference,
                sysid=None if first is None else first + i,
                shift_east_m=args.shift_east_m + i * args.spacing_m,
                shift_north_m=args.shift_north_m,
                origin=args.origin,
                keep_other_systems=args.keep_other_systems,
                gps_clock=time.time if args.system_time_now else None,
            )
            for i in range(args.count)
        ]
        replayer = LogReplayer(args.log, transforms, speed=args.speed, loop=args.loop)
        sysids = [t.out_sysid for t in transforms]
        kwargs: dict[str, Any] = {"replayer": replayer}
    else:
        lat, lon, *rest = args.origin or (47.3977, 8.5456, 488.0)
        origin = (lat, lon, rest[0] if rest else 488.0)
        if args.shift_east_m or args.shift_north_m:
            from lora_telemetry.core.geo import LocalProjection

            lat, lon = LocalProjection(lat, lon).to_geodetic(args.shift_east_m, args.shift_north_m)
            origin = (lat, lon, origin[2])
        vehicles = build_swarm(
            args.pattern, args.count, origin,
            radius_m=args.radius_m, alt_m=args.alt_m, alt_step_m=args.alt_step_m,
            speed_mps=args.speed_mps, mission_s=args.mission_s, first_sysid=args.sysid or 1,
            lane_spacing_m=args.lane_spacing_m, formation_spacing_m=args.formation_spacing_m,
            start_unix_s=time.time(), repeat=args.loop,
        )  # fmt: skip
        autopilots = [
            SimulatedAutopilot(
                v,
                default_rates_hz={} if args.no_default_streams else None,
                set_message_interval=args.set_message_interval,
                mavlink1=args.mavlink1,
                system_time_delay=SYSTEM_TIME_DELAY if args.system_time_delay else None,
                seed=v.sysid,
            )
            for v in vehicles
        ]
        sysids = [v.sysid for v in vehicles]
        kwargs = {"autopilots": autopilots}
    sink = closer = None
    if args.medium:
        sink, closer = medium_position_sink(args.medium, _node_ids(args, sysids))
    try:
        return VehicleSimulator(
            outputs, speed=args.speed, truth_path=args.truth_json,
            truth_period_s=args.truth_interval, position_sink=sink, on_close=closer, **kwargs,
        )  # fmt: skip
    except LoraTelemetryError:
        if closer is not None:
            closer()
        raise


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sim = build(args)
    stop = threading.Event()
    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    start = {
        "source": args.log or args.pattern,
        "vehicles": sim.sysids,
        "out": args.out or [DEFAULT_OUT],
        "speed": args.speed,
    }
    if args.json:
        print(json.dumps({"event": "started", **start}), flush=True)
    else:
        print(f"sim vehicle: {start['source']} as system(s) "
              f"{', '.join(map(str, start['vehicles']))} -> {', '.join(start['out'])}",
              flush=True)  # fmt: skip
    announce_ready("vehicle", vehicles=start["vehicles"], out=start["out"])
    try:
        sim.run(duration_s=args.duration, stop=stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sim.close()
    stats = sim.stats()
    if args.json:
        print(json.dumps({"event": "stopped", "stats": stats}, default=str), flush=True)
    else:
        sent = sum(o.get("packets", 0) for o in stats["outputs"].values())
        print(f"sim vehicle stopped after {stats['sim_time_s']:.1f} s of simulated time: "
              f"{sent} packets sent", flush=True)  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m lora_telemetry.cli.sim_vehicle``), same options."""
    from lora_telemetry.cli.standalone import standalone_main

    return standalone_main("lora-telemetry sim vehicle", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
