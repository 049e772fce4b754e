"""`lora-telemetry encode` and `decode`: LoRaWAN 1.0 PHYPayloads by hand (core.lorawan)."""

from __future__ import annotations

import argparse
from typing import Any

from lora_telemetry.cli.output import emit
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.errors import ConfigError


def _hex_bytes(text: str, what: str) -> bytes:
    cleaned = "".join(text.split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not hexadecimal bytes") from None


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    enc = subparsers.add_parser(
        "encode", parents=[common], help="build a LoRaWAN data frame (PHYPayload hex)",
        description="Build an encrypted, MIC-signed LoRaWAN 1.0 data frame.",
    )
    enc.add_argument("--devaddr", required=True, help="DevAddr, 8 hex digits (e.g. 26011CA2)")
    enc.add_argument("--fcnt", type=int, required=True, help="32-bit frame counter")
    enc.add_argument("--fport", type=int, default=1, help="FPort 0..255 (default 1)")
    enc.add_argument("--payload-hex", default="", help="plain FRMPayload as hex")
    enc.add_argument("--nwkskey", required=True, help="NwkSKey, 32 hex digits")
    enc.add_argument("--appskey", help="AppSKey, 32 hex digits (needed for FPort 1..255)")
    enc.add_argument("--confirmed", action="store_true", help="confirmed data frame")
    enc.add_argument("--downlink", action="store_true", help="downlink instead of uplink")
    enc.add_argument("--fopts-hex", default="", help="FOpts (MAC commands) as hex")
    enc.add_argument("--adr", action="store_true", help="set the ADR bit")
    enc.add_argument("--ack", action="store_true", help="set the ACK bit")
    enc.set_defaults(func=run_encode)

    dec = subparsers.add_parser(
        "decode", parents=[common], help="parse a LoRaWAN PHYPayload and check its MIC",
        description="Parse a LoRaWAN 1.0 PHYPayload; decrypt and verify when keys are given.",
    )
    dec.add_argument("hex", help="the PHYPayload as hex")
    dec.add_argument("--nwkskey", help="NwkSKey: verifies the MIC (and decrypts FPort 0)")
    dec.add_argument("--appskey", help="AppSKey: decrypts FRMPayload of FPort 1..255")
    dec.add_argument("--appkey", help="AppKey: decrypts a join-accept / verifies a join MIC")
    dec.add_argument("--fcnt32", type=int, help="full 32-bit counter if above 65535")
    dec.add_argument("--downlink", action="store_true",
                     help="expect a downlink (the direction is read from MType; this checks it)")
    dec.set_defaults(func=run_decode)


def run_encode(args: argparse.Namespace) -> int:
    if args.fport != 0 and args.payload_hex and not args.appskey:
        raise ConfigError("--appskey is needed to encrypt a payload on FPort 1..255")
    phy = lw.build_data_frame(
        lw.parse_dev_addr(args.devaddr), args.fcnt, _hex_bytes(args.payload_hex, "--payload-hex"),
        nwkskey=lw.parse_key(args.nwkskey, "--nwkskey"),
        appskey=lw.parse_key(args.appskey, "--appskey") if args.appskey else None,
        fport=args.fport, uplink=not args.downlink, confirmed=args.confirmed,
        fopts=_hex_bytes(args.fopts_hex, "--fopts-hex"), adr=args.adr, ack=args.ack,
    )
    emit(args, {"phy_payload_hex": phy.hex(), "length": len(phy)})
    return 0


def run_decode(args: argparse.Namespace) -> int:
    raw = lw.phy_from_hex(args.hex)
    frame = lw.parse_phy_payload(raw)
    result: dict[str, Any] = {
        "mtype": lw.MTYPE_NAMES[frame.mhdr.mtype],
        "major": frame.mhdr.major,
        "length": len(raw),
    }
    if isinstance(frame, lw.DataFrame):
        if args.downlink and frame.uplink:
            raise ConfigError(f"--downlink given but the frame is {result['mtype']}")
        nwk = lw.parse_key(args.nwkskey, "--nwkskey") if args.nwkskey else None
        app = lw.parse_key(args.appskey, "--appskey") if args.appskey else None
        decoded = lw.decode_data_frame(frame, nwkskey=nwk, appskey=app, fcnt32=args.fcnt32)
        fctrl = frame.fctrl
        payload = decoded.payload if decoded.payload is not None else frame.frm_payload
        result.update({
            "devaddr": frame.dev_addr_hex,
            "fcnt": frame.fcnt,
            "fcnt32": decoded.fcnt32,
            "adr": fctrl.adr,
            "adr_ack_req": fctrl.adr_ack_req if frame.uplink else None,
            "ack": fctrl.ack,
            "f_pending": fctrl.f_pending if not frame.uplink else None,
            "fopts_hex": frame.fopts.hex(),
            "fport": frame.fport,
            "frm_payload_hex": payload.hex(),
            "frm_payload_decrypted": decoded.payload is not None,
            "mic_hex": frame.mic.hex(),
            "mic_valid": decoded.mic_valid,
        })
    elif isinstance(frame, lw.JoinRequest):
        result.update({
            "app_eui": frame.app_eui_hex, "dev_eui": frame.dev_eui_hex,
            "dev_nonce": frame.dev_nonce, "mic_hex": frame.mic.hex(),
            "mic_valid": lw.verify_mic(frame, lw.parse_key(args.appkey, "--appkey"))
            if args.appkey else None,
        })
    elif isinstance(frame, lw.EncryptedJoinAccept):
        if args.appkey:
            accept = lw.decrypt_join_accept(frame, lw.parse_key(args.appkey, "--appkey"))
            result.update({
                "app_nonce": accept.app_nonce, "net_id": accept.net_id_hex,
                "devaddr": lw.format_dev_addr(accept.dev_addr), "rx_delay": accept.rx_delay,
                "rx1_dr_offset": accept.rx1_dr_offset, "rx2_data_rate": accept.rx2_data_rate,
                "mic_hex": accept.mic.hex(), "mic_valid": accept.mic_valid,
            })
        else:
            result["encrypted_hex"] = frame.ciphertext.hex()
    else:
        result["payload_hex"] = frame.payload.hex()
    emit(args, result)
    return 0
