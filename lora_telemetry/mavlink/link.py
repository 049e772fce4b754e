"""The MAVLink link to one flight controller: connection, stream requests, heartbeat, reboots.

:class:`MavlinkLink` is the I/O edge. It opens any pymavlink-style connection (serial device,
UDP, TCP, or a ``.tlog`` file to replay; see :mod:`lora_telemetry.mavlink.urls` for the
connection strings), feeds every message to a
:class:`~lora_telemetry.mavlink.state.VehicleState`, sends its own HEARTBEAT as an onboard
component, asks the autopilot for the messages the telemetry needs
(:class:`~lora_telemetry.mavlink.streams.StreamRequester`, restarted when the autopilot reboots
or resumes after a silence), and reconnects with backoff when the transport fails
(:mod:`lora_telemetry.mavlink.transport`). It is meant to be driven from one thread calling
:meth:`poll`; other threads read the state through :meth:`sample` and :meth:`stats`, which take
its lock.

A replayed log (``PATH.tlog`` or ``tlog:PATH``) is read as fast as :meth:`poll` is called, with
the log's own receive timestamps as the clock, and nothing is sent.

Commands to the autopilot (issue 14): :meth:`submit_command` hands one command at a time to a
:class:`~lora_telemetry.mavlink.commands.CommandExchange`, which the polling thread drives
(sends, retransmits, feeds it every COMMAND_ACK) until it ends; its result goes to the
caller's callback on the polling thread. A second command while one is open is refused
(``CommandBusyError``): the LoRa downlink delivers commands seconds apart, so a queue here
would only hide a stuck autopilot.
"""

from __future__ import annotations

import logging
import math
import select
import threading
import time
from collections import Counter
from typing import Any, Callable, Mapping

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.core.codec import TelemetrySample
from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.mavlink.commands import (
    CommandExchange,
    CommandResult,
    ExchangeState,
    UnsupportedCommandError,
    VehicleCommand,
    autopilot_command,
)
from lora_telemetry.mavlink.state import (
    EVENT_AUTOPILOT,
    EVENT_REBOOT,
    EVENT_RESUMED,
    MAV_AUTOPILOT_INVALID,
    VehicleState,
)
from lora_telemetry.mavlink.streams import (
    DEFAULT_STREAM_RATES_HZ,
    MAV_CMD_SET_MESSAGE_INTERVAL,
    StreamRequester,
)
from lora_telemetry.mavlink.transport import ReconnectSchedule, open_transport, write_transport
from lora_telemetry.mavlink.urls import parse_url

__all__ = [
    "CommandBusyError",
    "MavlinkLinkError",
    "MavlinkLink",
    "MAV_TYPE_ONBOARD_CONTROLLER",
    "DEFAULT_OWN_COMPONENT_ID",
]

log = logging.getLogger(__name__)


class MavlinkLinkError(LoraTelemetryError):
    """The connection to the flight controller failed and the allowed attempts are used up."""


class CommandBusyError(LoraTelemetryError):
    """A command to the autopilot is still open; one at a time."""


MAV_TYPE_ONBOARD_CONTROLLER = 18
MAV_STATE_ACTIVE = 4
#: MAV_COMP_ID_ONBOARD_COMPUTER (configurable: a vehicle may already have one there).
DEFAULT_OWN_COMPONENT_ID = 191


class _Sender:
    """The ``file`` of our MAVLink encoder: writes go through the link, which owns errors."""

    def __init__(self, link: "MavlinkLink") -> None:
        self._link = link

    def write(self, buf: bytes) -> None:
        self._link._write(bytes(buf))


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
        time_source: str = "auto",
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
            time_source="receive" if self.is_replay else time_source,
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
        #: When to reopen a failed or lost connection (counts consecutive failed attempts).
        self.reconnect_schedule = ReconnectSchedule(backoff_initial_s, backoff_max_s)
        self._next_heartbeat = -math.inf
        self._errors_base = 0
        self._last_log_time: float | None = None
        self.last_error: str | None = None
        #: Set when a replayed log is exhausted.
        self.eof = False
        self.counters: Counter[str] = Counter()
        self._exchange: CommandExchange | None = None
        self._on_command_done: Callable[[CommandResult], None] | None = None
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
            self.reconnect_schedule.succeeded()
            self._next_heartbeat = -math.inf
            self.counters["connects"] += 1
        if not self.is_replay:
            log.info("MAVLink connected: %s", self.spec)

    def _connect_failed(self, exc: BaseException) -> None:
        self.reconnect_schedule.attempt_failed(self._monotonic())
        failures = self.reconnect_schedule.failures
        self.counters["connect_failures"] += 1
        self.last_error = f"cannot open {self.spec}: {exc}"
        if failures == 1 or failures % 10 == 0:
            log.warning("%s (attempt %d)", self.last_error, failures)
        if self.max_connect_attempts is not None and failures >= self.max_connect_attempts:
            raise MavlinkLinkError(
                f"{self.last_error}; gave up after {failures} attempts"
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
        self.reconnect_schedule.connection_lost(self._monotonic())

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
                reconnect = self._conn is None and self.reconnect_schedule.due(self._monotonic())
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
                    wait = min(wait, self.reconnect_schedule.wait_s(self._monotonic()))
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
        if mtype == "COMMAND_ACK" and self._exchange is not None:
            done = self._exchange.on_message(msg, mono)
            if done is not None:
                self._command_finished(done)
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
        exchange = self._exchange
        if exchange is not None:
            started = exchange.state is ExchangeState.IDLE
            for msg in exchange.start(now) if started else exchange.due(now):
                self._mav.send(msg)
                self.counters["commands_sent"] += 1
            if exchange.done and exchange.result is not None:
                self._command_finished(exchange.result)
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

    # -- commands to the autopilot -----------------------------------------------------------
    def submit_command(self, command: VehicleCommand | str, argument: str | None = None, *,
                       on_done: Callable[[CommandResult], None] | None = None) -> None:
        """Send ``command`` (with its mode name for SET_MODE) to the autopilot, as its family
        needs (mavlink/commands.py); ``on_done`` gets the result on the polling thread (it
        must not block). Raises UnsupportedCommandError for what this autopilot cannot do
        (or before one was heard, or on a replayed log) and CommandBusyError while another
        command is open."""
        with self._lock:
            if self.is_replay:
                raise UnsupportedCommandError("a replayed log has no autopilot to command")
            if self.state.autopilot is None or self.state.family is None:
                raise UnsupportedCommandError("no autopilot heard yet: nothing to command")
            if self._exchange is not None:
                raise CommandBusyError(
                    f"a {self._exchange.command.description} command is still open")
            cmd = autopilot_command(self.state.family, command, argument)
            sysid, compid = self.state.autopilot
            self._exchange = CommandExchange(cmd, sysid, compid, own_system=self._own_system_id(),
                                             own_component=self.own_component_id)
            self._on_command_done = on_done
            self.counters["commands_submitted"] += 1

    def _command_finished(self, result: CommandResult) -> None:
        callback, self._on_command_done, self._exchange = self._on_command_done, None, None
        self.counters[f"commands.{result.outcome.name.lower()}"] += 1
        if callback is not None:
            try:
                callback(result)
            except Exception:  # noqa: BLE001 - a caller's bug must not stop the link
                self.counters["command_callback_errors"] += 1
                log.exception("command result callback failed")

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

    def sample(self, now: float | None = None, *, at_time: float | None = None,
               clock_offset_s: float = 0.0) -> TelemetrySample | None:
        """The current telemetry sample (thread-safe); ``now`` defaults to the link's clock (the
        newest log time when replaying). ``at_time``/``clock_offset_s``: see
        VehicleState.sample (carried forward to the time it goes on the air)."""
        with self._lock:
            if now is None:
                now = self.state.last_receive_time if self.is_replay else self._clock()
                if now is None:
                    return None
            return self.state.sample(now, at_time=at_time, clock_offset_s=clock_offset_s)

    def take_time_samples(self) -> list[tuple[float, float]]:
        """SYSTEM_TIME (GPS time, receive time) pairs since the last call (thread-safe;
        time_source "gps")."""
        with self._lock:
            return self.state.take_time_samples()

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
