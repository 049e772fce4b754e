"""`lora-telemetry radio info|send|listen`: talk to a serial LoRa module of any family.

Works the same on a real module (``--port /dev/ttyUSB0``) and on an emulated one
(``--port /tmp/lora_sim/uav1.tty`` from ``lora-telemetry sim module``). ``--type`` picks the
family from the registry (radios/registry.py); its driver is imported only when asked for.

* ``info``: what the module reports (firmware, EUI, names, counters).
* ``send``: raw-radio (``--mode p2p``, any module) or LoRaWAN ABP uplinks through the module's
  own stack (``--mode lorawan``, families with one; keys from a key file made by
  ``lora-telemetry keys generate``).
* ``listen``: raw-radio reception, one line (or JSON object) per frame.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from lora_telemetry.cli.output import emit
from lora_telemetry.core import phy as lphy
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.regions import get_region, region_for_frequency, region_names
from lora_telemetry.radios import registry
from lora_telemetry.radios.base import (
    AbpSession, Capability, ModuleLoRaWAN, Radio, RawReceive, RawTransmit,
)


def _int_auto(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    radio = subparsers.add_parser(
        "radio", help="talk to a serial LoRa module (" + ", ".join(registry.module_family_names())
        + "): info, send, listen",
        description=__doc__.splitlines()[0],
    )
    sub = radio.add_subparsers(dest="radio_command", metavar="ACTION", required=True)

    port = argparse.ArgumentParser(add_help=False)
    port.add_argument("--type", choices=registry.module_family_names(), required=True,
                      help="module family")
    port.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    port.add_argument("--baud", type=int, help="baud rate (default: the family's: " + ", ".join(
        f"{f.name} {f.serial}" for f in registry.module_families()) + ")")

    link = argparse.ArgumentParser(add_help=False)
    link.add_argument("--mode", choices=("p2p", "lorawan"), default="p2p",
                      help="raw radio frames (default) or LoRaWAN ABP uplinks through the "
                           "module's own stack")
    link.add_argument("--freq", type=int, help="carrier in Hz (default: the family's, " + ", ".join(
        f"{f.name} {f.default_frequency_hz}" for f in registry.module_families())
        + "; LoRaWAN: the region's first default channel)")
    link.add_argument("--sf", default="7", help="P2P spreading factor 7..12 (default 7)")
    link.add_argument("--bw", default="125", help="P2P bandwidth in kHz (default 125)")
    link.add_argument("--cr", default="4/5", help="P2P coding rate 4/5..4/8 (default 4/5)")
    link.add_argument("--preamble", type=int, default=8, help="P2P preamble symbols (8)")
    link.add_argument("--sync", type=_int_auto, default=0x34, help="P2P sync word (0x34)")
    link.add_argument("--power", type=float, help="P2P output power in dBm")
    link.add_argument("--iq", choices=("normal", "inverted"), default="normal",
                      help="P2P IQ polarity (normal for uplinks)")
    link.add_argument("--iq-inverted", action="store_const", const="inverted", dest="iq",
                      help=argparse.SUPPRESS)
    link.add_argument("--crc", choices=("on", "off"), default="on", help="P2P payload CRC")
    link.add_argument("--no-crc", action="store_const", const="off", dest="crc",
                      help=argparse.SUPPRESS)
    link.add_argument("--implicit-length", type=int, metavar="N",
                      help="P2P implicit header with fixed payload length N (families that have it)")
    link.add_argument("--region", choices=region_names(),
                      help="LoRaWAN band plan (default: the one holding --freq, else EU868)")
    link.add_argument("--dr", type=int, default=5, help="LoRaWAN data rate (default 5)")
    link.add_argument("--pwridx", type=int, default=1, help="LoRaWAN TXPower index (default 1)")
    link.add_argument("--duty-cycle", type=float, default=0.01,
                      help="duty cycle the module enforces on the channel (default 0.01 = 1 %%)")
    link.add_argument("--key-file", help="key file (lora-telemetry keys generate)")
    link.add_argument("--device", help="device name in the key file")
    link.add_argument("--upctr", type=int, help="LoRaWAN uplink frame counter to start from")

    info = sub.add_parser("info", parents=[common, port], help="what the module reports")
    info.set_defaults(func=run_info)

    send = sub.add_parser("send", parents=[common, port, link], help="transmit frames")
    data = send.add_mutually_exclusive_group(required=True)
    data.add_argument("--hex", "--data", dest="data", help="payload as hex")
    data.add_argument("--text", help="payload as text (UTF-8)")
    send.add_argument("--count", type=int, default=1, help="frames to send (default 1)")
    send.add_argument("--interval", type=float, default=0.0, help="seconds between frames")
    send.add_argument("--fport", type=int, default=1, help="LoRaWAN FPort 1..223 (default 1)")
    send.add_argument("--confirmed", action="store_true", help="LoRaWAN confirmed uplink")
    send.set_defaults(func=run_send)

    listen = sub.add_parser("listen", parents=[common, port, link], help="receive raw frames")
    listen.add_argument("--count", type=int, help="stop after this many frames")
    listen.add_argument("--duration", type=float, default=10.0,
                        help="stop after this many seconds (default 10)")
    listen.set_defaults(func=run_listen)


def open_radio(kind: str, port: str, baud: int | None = None,
               implicit_length: int | None = None) -> Radio:
    """The driver of family ``kind`` on ``port`` (imported on first use)."""
    spec = registry.module_family(kind)
    if implicit_length:
        if "implicit_length" not in spec.driver_options:
            raise ConfigError(f"the {spec.title} has no implicit-header mode; drop "
                              "--implicit-length")
        return spec.open_serial(port, baud, implicit_length=implicit_length)
    return spec.open_serial(port, baud)


def p2p_phy(args: argparse.Namespace) -> lphy.PhySettings:
    return lphy.PhySettings(
        frequency_hz=args.freq or registry.module_family(args.type).default_frequency_hz,
        sf=lphy.parse_spreading_factor(args.sf),
        bandwidth_hz=lphy.parse_bandwidth(args.bw),
        coding_rate=lphy.parse_coding_rate(args.cr),
        preamble_symbols=args.preamble,
        crc_on=args.crc == "on",
        explicit_header=args.implicit_length is None,
        sync_word=args.sync,
        iq_inverted=args.iq == "inverted",
        tx_power_dbm=args.power,
    )


def _payload(args: argparse.Namespace) -> bytes:
    if args.text is not None:
        return args.text.encode("utf-8")
    try:
        return bytes.fromhex(args.data)
    except ValueError:
        raise ConfigError(f"--hex {args.data!r} is not hex") from None


def run_info(args: argparse.Namespace) -> int:
    with open_radio(args.type, args.port, args.baud,
                    getattr(args, "implicit_length", None)) as radio:
        info: dict[str, Any] = dict(radio.info())
        info.setdefault("name", radio.name)
        emit(args, info)
    return 0


def _check_lorawan(args: argparse.Namespace) -> None:
    spec = registry.module_family(args.type)
    if not spec.has(Capability.MODULE_LORAWAN):
        with_stack = [f.name for f in registry.module_families()
                      if f.has(Capability.MODULE_LORAWAN)]
        raise ConfigError(f"--mode lorawan needs a module with its own LoRaWAN stack "
                          f"(--type {' or '.join(with_stack)}); the {spec.title} sends raw LoRa")
    if not args.key_file or not args.device:
        raise ConfigError("--mode lorawan needs --key-file and --device (keys never go on the "
                          "command line)")


def _lorawan_setup(radio: ModuleLoRaWAN, args: argparse.Namespace) -> None:
    from lora_telemetry import keyfile

    keys = keyfile.device_keys(args.key_file, args.device)
    if args.region:
        region = get_region(args.region)
    else:
        region = region_for_frequency(args.freq) if args.freq else get_region("EU868")
    radio.join_abp(AbpSession(
        region=region, frequency_hz=args.freq or region.default_channels_hz[0],
        data_rate=args.dr, tx_power_index=args.pwridx, devaddr=keys.devaddr,
        nwkskey=keys.nwkskey, appskey=keys.appskey, duty_cycle=args.duty_cycle,
        uplink_counter=args.upctr))


def run_send(args: argparse.Namespace) -> int:
    payload = _payload(args)
    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    if args.mode == "lorawan":
        _check_lorawan(args)
    with open_radio(args.type, args.port, args.baud,
                    getattr(args, "implicit_length", None)) as radio:
        if args.mode == "lorawan":
            assert isinstance(radio, ModuleLoRaWAN)  # the family's declared capability
            _lorawan_setup(radio, args)
        else:
            assert isinstance(radio, RawTransmit)
            radio.configure(p2p_phy(args))
        for i in range(args.count):
            if i and args.interval > 0:
                time.sleep(args.interval)
            if isinstance(radio, ModuleLoRaWAN) and args.mode == "lorawan":
                res = radio.send_uplink(args.fport, payload, confirmed=args.confirmed)
                row: dict[str, Any] = {"frame": i + 1, "fcnt": res.fcnt, "bytes": len(payload),
                                       "airtime_ms": res.airtime_s * 1000.0,
                                       "duration_ms": (res.finished - res.started) * 1000.0}
                if res.downlink is not None:
                    row.update(downlink_port=res.downlink.port,
                               downlink_hex=res.downlink.data.hex())
            else:
                assert isinstance(radio, RawTransmit)
                res = radio.send(payload)
                row = {"frame": i + 1, "bytes": len(payload), "airtime_ms": res.airtime_s * 1000.0,
                       "duration_ms": (res.finished - res.started) * 1000.0}
            emit(args, row)
    return 0


def run_listen(args: argparse.Namespace) -> int:
    if args.mode != "p2p":
        raise ConfigError("listen works in --mode p2p: a LoRaWAN end device only receives in "
                          "the windows after its own uplinks (see `radio send --mode lorawan`)")
    received = 0
    end = time.monotonic() + args.duration
    with open_radio(args.type, args.port, args.baud,
                    getattr(args, "implicit_length", None)) as radio:
        assert isinstance(radio, RawReceive)  # every module family receives raw frames
        radio.configure(p2p_phy(args))
        while (args.count is None or received < args.count) and time.monotonic() < end:
            frame = radio.receive(min(1.0, max(0.05, end - time.monotonic())))
            if frame is None:
                continue
            received += 1
            row = {"time": frame.time, "hex": frame.data.hex(), "bytes": len(frame.data),
                   "rssi_dbm": frame.rssi_dbm, "snr_db": frame.snr_db, "crc_ok": frame.crc_ok}
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{row['bytes']:3d} B  rssi {row['rssi_dbm']}  snr {row['snr_db']}  "
                      f"{row['hex']}", flush=True)
    return 0 if received or args.count is None else 1
