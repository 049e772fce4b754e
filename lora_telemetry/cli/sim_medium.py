"""`lora-telemetry sim medium`: run the simulated radio medium hub (loopback UDP).

Prints ``medium listening on HOST:PORT seed=N`` (or a JSON object with ``--json``) as soon as
the socket is bound, so scripts can start it with ``--port 0`` and read the port; a parent
with a ready channel gets the same as ``{"ready": "medium", "host", "port", "seed"}`` at that
moment (lora_telemetry/readiness.py).
SIGTERM or Ctrl-C stop it cleanly; the stats JSON is written periodically and on exit.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
from typing import Any, Sequence

from lora_telemetry.cli.sim_group import get_sim_subparsers
from lora_telemetry.readiness import announce_ready
from lora_telemetry.sim.medium import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MediumHub,
    load_medium_params,
    run_hub,
)


def _port(text: str) -> int:
    if not text.isdecimal() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} must be 0-65535 (0: pick a free one)")
    return int(text)


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} must be an integer") from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"loopback address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"UDP port (default {DEFAULT_PORT}; 0 picks a free port)")
    parser.add_argument("--config", metavar="YAML",
                        help="medium parameters (see config/medium.yaml); default: built-in")
    parser.add_argument("--seed", type=_seed,
                        help="seed of the medium's random decisions (default: random, printed)")
    parser.add_argument("--stats-json", metavar="PATH",
                        help="write delivery/drop counters here periodically and on exit")
    parser.add_argument("--stats-interval", type=_positive, default=2.0, metavar="S",
                        help="seconds between stats-file writes (default 2)")
    parser.add_argument("--duration", type=_positive, metavar="S",
                        help="stop after S seconds (default: run until SIGTERM/Ctrl-C)")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `sim medium` (creating the `sim` group if needed)."""
    parser = get_sim_subparsers(subparsers, common).add_parser(
        "medium",
        parents=[common],
        help="run the simulated radio medium (UDP hub joining emulated radios)",
        description=__doc__.splitlines()[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = load_medium_params(args.config)
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    previous: dict[int, Any] = {}

    def ready(hub: MediumHub) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: hub.stop())
        host, port = hub.address
        if getattr(args, "json", False):
            print(json.dumps({"host": host, "port": port, "seed": seed}), flush=True)
        else:
            print(f"medium listening on {host}:{port} seed={seed}", flush=True)
        announce_ready("medium", host=host, port=port, seed=seed)

    try:
        stats = run_hub(params, host=args.host, port=args.port, seed=seed,
                        stats_path=args.stats_json, stats_interval_s=args.stats_interval,
                        duration_s=args.duration, on_ready=ready)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if getattr(args, "json", False):
        print(json.dumps({"stats": stats}), flush=True)
    else:
        reasons = ", ".join(f"{k} {v}" for k, v in stats["dropped"].items() if v) or "none"
        print(f"medium stopped: {stats['transmissions']} frames, {stats['delivered']} delivered, "
              f"{stats['crc_error']} with CRC errors, {stats['dropped_total']} dropped "
              f"({reasons})", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m lora_telemetry.cli.sim_medium``), same options."""
    from lora_telemetry.cli.standalone import standalone_main

    return standalone_main("lora-telemetry sim medium", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
