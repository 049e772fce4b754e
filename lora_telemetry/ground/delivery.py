"""Frames reach the topics only once the counters they advanced are on disk (group commit).

The receive thread judges each frame (`Gateway.process`) and hands the frame and its verdict
to :class:`DurableDelivery`. Its own thread takes everything queued since its last write,
makes the new counters durable in one atomic, fsync'd write (`persist.GroundCounterStore`)
and only then delivers the batch, in reception order. Decisions worth knowing:

* **Reception never waits for the disk.** The SX1276 receives continuously and keeps one
  frame: a frame lasts 66.8 ms at SF7/125 kHz, so a receive loop blocked in a slow fsync (an
  SD card can take tens of milliseconds, sometimes more) would let the next frame overwrite
  the last one. Here a slow write only delays publication, and it covers every frame that
  arrived meanwhile (one write per batch, not per frame).
* **Withheld, not published, when the write fails.** A frame published without its counter
  on disk could be accepted a second time after a restart. So a frame whose counter cannot
  be made durable is delivered with the status ``state_write_failed`` (it appears on
  /lora/rx, never as telemetry) and counted; the next batch tries the write again.
* **Bounded.** At most ``max_pending`` frames wait for a write; beyond that (a disk stuck for
  minutes) new frames are dropped and counted rather than filling memory.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Callable, Mapping

from lora_telemetry.core.gateway import Verdict
from lora_telemetry.persist import GroundCounterStore, StateFileError
from lora_telemetry.radios.base import RxFrame

#: Status of a frame whose counter could not be written (see the module docstring).
STATE_WRITE_FAILED = "state_write_failed"

FrameCallback = Callable[[RxFrame, Verdict], None]


class DurableDelivery:
    """Queue between the receive thread and the publisher; see the module docstring."""

    def __init__(self, store: GroundCounterStore, sessions: Mapping[int, str],
                 deliver: FrameCallback, *, max_pending: int = 4096,
                 on_event: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.sessions = dict(sessions)  # devaddr -> session fingerprint
        self.deliver = deliver
        self.max_pending = max_pending
        self.on_event = on_event or (lambda level, text: None)
        self._clock = clock
        self._queue: collections.deque[tuple[RxFrame, Verdict]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.counters = {"batches": 0, "state_writes": 0, "state_write_failures": 0,
                         "withheld": 0, "dropped_queue_full": 0}
        self.write_time_max_s = 0.0
        self.write_time_sum_s = 0.0
        self.last_error: str | None = None

    # -- receive thread ------------------------------------------------------------------------
    def submit(self, frame: RxFrame, verdict: Verdict) -> None:
        with self._cond:
            if len(self._queue) >= self.max_pending:
                self.counters["dropped_queue_full"] += 1
                return
            self._queue.append((frame, verdict))
            self._cond.notify()

    # -- delivery thread -----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set (or :meth:`close`), then deliver what is still queued."""
        while True:
            with self._cond:
                while not self._queue and not (stop.is_set() or self._closed):
                    self._cond.wait(0.5)  # bounded: `stop` does not notify the condition
                if not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
            self.deliver_batch(batch)

    def deliver_batch(self, batch: list[tuple[RxFrame, Verdict]]) -> None:
        """Write the batch's counters (one write), then deliver each frame in order."""
        self.counters["batches"] += 1
        newest: dict[int, tuple[str, int]] = {}
        for _, verdict in batch:
            if verdict.advanced and verdict.devaddr is not None and verdict.fcnt32 is not None:
                previous = newest.get(verdict.devaddr)
                if previous is None or verdict.fcnt32 > previous[1]:
                    newest[verdict.devaddr] = (self.sessions[verdict.devaddr], verdict.fcnt32)
        durable = True
        if newest:
            started = self._clock()
            try:
                self.store.record_uplinks(newest)
            except StateFileError as exc:
                durable = False
                self.counters["state_write_failures"] += 1
                if self.last_error != str(exc):
                    self.on_event("error", f"{exc}; frames are withheld until it can be written")
                self.last_error = str(exc)
            else:
                self.counters["state_writes"] += 1
                if self.last_error is not None:
                    self.on_event("info", f"frame-counter state file {self.store.path} "
                                          "written again")
                self.last_error = None
            elapsed = self._clock() - started
            self.write_time_sum_s += elapsed
            self.write_time_max_s = max(self.write_time_max_s, elapsed)
        for frame, verdict in batch:
            if verdict.advanced and not durable:
                self.counters["withheld"] += 1
                verdict = dataclasses.replace(
                    verdict, status=STATE_WRITE_FAILED,
                    detail=f"FCnt {verdict.fcnt32} not written to {self.store.path}: withheld")
            self.deliver(frame, verdict)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stats(self) -> dict[str, float | int | str]:
        writes = self.counters["state_writes"] + self.counters["state_write_failures"]
        return {**self.counters,
                "state_write_mean_ms": 1e3 * self.write_time_sum_s / writes if writes else 0.0,
                "state_write_max_ms": 1e3 * self.write_time_max_s,
                "pending": len(self._queue)}
