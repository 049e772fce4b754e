"""Running one subcommand module on its own (`python -m lora_telemetry.cli.sim_medium ...`).

The simulators start each other as processes this way, with the same options and the same
one-line errors as `lora-telemetry sim ...`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.readiness import announce_failed


def standalone_parser(prog: str, description: str,
                      add_arguments: Callable[[argparse.ArgumentParser], None]
                      ) -> argparse.ArgumentParser:
    """The parser of a standalone subcommand: its own options plus --json."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_arguments(parser)
    return parser


def standalone_main(prog: str, description: str,
                    add_arguments: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int],
                    argv: Sequence[str] | None = None) -> int:
    args = standalone_parser(prog, description, add_arguments).parse_args(argv)
    try:
        return int(run(args) or 0)
    except LoraTelemetryError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        announce_failed(str(exc))  # to a parent waiting for readiness (lora_telemetry/readiness.py)
        return 2
    except KeyboardInterrupt:
        return 130
