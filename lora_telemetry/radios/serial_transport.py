"""A byte transport over a serial port (pyserial), shared by the serial-module drivers.

Only I/O lives here; command encoding and response parsing are the drivers' sans-I/O parts.
Every failure of the port (unplugged USB adapter, closed pseudo-terminal) becomes
`RadioDisconnected`, so a driver can reconnect instead of crashing.
"""

from __future__ import annotations

import time

import serial

from lora_telemetry.radios.base import RadioDisconnected


class SerialTransport:
    """Open/close/read/write on one serial port with bounded waits."""

    def __init__(self, port: str, baudrate: int, *, read_chunk: int = 4096) -> None:
        self.port = port
        self.baudrate = baudrate
        self._read_chunk = read_chunk
        self._serial: serial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    def open(self) -> None:
        """Open the port 8N1 without flow control; `RadioDisconnected` if it cannot."""
        self.close()
        try:
            self._serial = serial.Serial(
                self.port, self.baudrate, bytesize=8, parity="N", stopbits=1,
                timeout=0, write_timeout=2.0, exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise RadioDisconnected(f"cannot open serial port {self.port}: {exc}") from exc

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
            self._serial = None

    def _port(self) -> serial.Serial:
        if self._serial is None or not self._serial.is_open:
            raise RadioDisconnected(f"serial port {self.port} is not open")
        return self._serial

    def write(self, data: bytes) -> None:
        port = self._port()
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise RadioDisconnected(f"write to {self.port} failed: {exc}") from exc

    def read(self, timeout: float) -> bytes:
        """Bytes available within `timeout` seconds (b"" if none); waits for the first byte
        only, then returns whatever has arrived."""
        port = self._port()
        try:
            port.timeout = max(0.0, timeout)
            first = port.read(1)
            if not first:
                return b""
            waiting = port.in_waiting
            return first + (port.read(min(waiting, self._read_chunk)) if waiting else b"")
        except (serial.SerialException, OSError, TypeError) as exc:
            # pyserial raises SerialException("device reports readiness to read but returned
            # no data") when the other end of a pty closes; TypeError on a closed fd.
            self.close()
            raise RadioDisconnected(f"read from {self.port} failed: {exc}") from exc

    def reset_input(self) -> None:
        try:
            self._port().reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise RadioDisconnected(f"{self.port}: {exc}") from exc

    def __enter__(self) -> "SerialTransport":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deadline_after(timeout: float) -> float:
    """Monotonic deadline `timeout` seconds from now (for loops of bounded waits)."""
    return time.monotonic() + timeout
