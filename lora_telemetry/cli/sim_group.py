"""The `lora-telemetry sim` command group, shared by every simulator subcommand.

`sim medium`, `sim module`, `sim vehicle` and `sim swarm` live in separate modules; each calls
:func:`get_sim_subparsers` from its ``register`` and adds its own parser to the returned
action. Whichever registers first creates the group; the others reuse it.
"""

from __future__ import annotations

import argparse

_ATTR = "_lora_telemetry_sim_subparsers"


def get_sim_subparsers(
    subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser | None = None
) -> argparse._SubParsersAction:
    """The subparsers action of the `sim` parser, creating `sim` on first use."""
    sim = subparsers.choices.get("sim")
    if sim is None:
        parents = [common] if common is not None else []
        sim = subparsers.add_parser(
            "sim",
            parents=parents,
            help="simulators: radio medium, emulated modules, vehicles, whole swarm",
            description="Hardware-free simulation: run the pieces as separate processes.",
        )

        def _help(_args: argparse.Namespace) -> int:
            sim.print_help()
            return 2

        sim.set_defaults(func=_help)
        setattr(sim, _ATTR, sim.add_subparsers(dest="sim_command", metavar="SIMULATOR"))
    action = getattr(sim, _ATTR, None)
    if action is None:
        raise RuntimeError("a 'sim' subcommand exists that was not created by get_sim_subparsers")
    return action
