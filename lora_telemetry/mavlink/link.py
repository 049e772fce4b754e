"""The MAVLink link to one flight controller: connection, stream requests, heartbeat, reboots.

:class:`MavlinkLink` is the I/O edge. It opens any pymavlink-style connection (serial device,
UDP, TCP, or a ``.tlog`` file to replay), feeds every message to a
:class:`~lora_telemetry.mavlink.state.VehicleState`, sends its own HEARTBEAT as an onboard
component, asks the autopilot for the messages the telemetry needs, and reconnects with backoff
when the transport fails. It is meant to be driven from one thread calling :meth:`poll`; other
threads read the state through :meth:`sample` and :meth:`stats`, which take its lock.

:class:`StreamRequester` is the sans-I/O part of the stream requests (MAVLink command protocol):
one MAV_CMD_SET_MESSAGE_INTERVAL per message, sent one at a time because a COMMAND_ACK does not
say which message it answers, retried with an incremented confirmation, and a fallback to
REQUEST_DATA_STREAM (ArduPilot's stream groups) when the autopilot answers UNSUPPORTED or not at
all, as older ArduPilot firmware does.

Connection strings (:func:`parse_url`):

* ``serial:/dev/ttyAMA0:921600``, ``/dev/ttyAMA0:921600`` and pymavlink's
  ``/dev/ttyAMA0,921600`` all mean the device at that baud rate (a device path may itself
  contain colons: only a numeric last part is a baud rate);
* ``udpin:HOST:PORT`` (listen), ``udpout:HOST:PORT`` (send first), ``udp:`` (= udpin),
  ``tcp:HOST:PORT`` (client), ``tcpin:HOST:PORT`` (server, one client at a time);
* ``PATH.tlog`` or ``tlog:PATH``: replay a telemetry log as fast as :meth:`poll` is called, with
  the log's own receive timestamps as the clock (nothing is sent).
"""

from __future__ import annotations

import logging
import math
import os
import re
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.codec import TelemetrySample
from lora_telemetry.mavlink.state import (
    EVENT_AUTOPILOT,
    EVENT_REBOOT,
    EVENT_RESUMED,
    MAV_AUTOPILOT_INVALID,
    VehicleState,
)

__all__ = [
    "MavlinkLinkError",
    "ConnectionSpec",
    "parse_url",
    "DEFAULT_STREAM_RATES_HZ",
    "DATA_STREAM_OF_MESSAGE",
    "StreamRequest",
    "StreamRequester",
    "MavlinkLink",
    "TlogReader",
    "open_transport",
    "write_transport",
    "MAV_TYPE_ONBOARD_CONTROLLER",
    "DEFAULT_OWN_COMPONENT_ID",
]

log = logging.getLogger(__name__)


class MavlinkLinkError(LoraTelemetryError):
    """The connection to the flight controller failed and the allowed attempts are used up."""


MAV_TYPE_ONBOARD_CONTROLLER = 18
MAV_STATE_ACTIVE = 4
#: MAV_COMP_ID_ONBOARD_COMPUTER (configurable: a vehicle may already have one there).
DEFAULT_OWN_COMPONENT_ID = 191
MAV_CMD_SET_MESSAGE_INTERVAL = 511
MAV_RESULT_ACCEPTED = 0
MAV_RESULT_TEMPORARILY_REJECTED = 1
MAV_RESULT_UNSUPPORTED = 3
MAV_RESULT_IN_PROGRESS = 5

#: Messages the telemetry needs and the rate asked for each (Hz). HEARTBEAT always comes at 1 Hz.
#: Position at 10 Hz: the drone sends the newest state, so its age when sent averages half this
#: period (bench/bench_latency.py "wait"); a flight-controller link carries it easily.
DEFAULT_STREAM_RATES_HZ: Mapping[str, float] = {
    "GLOBAL_POSITION_INT": 10.0,
    "GPS_RAW_INT": 2.0,
    "VFR_HUD": 4.0,
    "ATTITUDE": 4.0,
    "SYS_STATUS": 2.0,
    "BATTERY_STATUS": 1.0,
    "SYSTEM_TIME": 1.0,
}

#: ArduPilot's stream group (MAV_DATA_STREAM) of each message, from the STREAM_*_msgs tables of
#: its GCS_Mavlink.cpp: EXTENDED_STATUS 2, POSITION 6, EXTRA1 10, EXTRA2 11, EXTRA3 12.
DATA_STREAM_OF_MESSAGE: Mapping[str, int] = {
    "SYS_STATUS": 2,
    "GPS_RAW_INT": 2,
    "GLOBAL_POSITION_INT": 6,
    "ATTITUDE": 10,
    "VFR_HUD": 11,
    "SYSTEM_TIME": 12,
    "BATTERY_STATUS": 12,
}


# ------------------------------------------------------------------------------------------
# Connection strings
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# Stream requests (sans-I/O)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRequest:
    """One request to send: a SET_MESSAGE_INTERVAL command or a REQUEST_DATA_STREAM."""

    kind: str  # "set_message_interval" | "request_data_stream"
    message: str | None = None
    message_id: int = 0
    interval_us: int = 0
    confirmation: int = 0
    stream_id: int = 0
    rate_hz: int = 0


class StreamRequester:
    """Asks an autopilot for each needed message at its rate; see the module notes.

    Message states: ``queued`` -> ``waiting`` (command sent) -> ``accepted`` (ACK ACCEPTED) or
    ``data_stream`` (fallback sent). A message still not seen ``verify_after_s`` after its
    request is asked for again, at most ``max_rounds`` times (then ``missing``).
    """

    def __init__(
        self,
        rates_hz: Mapping[str, float] = DEFAULT_STREAM_RATES_HZ,
        command_timeout_s: float = 1.0,
        command_retries: int = 2,
        verify_after_s: float = 5.0,
        max_rounds: int = 3,
    ) -> None:
        self.rates_hz: dict[str, float] = {}
        for name, rate in rates_hz.items():
            msg_id = getattr(mavlink2, f"MAVLINK_MSG_ID_{name}", None)
            if msg_id is None:
                raise ConfigError(f"unknown MAVLink message {name!r} in the stream rates")
            if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate <= 1000):
                raise ConfigError(f"stream rate of {name} must be in (0, 1000] Hz, got {rate!r}")
            self.rates_hz[name] = float(rate)
        self.command_timeout_s = command_timeout_s
        self.command_retries = command_retries
        self.verify_after_s = verify_after_s
        self.max_rounds = max_rounds
        self.status: dict[str, str] = {}
        self.legacy = False  # the autopilot does not know SET_MESSAGE_INTERVAL
        self.counters: Counter[str] = Counter()
        self._queue: list[str] = []
        self._in_flight: tuple[str, int, float] | None = None  # message, confirmation, sent at
        self._requested_at: dict[str, float] = {}
        self._rounds: Counter[str] = Counter()
        self._seen_at: dict[str, float] = {}
        self._streams_due: dict[int, int] = {}
        self.active = False

    def start(self, now: float) -> None:
        """(Re)start every request: on a new autopilot or after it rebooted."""
        self.active = True
        self.legacy = False
        self._queue = list(self.rates_hz)
        self.status = {name: "queued" for name in self.rates_hz}
        self._in_flight = None
        self._requested_at.clear()
        self._rounds.clear()
        self._streams_due.clear()
        self.counters["starts"] += 1

    def on_message(self, mtype: str, fields: Mapping[str, Any], now: float) -> None:
        """Every message from the autopilot (ACKs answer requests; arrivals verify them)."""
        self._seen_at[mtype] = now
        if mtype != "COMMAND_ACK" or self._in_flight is None:
            return
        if int(fields.get("command", -1)) != MAV_CMD_SET_MESSAGE_INTERVAL:
            return
        name, _, _ = self._in_flight
        result = int(fields.get("result", -1))
        if result == MAV_RESULT_IN_PROGRESS:
            return
        self._in_flight = None
        if result == MAV_RESULT_ACCEPTED:
            self.status[name] = "accepted"
            self._requested_at[name] = now
            self.counters["accepted"] += 1
        elif result == MAV_RESULT_TEMPORARILY_REJECTED:
            self._queue.append(name)
            self.status[name] = "queued"
            self.counters["temporarily_rejected"] += 1
        else:
            if result == MAV_RESULT_UNSUPPORTED:
                self.legacy = True
            self.counters[f"nack_{result}"] += 1
            self._fallback(name, now)

    def _fallback(self, name: str, now: float) -> None:
        stream = DATA_STREAM_OF_MESSAGE.get(name)
        if stream is None:
            self.status[name] = "missing"  # no stream carries it on ArduPilot
            self.counters["no_fallback"] += 1
            return
        rate = max(1, math.ceil(self.rates_hz[name]))
        self._streams_due[stream] = max(rate, self._streams_due.get(stream, 0))
        self.status[name] = "data_stream"
        self._requested_at[name] = now

    def due(self, now: float) -> list[StreamRequest]:
        """Requests to send now."""
        if not self.active:
            return []
        out: list[StreamRequest] = []
        if self._in_flight is not None:
            name, confirmation, sent_at = self._in_flight
            if now - sent_at >= self.command_timeout_s:
                if confirmation < self.command_retries:
                    self._in_flight = (name, confirmation + 1, now)
                    out.append(self._command(name, confirmation + 1))
                    self.counters["command_retries"] += 1
                else:  # never answered: an autopilot that ignores the command
                    self._in_flight = None
                    self.legacy = True
                    self.counters["no_ack"] += 1
                    self._fallback(name, now)
        # Verify: re-request what was asked for but has not arrived.
        for name, asked in list(self._requested_at.items()):
            if now - asked < self.verify_after_s or self._seen_at.get(name, -math.inf) >= asked:
                continue
            del self._requested_at[name]
            self._rounds[name] += 1
            if self._rounds[name] >= self.max_rounds:
                self.status[name] = "missing"
                self.counters["gave_up"] += 1
            else:
                self.status[name] = "queued"
                self._queue.append(name)
                self.counters["rerequests"] += 1
        while self._queue and self._in_flight is None:
            name = self._queue.pop(0)
            if self.legacy:
                self._fallback(name, now)
                continue
            self.status[name] = "waiting"
            self._in_flight = (name, 0, now)
            out.append(self._command(name, 0))
        for stream, rate in sorted(self._streams_due.items()):
            out.append(StreamRequest("request_data_stream", stream_id=stream, rate_hz=rate))
            self.counters["data_stream_requests"] += 1
        self._streams_due.clear()
        return out

    def _command(self, name: str, confirmation: int) -> StreamRequest:
        self.counters["commands"] += 1
        return StreamRequest(
            "set_message_interval",
            message=name,
            message_id=getattr(mavlink2, f"MAVLINK_MSG_ID_{name}"),
            interval_us=int(round(1e6 / self.rates_hz[name])),
            confirmation=confirmation,
        )


# ------------------------------------------------------------------------------------------
# Transports
# ------------------------------------------------------------------------------------------


class _TcpFile(mavutil.mavfile):
    """A TCP client whose connect is bounded and whose failures raise (pymavlink's own
    ``mavtcp`` retries with sleeps and reconnects by itself, printing as it goes)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        sock = socket.create_connection((host, port), timeout=timeout_s)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = sock
        mavutil.mavfile.__init__(self, sock.fileno(), f"tcp:{host}:{port}")

    def recv(self, n: int | None = None) -> bytes:
        try:
            data = self.port.recv(n or self.mav.bytes_needed())
        except BlockingIOError:
            return b""
        if not data:
            raise ConnectionResetError("the TCP peer closed the connection")
        return data

    def write(self, buf: bytes) -> None:
        try:
            self.port.sendall(buf)
        except BlockingIOError:
            pass  # the peer is not reading: drop, as a radio link would

    def close(self) -> None:
        self.port.close()


class _TcpServerFile(mavutil.mavfile):
    """A TCP server for one client at a time that goes back to listening when the client
    leaves (pymavlink's ``mavtcpin`` spins on a closed client)."""

    def __init__(self, host: str, port: int) -> None:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            ls.bind((host, port))
            ls.listen(1)
        except OSError:
            ls.close()
            raise
        ls.setblocking(False)
        self.listen = ls
        self.port: socket.socket | None = None
        mavutil.mavfile.__init__(self, ls.fileno(), f"tcpin:{host}:{port}")

    def _drop(self) -> None:
        if self.port is not None:
            self.port.close()
        self.port = None
        self.fd = self.listen.fileno()

    def recv(self, n: int | None = None) -> bytes:
        if self.port is None:
            try:
                self.port, _ = self.listen.accept()
            except BlockingIOError:
                return b""
            self.port.setblocking(False)
            self.port.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.fd = self.port.fileno()
        try:
            data = self.port.recv(n or self.mav.bytes_needed())
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:
            self._drop()
        return data

    def write(self, buf: bytes) -> None:
        if self.port is None:
            return
        try:
            self.port.sendall(buf)
        except BlockingIOError:
            pass
        except OSError:
            self._drop()

    def close(self) -> None:
        self._drop()
        self.listen.close()


def open_transport(spec: ConnectionSpec, connect_timeout_s: float = 3.0) -> Any:
    """Open a connection; raises OSError/ValueError when it cannot. The returned object has
    pymavlink's ``mavfile`` interface (``recv_msg``, ``fd``, ``close``) and a MAVLink 2
    parser, whatever dialect the process imported first; write with :func:`write_transport`."""
    if spec.kind == "tlog":
        return TlogReader(spec.address)
    if spec.kind == "serial":
        conn = mavutil.mavserial(spec.address, baud=spec.baud)
    elif spec.kind in ("udpin", "udpout"):
        conn = mavutil.mavudp(spec.address, input=spec.kind == "udpin")
    else:
        host, port = spec.address.rsplit(":", 1)
        if spec.kind == "tcpin":
            conn = _TcpServerFile(host, int(port))
        else:
            conn = _TcpFile(host, int(port), connect_timeout_s)
    # Parse v1 and v2 with the MAVLink 2 dialect, and never let pymavlink switch the process's
    # global dialect on the first byte it sees.
    conn.mav = mavlink2.MAVLink(conn, srcSystem=255, srcComponent=0)
    conn.mav.robust_parsing = True
    conn.first_byte = False
    conn.WIRE_PROTOCOL_VERSION = "2.0"
    return conn


def write_transport(conn: Any, spec: ConnectionSpec, buf: bytes) -> None:
    """Send bytes; raises OSError when a serial port or TCP connection failed (UDP loses
    datagrams silently, as pymavlink does)."""
    if spec.kind == "tlog":
        return
    if spec.kind == "serial":
        conn.port.write(buf)
    else:
        conn.write(buf)


class TlogReader:
    """Records of a ``.tlog`` (each an 8-byte big-endian microsecond timestamp, then one
    MAVLink v1 or v2 packet), resynchronising after garbage.

    pymavlink's own log reader trusts the framing: after one corrupt byte it reads timestamps
    from the middle of packets. Here a record is only accepted when its packet's CRC checks
    (or, for a message id the dialect does not know, when the next record starts where it
    should); bytes that belong to no valid record come back as ``BAD_DATA`` messages.
    :meth:`recv_msg` returns one message (with ``_timestamp`` set from its record) or None at
    the end of the file.
    """

    MAX_BAD_RUN = 4096  # report a long run of garbage in pieces

    def __init__(self, path: str | os.PathLike[str], chunk_size: int = 1 << 16) -> None:
        self._f = open(path, "rb")
        self._chunk = chunk_size
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._pending: Any = None
        self.fd = None
        #: Decoder; ``mav.total_receive_errors`` counts the garbage runs, as pymavlink's does.
        self.mav = mavlink2.MAVLink(None)
        self.bad_bytes = 0

    def _fill(self, need: int) -> int:
        """Make ``need`` bytes available from the current position if the file has them."""
        while len(self._buf) - self._pos < need and not self._eof:
            if self._pos > self._chunk:
                del self._buf[: self._pos]
                self._pos = 0
            data = self._f.read(self._chunk)
            if not data:
                self._eof = True
            self._buf += data
        return len(self._buf) - self._pos

    def _frame_at(self, i: int) -> Any:
        """The valid message whose packet starts at buffer index ``i``, or None."""
        buf = self._buf
        magic = buf[i]
        if magic == 0xFE:
            length = 8 + buf[i + 1]
        elif magic == 0xFD and len(buf) > i + 2:
            length = 12 + buf[i + 1] + (13 if buf[i + 2] & 1 else 0)
        else:
            return None
        rel = i - self._pos
        if self._fill(rel + length + 9) < rel + length:
            return None
        i = self._pos + rel  # _fill may have moved the data to the front of the buffer
        try:
            msg = self.mav.decode(bytearray(buf[i : i + length]))
        except mavlink2.MAVError:
            return None
        if isinstance(msg, mavlink2.MAVLink_unknown):
            nxt = i + length + 8  # no CRC to check: the next record must start right there
            if nxt < len(buf) and buf[nxt] not in (0xFD, 0xFE):
                return None
        msg._tlog_length = length
        return msg

    def recv_msg(self) -> Any:
        if self._pending is not None:
            msg, self._pending = self._pending, None
            return msg
        bad_start: int | None = None
        while True:
            avail = self._fill(8 + 8)
            if avail < 8 + 8:  # not even a timestamp and the smallest packet: trailing garbage
                if avail > 0:
                    if bad_start is None:
                        bad_start = self._pos
                    self._pos = len(self._buf)
                return self._bad(bad_start, self._pos) if bad_start is not None else None
            msg = self._frame_at(self._pos + 8)
            if msg is not None:
                start = self._pos
                (usec,) = struct.unpack_from(">Q", self._buf, start)
                msg._timestamp = usec * 1e-6
                self._pos = start + 8 + msg._tlog_length
                if bad_start is not None:
                    self._pending = msg
                    return self._bad(bad_start, start)
                return msg
            if bad_start is None:
                bad_start = self._pos
            self._pos += 1
            if self._pos - bad_start >= self.MAX_BAD_RUN:
                return self._bad(bad_start, self._pos)

    def _bad(self, start: int, end: int) -> Any:
        data = bytes(self._buf[start:end])
        self.bad_bytes += len(data)
        self.mav.total_receive_errors += 1
        return mavlink2.MAVLink_bad_data(data, "bytes outside any valid tlog record")

    def close(self) -> None:
        self._f.close()


class _Sender:
    """The ``file`` of our MAVLink encoder: writes go through the link, which owns errors."""

    def __init__(self, link: "MavlinkLink") -> None:
        self._link = link

    def write(self, buf: bytes) -> None:
        self._link._write(bytes(buf))


# ------------------------------------------------------------------------------------------
# The link
# ------------------------------------------------------------------------------------------


class MavlinkLink:
    """One flight controller over one MAVLink connection; see the module notes.

    ``system_id``: the autopilot's system id (None: the first autopilot heartbeat).
    ``own_component_id``/``own_system_id``: our HEARTBEAT's source (system id None: the
    autopilot's, as a companion computer on the vehicle uses; 1 until one is known).
    ``stream_rates_hz``: messages to request (None: DEFAULT_STREAM_RATES_HZ; {} requests none).
    ``max_connect_attempts``: consecutive failed connection attempts after which :meth:`poll`
    raises :class:`MavlinkLinkError` (None: keep trying). Each attempt is bounded by
    ``connect_timeout_s``; the wait between attempts grows from ``backoff_initial_s`` to
    ``backoff_max_s``.
    """

    def __init__(
        self,
        url: str,
        system_id: int | None = None,
        *,
        component_id: int = 1,
        own_component_id: int = DEFAULT_OWN_COMPONENT_ID,
        own_system_id: int | None = None,
        baud: int = 115200,
        stale_timeout_s: float = 3.0,
        field_timeout_s: float | None = 10.0,
        max_clock_offset_s: float = 2.0,
        stream_rates_hz: Mapping[str, float] | None = None,
        heartbeat_period_s: float = 1.0,
        command_timeout_s: float = 1.0,
        command_retries: int = 2,
        verify_after_s: float = 5.0,
        connect_timeout_s: float = 3.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 5.0,
        max_connect_attempts: int | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = parse_url(url, default_baud=baud)
        own_ids = (("own_component_id", own_component_id), ("own_system_id", own_system_id))
        for name, value in own_ids:
            if value is not None and not (isinstance(value, int) and 1 <= value <= 255):
                raise ConfigError(f"{name} must be an int in 1..255, got {value!r}")
        if not heartbeat_period_s > 0 or not connect_timeout_s > 0:
            raise ConfigError("heartbeat_period_s and connect_timeout_s must be positive")
        if max_connect_attempts is not None and max_connect_attempts < 1:
            raise ConfigError(f"max_connect_attempts must be >= 1, got {max_connect_attempts!r}")
        self.is_replay = self.spec.kind == "tlog"
        self.state = VehicleState(
            system_id=system_id,
            component_id=component_id,
            stale_timeout_s=stale_timeout_s,
            field_timeout_s=field_timeout_s,
            time_source="receive" if self.is_replay else "auto",
            max_clock_offset_s=max_clock_offset_s,
        )
        self.requester = StreamRequester(
            DEFAULT_STREAM_RATES_HZ if stream_rates_hz is None else stream_rates_hz,
            command_timeout_s=command_timeout_s,
            command_retries=command_retries,
            verify_after_s=verify_after_s,
        )
        self.own_component_id = own_component_id
        self.own_system_id = own_system_id
        self.heartbeat_period_s = heartbeat_period_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_connect_attempts = max_connect_attempts
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._conn: Any = None
        self._mav = mavlink2.MAVLink(_Sender(self), srcSystem=1, srcComponent=own_component_id)
        self._closed = False
        self._failures = 0
        self._backoff_s = backoff_initial_s
        self._next_attempt = -math.inf
        self._next_heartbeat = -math.inf
        self._errors_base = 0
        self._last_log_time: float | None = None
        self.last_error: str | None = None
        #: Set when a replayed log is exhausted.
        self.eof = False
        self.counters: Counter[str] = Counter()
        if self.is_replay:
            self._connect()  # a missing or unreadable log is a configuration error

    # -- connection ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _connect(self) -> None:
        """One bounded connection attempt. Opening happens outside the lock, so other threads'
        :meth:`sample`/:meth:`stats` never wait for a TCP connect."""
        try:
            conn = open_transport(self.spec, self.connect_timeout_s)
        except (OSError, ValueError) as exc:
            if self.is_replay:
                raise ConfigError(f"cannot read MAVLink log {self.spec.address}: {exc}") from None
            with self._lock:
                self._connect_failed(exc)
            return
        with self._lock:
            if self._closed:
                conn.close()
                return
            self._conn = conn
            self._failures = 0
            self._backoff_s = self.backoff_initial_s
            self._next_heartbeat = -math.inf
            self.counters["connects"] += 1
        if not self.is_replay:
            log.info("MAVLink connected: %s", self.spec)

    def _connect_failed(self, exc: BaseException) -> None:
        self._failures += 1
        self.counters["connect_failures"] += 1
        self.last_error = f"cannot open {self.spec}: {exc}"
        now = self._monotonic()
        self._next_attempt = now + self._backoff_s
        self._backoff_s = min(self.backoff_max_s, self._backoff_s * 2)
        if self._failures == 1 or self._failures % 10 == 0:
            log.warning("%s (attempt %d)", self.last_error, self._failures)
        if self.max_connect_attempts is not None and self._failures >= self.max_connect_attempts:
            raise MavlinkLinkError(
                f"{self.last_error}; gave up after {self._failures} attempts"
            ) from None

    def _disconnect(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._errors_base += conn.mav.total_receive_errors
        try:
            conn.close()
        except OSError:
            pass
        self.counters["disconnects"] += 1
        self.last_error = f"{self.spec}: {why}"
        log.warning("MAVLink connection lost (%s); reconnecting", self.last_error)
        self._next_attempt = self._monotonic() + self._backoff_s
        self._backoff_s = min(self.backoff_max_s, self._backoff_s * 2)

    def _write(self, buf: bytes) -> None:
        conn = self._conn
        if conn is None or self.is_replay:
            return
        try:
            write_transport(conn, self.spec, buf)
        except OSError as exc:
            self.counters["write_errors"] += 1
            self._disconnect(f"write failed: {exc}")

    # -- the loop ------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.1, max_messages: int = 1000) -> list[Any]:
        """Receive for up to ``timeout`` seconds (a replay never waits) and return the messages
        accepted from the autopilot, at most ``max_messages``. Also sends what is due (our
        heartbeat, stream requests) and reconnects when it is time to."""
        deadline = self._monotonic() + max(0.0, timeout)
        handled: list[Any] = []
        processed = 0
        while True:
            with self._lock:
                if self._closed or self.eof:
                    return handled
                reconnect = self._conn is None and self._monotonic() >= self._next_attempt
            if reconnect:
                self._connect()
            with self._lock:
                if self._closed:
                    return handled
                conn = self._conn
                if conn is not None:
                    msg = self._recv(conn)
                    if msg is not None:
                        processed += 1
                        if self._handle(msg):
                            handled.append(msg)
                        if (
                            len(handled) >= max_messages
                            or processed >= 10 * max_messages
                            or (not self.is_replay and self._monotonic() >= deadline)
                        ):  # a flood of messages must not starve the heartbeat or the caller
                            self._service()
                            return handled
                        continue
                    if self.is_replay:
                        if self._conn is not None:  # not a read error: the end of the log
                            self.eof = True
                        return handled
                self._service()
                wait = deadline - self._monotonic()
                if wait <= 0:
                    return handled
                if self._conn is None:
                    wait = min(wait, max(0.0, self._next_attempt - self._monotonic()))
            self._wait(conn if conn is self._conn else None, min(wait, 0.1))

    def _recv(self, conn: Any) -> Any:
        try:
            return conn.recv_msg()
        except (OSError, EOFError) as exc:
            if self.is_replay:  # a log that cannot be read further ends the replay
                self.counters["read_errors"] += 1
                self.last_error = f"{self.spec}: {exc}"
                self.eof = True
                return None
            self._disconnect(str(exc) or type(exc).__name__)
        except mavlink2.MAVError as exc:  # robust parsing makes this rare; never fatal
            self.counters["parser_errors"] += 1
            self.last_error = f"parser: {exc}"
        return None

    def _wait(self, conn: Any, seconds: float) -> None:
        fd = getattr(conn, "fd", None) if conn is not None else None
        if fd is None:
            time.sleep(max(0.0, seconds))
            return
        try:
            select.select([fd], [], [], max(0.0, seconds))
        except (OSError, ValueError):
            pass  # closed under us: the next recv reports it

    def _receive_time(self, msg: Any) -> float:
        if not self.is_replay:
            return self._clock()
        t = getattr(msg, "_timestamp", None)
        last = self._last_log_time
        # A corrupted log timestamp must not throw the clock years away: keep the last one.
        if t is None or not math.isfinite(t) or (
            last is not None and not (last - 1.0 <= t <= last + 86400.0)
        ):
            self.counters["bad_log_timestamps"] += 1
            return last if last is not None else 0.0
        self._last_log_time = t
        return t

    def _handle(self, msg: Any) -> bool:
        mtype = msg.get_type()
        self.counters["messages_received"] += 1
        if mtype == "BAD_DATA":
            self.counters["bad_data"] += 1
            self.counters["bad_bytes"] += len(getattr(msg, "data", b"") or b"")
            return False
        if mtype.startswith("UNKNOWN_"):
            self.counters["unknown_messages"] += 1
            return False
        now = self._receive_time(msg)
        result = self.state.update(msg, now)
        if not result.accepted:
            return False
        mono = self._monotonic()
        for event in result.events:
            if event == EVENT_AUTOPILOT:
                sysid, compid = self.state.autopilot  # type: ignore[misc]
                log.info("MAVLink autopilot: system %d component %d", sysid, compid)
                if not self.is_replay:
                    self.requester.start(mono)
                    self._next_heartbeat = -math.inf  # introduce ourselves right away
            elif event in (EVENT_REBOOT, EVENT_RESUMED) and not self.is_replay:
                self.counters[f"rerequest_after_{event}"] += 1
                self.requester.start(mono)
        if mtype == "COMMAND_ACK" and not self._ack_is_ours(msg):
            return True
        self.requester.on_message(mtype, vars(msg), mono)
        return True

    def _ack_is_ours(self, msg: Any) -> bool:
        ts, tc = getattr(msg, "target_system", 0), getattr(msg, "target_component", 0)
        return ts in (0, self._mav.srcSystem) and tc in (0, self.own_component_id)

    def _service(self) -> None:
        """Send what is due: our heartbeat and stream requests."""
        if self._conn is None or self.is_replay:
            return
        now = self._monotonic()
        self._mav.srcSystem = self._own_system_id()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_period_s
            self._mav.heartbeat_send(
                MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, 0, 0, MAV_STATE_ACTIVE
            )
            self.counters["heartbeats_sent"] += 1
        if self.state.autopilot is None:
            return
        sysid, compid = self.state.autopilot
        for req in self.requester.due(now):
            if self._conn is None:
                return
            if req.kind == "set_message_interval":
                self._mav.command_long_send(
                    sysid, compid, MAV_CMD_SET_MESSAGE_INTERVAL, req.confirmation,
                    float(req.message_id), float(req.interval_us), 0, 0, 0, 0, 0,
                )  # fmt: skip
            else:
                self._mav.request_data_stream_send(sysid, compid, req.stream_id, req.rate_hz, 1)
            self.counters[f"sent_{req.kind}"] += 1

    def _own_system_id(self) -> int:
        if self.own_system_id is not None:
            return self.own_system_id
        if self.state.autopilot is not None:
            return self.state.autopilot[0]
        return self.state.wanted_system_id or 1

    @property
    def local_address(self) -> tuple[str, int] | None:
        """The (host, port) a udpin/tcpin link listens on (useful with port 0), else None."""
        conn = self._conn
        sock = getattr(conn, "listen", None) or getattr(conn, "port", None)
        if self.spec.kind not in ("udpin", "tcpin") or sock is None:
            return None
        return sock.getsockname()[:2]

    # -- thread-safe views ---------------------------------------------------------------------

    def sample(self, now: float | None = None) -> TelemetrySample | None:
        """The current telemetry sample (thread-safe); ``now`` defaults to the link's clock (the
        newest log time when replaying)."""
        with self._lock:
            if now is None:
                now = self.state.last_receive_time if self.is_replay else self._clock()
                if now is None:
                    return None
            return self.state.sample(now)

    def is_stale(self, now: float | None = None) -> bool:
        with self._lock:
            if now is None:
                now = self.state.last_receive_time if self.is_replay else self._clock()
                if now is None:
                    return True
            return self.state.is_stale(now)

    def stats(self) -> dict[str, Any]:
        """Counters: messages by type, bad data, ignored components, requests, connections."""
        with self._lock:
            errors = self._errors_base + (self._conn.mav.total_receive_errors if self._conn else 0)
            return {
                "url": str(self.spec),
                "connected": self._conn is not None,
                "receive_errors": errors,
                "last_error": self.last_error,
                "messages_received": 0,
                "bad_data": 0,
                "bad_bytes": 0,
                "unknown_messages": 0,
                **dict(self.counters),
                "streams": dict(self.requester.status),
                "stream_counters": dict(self.requester.counters),
                "state": self.state.stats(),
            }

    def close(self) -> None:
        """Close the connection; a concurrent :meth:`poll` returns within its wait."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass

    def __enter__(self) -> "MavlinkLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
