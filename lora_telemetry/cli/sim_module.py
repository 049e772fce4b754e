"""`lora-telemetry sim module`: run an emulated serial LoRa module on a pseudo-terminal.

The family (``--type``) and its own options come from the radio registry (radios/registry.py);
an option several families declare (``--seed``) is one flag for all of them.

``--baud`` is the module's UART rate, modelled by the device loop (sim/device_loop.py: bytes
cross the pty no faster than the line would carry them); default the family's (57600 for the
RN2483, 115200 for the EByte), 0 for an instant line.

Prints the path a driver should open (the stable link, e.g. ``/tmp/lora_sim/uav1.tty``) as the
first line of stdout (a JSON object with ``--json``), then serves until SIGTERM/Ctrl-C. The
module joins the radio medium (``--medium host:port``, else ``$LORA_TELEMETRY_MEDIUM``, else
127.0.0.1:47100) unless ``--no-medium``.

``--control PATH`` binds a Unix datagram socket for fault injection; each datagram is one of
``garbage [hex]``, ``reset``, ``drop [n]``, ``unplug [seconds]`` (replug after that long),
``replug``, ``silent on|off``, parsed once into the typed commands of core/emulation.py; the
reply (``ok``, or ``error: ...`` with the reason a module refused, e.g. one without a silent
mode) goes back to a bound sender, e.g.
``echo reset | socat - UNIX-SENDTO:/tmp/lora_sim/uav1.ctl,bind=/tmp/me.sock``.

The family's emulator logic comes from the registry (``FAMILY.emulator``); the shell is
sim/emulated_serial.py for all of them. This command creates the medium client, so it closes
it, after the emulator (the rule of sim/device_loop.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from lora_telemetry.core.emulation import (
    ControlCommand, DropAnswers, Garbage, Refused, Replug, Reset, Silence, Unplug,
)
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.radios import registry
from lora_telemetry.readiness import announce_ready
from lora_telemetry.sim.emulated_serial import EmulatedSerialModule, emulated_module


def _emulated_modules() -> list[registry.FamilySpec]:
    return registry.families(role=registry.Role.SERIAL_MODULE, emulated=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", choices=[f.name for f in _emulated_modules()], required=True,
                        help="module family to emulate")
    parser.add_argument("--name", required=True, help="node name on the medium, e.g. uav1")
    parser.add_argument("--link", metavar="PATH",
                        help="stable symlink to create (default /tmp/lora_sim/<name>.tty)")
    parser.add_argument("--medium", metavar="HOST:PORT",
                        help="radio medium hub (default $LORA_TELEMETRY_MEDIUM or "
                             "127.0.0.1:47100)")
    parser.add_argument("--no-medium", action="store_true",
                        help="do not join a medium: frames take their airtime and go nowhere")
    parser.add_argument("--x", type=float, default=0.0, help="east position in m (0)")
    parser.add_argument("--y", type=float, default=0.0, help="north position in m (0)")
    parser.add_argument("--z", type=float, default=0.0, help="height in m (0)")
    parser.add_argument("--baud", type=_baud, default=None,
                        help="the module's UART rate (default the family's; 0: instant)")
    shared: dict[str, registry.EmulatorOption] = {}
    for spec in _emulated_modules():  # each family's own options (radios/<family>/)
        group = parser.add_argument_group(f"{spec.title} ({spec.name})")
        for option in spec.emulator_options:
            if option.name in shared:  # one flag for every family that declares it
                if shared[option.name] != option:
                    raise ConfigError(f"emulator option {option.name!r} is declared differently "
                                      f"by two families")
                continue
            shared[option.name] = option
            group.add_argument(f"--{option.name.replace('_', '-')}", dest=_dest(option),
                               type=option.type, default=option.default, choices=option.choices,
                               help=option.help)
    parser.add_argument("--control", metavar="PATH",
                        help="Unix datagram socket accepting fault-injection commands")
    parser.add_argument("--verbose", action="store_true", help="log the emulator's events")


def _dest(option: registry.EmulatorOption) -> str:
    return f"emulator_{option.name}"


def _baud(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 4_000_000:
        raise argparse.ArgumentTypeError(f"baud must be 0 (instant) to 4000000, not {text}")
    return value


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `sim module` (creating the `sim` group if needed)."""
    from lora_telemetry.cli.sim_group import get_sim_subparsers

    parser = get_sim_subparsers(subparsers, common).add_parser(
        "module", parents=[common], help="run an emulated serial LoRa module on a pty",
        description=__doc__.splitlines()[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def make_emulator(kind: str, name: str, link: str | None, medium_client: Any,
                  args: argparse.Namespace | None = None) -> EmulatedSerialModule:
    """The emulator of family ``kind`` with its options from ``args`` (imported lazily)."""
    spec = registry.family(kind)
    options: dict[str, Any] = {}
    baud = None
    if args is not None:
        options = {o.name: getattr(args, _dest(o)) for o in spec.emulator_options}
        baud = args.baud
    return emulated_module(kind, name, link, medium_client, baud=baud, **options)


CONTROL_USAGE = "garbage [hex] | reset | drop [n] | unplug [seconds] | replug | silent on|off"


def parse_control(text: str) -> ControlCommand:
    """One text command of ``--control`` as a typed command; ValueError says what is wrong."""
    words = text.strip().split()
    verb, rest = (words[0].lower(), words[1:]) if words else ("", [])
    arity = {"garbage": 1, "reset": 0, "drop": 1, "unplug": 1, "replug": 0, "silent": 1}
    if verb not in arity:
        raise ValueError(f"unknown command {text.strip()!r}; use {CONTROL_USAGE}")
    if len(rest) > arity[verb]:
        raise ValueError(f"{verb!r} takes at most {arity[verb]} argument(s); use {CONTROL_USAGE}")
    try:
        return _command(verb, rest[0] if rest else None)
    except ValueError as exc:
        raise ValueError(f"{text.strip()!r}: {exc}") from None


def _command(verb: str, argument: str | None) -> ControlCommand:
    if verb == "garbage":
        return Garbage(None if argument is None else bytes.fromhex(argument))
    if verb == "reset":
        return Reset()
    if verb == "drop":
        count = 1 if argument is None else int(argument)
        if count < 0:
            raise ValueError(f"drop needs a count of 0 or more, got {count}")
        return DropAnswers(count)
    if verb == "unplug":
        seconds = None if argument is None else float(argument)
        if seconds is not None and not 0 <= seconds < 86400:
            raise ValueError(f"unplug needs 0 to 86400 seconds, got {argument}")
        return Unplug(seconds)
    if verb == "replug":
        return Replug()
    if argument is not None and argument.lower() not in ("on", "off"):
        raise ValueError(f"silent takes on or off, not {argument!r}")
    return Silence(argument is None or argument.lower() == "on")


def apply_control(emulator: EmulatedSerialModule, text: str) -> str:
    """One text command carried out on the emulator: ``ok`` or ``error: <why>``."""
    try:
        command = parse_control(text)
    except ValueError as exc:
        return f"error: {exc}"
    answer = emulator.control(command)
    if isinstance(answer, Refused):
        return f"error: {answer.reason}"
    return "ok"


class _ControlSocket:
    """Serve :func:`apply_control` on a Unix datagram socket in a daemon thread."""

    def __init__(self, path: str, emulator: EmulatedSerialModule) -> None:
        self.path = Path(path)
        if self.path.is_socket():
            self.path.unlink()
        elif self.path.exists():
            raise ConfigError(f"--control {path}: a file that is not a socket is in the way")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self._emulator = emulator
        self.counters: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sim-module-control",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = apply_control(self._emulator, data.decode("ascii", "replace"))
            self.counters["refused" if reply.startswith("error") else "carried_out"] += 1
            logging.getLogger(__name__).info("control %r: %s", data, reply)
            if sender:
                try:
                    self._sock.sendto(reply.encode() + b"\n", sender)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self._sock.close()
        try:
            self.path.unlink()
        except OSError:
            pass


def run(args: argparse.Namespace) -> int:
    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(name)s: %(message)s")
    client = None
    if not args.no_medium:
        from lora_telemetry.sim.medium import MediumClient
        client = MediumClient(args.name, hub=args.medium, position_m=(args.x, args.y, args.z))
    control = None
    try:
        emulator = make_emulator(args.type, args.name, args.link, client, args)
        try:
            if args.control:
                control = _ControlSocket(args.control, emulator)
            if getattr(args, "json", False):
                print(json.dumps({"type": args.type, "name": args.name, "path": emulator.path,
                                  "medium": None if client is None else
                                  f"{client.hub[0]}:{client.hub[1]}"}), flush=True)
            else:
                print(emulator.path, flush=True)

            def stop(_signum: int, _frame: Any) -> None:
                emulator.stop()
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            announce_ready("module", path=emulator.path, type=args.type, name=args.name)
            emulator.serve_forever()
        finally:
            if control is not None:
                control.close()
            emulator.close()
    finally:
        if client is not None:
            client.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m lora_telemetry.cli.sim_module``), same options."""
    from lora_telemetry.cli.standalone import standalone_main

    return standalone_main("lora-telemetry sim module", __doc__.splitlines()[0], add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
