"""Reading a ``.tlog`` telemetry log record by record, robust to corruption.

:class:`TlogReader` has the reading side of pymavlink's ``mavfile`` interface (``recv_msg``,
``fd``, ``mav``, ``close``), so a replayed log is one more transport of the link
(:func:`~lora_telemetry.mavlink.transport.open_transport`); the vehicle simulator's log replay
reads logs with it too, so both see the same records and the same garbage.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

__all__ = ["TlogReader"]


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
