"""The simulated radio medium across processes: a loopback UDP hub and its client.

Drone nodes, the gateway and the vehicle simulators are separate processes, so the medium runs
as one small hub process (``lora-telemetry sim medium``, default ``127.0.0.1:47100``) wrapped
around the pure :class:`~lora_telemetry.sim.medium_model.MediumModel`, which decides everything
(physics and rules are documented there). The hub only timestamps datagrams with
``time.time()``, feeds the model, and sends out what it returns. Emulators use
:class:`MediumClient`; tools and tests that are not radios (a vehicle simulator moving nodes,
a test injecting forged frames, a stats reader) use :class:`MediumControl`.

Wire format: one JSON object per UDP datagram (UTF-8), bytes as lowercase hex, times as
``time.time()`` seconds, ``phy`` as an object with the fields of
:class:`~lora_telemetry.core.phy.PhySettings` (``frequency_hz``, ``sf``, ``bandwidth_hz``,
``coding_rate``, ``preamble_symbols``, ``explicit_header``, ``crc_on``, ``ldro``, ``sync_word``,
``iq_inverted``, ``tx_power_dbm``; omitted ones take their defaults). A position is either
``"pos": [east_m, north_m, up_m]`` or ``"lat"``, ``"lon"`` (degrees) and optional ``"alt"`` (m),
the latter converted with the origin from the medium's configuration.

Requests to the hub. Those marked *binds* record the sender's address as where that node's
events go (the node's own client socket); the others may come from any process.

=========  ======================================================================  ===========
``op``     fields                                                                  reply
=========  ======================================================================  ===========
hello      node, [position] (*binds*; registers the node)                          none
listen     node, phy (*binds*)                                                     none
standby    node (*binds*)                                                          none
tx         node, data, phy, [power] dBm (*binds*)                                  none
bye        node (forgets the node and its address)                                 none
position   node, position (moves any node by id; registers it if new)              if ``id``
loss       node, probability: that node's extra loss (``node_loss``; 0 removes)   if ``id``
inject     node (a label), position, data, phy, [power]: a virtual transmitter     ``injected``
stats      -                                                                       ``stats``
ping       -                                                                       ``pong``
=========  ======================================================================  ===========

Any request may carry an ``"id"`` (any JSON value), echoed in its reply. Replies:
``{"op": "injected", "id", "airtime", "t_start", "t_end"}``, ``{"op": "stats", "id",
"stats": {...}}``, ``{"op": "pong", "id"}``, ``{"op": "ok", "id"}``, and for a request that
cannot be carried out (bad phy, busy transmitter, bad position...)
``{"op": "error", "id", "request": op, "message"}``; the hub counts those per request
(``stats["hub"]["rejected_by_op"]``, every op listed, so a reader can tell "no position update
was ever refused" from "no such counter"). Datagrams that are not a JSON object with a known
``op`` are counted (``malformed`` / ``unknown_op``) and ignored.

Events from the hub, sent to the node's bound address when a frame ends:
``{"op": "rx", "data", "phy", "rssi", "snr", "crc_ok", "tx_node", "t_start", "t_end"}`` and
``{"op": "tx_done", "airtime", "t_start", "t_end"}``.

A client process that died only costs the hub a counted send error; the hub never binds
anything but a loopback address (the service is unauthenticated).
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import select
import socket
import time
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterable

from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.geo import LocalProjection
from lora_telemetry.core.numbers import finite_float
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.sim.medium_model import (
    MediumError,
    MediumEvent,
    MediumModel,
    MediumParams,
    RxEvent,
    TxDoneEvent,
)
from lora_telemetry.yaml_files import load_yaml, read_text

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENV_HUB",
    "MediumClient",
    "MediumControl",
    "MediumError",
    "MediumHub",
    "MediumParams",
    "RxEvent",
    "TxDoneEvent",
    "hub_address",
    "load_medium_params",
    "phy_from_json",
    "phy_to_json",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 47100
#: Environment variable naming the hub as "host:port" ("[::1]:47100" for IPv6).
ENV_HUB = "LORA_TELEMETRY_MEDIUM"
_MAX_DATAGRAM = 65535
_PHY_FIELDS = tuple(f.name for f in fields(PhySettings))
_OPS = ("hello", "listen", "standby", "tx", "bye", "position", "loss", "inject", "stats",
        "ping")
_BINDING_OPS = frozenset({"hello", "listen", "standby", "tx"})

Address = tuple[str, int]


# -- addresses, config and wire helpers ---------------------------------------------------------
def _parse_host_port(text: str) -> Address:
    text = text.strip()
    if text.startswith("["):  # [::1]:47100
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"medium hub address {text!r} is not of the form host:port")
    return host, int(port)


def hub_address(hub: Address | str | None = None) -> Address:
    """The hub to talk to: ``hub`` if given, else ``$LORA_TELEMETRY_MEDIUM``, else the default."""
    if hub is None:
        env = os.environ.get(ENV_HUB, "").strip()
        return _parse_host_port(env) if env else (DEFAULT_HOST, DEFAULT_PORT)
    if isinstance(hub, str):
        return _parse_host_port(hub)
    try:
        host, port = hub
    except (TypeError, ValueError):
        raise ConfigError(f"medium hub address must be (host, port), got {hub!r}") from None
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise ConfigError(f"medium hub address must be (host, port), got {hub!r}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"medium hub port {port} is outside 0-65535")
    return host, port


def _resolve(address: Address) -> tuple[int, Any]:
    """(address family, sockaddr) of a UDP address."""
    try:
        infos = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve medium address {address[0]!r}: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def load_medium_params(path: str | os.PathLike[str] | None) -> MediumParams:
    """Medium parameters from a YAML file (see config/medium.yaml); None gives the defaults."""
    if path is None:
        return MediumParams()
    source = f"medium config {path}"
    values = load_yaml(read_text(path, source), source)
    try:
        return MediumParams.from_mapping(values)
    except ConfigError as exc:
        raise ConfigError(f"medium config {path}: {exc}") from None


def phy_to_json(phy: PhySettings) -> dict[str, Any]:
    """PhySettings as a JSON object (every field)."""
    return {name: getattr(phy, name) for name in _PHY_FIELDS}


def phy_from_json(value: Any) -> PhySettings:
    """PhySettings from a JSON object; unknown fields and invalid values raise ConfigError."""
    if not isinstance(value, dict):
        raise ConfigError(f"phy must be a JSON object, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in _PHY_FIELDS)
    if unknown:
        raise ConfigError(f"unknown phy field(s): {', '.join(unknown)}")
    try:
        return PhySettings(**value)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"incomplete phy: {exc}") from None


def _hex_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MediumError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MediumError(f"{what} is not valid hex") from None


def _number(value: Any, what: str) -> float:
    number = finite_float(value)
    if number is None:
        raise MediumError(f"{what} must be a finite number, got {value!r}")
    return number


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def _decode(datagram: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(datagram.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) and isinstance(message.get("op"), str) else None


def _event_to_json(event: MediumEvent) -> dict[str, Any]:
    if isinstance(event, RxEvent):
        return {
            "op": "rx", "data": event.data.hex(), "phy": phy_to_json(event.phy),
            "rssi": event.rssi_dbm, "snr": event.snr_db, "crc_ok": event.crc_ok,
            "tx_node": event.tx_node, "t_start": event.t_start, "t_end": event.t_end,
        }
    return {"op": "tx_done", "airtime": event.airtime_s, "t_start": event.t_start,
            "t_end": event.t_end}


def _event_from_json(message: dict[str, Any]) -> MediumEvent | None:
    """Parse an event from the hub; raises LoraTelemetryError if it is malformed."""
    op = message.get("op")
    if op == "rx":
        crc_ok, tx_node = message.get("crc_ok"), message.get("tx_node")
        if not isinstance(crc_ok, bool) or not isinstance(tx_node, str):
            raise MediumError("rx event without crc_ok/tx_node")
        return RxEvent(
            data=_hex_bytes(message.get("data"), "rx data"),
            phy=phy_from_json(message.get("phy")),
            rssi_dbm=_number(message.get("rssi"), "rssi"),
            snr_db=_number(message.get("snr"), "snr"),
            crc_ok=crc_ok,
            tx_node=tx_node,
            t_start=_number(message.get("t_start"), "t_start"),
            t_end=_number(message.get("t_end"), "t_end"),
        )
    if op == "tx_done":
        return TxDoneEvent(
            airtime_s=_number(message.get("airtime"), "airtime"),
            t_start=_number(message.get("t_start"), "t_start"),
            t_end=_number(message.get("t_end"), "t_end"),
        )
    return None


def _position_json(position: Iterable[float]) -> list[float]:
    try:
        x, y, z = (float(v) for v in position)
    except (TypeError, ValueError):
        raise ConfigError(
            f"a position is three numbers (east, north, up metres), got {position!r}"
        ) from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise ConfigError(f"position coordinates must be finite, got {position!r}")
    return [x, y, z]


# -- the hub ------------------------------------------------------------------------------------
class MediumHub:
    """The UDP front of a :class:`MediumModel`. Single-threaded; :meth:`serve` runs the loop."""

    def __init__(
        self,
        model: MediumModel,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        stats_path: str | os.PathLike[str] | None = None,
        stats_interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        family, sockaddr = _resolve((host, port))
        if not ipaddress.ip_address(sockaddr[0]).is_loopback:
            raise ConfigError(
                f"the medium hub only binds loopback addresses (it is unauthenticated), "
                f"not {host!r}"
            )
        self.model = model
        self._clock = clock
        self._stats_path = Path(stats_path) if stats_path is not None else None
        self._stats_interval = max(0.05, float(stats_interval_s))
        self._next_stats = 0.0
        self._stop = False
        self._addresses: dict[str, Any] = {}
        self._counts: Counter[str] = Counter()
        self._rejected_by_op: Counter[str] = Counter()
        self._projection = (
            LocalProjection(model.params.origin_lat_deg, model.params.origin_lon_deg)
            if model.params.origin_lat_deg is not None
            else None
        )
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind(sockaddr)
        except OSError as exc:
            self._sock.close()
            raise ConfigError(
                f"cannot bind the medium hub to {host}:{port}: {exc.strerror}"
            ) from None
        self._sock.setblocking(False)
        self.address: Address = self._sock.getsockname()[:2]
        self.started = clock()
        try:
            self.write_stats()  # an unwritable stats path fails now, not minutes later
        except ConfigError:
            self._sock.close()
            raise

    # -- loop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`serve` to return (safe from a signal handler or another thread)."""
        self._stop = True

    def serve(self, duration_s: float | None = None) -> None:
        """Run until :meth:`stop` (or for ``duration_s``); writes the stats file on the way out."""
        end = None if duration_s is None else self._clock() + duration_s
        try:
            while not self._stop and (end is None or self._clock() < end):
                self.step(0.2)
        finally:
            self.write_stats()

    def step(self, max_wait_s: float) -> None:
        """One loop turn: wait (bounded) for datagrams or the next frame end, then handle both."""
        now = self._clock()
        wait = max_wait_s
        due = self.model.next_due()
        if due is not None:
            wait = min(wait, max(0.0, due - now))
        if self._stats_path is not None:
            wait = min(wait, max(0.0, self._next_stats - now))
        try:
            readable, _, _ = select.select([self._sock], [], [], max(0.0, wait))
        except (InterruptedError, ValueError, OSError):
            readable = []
        if readable:
            for _ in range(256):  # bounded drain so frame ends are never starved
                try:
                    datagram, addr = self._sock.recvfrom(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # e.g. an ICMP error reported for an earlier send
                    self._counts["recv_errors"] += 1
                    continue
                # Frames that ended before this datagram arrived are settled first.
                now = self._clock()
                self._send_events(self.model.finish_due(now))
                for reply in self.handle(datagram, addr, now):
                    self._send(reply, addr)
        self._send_events(self.model.finish_due(self._clock()))
        if self._stats_path is not None and self._clock() >= self._next_stats:
            try:
                self.write_stats()
            except ConfigError:
                pass  # counted; a full disk must not stop the medium (exit tries again)

    def _send_events(self, events: list[tuple[str, MediumEvent]]) -> None:
        for node_id, event in events:
            addr = self._addresses.get(node_id)
            if addr is None:
                self._counts["undeliverable_events"] += 1
                continue
            self._send(_event_to_json(event), addr)
            self._counts["events_sent"] += 1

    def _send(self, message: dict[str, Any], addr: Any) -> None:
        try:
            self._sock.sendto(_encode(message), addr)
        except OSError:  # the peer went away, a full buffer: the hub carries on
            self._counts["send_errors"] += 1

    # -- requests -----------------------------------------------------------------------------
    def handle(self, datagram: bytes, addr: Any, now: float) -> list[dict[str, Any]]:
        """Apply one datagram to the model; returns the replies for its sender."""
        self._counts["datagrams"] += 1
        message = _decode(datagram)
        if message is None:
            self._counts["malformed"] += 1
            return []
        op = message["op"]
        handler = getattr(self, f"_op_{op}", None) if op in _OPS else None
        if handler is None:
            self._counts["unknown_op"] += 1
            return []
        request_id = message.get("id")
        try:
            reply = handler(message, now)
            if op in _BINDING_OPS:  # the node's own socket: its events go there
                self._addresses[message["node"]] = addr
        except LoraTelemetryError as exc:
            self._counts["rejected"] += 1
            self._rejected_by_op[op] += 1
            return [{"op": "error", "id": request_id, "request": op, "message": str(exc)}]
        if reply is None:
            return [{"op": "ok", "id": request_id}] if "id" in message else []
        reply["id"] = request_id
        return [reply]

    @staticmethod
    def _node_id(node: Any) -> str:
        if not isinstance(node, str) or not node:
            raise MediumError("request needs a 'node' id string")
        return node

    def _position(
        self, message: dict[str, Any], required: bool
    ) -> tuple[float, float, float] | None:
        if "pos" in message:
            pos = message["pos"]
            if not isinstance(pos, list) or len(pos) != 3:
                raise MediumError("'pos' must be [east_m, north_m, up_m]")
            x, y, z = (_number(v, "position coordinate") for v in pos)
            return (x, y, z)
        if "lat" in message or "lon" in message:
            if self._projection is None:
                raise MediumError(
                    "lat/lon positions need origin_lat_deg/origin_lon_deg in the medium config"
                )
            lat = _number(message.get("lat"), "lat")
            lon = _number(message.get("lon"), "lon")
            if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
                raise MediumError(f"lat/lon {lat}, {lon} is not a place on Earth")
            east, north = self._projection.to_local(lat, lon)
            return (east, north, _number(message.get("alt", 0.0), "alt"))
        if required:
            raise MediumError("request needs a position ('pos' or 'lat'/'lon')")
        return None

    def _op_hello(self, message: dict[str, Any], now: float) -> None:
        self.model.add_node(self._node_id(message.get("node")), self._position(message, False))

    def _op_position(self, message: dict[str, Any], now: float) -> None:
        pos = self._position(message, True)
        assert pos is not None
        self.model.set_position(self._node_id(message.get("node")), pos, now)

    def _op_loss(self, message: dict[str, Any], now: float) -> None:
        self.model.set_node_loss(self._node_id(message.get("node")),
                                 _number(message.get("probability"), "loss probability"))

    def _op_listen(self, message: dict[str, Any], now: float) -> None:
        phy = phy_from_json(message.get("phy"))
        self.model.set_listening(self._node_id(message.get("node")), phy, now)

    def _op_standby(self, message: dict[str, Any], now: float) -> None:
        self.model.set_listening(self._node_id(message.get("node")), None, now)

    def _op_bye(self, message: dict[str, Any], now: float) -> None:
        node = self._node_id(message.get("node"))
        self._addresses.pop(node, None)
        self.model.remove_node(node, now)

    def _power(self, message: dict[str, Any]) -> float | None:
        power = message.get("power")
        return None if power is None else _number(power, "power")

    def _op_tx(self, message: dict[str, Any], now: float) -> None:
        data = _hex_bytes(message.get("data"), "tx data")
        phy = phy_from_json(message.get("phy"))
        node = self._node_id(message.get("node"))
        self.model.start_tx(node, data, phy, self._power(message), now)

    def _op_inject(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        data = _hex_bytes(message.get("data"), "inject data")
        phy = phy_from_json(message.get("phy"))
        pos = self._position(message, True)
        assert pos is not None
        airtime = self.model.inject(
            self._node_id(message.get("node")), data, phy, self._power(message), pos, now
        )
        return {"op": "injected", "airtime": airtime, "t_start": now, "t_end": now + airtime}

    def _op_stats(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        return {"op": "stats", "stats": self.stats()}

    def _op_ping(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        return {"op": "pong"}

    # -- stats --------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Model counters plus the hub's own (datagrams, malformed, send errors...)."""
        out = self.model.stats()
        hub = {name: self._counts.get(name, 0) for name in (
            "datagrams", "malformed", "unknown_op", "rejected", "events_sent",
            "undeliverable_events", "send_errors", "recv_errors", "stats_write_errors",
        )}
        hub["rejected_by_op"] = {op: self._rejected_by_op.get(op, 0) for op in _OPS}
        hub["address"] = f"{self.address[0]}:{self.address[1]}"
        hub["uptime_s"] = self._clock() - self.started
        hub["clients"] = len(self._addresses)
        out["hub"] = hub
        out["params"] = self.model.params.to_dict()
        return out

    def write_stats(self) -> None:
        """Write the stats JSON atomically (readers never see half a file)."""
        self._next_stats = self._clock() + self._stats_interval
        if self._stats_path is None:
            return
        tmp = self._stats_path.with_name(self._stats_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.stats(), indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self._stats_path)
        except OSError as exc:
            self._counts["stats_write_errors"] += 1
            raise ConfigError(f"cannot write medium stats to {self._stats_path}: {exc}") from None

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> MediumHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- clients ------------------------------------------------------------------------------------
class _Endpoint:
    """A UDP socket talking to the hub, ignoring datagrams from anyone else."""

    def __init__(self, hub: Address | str | None) -> None:
        self.hub = hub_address(hub)
        family, self._hub_sockaddr = _resolve(self.hub)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind(("::1", 0) if family == socket.AF_INET6 else ("127.0.0.1", 0))
        self._sock.setblocking(False)
        self.counters: Counter[str] = Counter()
        self.last_error: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._sock.sendto(_encode(message), self._hub_sockaddr)
        except OSError as exc:
            raise MediumError(
                f"cannot reach the radio medium at {self.hub[0]}:{self.hub[1]}: {exc}"
            ) from None

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """Next well-formed message from the hub before ``deadline`` (monotonic), else None."""
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                readable, _, _ = select.select([self._sock], [], [], remaining)
            except (InterruptedError, ValueError):
                readable = []
            if readable:
                try:
                    datagram, addr = self._sock.recvfrom(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # ICMP "port unreachable" for an earlier send: no hub (yet)
                    self.counters["hub_unreachable"] += 1
                    continue
                if addr[:2] != self._hub_sockaddr[:2]:
                    self.counters["foreign"] += 1
                    continue
                message = _decode(datagram)
                if message is None:
                    self.counters["malformed"] += 1
                    continue
                return message
            if time.monotonic() >= deadline:
                return None

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()


class MediumClient:
    """One radio's connection to the medium (the contract used by every emulator).

    ``transmit`` and ``listen`` are fire-and-forget datagrams; what happens on the air comes
    back as events from :meth:`next_event`. Requests the hub refuses (e.g. transmitting while
    still transmitting) arrive as errors, counted in ``counters["errors"]`` with the text in
    ``last_error``.
    """

    def __init__(
        self,
        node_id: str,
        hub: Address | str | None = None,
        position_m: tuple[float, float, float] | None = None,
    ) -> None:
        if not isinstance(node_id, str) or not node_id:
            raise ConfigError(f"node_id must be a non-empty string, got {node_id!r}")
        self.node_id = node_id
        self._ep = _Endpoint(hub)
        self.hub = self._ep.hub
        hello: dict[str, Any] = {"op": "hello", "node": node_id}
        if position_m is not None:  # None keeps a position another process may already have set
            hello["pos"] = _position_json(position_m)
        self._ep.send(hello)

    @property
    def counters(self) -> Counter[str]:
        return self._ep.counters

    @property
    def last_error(self) -> str | None:
        return self._ep.last_error

    def set_position(self, x_m: float, y_m: float, z_m: float) -> None:
        """Move this node (east, north, up metres around the swarm origin)."""
        pos = _position_json((x_m, y_m, z_m))
        self._ep.send({"op": "position", "node": self.node_id, "pos": pos})

    def listen(self, phy: PhySettings) -> None:
        """Receive frames sent with matching settings until standby or a transmission."""
        if not isinstance(phy, PhySettings):
            raise ConfigError(f"listen needs PhySettings, got {type(phy).__name__}")
        self._ep.send({"op": "listen", "node": self.node_id, "phy": phy_to_json(phy)})

    def standby(self) -> None:
        """Stop receiving."""
        self._ep.send({"op": "standby", "node": self.node_id})

    def transmit(self, data: bytes, phy: PhySettings, power_dbm: float | None = None) -> float:
        """Put ``data`` on the air; returns its airtime. A :class:`TxDoneEvent` follows.

        ``power_dbm`` None uses ``phy.tx_power_dbm``, else the medium's default.
        """
        if not isinstance(phy, PhySettings):
            raise ConfigError(f"transmit needs PhySettings, got {type(phy).__name__}")
        if not isinstance(data, (bytes, bytearray)):
            raise ConfigError(f"frame data must be bytes, got {type(data).__name__}")
        airtime = phy.time_on_air(len(data))  # validates the length before anything is sent
        message: dict[str, Any] = {
            "op": "tx", "node": self.node_id, "data": bytes(data).hex(), "phy": phy_to_json(phy),
        }
        if power_dbm is not None:
            message["power"] = _number(power_dbm, "power_dbm")
        self._ep.send(message)
        return airtime

    def next_event(self, timeout: float | None = 0.0) -> RxEvent | TxDoneEvent | None:
        """The next event, waiting at most ``timeout`` seconds (None or 0: just poll)."""
        deadline = time.monotonic() + max(0.0, float(timeout or 0.0))
        while True:
            message = self._ep.receive(deadline)
            if message is None:
                return None
            if message.get("op") == "error":
                self._ep.counters["errors"] += 1
                self._ep.last_error = str(message.get("message"))
                continue
            try:
                event = _event_from_json(message)
            except LoraTelemetryError:
                self._ep.counters["malformed"] += 1
                continue
            if event is not None:
                return event
            self._ep.counters["ignored"] += 1

    def fileno(self) -> int:
        """For selectors: readable when an event may be pending."""
        return self._ep.fileno()

    def close(self) -> None:
        """Leave the medium (best effort) and close the socket."""
        try:
            self._ep.send({"op": "bye", "node": self.node_id})
        except MediumError:
            pass
        self._ep.close()

    def __enter__(self) -> MediumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MediumControl:
    """Requests that are not one radio's: stats, moving any node, injecting frames, ping."""

    def __init__(self, hub: Address | str | None = None, timeout_s: float = 1.0) -> None:
        self._ep = _Endpoint(hub)
        self.hub = self._ep.hub
        self.timeout_s = timeout_s
        self._next_id = 0

    def request(self, message: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send a request and wait (bounded) for its reply; hub errors raise MediumError."""
        self._next_id += 1
        request_id = self._next_id
        self._ep.send({**message, "id": request_id})
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            reply = self._ep.receive(deadline)
            if reply is None:
                raise MediumError(
                    f"no answer from the radio medium at {self.hub[0]}:{self.hub[1]} "
                    f"to {message.get('op')!r} (is `lora-telemetry sim medium` running?)"
                )
            if reply.get("id") != request_id:
                self._ep.counters["stale_replies"] += 1
                continue
            if reply.get("op") == "error":
                raise MediumError(
                    f"radio medium refused {message.get('op')!r}: {reply.get('message')}"
                )
            return reply

    def ping(self, timeout_s: float | None = None) -> bool:
        """Whether the hub answers."""
        try:
            self.request({"op": "ping"}, timeout_s)
        except MediumError:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        stats = self.request({"op": "stats"}).get("stats")
        if not isinstance(stats, dict):
            raise MediumError("radio medium sent stats that are not an object")
        return stats

    def set_position(
        self, node_id: str, x_m: float, y_m: float, z_m: float, *, wait: bool = False
    ) -> None:
        """Move any node by id (e.g. from a vehicle simulator); ``wait`` confirms receipt."""
        message = {"op": "position", "node": node_id, "pos": _position_json((x_m, y_m, z_m))}
        self.request(message) if wait else self._ep.send(message)

    def set_loss(self, node_id: str, probability: float) -> None:
        """Make ``node_id`` lose each frame it would receive with ``probability`` (0 ends it),
        counted as ``link_loss``; waits for the hub's confirmation (MediumError if refused)."""
        self.request({"op": "loss", "node": node_id, "probability": float(probability)})

    def set_position_geodetic(
        self,
        node_id: str,
        lat_deg: float,
        lon_deg: float,
        alt_m: float = 0.0,
        *,
        wait: bool = False,
    ) -> None:
        """Move a node to lat/lon/alt (needs the origin in the medium config)."""
        message = {"op": "position", "node": node_id, "lat": float(lat_deg),
                   "lon": float(lon_deg), "alt": float(alt_m)}
        self.request(message) if wait else self._ep.send(message)

    def inject(
        self,
        data: bytes,
        phy: PhySettings,
        *,
        tx_node: str = "injector",
        position_m: tuple[float, float, float] = (0.0, 0.0, 0.0),
        power_dbm: float | None = None,
    ) -> dict[str, Any]:
        """Put arbitrary bytes on the air from a virtual transmitter (a forger, a replayer).

        Returns the hub's reply: ``airtime``, ``t_start`` and ``t_end``.
        """
        if not isinstance(data, (bytes, bytearray)):
            raise ConfigError(f"frame data must be bytes, got {type(data).__name__}")
        message: dict[str, Any] = {
            "op": "inject", "node": tx_node, "data": bytes(data).hex(),
            "phy": phy_to_json(phy), "pos": _position_json(position_m),
        }
        if power_dbm is not None:
            message["power"] = float(power_dbm)
        return self.request(message)

    def fileno(self) -> int:
        return self._ep.fileno()

    def close(self) -> None:
        self._ep.close()

    def __enter__(self) -> MediumControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_hub(
    params: MediumParams,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    seed: int | None = None,
    stats_path: str | os.PathLike[str] | None = None,
    stats_interval_s: float = 2.0,
    duration_s: float | None = None,
    on_ready: Callable[[MediumHub], None] | None = None,
) -> dict[str, Any]:
    """Create the model and hub, call ``on_ready``, serve; returns the final stats."""
    hub = MediumHub(MediumModel(params, seed), host, port, stats_path=stats_path,
                    stats_interval_s=stats_interval_s)
    with hub:
        if on_ready is not None:
            on_ready(hub)
        hub.serve(duration_s)
        return hub.stats()
