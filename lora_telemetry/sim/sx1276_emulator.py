"""An emulated SX1276: its register file behind a `spidev.SpiDev`-like object, its DIO0 and
NRESET pins behind a `radios.sx1276.gpio.GpioChip`, and its radio on the simulated medium.

The driver (`radios/sx1276.py`) runs unchanged against it::

    emu = SX1276Emulator(medium=MediumClient(node_id="gw", ...))   # or medium=None
    radio = SX1276Radio(spi=emu.spi, gpio=emu.gpio)

What the chip does is modelled from the datasheet (thesis file lines ~12330-19150):

* SPI (4.3): address byte with the wnr bit; burst access auto-increments the address except
  on RegFifo; a write shifts out the register's previous value. SPI mode other than 0 or
  SCK above 10 MHz reads as 0xFF, as a mis-clocked bus would.
* RegOpMode: LongRangeMode changes only in Sleep (or with the write that enters Sleep);
  Sleep clears the FIFO and the header/packet counters.
* RX continuous / single -> ``client.listen(phy from registers)``; Sleep/Standby/FS* ->
  ``client.standby()``; TX -> ``client.transmit(FIFO[RegFifoTxBaseAddr:][:RegPayloadLength])``,
  then TxDone and back to Standby. RX single falls back to Standby after RxDone or after
  SymbTimeout symbols (RxTimeout). CAD completes after its duration with no detection
  (the medium offers no channel-activity query).
* A received frame is written to the FIFO where the RX modem pointer stands (RX continuous
  appends, 4.1.6), with RegFifoRxCurrentAddr, RegRxNbBytes, RegFifoRxByteAddr, the header
  and packet counters, RegModemStat's coding rate, RegHopChannel's CrcOnPayload bit, RSSI
  and SNR encoded with the same helpers the driver decodes with, and the IRQ flags
  ValidHeader, RxDone and PayloadCrcError.
* IRQs: a masked IRQ (RegIrqFlagsMask) is not raised (4.1.2.4); DIO0 follows RegDioMapping1
  bits 7-6 (Table 18: 00 RxDone, 01 TxDone, 10 CadDone) and its rising edges are queued
  on a pipe, so waits on it are real blocking waits.
* Demodulation needs the chip's own settings to match the frame: SF, bandwidth, sync word,
  IQ polarity, header mode, and a carrier within +/-25 % of the bandwidth (4.1.5). The
  medium already filters; the emulator checks again so `inject_rx` behaves the same.

A frame that ends while an earlier RxDone is still pending overwrites the status
registers without a new DIO0 edge, exactly the overrun a slow host sees on the chip.
"""

from __future__ import annotations

import collections
import errno
import math
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios.sx1276 import registers as R
from lora_telemetry.radios.sx1276.gpio import THESIS_DIO0_PIN, THESIS_RESET_PIN

__all__ = ["SX1276Emulator", "InjectedRx", "TxRecord", "EmulatedEdgeLine", "phy_mismatch"]

_NOISE_FIGURE_DB = 7.0  # idle RegRssiValue; the medium's default noise figure (sim/medium_model.py)
_FSCK_MAX_HZ = 10_000_000
# LoRa-page registers the host cannot write (datasheet 6.4 "r" fields). RegIrqFlags (0x12)
# is write-1-to-clear and handled separately.
_READ_ONLY = frozenset({
    R.REG_FIFO_RX_CURRENT_ADDR, R.REG_RX_NB_BYTES, R.REG_RX_HEADER_CNT_MSB,
    R.REG_RX_HEADER_CNT_LSB, R.REG_RX_PACKET_CNT_MSB, R.REG_RX_PACKET_CNT_LSB,
    R.REG_MODEM_STAT, R.REG_PKT_SNR_VALUE, R.REG_PKT_RSSI_VALUE, R.REG_RSSI_VALUE,
    R.REG_HOP_CHANNEL, R.REG_FIFO_RX_BYTE_ADDR, 0x28, 0x29, 0x2A, 0x2C,
})
_LORA_PAGE = range(0x0D, 0x40)
_RX_MODES = (R.MODE_RX_CONTINUOUS, R.MODE_RX_SINGLE)


@dataclass(frozen=True)
class InjectedRx:
    """A frame to hand to `SX1276Emulator.inject_rx` (same fields as the medium's RxEvent)."""

    data: bytes
    phy: PhySettings | None = None  # None: assume the receiver's own settings
    rssi_dbm: float = -80.0
    snr_db: float = 9.0
    crc_ok: bool = True


@dataclass(frozen=True)
class TxRecord:
    """One frame the emulated chip put on the air."""

    data: bytes
    phy: PhySettings
    power_dbm: float
    time: float


def phy_mismatch(rx: PhySettings, tx: PhySettings) -> str | None:
    """Why a receiver with settings `rx` cannot demodulate a frame sent with `tx`, or None."""
    if abs(rx.frequency_hz - tx.frequency_hz) > rx.bandwidth_hz / 4:
        return "frequency"
    for field in ("sf", "bandwidth_hz", "sync_word", "iq_inverted", "explicit_header"):
        if getattr(rx, field) != getattr(tx, field):
            return field
    if not rx.explicit_header:
        for field in ("coding_rate", "crc_on"):
            if getattr(rx, field) != getattr(tx, field):
                return field
    return None


class EmulatedEdgeLine:
    """The DIO0 pin: a level plus a queue of rising edges on a pipe (pollable, blocking)."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self.level = False
        self.closed = False

    def rise(self) -> None:
        if self.closed:
            return
        try:
            os.write(self._w, b"\x01")
        except BlockingIOError:
            pass  # 64 KiB of unread edges: the kernel's buffer would have dropped them too

    def wait_edge(self, timeout: float) -> bool:
        self._check_open()
        poller = select.poll()
        poller.register(self._r, select.POLLIN)
        return bool(poller.poll(max(0, math.ceil(timeout * 1000.0))))

    def read_edge_events(self) -> int:
        self._check_open()
        try:
            return len(os.read(self._r, 65536))
        except BlockingIOError:
            return 0

    def get_value(self) -> bool:
        return self.level

    def fileno(self) -> int:
        return self._r

    def _check_open(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "emulated SX1276 has been closed")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.write(self._w, b"\x00")  # wake a waiter; it then sees the line closed
            except BlockingIOError:
                pass
            os.close(self._r)
            os.close(self._w)


class _EdgeRequest:
    """A driver's request of the DIO0 line; releasing it frees the pin for the next driver."""

    def __init__(self, board: "EmulatedGpio", pin: int, line: EmulatedEdgeLine) -> None:
        self._board, self._pin, self._line = board, pin, line

    def wait_edge(self, timeout: float) -> bool:
        return self._live().wait_edge(timeout)

    def read_edge_events(self) -> int:
        return self._live().read_edge_events()

    def get_value(self) -> bool:
        return self._live().get_value()

    def fileno(self) -> int:
        return self._live().fileno()

    def release(self) -> None:
        if self._line is not None:
            self._line = None
            self._board._requested.discard(self._pin)

    def _live(self) -> EmulatedEdgeLine:
        if self._line is None:
            raise OSError(errno.EBADF, f"GPIO line {self._pin} was released")
        return self._line


class _OutputRequest:
    def __init__(
        self, board: "EmulatedGpio", pin: int, on_change: Callable[[bool], None] | None
    ) -> None:
        self._board, self._pin, self._on_change = board, pin, on_change
        self.value: bool | None = None

    def set_value(self, high: bool) -> None:
        if self._board is None:
            raise OSError(errno.EBADF, f"GPIO line {self._pin} was released")
        high = bool(high)
        if high != self.value:
            self.value = high
            if self._on_change is not None:
                self._on_change(high)

    def release(self) -> None:
        if self._board is not None:
            self._board._requested.discard(self._pin)
            self._board = None


class EmulatedGpio:
    """The board around the emulated chip: NRESET and DIO0 wired to the given pins.

    Any other pin (e.g. a software NSS) is a free output; a DIO0 request on an unwired pin
    gets a line that never fires, as on a miswired board. Requesting a pin twice without
    releasing it fails with EBUSY, as the kernel does.
    """

    def __init__(self, chip: "SX1276Emulator", reset_pin: int | None, dio0_pin: int) -> None:
        self._chip, self.reset_pin, self.dio0_pin = chip, reset_pin, dio0_pin
        self._requested: set[int] = set()
        self._unwired: list[EmulatedEdgeLine] = []

    def _claim(self, pin: int) -> None:
        if pin in self._requested:
            raise OSError(errno.EBUSY, f"GPIO line {pin} is already requested")
        self._requested.add(pin)

    def request_output(self, pin: int, *, initial: bool, consumer: str) -> _OutputRequest:
        self._claim(pin)
        hook = self._chip._set_nreset if pin == self.reset_pin else None
        line = _OutputRequest(self, pin, hook)
        line.set_value(initial)
        return line

    def request_rising_edge(self, pin: int, *, consumer: str) -> _EdgeRequest:
        self._claim(pin)
        if pin == self.dio0_pin:
            return _EdgeRequest(self, pin, self._chip.dio0)
        dead = EmulatedEdgeLine()
        self._unwired.append(dead)
        return _EdgeRequest(self, pin, dead)

    def close(self) -> None:
        for line in self._unwired:
            line.close()
        self._unwired.clear()


class EmulatedSpiDevice:
    """`spidev.SpiDev` look-alike wired to the emulated chip."""

    def __init__(self, chip: "SX1276Emulator") -> None:
        self._chip = chip
        self.max_speed_hz = 500_000
        self.mode = 0
        self.bits_per_word = 8
        self.opened: tuple[int, int] | None = None
        self.transfers = 0

    def open(self, bus: int, device: int) -> None:
        self.opened = (bus, device)

    def close(self) -> None:
        self.opened = None

    def xfer2(self, values: list[int], *_: Any) -> list[int]:
        if self.opened is None:
            raise OSError(errno.EBADF, "SPI device is not open")
        out = list(values)
        for v in out:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFF:
                raise TypeError(f"SPI bytes must be ints 0..255, got {v!r}")
        self.transfers += 1
        if self.mode != 0 or self.max_speed_hz > _FSCK_MAX_HZ:
            return [0xFF] * len(out)  # mis-clocked: the chip answers nonsense
        return self._chip._spi_transfer(out)

    xfer = xfer2


class SX1276Emulator:
    """An SX1276 register file attached (optionally) to the radio medium.

    `medium` is a `lora_telemetry.sim.medium.MediumClient` (or anything with the same
    methods); the emulator owns it from then on and closes it in `close()`. With
    ``medium=None`` the chip works register-only: transmissions complete after their
    time on air and frames arrive through `inject_rx`.
    """

    def __init__(
        self,
        medium: Any | None = None,
        *,
        version: int = R.EXPECTED_VERSION,
        reset_pin: int | None = THESIS_RESET_PIN,
        dio0_pin: int = THESIS_DIO0_PIN,
        clock: Callable[[], float] = time.time,
        poll_interval_s: float = 0.25,
    ) -> None:
        self._lock = threading.RLock()
        self._medium = medium
        self._clock = clock
        self._version = version & 0xFF
        self._poll_interval = poll_interval_s
        self.dio0 = EmulatedEdgeLine()
        self.spi = EmulatedSpiDevice(self)
        self.gpio = EmulatedGpio(self, reset_pin, dio0_pin)
        self.counters: dict[str, int] = collections.Counter()
        self.transmitted: collections.deque[TxRecord] = collections.deque(maxlen=1000)
        self._timers: set[threading.Timer] = set()
        self._in_reset = False
        self._closed = False
        self._por()
        self._stop = threading.Event()
        self._pump_thread: threading.Thread | None = None
        if medium is not None:
            self._pump_thread = threading.Thread(
                target=self._pump, name="sx1276-emulator", daemon=True
            )
            self._pump_thread.start()

    # --- state --------------------------------------------------------------------------------

    def _por(self) -> None:
        """Power-on / manual reset: registers to their reset values, FSK standby."""
        self._regs = bytearray(0x80)
        for addr, value in R.RESET_VALUES.items():
            self._regs[addr] = value
        self._regs[R.REG_VERSION] = self._version
        self._fsk = bytearray(0x80)  # FSK/OOK page of 0x0D-0x3F (not emulated beyond storage)
        self._fifo = bytearray(R.FIFO_SIZE)
        self._irq = 0
        self._rx_addr = 0
        self._header_count = 0
        self._packet_count = 0
        self._rx_phy: PhySettings | None = None
        self._tx_seq = 0
        self._tx_pending: int | None = None
        self._cancel_timers()
        self._radio_off()
        self._set_dio0(False)

    @property
    def mode(self) -> int:
        return self._regs[R.REG_OP_MODE] & R.MODE_MASK

    @property
    def lora(self) -> bool:
        return bool(self._regs[R.REG_OP_MODE] & R.LONG_RANGE_MODE)

    @property
    def irq_flags(self) -> int:
        return self._irq

    def register(self, addr: int) -> int:
        """Peek a register without side effects (for tests and diagnostics)."""
        with self._lock:
            return self._peek(addr & R.SPI_ADDRESS_MASK)

    def fifo(self) -> bytes:
        with self._lock:
            return bytes(self._fifo)

    # --- pins -----------------------------------------------------------------------------------

    def _set_nreset(self, high: bool) -> None:
        with self._lock:
            if not high:
                self._in_reset = True
                self._por()
            elif self._in_reset:
                self._in_reset = False
                self.counters["resets"] += 1

    def _dio0_level(self) -> bool:
        if not self.lora:
            return False
        source = R.dio0_source(self._regs[R.REG_DIO_MAPPING1])
        return bool(self._irq & source & ~self._regs[R.REG_IRQ_FLAGS_MASK])

    def _set_dio0(self, level: bool) -> None:
        if level and not self.dio0.level:
            self.dio0.level = True
            self.dio0.rise()
        else:
            self.dio0.level = level

    def _update_dio0(self) -> None:
        self._set_dio0(self._dio0_level())

    def _raise_irq(self, bits: int) -> None:
        self._irq |= bits & ~self._regs[R.REG_IRQ_FLAGS_MASK] & 0xFF
        self._update_dio0()

    # --- SPI ----------------------------------------------------------------------------------

    def _spi_transfer(self, out: list[int]) -> list[int]:
        with self._lock:
            if self._closed:
                raise OSError(errno.ENODEV, "emulated SX1276 has been closed")
            if self._in_reset:
                return [0x00] * len(out)  # held in reset: the chip does not answer
            if not out:
                return []
            write = bool(out[0] & R.SPI_WRITE)
            addr = out[0] & R.SPI_ADDRESS_MASK
            resp = [0x00]
            for value in out[1:]:
                if write:
                    resp.append(self._peek(addr))
                    self._write(addr, value)
                else:
                    resp.append(self._read(addr))
                if addr != R.REG_FIFO:
                    addr = (addr + 1) & R.SPI_ADDRESS_MASK
            return resp

    def _lora_page(self, addr: int) -> bool:
        op = self._regs[R.REG_OP_MODE]
        lora_page = bool(op & R.LONG_RANGE_MODE) and not op & R.ACCESS_SHARED_REG
        return addr not in _LORA_PAGE or lora_page

    def _fifo_accessible(self) -> bool:
        return self.lora and self.mode != R.MODE_SLEEP

    def _peek(self, addr: int) -> int:
        if addr == R.REG_FIFO:
            return self._fifo[self._regs[R.REG_FIFO_ADDR_PTR]] if self._fifo_accessible() else 0
        if not self._lora_page(addr):
            return self._fsk[addr]
        if addr == R.REG_IRQ_FLAGS:
            return self._irq
        return self._regs[addr]

    def _read(self, addr: int) -> int:
        value = self._peek(addr)
        if addr == R.REG_FIFO and self._fifo_accessible():
            self._regs[R.REG_FIFO_ADDR_PTR] = (self._regs[R.REG_FIFO_ADDR_PTR] + 1) & 0xFF
        return value

    def _write(self, addr: int, value: int) -> None:
        if addr == R.REG_FIFO:
            if self._fifo_accessible():
                ptr = self._regs[R.REG_FIFO_ADDR_PTR]
                self._fifo[ptr] = value
                self._regs[R.REG_FIFO_ADDR_PTR] = (ptr + 1) & 0xFF
            return
        if addr == R.REG_OP_MODE:
            self._write_op_mode(value)
            return
        if addr == R.REG_VERSION:
            return
        if not self._lora_page(addr):
            self._fsk[addr] = value
            return
        if addr == R.REG_IRQ_FLAGS:
            self._irq &= ~value & 0xFF
            self._update_dio0()
            return
        if addr in _READ_ONLY:
            return
        self._regs[addr] = value
        if addr in (R.REG_IRQ_FLAGS_MASK, R.REG_DIO_MAPPING1):
            self._update_dio0()

    # --- modes ----------------------------------------------------------------------------------

    def _write_op_mode(self, value: int) -> None:
        old = self._regs[R.REG_OP_MODE]
        old_mode, new_mode = old & R.MODE_MASK, value & R.MODE_MASK
        if (old ^ value) & R.LONG_RANGE_MODE and R.MODE_SLEEP not in (old_mode, new_mode):
            # "A write operation on other device modes is ignored" (RegOpMode bit 7).
            value = (value & ~R.LONG_RANGE_MODE) | (old & R.LONG_RANGE_MODE)
            self.counters["long_range_mode_write_ignored"] += 1
        self._regs[R.REG_OP_MODE] = value
        if new_mode == old_mode and not (old ^ value) & R.LONG_RANGE_MODE:
            return
        self._leave_mode(old_mode)
        if new_mode == R.MODE_SLEEP:
            self._fifo[:] = bytes(R.FIFO_SIZE)  # cleared in Sleep (4.1.2.3)
            self._header_count = self._packet_count = 0
            self._store_counts()
        if not self.lora:
            if new_mode not in (R.MODE_SLEEP, R.MODE_STDBY):
                self.counters["fsk_mode_unsupported"] += 1
            return
        if new_mode == R.MODE_TX:
            self._start_tx()
        elif new_mode in _RX_MODES:
            self._start_rx(new_mode)
        elif new_mode == R.MODE_CAD:
            self._start_cad()
        self._update_dio0()

    def _leave_mode(self, old_mode: int) -> None:
        self._cancel_timers()
        if old_mode == R.MODE_TX and self._tx_pending is not None:
            self._tx_pending = None
            self.counters["tx_aborted"] += 1
        self._radio_off()

    def _radio_off(self) -> None:
        if self._rx_phy is not None or self._medium is not None:
            self._rx_phy = None
            self._medium_call("standby")

    def _to_standby(self) -> None:
        self._regs[R.REG_OP_MODE] = (self._regs[R.REG_OP_MODE] & ~R.MODE_MASK) | R.MODE_STDBY
        self._radio_off()

    def _start_rx(self, mode: int) -> None:
        try:
            phy = R.phy_from_registers(self._regs.__getitem__, for_tx=False)
        except LoraTelemetryError:
            self.counters["bad_rx_config"] += 1  # deaf, as a misconfigured chip would be
            return
        self._rx_phy = phy
        # "automatically cleared of old content upon each new transition to receive mode"
        # (4.1.2.3, datasheet line ~14450)
        self._fifo[:] = bytes(R.FIFO_SIZE)
        self._rx_addr = self._regs[R.REG_FIFO_RX_BASE_ADDR]
        self._header_count = self._packet_count = 0
        self._store_counts()
        lf = R.uses_lf_port(phy.frequency_hz)
        noise_dbm = -174.0 + 10 * math.log10(phy.bandwidth_hz) + _NOISE_FIGURE_DB
        self._regs[R.REG_RSSI_VALUE] = R.encode_rssi(noise_dbm, lf)
        self._medium_call("listen", phy)
        if mode == R.MODE_RX_SINGLE:
            msb = self._regs[R.REG_MODEM_CONFIG2] & 0x03
            symbols = (msb << 8) | self._regs[R.REG_SYMB_TIMEOUT_LSB]
            self._start_timer(symbols * phy.symbol_time, self._rx_single_timeout)

    def _rx_single_timeout(self) -> None:
        with self._lock:
            if self.lora and self.mode == R.MODE_RX_SINGLE:
                self._to_standby()
                self._raise_irq(R.IRQ_RX_TIMEOUT)

    def _start_cad(self) -> None:
        try:
            phy = R.phy_from_registers(self._regs.__getitem__, for_tx=False)
            duration = 2 * phy.symbol_time
        except LoraTelemetryError:
            duration = 0.001
        self._start_timer(duration, self._cad_done)

    def _cad_done(self) -> None:
        with self._lock:
            if self.lora and self.mode == R.MODE_CAD:
                self._to_standby()
                self._raise_irq(R.IRQ_CAD_DONE)

    def _start_tx(self) -> None:
        length = self._regs[R.REG_PAYLOAD_LENGTH]
        try:
            phy = R.phy_from_registers(self._regs.__getitem__, for_tx=True)
            if length == 0:
                raise R.UnsupportedPhy("RegPayloadLength 0 is not permitted")
        except LoraTelemetryError:
            self.counters["bad_tx_config"] += 1
            self._to_standby()
            return
        base = self._regs[R.REG_FIFO_TX_BASE_ADDR]
        data = bytes(self._fifo[(base + i) & 0xFF] for i in range(length))
        power = phy.tx_power_dbm if phy.tx_power_dbm is not None else R.DEFAULT_TX_POWER_DBM
        self._tx_seq += 1
        seq = self._tx_pending = self._tx_seq
        self.transmitted.append(TxRecord(data, phy, power, self._clock()))
        self.counters["tx_frames"] += 1
        airtime = phy.time_on_air(length)
        if self._medium is not None and self._medium_call("transmit", data, phy, power_dbm=power):
            # TxDone comes from the medium's TxDoneEvent; the timer only guards a lost hub.
            self._start_timer(airtime + 2.0, lambda: self._tx_done(seq, fallback=True))
        else:
            self._start_timer(airtime, lambda: self._tx_done(seq))

    def _tx_done(self, seq: int | None, fallback: bool = False) -> None:
        with self._lock:
            if self._tx_pending is None or (seq is not None and seq != self._tx_pending):
                return
            if not (self.lora and self.mode == R.MODE_TX):
                return
            self._tx_pending = None
            if fallback:
                self.counters["tx_done_without_medium_event"] += 1
            self._cancel_timers()
            self._to_standby()  # "Upon completion the TxDone interrupt is issued and the
            self._raise_irq(R.IRQ_TX_DONE)  # radio returns to Standby mode" (4.1.6)

    def _start_timer(self, delay: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(max(0.0, delay), self._run_timer, args=(fn, self._timer_gen))
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _run_timer(self, fn: Callable[[], None], generation: int) -> None:
        with self._lock:
            self._timers.discard(threading.current_thread())  # type: ignore[arg-type]
            if generation != self._timer_gen:
                return  # cancelled after it had already fired
            fn()

    def _cancel_timers(self) -> None:
        """Cancel pending timers; one that already fired sees a new generation and does nothing."""
        self._timer_gen = getattr(self, "_timer_gen", 0) + 1
        for timer in getattr(self, "_timers", ()):
            timer.cancel()
        self._timers = set()

    def _store_counts(self) -> None:
        r = self._regs
        headers, packets = self._header_count & 0xFFFF, self._packet_count & 0xFFFF
        r[R.REG_RX_HEADER_CNT_MSB], r[R.REG_RX_HEADER_CNT_LSB] = divmod(headers, 256)
        r[R.REG_RX_PACKET_CNT_MSB], r[R.REG_RX_PACKET_CNT_LSB] = divmod(packets, 256)

    # --- the air ----------------------------------------------------------------------------------

    def inject_rx(self, event: Any) -> bool:
        """Deliver a frame as if it had just ended on the air (an `RxEvent` or `InjectedRx`).

        Returns True if the chip received it (listening, settings match, length fits).
        """
        with self._lock:
            return self._receive(event)

    def _receive(self, event: Any) -> bool:
        if self._closed or self._in_reset or not self.lora or self.mode not in _RX_MODES:
            self.counters["rx_not_listening"] += 1
            return False
        rx = self._rx_phy
        if rx is None:
            self.counters["rx_not_listening"] += 1
            return False
        try:
            data = bytes(event.data)
            rssi, snr, crc_ok = float(event.rssi_dbm), float(event.snr_db), bool(event.crc_ok)
        except (AttributeError, TypeError, ValueError):
            self.counters["rx_bad_event"] += 1
            return False
        tx = getattr(event, "phy", None) or rx
        reason = phy_mismatch(rx, tx)
        if reason is not None:
            self.counters[f"rx_mismatch_{reason}"] += 1
            return False
        if not 1 <= len(data) <= self._regs[R.REG_MAX_PAYLOAD_LENGTH]:
            self.counters["rx_bad_length"] += 1  # header CRC error: nothing is raised
            return False
        start = self._rx_addr
        for i, byte in enumerate(data):
            self._fifo[(start + i) & 0xFF] = byte
        self._rx_addr = (start + len(data)) & 0xFF
        regs = self._regs
        regs[R.REG_FIFO_RX_CURRENT_ADDR] = start
        regs[R.REG_RX_NB_BYTES] = len(data)
        regs[R.REG_FIFO_RX_BYTE_ADDR] = self._rx_addr
        crc_on = tx.crc_on
        crc_error = crc_on and not crc_ok
        self._header_count += 1
        self._packet_count += 0 if crc_error else 1
        self._store_counts()
        lf = R.uses_lf_port(rx.frequency_hz)
        snr_reg = R.encode_snr(snr)
        regs[R.REG_PKT_SNR_VALUE] = snr_reg
        regs[R.REG_PKT_RSSI_VALUE] = R.encode_packet_rssi(rssi, snr_reg, lf)
        total_dbm = 10 * math.log10(10 ** (rssi / 10) + 10 ** ((rssi - snr) / 10))
        regs[R.REG_RSSI_VALUE] = R.encode_rssi(total_dbm, lf)
        regs[R.REG_MODEM_STAT] = (R.coding_rate_code(tx.coding_rate) << 5) | R.MODEM_STAT_CLEAR
        crc_bit = R.HOP_CHANNEL_CRC_ON_PAYLOAD if crc_on else 0
        regs[R.REG_HOP_CHANNEL] = crc_bit | (regs[R.REG_HOP_CHANNEL] & 0x3F)
        if self.mode == R.MODE_RX_SINGLE:
            self._cancel_timers()
            self._to_standby()
        self.counters["rx_delivered"] += 1
        self._raise_irq(
            R.IRQ_RX_DONE
            | (R.IRQ_VALID_HEADER if rx.explicit_header else 0)
            | (R.IRQ_PAYLOAD_CRC_ERROR if crc_error else 0)
        )
        return True

    def _medium_call(self, method: str, *args: Any, **kwargs: Any) -> bool:
        if self._medium is None:
            return False
        try:
            getattr(self._medium, method)(*args, **kwargs)
            return True
        except (OSError, LoraTelemetryError):
            self.counters["medium_errors"] += 1
            return False

    def _pump(self) -> None:
        """Feed the medium's events to the chip (bounded waits; ends on close)."""
        while not self._stop.is_set():
            try:
                event = self._medium.next_event(timeout=self._poll_interval)
            except (OSError, LoraTelemetryError):
                self.counters["medium_errors"] += 1
                self._stop.wait(0.5)
                continue
            if event is None:
                continue
            if hasattr(event, "airtime_s") and not hasattr(event, "data"):
                self._tx_done(None)
            else:
                self.inject_rx(event)

    # --- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the pump, cancel timers, close the medium client and the DIO0 pipe."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cancel_timers()
        self._stop.set()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=self._poll_interval + 2.0)
        if self._medium is not None:
            try:
                self._medium.close()
            except (OSError, LoraTelemetryError):
                pass
        self.gpio.close()
        self.dio0.close()

    def __enter__(self) -> "SX1276Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_emulated_radio(*, node_id: str, medium: str | None = None,
                        position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Any:
    """The SX1276 driver on an emulated chip joined to the radio medium at ``medium``
    ("host:port"; None: $LORA_TELEMETRY_MEDIUM or the default hub), as node ``node_id`` at
    ``position_m``: the registry's virtual backend of the SX1276 family. The driver owns the
    chip (closing the driver closes it), the chip owns its medium client."""
    from lora_telemetry.radios.sx1276.driver import SX1276Radio
    from lora_telemetry.sim.medium import MediumClient, hub_address

    hub = hub_address(medium)
    chip = SX1276Emulator(MediumClient(node_id, hub=hub, position_m=position_m))
    try:
        return SX1276Radio(spi=chip.spi, gpio=chip.gpio, on_close=chip.close,
                           name=f"emulated SX1276 on {hub[0]}:{hub[1]}")
    except BaseException:
        chip.close()
        raise
