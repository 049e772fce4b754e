"""Opening, writing and reconnecting the transport of a MAVLink link (pymavlink connections).

:func:`open_transport` turns a :class:`~lora_telemetry.mavlink.urls.ConnectionSpec` into an
object with pymavlink's ``mavfile`` interface: pymavlink's own serial and UDP connections, two
TCP connections of ours (pymavlink's ``mavtcp`` retries with sleeps and prints as it goes, its
``mavtcpin`` spins on a closed client), or a :class:`~lora_telemetry.mavlink.tlog.TlogReader`.
Whatever dialect the process imported first, every connection parses with the MAVLink 2
dialect (v1 and v2 packets) and never switches the process's global dialect.

:class:`ReconnectSchedule` is the sans-I/O part of reconnecting: when the next attempt is due,
with a wait that doubles after each failure or loss up to a maximum and resets on success.
"""

from __future__ import annotations

import math
import socket
from typing import Any

from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.mavlink.tlog import TlogReader
from lora_telemetry.mavlink.urls import ConnectionSpec

__all__ = ["open_transport", "write_transport", "ReconnectSchedule"]


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



class ReconnectSchedule:
    """When to try a failed or lost connection again: ``initial_s`` after the first failure or
    loss, doubling up to ``max_s``; a successful attempt starts over from ``initial_s``.
    Times are monotonic seconds, passed in."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        #: Consecutive failed attempts since the last success.
        self.failures = 0
        #: When the next attempt is due (-inf: at once).
        self.next_attempt = -math.inf
        #: The wait the next failure or loss schedules.
        self.backoff_s = initial_s

    def due(self, now: float) -> bool:
        return now >= self.next_attempt

    def wait_s(self, now: float) -> float:
        """Seconds until the next attempt is due (0 when it is)."""
        return max(0.0, self.next_attempt - now)

    def succeeded(self) -> None:
        self.failures = 0
        self.backoff_s = self.initial_s

    def attempt_failed(self, now: float) -> None:
        self.failures += 1
        self._postpone(now)

    def connection_lost(self, now: float) -> None:
        """An open connection failed: wait before reopening (not a failed attempt)."""
        self._postpone(now)

    def _postpone(self, now: float) -> None:
        self.next_attempt = now + self.backoff_s
        self.backoff_s = min(self.max_s, self.backoff_s * 2)
