"""The one loop that runs every emulated device: select, timers, control queue, medium.

A device is its logic (``radios/<family>/emulator.py``, events in and actions out, see
:mod:`lora_telemetry.core.emulation`) plus this loop, which owns the I/O:

* **select** on the host's pty (readable; writable while bytes wait), the medium client's
  socket and a wake pipe; every wait is bounded (at most :data:`MAX_WAIT_S`, less when a timer
  or a pty flush deadline is nearer);
* **a timer heap** of the logic's named timers (a key set again moves its timer; cancelled
  ones are skipped when they come up);
* **a thread-safe control queue**: :meth:`DeviceLoop.control` posts a typed fault-injection
  command from any thread and wakes the loop through the pipe; the logic's
  :class:`Accepted` / :class:`Refused` comes back to the caller (a bounded wait);
* **synchronous requests** (:meth:`DeviceLoop.request`): an in-process host (the SPI bus of
  an emulated chip) hands an event to the logic in its own thread, under the loop's lock,
  and gets the logic's :class:`Reply`;
* **the UART** (serial modules): a pty moves bytes at once, a module's UART does not, and the
  drone's TDMA lead time (issue 13) depends on the difference. Both directions go through a
  :class:`~lora_telemetry.core.uart.UartLine` at the module's ``baud`` (the registry's
  ``FamilySpec.serial``; 10 bits a byte for 8N1): what the host writes reaches the logic as
  :class:`HostBytes` no earlier than its last bit would have crossed the line, so a module acts
  on a command only once its last byte has arrived (a 29-byte frame's ``radio tx``, 69 bytes,
  takes 12.0 ms at 57600 baud), and the logic's :class:`ToHost` bytes reach the pty at the line
  rate too. The bytes are handed on in chunks of at most 2 ms of line time (core/uart.py).
  ``baud`` 0 is an instant line, for unit tests about something else; the shells default to the
  family's baud. A host's bytes count as entering the line when the loop reads them from the
  pty (the loop waits in select, so that is at once unless the machine is loaded);
* **host writes** through :class:`~lora_telemetry.sim.pty_port.PtyPort`, never blocking: a host
  that stops reading loses bytes after 0.5 s, like a UART without flow control, counted in
  ``host_overrun_bytes``; unplugging loses what is on the line (``host_unplugged_bytes``);
* **the medium** through :class:`~lora_telemetry.sim.medium_port.MediumPort`, the one typed
  adapter; with no medium, or when the hub cannot be reached, the loop itself ends a
  transmission after its time on air.

Who closes what (one rule, for every emulator, ``sim module``, ``open_emulated`` and the
tests): **whoever creates a resource closes it, after the things that use it.** The loop
closes what it creates (its wake pipe, its thread); the shell that creates the pty
(sim/emulated_serial.py) or the pins (sim/emulated_spi.py) closes them; the one who creates a
:class:`~lora_telemetry.sim.medium.MediumClient` closes it after closing the emulator given
it. Nothing here closes a medium client; closing a loop only puts its radio in standby.

The loop never raises for anything a host or the medium sends: a logic that raises is a bug,
logged and counted (``logic_errors``), and the device goes on.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import select
import threading
import time
from collections import Counter
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Hashable

from lora_telemetry.core.emulation import (
    Accepted, Action, CancelTimer, ControlCommand, DeviceEvent, DeviceLogic, HostBytes, Listen,
    PowerOn, PowerOnMoment, Refused, ReplugPort, Reply, SetPin, Standby, StartTimer, TimerFired,
    ToHost, Transmit, TxDoneEvent, UnplugPort,
)
from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.uart import BITS_PER_BYTE_8N1, UartLine
from lora_telemetry.sim.medium_port import MediumPort
from lora_telemetry.sim.pty_port import PtyPort

__all__ = ["DeviceLoop", "DeviceShell", "TimerHeap", "MAX_WAIT_S"]

log = logging.getLogger(__name__)

#: The longest a loop turn waits (so stop() and a vanished fd are noticed soon).
MAX_WAIT_S = 0.2
#: How long control() waits for the loop to carry a command out.
CONTROL_TIMEOUT_S = 2.0
#: Events a single delivery may cascade into (TransmitFailed after a Transmit...).
_MAX_CASCADE = 16

PinSink = Callable[[str, bool], None]


class TimerHeap:
    """Named one-shot timers: ``start(key, at)`` (moves a pending key), ``cancel(key)``,
    ``due(now)`` pops the keys whose time has come, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, int] = {}
        self._seq = itertools.count()

    def start(self, key: Hashable, at: float) -> None:
        seq = next(self._seq)
        self._live[key] = seq
        heapq.heappush(self._heap, (at, seq, key))

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def clear(self) -> None:
        self._heap.clear()
        self._live.clear()

    def next_at(self) -> float | None:
        self._skip_dead()
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[Hashable]:
        keys = []
        self._skip_dead()
        while self._heap and self._heap[0][0] <= now:
            _, seq, key = heapq.heappop(self._heap)
            if self._live.get(key) == seq:
                del self._live[key]
                keys.append(key)
            self._skip_dead()
        return keys

    def __len__(self) -> int:
        return len(self._live)

    def _skip_dead(self) -> None:
        while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][1]:
            heapq.heappop(self._heap)


class _LocalTxDone:
    """Key of the timer by which the loop ends a transmission the medium will not report."""

    __slots__ = ("seq", "airtime", "t_start")

    def __init__(self, seq: int, airtime: float, t_start: float) -> None:
        self.seq, self.airtime, self.t_start = seq, airtime, t_start


class DeviceLoop:
    """Runs one device's logic (see the module docstring).

    ``host``: the pty the device's UART is on (serial modules), at ``baud`` with ``bits`` per
    byte (0: instant); ``medium``: a medium client or None; ``pins``: where :class:`SetPin`
    actions go (in-process chips).
    """

    def __init__(
        self,
        logic: DeviceLogic,
        name: str,
        *,
        host: PtyPort | None = None,
        medium: Any | None = None,
        pins: PinSink | None = None,
        clock: Callable[[], float] = time.time,
        baud: int = 0,
        bits: int = BITS_PER_BYTE_8N1,
    ) -> None:
        self.logic = logic
        self.name = name
        self.host = host
        self.baud = baud
        self._to_device = UartLine(baud, bits=bits)  # host -> logic
        self._to_host = UartLine(baud, bits=bits)  # logic -> host
        self.medium = MediumPort(medium, name)
        self._pins = pins
        self._clock = clock
        self.timers = TimerHeap()
        self._tx_seq = itertools.count()
        self._lock = threading.RLock()
        self._controls: queue.SimpleQueue[tuple[ControlCommand, Future]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._serving = threading.Event()
        self._thread: threading.Thread | None = None
        self._serving_thread: threading.Thread | None = None
        self._powered = False
        self._closed = False
        self.counters: Counter[str] = Counter()
        if logic.power_on_at is PowerOnMoment.CREATED:
            self._power_on()

    # --- running ----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Run the device in this thread until :meth:`stop`."""
        if self._closed:
            raise LoraTelemetryError(f"emulated device {self.name} is closed")
        with self._lock:
            if not self._powered:
                self._power_on()
        self._serving_thread = threading.current_thread()
        self._serving.set()
        try:
            while not self._stop.is_set():
                self._turn()
        finally:
            self._serving.clear()
            self._fail_pending_controls()

    def start(self) -> threading.Thread:
        """:meth:`serve_forever` in a daemon thread; returns once the device is serving."""
        self._thread = threading.Thread(target=self.serve_forever, name=f"device-{self.name}",
                                        daemon=True)
        self._thread.start()
        self._serving.wait(2.0)
        return self._thread

    def stop(self) -> None:
        """Make serve_forever return (final; safe from signal handlers and other threads)."""
        self._stop.set()
        self._wake()

    def close(self) -> None:
        """Stop, wait for the loop's own thread, put the radio in standby, close the pipe."""
        self.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.medium.listening:
                self.medium.standby()
            self.timers.clear()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._wake_r = self._wake_w = -1

    # --- from other threads -----------------------------------------------------------------

    def control(self, command: ControlCommand, timeout: float = CONTROL_TIMEOUT_S
                ) -> Accepted | Refused:
        """Carry out a fault-injection command; the logic's answer (bounded wait).

        While the loop serves, the command goes through the control queue and is handled in
        the loop's thread; before it serves (or after), right here under the lock.
        """
        if self._closed:
            return Refused(f"{self.name} is closed")
        if not self._serving.is_set() or self._serving_thread is threading.current_thread():
            with self._lock:
                return self._answer_of(self._deliver(command))
        future: Future = Future()
        self._controls.put((command, future))
        self._wake()
        try:
            return future.result(timeout)
        except FutureTimeout:
            self.counters["control_timeouts"] += 1
            return Refused(f"{self.name} did not carry the command out within {timeout:g} s")

    def request(self, event: DeviceEvent) -> Any:
        """Hand ``event`` to the logic now, in this thread; the value of its Reply (or None)."""
        with self._lock:
            if self._closed:
                raise OSError(f"emulated device {self.name} has been closed")
            for action in self._deliver(event):
                if isinstance(action, Reply):
                    return action.value
        return None

    def inspect(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(logic)`` under the loop's lock (a consistent look at the device's state)."""
        with self._lock:
            return fn(self.logic)

    @property
    def serving(self) -> bool:
        return self._serving.is_set()

    @property
    def line_pending(self) -> int:
        """Bytes still crossing the UART, in either direction (0: the line is idle)."""
        with self._lock:
            return self._to_device.pending + self._to_host.pending

    # --- the turn ---------------------------------------------------------------------------

    def _turn(self) -> None:
        with self._lock:
            now = self._clock()
            wait = MAX_WAIT_S
            for deadline in (self.timers.next_at(),
                             self.host.flush_deadline() if self.host else None,
                             self._to_device.next_at(), self._to_host.next_at()):
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
            readers = [self._wake_r]
            writers = []
            host_fd = self.host.master_fd if self.host is not None else None
            if host_fd is not None:
                readers.append(host_fd)
                if self.host.wants_write:
                    writers.append(host_fd)
            medium_fd = self.medium.fileno()
            if medium_fd is not None:
                readers.append(medium_fd)
        try:
            readable, writable, _ = select.select(readers, writers, [], wait)
        except (OSError, ValueError):  # an fd closed meanwhile (unplug, close): go round again
            readable, writable = [], []
            time.sleep(min(wait, 0.01))
        with self._lock:
            if self._closed:
                return
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            self._run_controls()
            host = self.host
            if host is not None and host_fd is not None and host.master_fd == host_fd:
                if host_fd in writable or host.wants_write:
                    host.flush(self._clock())
                if host_fd in readable:
                    data = host.read_available()
                    if data:
                        self._to_device.put(data, self._clock())
            arrived = self._to_device.take(self._clock())
            if arrived:
                self._deliver(HostBytes(arrived))
            if medium_fd is not None and medium_fd in readable:
                for event in self.medium.drain():
                    self._deliver(event)
            for key in self.timers.due(self._clock()):
                if isinstance(key, _LocalTxDone):
                    self._deliver(TxDoneEvent(key.airtime, key.t_start,
                                               key.t_start + key.airtime))
                else:
                    self._deliver(TimerFired(key))
            self._release_to_host()

    def _release_to_host(self) -> None:
        """Hand the pty what has crossed the line by now."""
        data = self._to_host.take(self._clock())
        if data and self.host is not None:
            self.host.queue_write(data, self._clock())

    def _run_controls(self) -> None:
        self._answer_controls(lambda command: self._answer_of(self._deliver(command)))

    def _fail_pending_controls(self) -> None:
        self._answer_controls(lambda command: Refused(f"{self.name} stopped"))

    def _answer_controls(self, answer: Callable[[ControlCommand], Accepted | Refused]) -> None:
        while True:
            try:
                command, future = self._controls.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():  # its caller still waits
                future.set_result(answer(command))

    @staticmethod
    def _answer_of(actions: list[Action]) -> Accepted | Refused:
        for action in actions:
            if isinstance(action, (Accepted, Refused)):
                return action
        return Refused("the device gave no answer")  # a logic bug; the caller is told

    def _power_on(self) -> None:
        self._powered = True
        self._deliver(PowerOn())

    # --- delivering events and carrying out actions -----------------------------------------

    def _deliver(self, event: DeviceEvent) -> list[Action]:
        """Give the logic ``event`` (and what carrying out its actions brings back)."""
        done: list[Action] = []
        pending = [event]
        for _ in range(_MAX_CASCADE):
            if not pending:
                break
            current = pending.pop(0)
            try:
                actions = self.logic.handle(current, self._clock())
            except Exception:  # noqa: BLE001 - the device must survive its own bugs
                self.counters["logic_errors"] += 1
                log.exception("%s: internal error handling %r", self.name, current)
                continue
            for action in actions:
                pending += self._execute(action)
            done += actions
        return done

    def _execute(self, action: Action) -> list[DeviceEvent]:
        if isinstance(action, ToHost):
            if self.host is None:
                self.counters["host_bytes_without_port"] += len(action.data)
            else:
                self._to_host.put(action.data, self._clock())
                self._release_to_host()
        elif isinstance(action, Transmit):
            airtime, events = self.medium.transmit(action.data, action.phy, action.power_dbm)
            if airtime is not None:  # nobody will report the end: time it here
                now = self._clock()
                self.timers.start(_LocalTxDone(next(self._tx_seq), airtime, now), now + airtime)
            return events
        elif isinstance(action, Listen):
            self.medium.listen(action.phy)
        elif isinstance(action, Standby):
            self.medium.standby()
        elif isinstance(action, StartTimer):
            self.timers.start(action.key, action.at)
            self._wake()
        elif isinstance(action, CancelTimer):
            self.timers.cancel(action.key)
        elif isinstance(action, UnplugPort):
            if self.host is not None:
                self._clear_line()
                self.host.unplug()
        elif isinstance(action, ReplugPort):
            if self.host is not None:
                self._clear_line()
                self.host.replug()
        elif isinstance(action, SetPin):
            if self._pins is not None:
                self._pins(action.pin, action.level)
        return []

    def _clear_line(self) -> None:
        """The adapter is pulled: what was on the wire in either direction is lost."""
        self.counters["host_unplugged_bytes"] += self._to_device.clear() + self._to_host.clear()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    # --- counters ---------------------------------------------------------------------------

    def all_counters(self) -> Counter[str]:
        """The logic's counters plus the loop's, the medium adapter's and the pty's (a
        Counter: a name never counted reads 0)."""
        with self._lock:
            out: Counter[str] = Counter(dict(self.logic.counters))
            out.update(self.counters)
            out.update(self.medium.counters)
            out["medium_errors"] += 0
            if self.host is not None:
                out["host_overrun_bytes"] += self.host.overrun_bytes
                out["host_unplugged_bytes"] += self.host.unplugged_bytes
            return out


class DeviceShell:
    """What the emulator shells (a pty module, an SPI chip) have in common around their loop:
    the logic, the counters, typed control, and closing as a context manager."""

    loop: DeviceLoop

    @property
    def logic(self) -> Any:
        return self.loop.logic

    @property
    def counters(self) -> Counter[str]:
        """The device's, the loop's, the medium adapter's (and the pty's) counters."""
        return self.loop.all_counters()

    def control(self, command: ControlCommand) -> Accepted | Refused:
        """Carry out a typed fault-injection command (thread-safe): Accepted or Refused."""
        return self.loop.control(command)

    def close(self) -> None:
        self.loop.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
