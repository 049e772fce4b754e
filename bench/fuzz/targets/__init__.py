"""The fuzz targets by name; each module is imported only when one of its targets is made."""

from __future__ import annotations

import importlib

from bench.fuzz.base import Target

#: name -> (module in this package, class). "Pure" targets are the byte decoders the long run
#: gives a million inputs each; mavlink and cli are slower (files, argparse) and get fewer.
TARGETS: dict[str, tuple[str, str]] = {
    "lorawan": ("lorawan", "LoRaWANTarget"),
    "gateway": ("lorawan", "GatewayTarget"),
    "codec": ("codec", "CodecTarget"),
    "rn2483": ("radios", "RN2483Target"),
    "ebyte": ("radios", "EByteTarget"),
    "sx1276": ("radios", "SX1276Target"),
    "keyfile": ("config_files", "KeyFileTarget"),
    "params": ("config_files", "ParamsTarget"),
    "mavlink": ("mavlink", "MavlinkTarget"),
    "cli": ("cli", "CliTarget"),
}
SLOW_TARGETS = frozenset({"mavlink", "cli"})


def make_target(name: str) -> Target:
    try:
        module, cls = TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown fuzz target {name!r} (known: {', '.join(TARGETS)})") from None
    return getattr(importlib.import_module(f"bench.fuzz.targets.{module}"), cls)()
