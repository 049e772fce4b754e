"""The Semtech SX1276, emulated: its register file and radio as a sans-I/O state machine.

Events in, actions out, time passed in (core/emulation.py): SPI transactions (``SpiTransfer``,
answered with a ``Reply``), the NRESET pin, frames heard on the air, TxDoneEvent, timers and
fault-injection commands. sim/emulated_spi.py puts it behind a `spidev.SpiDev` look-alike and
a board with the thesis wiring (NRESET, DIO0 on :data:`SX1276ChipLogic.board_wiring`) and runs
it with the device loop; the driver (`radios/sx1276/driver.py`) runs unchanged against it::

    chip = EmulatedSpiChip(SX1276ChipLogic(), "gw", client, wiring=SX1276ChipLogic.board_wiring,
                           output_pins=SX1276ChipLogic.output_pins)
    radio = SX1276Radio(spi=chip.spi, gpio=chip.gpio)

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
  bits 7-6 (Table 18: 00 RxDone, 01 TxDone, 10 CadDone): a ``SetPin("DIO0", level)`` action
  whenever its level changes.
* TX starts on the air TS_FS + TS_TR after the write that enters TX mode (timing.py; the ramp
  from RegPaRamp through ``registers.tx_startup_s``); leaving TX before then sends nothing.
  RxDone is raised as the medium delivers the frame, at its end (timing.py's assumption).
* TxDone comes with the air's TxDoneEvent; a guard 2 s after the time on air ends the
  transmission if the air never reports it (counted ``tx_done_without_medium_event``).
* Demodulation needs the chip's own settings to match the frame: SF, bandwidth, sync word,
  IQ polarity, header mode, and a carrier within +/-25 % of the bandwidth (4.1.5). The
  medium already filters; the chip checks again so an injected frame behaves the same.

A frame that ends while an earlier RxDone is still pending overwrites the status
registers without a new DIO0 edge, exactly the overrun a slow host sees on the chip.

Fault injection: Reset (a spontaneous power-on reset: registers to their reset values) is
carried out; the others are refused with the reason (no UART, no plug, no MAC layer).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Hashable, Mapping

from lora_telemetry.core.emulation import (
    Accepted, Action, CancelTimer, DeviceEvent, DropAnswers, RxEvent, Garbage, Listen,
    PinChanged, PowerOn, PowerOnMoment, Replug, Reply, Reset, SetChannelRssi, SetPin,
    Silence, SpiTransfer, Standby, StartTimer, TimerFired, Transmit, TxDoneEvent, Unplug,
    refuse_unsupported,
)
from lora_telemetry.core.errors import LoraTelemetryError
from lora_telemetry.core.phy import PhySettings, noise_floor_dbm
from lora_telemetry.radios.sx1276 import registers as R
from lora_telemetry.radios.sx1276.gpio import THESIS_DIO0_PIN, THESIS_RESET_PIN

__all__ = ["SX1276ChipLogic", "InjectedRx", "TxRecord", "phy_mismatch", "DIO0", "NRESET"]

#: The chip's pins as the board wires them.
DIO0, NRESET = "DIO0", "NRESET"
_FSCK_MAX_HZ = 10_000_000
_TX_DONE_GRACE_S = 2.0  # after the time on air, for the air's TxDoneEvent
_RX_TIMEOUT, _CAD_DONE, _TX_GUARD, _KEY_ON = "rx_timeout", "cad_done", "tx_guard", "key_on"
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
    """A frame to hand to the emulated chip directly (`EmulatedSpiChip.inject`): the fields of
    RxEvent that matter to the chip, with defaults; phy None means the chip's own."""

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


class SX1276ChipLogic:
    """An SX1276 register file and radio (see the module docstring); `handle` is the device
    loop's entry, the properties and `register`/`fifo` are side-effect-free looks inside."""

    power_on_at = PowerOnMoment.CREATED
    #: The thesis gateway's wiring (radios/sx1276/gpio.py): board GPIO line -> chip pin.
    board_wiring: Mapping[int, str] = {THESIS_RESET_PIN: NRESET, THESIS_DIO0_PIN: DIO0}
    output_pins: tuple[str, ...] = (DIO0,)

    def __init__(self, *, name: str = "sx1276", version: int = R.EXPECTED_VERSION) -> None:
        self.name = name
        self._version = version & 0xFF
        self.counters: collections.Counter[str] = collections.Counter()
        self.transmitted: collections.deque[TxRecord] = collections.deque(maxlen=1000)
        self._timers: set[Hashable] = set()
        self._out: list[Action] = []
        self._now = 0.0
        self._dio0 = False
        self._in_reset = False
        self._por()
        self._out = []

    # --- the loop's entry ---------------------------------------------------------------------

    def handle(self, event: DeviceEvent | InjectedRx, now: float) -> list[Action]:
        """One event; the chip's actions (a Reply first for SPI transfers and frames)."""
        self._now = now
        self._out = []
        reply: list[Action] = []
        if isinstance(event, SpiTransfer):
            if event.mode != 0 or event.speed_hz > _FSCK_MAX_HZ:
                resp = [0xFF] * len(event.data)  # mis-clocked: the chip answers nonsense
            else:
                resp = self._spi_transfer(event.data)
            reply = [Reply(resp)]
        elif isinstance(event, (RxEvent, InjectedRx)):
            reply = [Reply(self._receive(event))]
        elif isinstance(event, TxDoneEvent):
            self._tx_done(None)
        elif isinstance(event, TimerFired):
            self._on_timer(event.key)
        elif isinstance(event, PinChanged):
            if event.pin == NRESET:
                self._set_nreset(event.level)
        elif isinstance(event, PowerOn):
            self._por()
        elif isinstance(event, (Reset, Garbage, DropAnswers, Unplug, Replug, Silence,
                                SetChannelRssi)):
            reply = self._control(event)
        out, self._out = self._out, []
        return reply + out

    def _control(self, command: object) -> list[Action]:
        if isinstance(command, Reset):
            if command.during_next_tx:
                return refuse_unsupported("an SX1276", command,
                                          "a chip resets when NRESET or power says so, now")
            self.counters["injected_resets"] += 1
            self._por()  # a brown-out: registers back to their reset values
            return [Accepted()]
        reasons: dict[type[object], str] = {
            Garbage: "its host reads registers over SPI; there is no byte stream to garble",
            DropAnswers: "an SPI transfer always clocks the registers out",
            Unplug: "it is soldered to the gateway's board; there is no plug",
            Replug: "it is soldered to the gateway's board; there is no plug",
            Silence: "a bare transceiver has no MAC layer to silence",
            SetChannelRssi: "RegRssiValue follows the frames it hears",
        }
        return refuse_unsupported("an SX1276", command,  # type: ignore[arg-type]
                                  reasons[type(command)])

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
        self._key_on_frame: tuple[int, bytes, PhySettings, float] | None = None
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
        return self._peek(addr & R.SPI_ADDRESS_MASK)

    def fifo(self) -> bytes:
        return bytes(self._fifo)

    # --- pins -----------------------------------------------------------------------------------

    def _set_nreset(self, high: bool) -> None:
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
        if level != self._dio0:
            self._dio0 = level
            self._out.append(SetPin(DIO0, level))

    def _update_dio0(self) -> None:
        self._set_dio0(self._dio0_level())

    def _raise_irq(self, bits: int) -> None:
        self._irq |= bits & ~self._regs[R.REG_IRQ_FLAGS_MASK] & 0xFF
        self._update_dio0()

    # --- SPI ----------------------------------------------------------------------------------

    def _spi_transfer(self, out: tuple[int, ...]) -> list[int]:
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
        self._rx_phy = None
        self._out.append(Standby())

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
        noise_dbm = noise_floor_dbm(phy.bandwidth_hz)  # the medium's default noise figure
        self._regs[R.REG_RSSI_VALUE] = R.encode_rssi(noise_dbm, lf)
        self._out.append(Listen(phy))
        if mode == R.MODE_RX_SINGLE:
            msb = self._regs[R.REG_MODEM_CONFIG2] & 0x03
            symbols = (msb << 8) | self._regs[R.REG_SYMB_TIMEOUT_LSB]
            self._start_timer(_RX_TIMEOUT, symbols * phy.symbol_time)

    def _rx_single_timeout(self) -> None:
        if self.lora and self.mode == R.MODE_RX_SINGLE:
            self._to_standby()
            self._raise_irq(R.IRQ_RX_TIMEOUT)

    def _start_cad(self) -> None:
        try:
            phy = R.phy_from_registers(self._regs.__getitem__, for_tx=False)
            duration = 2 * phy.symbol_time
        except LoraTelemetryError:
            duration = 0.001
        self._start_timer(_CAD_DONE, duration)

    def _cad_done(self) -> None:
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
        self._key_on_frame = (seq, data, phy, power)
        self._start_timer((_KEY_ON, seq), R.tx_startup_s(self._regs[R.REG_PA_RAMP]))

    def _key_on(self, seq: int) -> None:
        if self._key_on_frame is None or self._key_on_frame[0] != seq:
            return
        _, data, phy, power = self._key_on_frame
        self._key_on_frame = None
        if self._tx_pending != seq or not (self.lora and self.mode == R.MODE_TX):
            return
        self.transmitted.append(TxRecord(data, phy, power, self._now))
        self.counters["tx_frames"] += 1
        self._out.append(Transmit(data, phy, power))
        # TxDone comes with the air's TxDoneEvent; the timer only guards a lost hub.
        self._start_timer((_TX_GUARD, seq), phy.time_on_air(len(data)) + _TX_DONE_GRACE_S)

    def _tx_done(self, seq: int | None, fallback: bool = False) -> None:
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

    def _start_timer(self, key: Hashable, delay: float) -> None:
        self._timers.add(key)
        self._out.append(StartTimer(key, self._now + max(0.0, delay)))

    def _cancel_timers(self) -> None:
        for key in self._timers:
            self._out.append(CancelTimer(key))
        self._timers = set()

    def _on_timer(self, key: Hashable) -> None:
        if key not in self._timers:
            return  # cancelled after it had already fired
        self._timers.discard(key)
        if key == _RX_TIMEOUT:
            self._rx_single_timeout()
        elif key == _CAD_DONE:
            self._cad_done()
        elif isinstance(key, tuple) and key[0] == _TX_GUARD:
            self._tx_done(key[1], fallback=True)
        elif isinstance(key, tuple) and key[0] == _KEY_ON:
            self._key_on(key[1])

    def _store_counts(self) -> None:
        r = self._regs
        headers, packets = self._header_count & 0xFFFF, self._packet_count & 0xFFFF
        r[R.REG_RX_HEADER_CNT_MSB], r[R.REG_RX_HEADER_CNT_LSB] = divmod(headers, 256)
        r[R.REG_RX_PACKET_CNT_MSB], r[R.REG_RX_PACKET_CNT_LSB] = divmod(packets, 256)

    # --- the air ----------------------------------------------------------------------------------

    def _receive(self, event: RxEvent | InjectedRx) -> bool:
        if self._in_reset or not self.lora or self.mode not in _RX_MODES:
            self.counters["rx_not_listening"] += 1
            return False
        rx = self._rx_phy
        if rx is None:
            self.counters["rx_not_listening"] += 1
            return False
        try:
            data = bytes(event.data)
            rssi, snr, crc_ok = float(event.rssi_dbm), float(event.snr_db), bool(event.crc_ok)
        except (TypeError, ValueError):
            self.counters["rx_bad_event"] += 1
            return False
        tx = event.phy or rx
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

