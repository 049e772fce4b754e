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

    exp = sub.add_parser(
        "export", parents=[common], help="write one device's keys to its own file (for its drone)",
        description="Write a key file holding one device's keys only (owner-only), for that "
                    "UAV's companion computer: the ground keeps the full file, each drone its "
                    "own export, so a lost drone cannot forge the others.",
    )
    exp.add_argument("--name", required=True, help="device name, e.g. uav1")
    exp.add_argument("--out", required=True, help="file to write (refused if it exists)")
    exp.add_argument("--from", dest="source", default=keyfile.DEFAULT_KEY_FILE,
                     help=f"the full key file (default {keyfile.DEFAULT_KEY_FILE})")
    exp.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    exp.set_defaults(func=run_export)

    rot = sub.add_parser(
        "rotate", parents=[common], help="give a device new session keys (same DevAddr)",
        description="Replace a device's session keys with fresh random ones (same DevAddr). "
                    "Both nodes then start a new session at frame counter 0; frames of the old "
                    "session no longer verify, so they cannot be replayed.",
    )
    rot.add_argument("--name", required=True, help="device name, e.g. uav1")
    rot.add_argument("--file", default=keyfile.DEFAULT_KEY_FILE,
                     help=f"the full key file (default {keyfile.DEFAULT_KEY_FILE})")
    rot.set_defaults(func=run_rotate)


def run_generate(args: argparse.Namespace) -> int:
    device = keyfile.generate_device(args.name, parse_dev_addr(args.devaddr))
    keyfile.add_device(args.out, device, replace=args.force)
    emit(args, {"written": args.out, "name": device.name, "devaddr": format_dev_addr(device.devaddr)})
    return 0


def run_list(args: argparse.Namespace) -> int:
    devices = keyfile.load_key_file(args.file)
    emit(args, {name: format_dev_addr(d.devaddr) for name, d in devices.items()})
    return 0


def run_export(args: argparse.Namespace) -> int:
    device = keyfile.export_device(args.source, args.name, args.out, force=args.force)
    emit(args, {"written": args.out, "name": device.name,
                "devaddr": format_dev_addr(device.devaddr), "devices_in_file": 1})
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    device = keyfile.rotate_device(args.file, args.name)
    emit(args, {
        "written": args.file, "name": device.name, "devaddr": format_dev_addr(device.devaddr),
        "next": f"export them to the drone (lora-telemetry keys export --name {device.name} "
                f"--from {args.file} --out <file>) and restart its drone node and the ground node",
        "counters": "both ends start a new session at FCnt 0 (each state file remembers which "
                    "keys its counters belong to); frames of the old session fail the MIC, so "
                    "they cannot be replayed; until both ends have the new keys, the UAV's "
                    "frames are rejected as mic_failed",
    })
    return 0
