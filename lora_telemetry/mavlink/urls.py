"""MAVLink connection strings: which transport a ``mavlink_url`` names (:func:`parse_url`).

* ``serial:/dev/ttyAMA0:921600``, ``/dev/ttyAMA0:921600`` and pymavlink's
  ``/dev/ttyAMA0,921600`` all mean the device at that baud rate (a device path may itself
  contain colons: only a numeric last part is a baud rate);
* ``udpin:HOST:PORT`` (listen), ``udpout:HOST:PORT`` (send first), ``udp:`` (= udpin),
  ``tcp:HOST:PORT`` (client), ``tcpin:HOST:PORT`` (server, one client at a time);
* ``PATH.tlog`` or ``tlog:PATH``: replay a telemetry log as fast as the link is polled, with
  the log's own receive timestamps as the clock (nothing is sent).

Parsing opens nothing; it only looks at the file system (a log must exist, and a device path
that exists is taken whole, colons and all). A bad string is a ConfigError that quotes it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lora_telemetry.core.errors import ConfigError

__all__ = ["ConnectionSpec", "parse_url"]


@dataclass(frozen=True)
class ConnectionSpec:
    """A parsed connection string: ``kind`` is serial, udpin, udpout, tcp, tcpin or tlog."""

    kind: str
    address: str  # device path, HOST:PORT, or log path
    baud: int = 0

    def __str__(self) -> str:
        if self.kind == "serial":
            return f"serial:{self.address}:{self.baud}"
        return f"{self.kind}:{self.address}"


_HOSTPORT = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})$")  # IPv4 or a name


def _hostport(kind: str, rest: str, url: str) -> str:
    m = _HOSTPORT.match(rest)
    lowest = 0 if kind in ("udpin", "tcpin") else 1  # a listener may take any free port (0)
    if not m or not lowest <= int(m.group("port")) < 65536:
        raise ConfigError(
            f"MAVLink URL {url!r}: {kind} needs HOST:PORT with a port in {lowest}..65535"
        )
    return rest


def parse_url(url: str, default_baud: int = 115200) -> ConnectionSpec:
    """Parse a connection string (see the module notes); raises ConfigError when unusable."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"MAVLink URL must be a non-empty string, got {url!r}")
    url = url.strip()
    lower = url.lower()
    for prefix, kind in (
        ("udpin:", "udpin"),
        ("udp:", "udpin"),
        ("udpout:", "udpout"),
        ("tcpin:", "tcpin"),
        ("tcp:", "tcp"),
    ):
        if lower.startswith(prefix):
            return ConnectionSpec(kind, _hostport(kind, url[len(prefix):], url))
    if lower.startswith("tlog:") or lower.endswith(".tlog"):
        path = url[5:] if lower.startswith("tlog:") else url
        if not os.path.isfile(path):
            raise ConfigError(f"MAVLink log {path!r} does not exist or is not a file")
        return ConnectionSpec("tlog", path)
    rest = url[7:] if lower.startswith("serial:") else url
    m = re.match(r"^(?P<dev>.+?)[:,](?P<baud>\d+)$", rest)
    if m and not os.path.exists(rest):
        device, baud = m.group("dev"), int(m.group("baud"))
    else:
        device, baud = rest, default_baud
    if re.match(r"^[a-z]+:", device) and not lower.startswith("serial:"):
        raise ConfigError(
            f"MAVLink URL {url!r}: unknown scheme "
            "(use serial:, udpin:, udpout:, tcp:, tcpin:, or a .tlog)"
        )
    if not device or baud <= 0 or baud > 20_000_000:
        raise ConfigError(f"MAVLink URL {url!r}: need a device path and a baud rate in 1..2e7")
    return ConnectionSpec("serial", device, baud)
