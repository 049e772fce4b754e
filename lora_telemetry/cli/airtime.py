"""`lora-telemetry airtime`: LoRa time on air (SX1276 datasheet formula, core.phy)."""

from __future__ import annotations

import argparse

from lora_telemetry.cli.output import emit
from lora_telemetry.core import phy as lphy
from lora_telemetry.core.errors import ConfigError

# Airtime does not depend on the carrier; any valid frequency will do.
_ANY_FREQUENCY_HZ = 868_100_000


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "airtime", parents=[common], help="time on air of one LoRa frame",
        description="Time on air of one LoRa frame (SX1276 datasheet section 4.1.1.7).",
    )
    p.add_argument("--sf", required=True, help="spreading factor 6..12")
    p.add_argument("--bw", default="125", help="bandwidth in kHz (7.8 .. 500), default 125")
    p.add_argument("--cr", default="4/5", help="coding rate 4/5 .. 4/8, default 4/5")
    p.add_argument("--payload", type=int, required=True, help="PHY payload length in bytes")
    p.add_argument("--preamble", type=int, default=8, help="programmed preamble symbols (8)")
    p.add_argument("--implicit", action="store_true", help="implicit header mode")
    p.add_argument("--no-crc", action="store_true", help="payload CRC off")
    p.add_argument("--ldro", choices=("auto", "on", "off"), default="auto",
                   help="low-data-rate optimisation (auto: on when a symbol lasts > 16 ms)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sf = lphy.parse_spreading_factor(args.sf)
    if sf == 6 and not args.implicit:
        raise ConfigError("SF6 works only with an implicit header (SX1276 datasheet 4.1.1.6): add --implicit")
    settings = lphy.PhySettings(
        frequency_hz=_ANY_FREQUENCY_HZ,
        sf=sf,
        bandwidth_hz=lphy.parse_bandwidth(args.bw),
        coding_rate=lphy.parse_coding_rate(args.cr),
        preamble_symbols=args.preamble,
        explicit_header=not args.implicit,
        crc_on=not args.no_crc,
        ldro=args.ldro,
    )
    emit(args, {
        "airtime_ms": settings.airtime_ms(args.payload),
        "symbol_time_ms": settings.symbol_time * 1000.0,
        "payload_symbols": lphy.payload_symbols(settings, args.payload),
        "preamble_ms": lphy.preamble_time(settings) * 1000.0,
        "low_data_rate_optimize": settings.low_data_rate_optimize,
        "sf": settings.sf,
        "bandwidth_hz": settings.bandwidth_hz,
        "coding_rate": lphy.format_coding_rate(settings.coding_rate),
        "payload_bytes": args.payload,
    })
    return 0
