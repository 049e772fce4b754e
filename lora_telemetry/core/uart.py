"""A UART's timing: how long bytes take on a serial line, and one direction of a line.

The serial modules (RN2483 at 57600 baud, the EByte custom firmware at 115200 baud; the
registry's ``FamilySpec.serial``) are reached through an 8N1 UART: every byte is a start bit,
8 data bits and a stop bit, so a byte takes ``10 / baud`` seconds and a 70-byte
``radio tx <58 hex>\\r\\n`` takes 12.2 ms at 57600 baud. :func:`serial_time_s` is the one
formula; the registry's timing models (radios/registry.py) and the device loop's line model
(sim/device_loop.py) both use it.

:class:`UartLine` is one direction of a line as a sans-I/O state machine (time passed in):
bytes put in at ``now`` come out no earlier than their last bit has crossed the line, one after
the other; a byte put in while earlier ones are still on the line waits for them. ``take(now)``
returns every byte whose last bit has arrived; ``next_at()`` says when to call it next.

Decisions worth knowing:

* Baud 0 is an instant line (bytes come out as soon as they are put in): for unit tests that
  are about something else, never the default of an emulator.
* Bytes are handed on in chunks of at most ``chunk_s`` of line time (default 2 ms, about 11
  bytes at 57600 baud), at the moment the chunk's *last* byte has arrived: no byte is ever
  early, a reader sees the stream grow as on a real line, and a device loop wakes about 6 times
  for a 70-byte command instead of 70.
* The line has no buffer limit of its own; whoever feeds it bounds what it queues (the pty's
  own buffer, sim/pty_port.py's overrun rule).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["BITS_PER_BYTE_8N1", "CHUNK_S", "UartLine", "bits_per_byte", "serial_time_s"]

#: start bit + 8 data bits + stop bit
BITS_PER_BYTE_8N1 = 10
#: The most line time a UartLine holds back before handing a chunk on.
CHUNK_S = 0.002
# A byte counts as arrived this fraction of a byte time early: absorbs the rounding of
# ``start + k * byte_time`` at time.time()'s magnitude (~2e-7 s) so a loop waking at
# ``next_at()`` always finds the chunk complete. 1 % of a byte is 1.7 us at 57600 baud.
_EPSILON_BYTES = 0.01


def bits_per_byte(bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> int:
    """Bits a UART frame of one byte takes: start + data + parity (if any) + stop bits."""
    return 1 + bytesize + (0 if parity.upper() == "N" else 1) + stopbits


def serial_time_s(n_bytes: int, baud: int, bits: int = BITS_PER_BYTE_8N1) -> float:
    """Seconds ``n_bytes`` take on a UART at ``baud`` (``bits`` per byte; baud 0: instant)."""
    if n_bytes < 0 or baud < 0:
        raise ValueError(f"serial_time_s needs n_bytes >= 0 and baud >= 0, got {n_bytes}, {baud}")
    return 0.0 if baud == 0 else n_bytes * bits / baud


class UartLine:
    """One direction of a UART at ``baud`` (see the module docstring)."""

    def __init__(self, baud: int, *, bits: int = BITS_PER_BYTE_8N1,
                 chunk_s: float = CHUNK_S) -> None:
        self.baud = int(baud)
        self.byte_time_s = serial_time_s(1, self.baud, bits)
        self._chunk_bytes = (max(1, int(chunk_s / self.byte_time_s))
                             if self.byte_time_s > 0 else 1)
        # [start, data, taken]: byte k of data has arrived at start + (k + 1) * byte_time
        self._segments: deque[list] = deque()
        self._free_at = -math.inf  # when the line is done with everything put in

    def put(self, data: bytes, now: float) -> None:
        """Bytes enter the line at ``now`` (after whatever is still on it)."""
        if not data:
            return
        start = max(now, self._free_at)
        self._segments.append([start, bytes(data), 0])
        self._free_at = start + len(data) * self.byte_time_s

    def take(self, now: float) -> bytes:
        """Every byte whose last bit has arrived by ``now``, in order."""
        out = bytearray()
        while self._segments:
            segment = self._segments[0]
            start, data, taken = segment
            if self.byte_time_s > 0:
                arrived = min(len(data),
                              math.floor((now - start) / self.byte_time_s + _EPSILON_BYTES))
            else:
                arrived = len(data)
            if arrived > taken:
                out += data[taken:arrived]
                segment[2] = arrived
            if segment[2] < len(data):
                break
            self._segments.popleft()
        return bytes(out)

    def next_at(self) -> float | None:
        """When the next chunk has arrived (None: nothing on the line)."""
        if not self._segments:
            return None
        start, data, taken = self._segments[0]
        last = min(len(data), taken + self._chunk_bytes)
        return start + last * self.byte_time_s

    @property
    def pending(self) -> int:
        """Bytes on the line, not yet taken."""
        return sum(len(data) - taken for _, data, taken in self._segments)

    def clear(self) -> int:
        """Drop what is on the line (the adapter was pulled); returns how many bytes."""
        lost = self.pending
        self._segments.clear()
        self._free_at = -math.inf
        return lost
