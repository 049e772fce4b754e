"""`lora-telemetry radio info|send|listen`: talk to a serial LoRa module (RN2483 or EByte).

Works the same on a real module (``--port /dev/ttyUSB0``) and on an emulated one
(``--port /tmp/lora_sim/uav1.tty`` from ``lora-telemetry sim module``). The driver is chosen
with ``--type``; the EByte driver is imported only when asked for.

* ``info``: what the module reports (firmware, EUI, names, counters).
* ``send``: raw-radio (``--mode p2p``, any module) or LoRaWAN ABP uplinks (``--mode lorawan``,
  RN2483 only; keys from a key file made by ``lora-telemetry keys generate``).
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
from lora_telemetry.radios.base import Radio

#: Default carrier per module type when --freq is not given (EByte modules are 433 MHz parts).
_DEFAULT_FREQ_HZ = {"rn2483": 868_100_000, "ebyte": 433_175_000}


def _int_auto(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    radio = subparsers.add_parser(
        "radio", help="talk to a serial LoRa module (RN2483, EByte): info, send, listen",
        description=__doc__.splitlines()[0],
    )
    sub = radio.add_subparsers(dest="radio_command", metavar="ACTION", required=True)

    port = argparse.ArgumentParser(add_help=False)
    port.add_argument("--type", choices=("rn2483", "ebyte"), required=True, help="module family")
    port.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    port.add_argument("--baud", type=int, help="baud rate (default: the module's, 57600 RN2483)")

    link = argparse.ArgumentParser(add_help=False)
    link.add_argument("--mode", choices=("p2p", "lorawan"), default="p2p",
                      help="raw radio frames (default) or LoRaWAN ABP uplinks (RN2483)")
    link.add_argument("--freq", type=int, help="carrier in Hz (default 868100000 RN2483, "
                      "433175000 EByte; LoRaWAN: the band's first default channel)")
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
                      help="P2P implicit header with fixed payload length N (EByte)")
    link.add_argument("--band", type=int, choices=(868, 433), default=868,
                      help="LoRaWAN band for `mac reset` (default 868)")
    link.add_argument("--dr", type=int, default=5, help="LoRaWAN data rate (default 5)")
    link.add_argument("--pwridx", type=int, default=1, help="LoRaWAN power index (default 1)")
    link.add_argument("--dcycle", type=int, default=99,
                      help="`mac set ch dcycle` X: duty cycle 100/(X+1) %% (default 99 = 1 %%)")
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
    """The driver for ``kind`` on ``port`` (EByte imported lazily)."""
    if kind == "rn2483":
        from lora_telemetry.radios.rn2483 import RN2483Radio
        if implicit_length:
            raise ConfigError("the RN2483 radio has no implicit-header mode; drop --implicit-length")
        return RN2483Radio(port) if baud is None else RN2483Radio(port, baud)
    if kind == "ebyte":
        from lora_telemetry.radios.ebyte import EByteRadio
        options = {"implicit_length": implicit_length} if implicit_length else {}
        return EByteRadio(port, **options) if baud is None else EByteRadio(port, baud, **options)
    raise ConfigError(f"unknown module type {kind!r}; use rn2483 or ebyte")


def p2p_phy(args: argparse.Namespace) -> lphy.PhySettings:
    return lphy.PhySettings(
        frequency_hz=args.freq or _DEFAULT_FREQ_HZ[args.type],
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
        info: dict[str, Any] = dict(radio.info()) if hasattr(radio, "info") else {}
        info.setdefault("name", radio.name)
        emit(args, info)
    return 0


def _lorawan_setup(radio: Any, args: argparse.Namespace) -> None:
    if args.type != "rn2483":
        raise ConfigError("--mode lorawan needs --type rn2483 (the EByte firmware is raw LoRa)")
    if not args.key_file or not args.device:
        raise ConfigError("--mode lorawan needs --key-file and --device (keys never go on the "
                          "command line)")
    from lora_telemetry import keyfile
    from lora_telemetry.radios.rn2483 import BAND_REGIONS

    keys = keyfile.device_keys(args.key_file, args.device)
    freq = args.freq or BAND_REGIONS[args.band].default_channels_hz[0]
    radio.lorawan_setup(args.band, freq, args.dr, args.pwridx, keys.devaddr, keys.nwkskey,
                        keys.appskey, args.dcycle, upctr=args.upctr)


def run_send(args: argparse.Namespace) -> int:
    payload = _payload(args)
    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    with open_radio(args.type, args.port, args.baud,
                    getattr(args, "implicit_length", None)) as radio:
        if args.mode == "lorawan":
            _lorawan_setup(radio, args)
        else:
            radio.configure(p2p_phy(args))
        for i in range(args.count):
            if i and args.interval > 0:
                time.sleep(args.interval)
            if args.mode == "lorawan":
                res = radio.mac_tx(args.fport, payload, confirmed=args.confirmed)
                row: dict[str, Any] = {"frame": i + 1, "fcnt": res.fcnt, "bytes": len(payload),
                                       "airtime_ms": res.airtime_s * 1000.0,
                                       "duration_ms": (res.finished - res.started) * 1000.0}
                if res.downlink is not None:
                    row.update(downlink_port=res.downlink.port,
                               downlink_hex=res.downlink.data.hex())
            else:
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
