"""`lora-telemetry sim module`: run an emulated serial LoRa module on a pseudo-terminal.

The family (``--type``) and its own options come from the radio registry (radios/registry.py).

Prints the path a driver should open (the stable link, e.g. ``/tmp/lora_sim/uav1.tty``) as the
first line of stdout (a JSON object with ``--json``), then serves until SIGTERM/Ctrl-C. The
module joins the radio medium (``--medium host:port``, else ``$LORA_TELEMETRY_MEDIUM``, else
127.0.0.1:47100) unless ``--no-medium``.

``--control PATH`` binds a Unix datagram socket for fault injection; each datagram is one of
``garbage [hex]``, ``reset``, ``drop [n]``, ``unplug [seconds]`` (replug after that long),
``replug``, and for the RN2483 ``silent on|off``; the reply (``ok`` or an error) goes back to a bound sender, e.g.
``echo reset | socat - UNIX-SENDTO:/tmp/lora_sim/uav1.ctl,bind=/tmp/me.sock``.

Emulators share one constructor shape, ``Emulator(name, link_path, medium_client, ...)`` with
``path``, ``serve_forever()``, ``stop()`` and ``close()`` (see ``sim/rn2483_emulator.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.radios import registry
from lora_telemetry.readiness import announce_ready


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
    for spec in _emulated_modules():  # each family's own options (radios/<family>/)
        group = parser.add_argument_group(f"{spec.title} ({spec.name})")
        for option in spec.emulator_options:
            group.add_argument(f"--{option.name.replace('_', '-')}", dest=f"{spec.name}_{option.name}",
                               type=option.type, default=option.default, choices=option.choices,
                               help=option.help)
    parser.add_argument("--control", metavar="PATH",
                        help="Unix datagram socket accepting fault-injection commands")
    parser.add_argument("--verbose", action="store_true", help="log the emulator's events")


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
                  args: argparse.Namespace | None = None) -> Any:
    """The emulator of family ``kind`` with its options from ``args`` (imported lazily)."""
    spec = registry.family(kind)
    options: dict[str, Any] = {}
    if args is not None:
        options = {o.name: getattr(args, f"{spec.name}_{o.name}") for o in spec.emulator_options}
    return spec.emulator_class()(name, link, medium_client, **options)


def apply_control(emulator: Any, text: str) -> str:
    """One fault-injection command, on any emulator of the shared shape."""
    words = text.strip().split()
    verb, rest = (words[0].lower(), words[1:]) if words else ("", [])
    try:
        if verb == "garbage":
            emulator.inject_garbage(bytes.fromhex(rest[0]) if rest else None)
        elif verb == "reset":
            (getattr(emulator, "inject_reset", None) or emulator.reset)()
        elif verb == "drop":
            emulator.drop_answers(int(rest[0]) if rest else 1)
        elif verb == "unplug":
            emulator.unplug()
            if rest:
                timer = threading.Timer(float(rest[0]), emulator.replug)
                timer.daemon = True
                timer.start()
        elif verb == "replug":
            emulator.replug()
        elif verb == "silent" and hasattr(emulator, "set_silent"):
            emulator.set_silent(not rest or rest[0].lower() != "off")
        else:
            return (f"error: unknown command {text.strip()!r}; use garbage [hex] | reset | "
                    "drop [n] | unplug [seconds] | replug | silent on|off (RN2483)")
    except (ValueError, IndexError, AttributeError) as exc:
        return f"error: {text.strip()!r}: {exc}"
    return "ok"


class _ControlSocket:
    """Serve :func:`apply_control` on a Unix datagram socket in a daemon thread."""

    def __init__(self, path: str, emulator: Any) -> None:
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
