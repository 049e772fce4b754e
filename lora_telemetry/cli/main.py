"""The `lora-telemetry` command: one entry point with subcommands.

Each subcommand lives in its own module exposing ``register(subparsers, common)``, which adds
its parser and sets ``func`` to a callable taking the parsed arguments and returning an exit
code. Errors raised on purpose (``LoraTelemetryError``) become a one-line message and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Sequence

from lora_telemetry import __version__
from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.readiness import announce_failed

# Subcommand modules, in the order `--help` lists them.
SUBCOMMANDS: tuple[str, ...] = ("airtime", "frames", "keys", "radio_tool", "sim_medium", "sim_module", "sim_swarm", "sim_vehicle", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-telemetry",
        description="UAV swarm telemetry over LoRa: protocol tools, simulators and benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Options every subcommand accepts after its name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"lora_telemetry.cli.{name}")
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LoraTelemetryError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        # One line even when the message quotes text with line breaks (a path, a YAML error).
        message = " ".join(str(exc).splitlines())
        print(f"lora-telemetry {args.command}: error: {message}", file=sys.stderr)
        announce_failed(message)  # to a parent waiting for readiness (lora_telemetry/readiness.py)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
