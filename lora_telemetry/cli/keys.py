"""`lora-telemetry keys`: create and inspect key files (keys never printed unless asked)."""

from __future__ import annotations

import argparse

from lora_telemetry import keyfile
from lora_telemetry.cli.output import emit
from lora_telemetry.core.lorawan import format_dev_addr, parse_dev_addr


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    keys = subparsers.add_parser("keys", help="create and inspect LoRaWAN key files")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    gen = sub.add_parser(
        "generate", parents=[common], help="add a device with fresh random keys to a key file",
        description="Add a device with fresh random ABP session keys to a key file "
                    "(created owner-only, mode 0600). Keys are not printed.",
    )
    gen.add_argument("--name", required=True, help="device name, e.g. uav1")
    gen.add_argument("--devaddr", required=True, help="DevAddr, 8 hex digits")
    gen.add_argument("--out", required=True, help="key file to create or extend")
    gen.add_argument("--force", action="store_true", help="replace the device's keys if present")
    gen.set_defaults(func=run_generate)

    show = sub.add_parser("list", parents=[common], help="list the devices in a key file")
    show.add_argument("file", help="key file")
    show.set_defaults(func=run_list)


def run_generate(args: argparse.Namespace) -> int:
    device = keyfile.generate_device(args.name, parse_dev_addr(args.devaddr))
    keyfile.add_device(args.out, device, replace=args.force)
    emit(args, {"written": args.out, "name": device.name, "devaddr": format_dev_addr(device.devaddr)})
    return 0


def run_list(args: argparse.Namespace) -> int:
    devices = keyfile.load_key_file(args.file)
    emit(args, {name: format_dev_addr(d.devaddr) for name, d in devices.items()})
    return 0
