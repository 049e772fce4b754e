"""SX1276 LoRa transceiver driver (the ground node's gateway radio), over SPI and GPIO.

Register-level control as the datasheet describes it (thesis file lines ~12330-19150) and
as the thesis gateway program did (lines ~7850-8800), with its defects fixed:

* the receiver waits for DIO0's rising edge as a kernel GPIO edge event (python `gpiod` v2)
  with a timeout, never polling the pin;
* RxDone, PayloadCrcError and ValidHeader are all unmasked and read, so CRC errors are
  reported (the thesis masked everything but RxDone, line ~8160, then tested the CRC flag);
* packet RSSI/SNR use the shared decoders of `sx1276_regs` (datasheet 5.5.5).

SPI goes through a `spidev.SpiDev`-compatible object (``open(bus, dev)``, ``max_speed_hz``,
``mode``, ``xfer2``, ``close``) and GPIO through a `radios.sx1276.gpio.GpioChip`; both are
injectable (the emulator provides both), and `spidev`/`gpiod` are imported only when none
is given. Not thread-safe: one thread per radio, as `Radio` says.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios.sx1276 import registers as R
from lora_telemetry.radios.base import (
    NoSuchDevice, RadioDisconnected, RadioError, RadioTimeout, RawRadio, RxFrame, TxResult,
)
from lora_telemetry.radios.sx1276.gpio import (
    DEFAULT_GPIO_CHIP, THESIS_DIO0_PIN, THESIS_NSS_PIN, THESIS_RESET_PIN, GpioChip,
    MissingDriverLibrary, OutputLine, RisingEdgeLine,
)

__all__ = ["SX1276Wiring", "SX1276Radio", "open_spidev"]

_CONSUMER = "lora-telemetry-sx1276"
_MAX_SPI_HZ = 10_000_000  # FSCK max, datasheet line ~13980


@dataclass(frozen=True)
class SX1276Wiring:
    """How the chip is connected. Defaults: the thesis wiring (Tabla 4.4.1, thesis line
    ~2206: NReset GPIO0, NSS GPIO6, DIO0 GPIO7 in wiringPi numbering = BCM 17, 25, 4) on
    SPI0 CE0 at the thesis's 500 kHz (line ~7897).

    ``nss_pin`` is a GPIO driven low around every transfer, as the thesis did, for boards
    whose NSS is not on a hardware chip-select; set it to None when NSS is on CE0/CE1.
    ``reset_pin`` None skips the reset pulse.
    """

    spi_bus: int = 0
    spi_device: int = 0
    spi_speed_hz: int = 500_000
    reset_pin: int | None = THESIS_RESET_PIN
    nss_pin: int | None = THESIS_NSS_PIN
    dio0_pin: int = THESIS_DIO0_PIN
    gpio_chip: str = DEFAULT_GPIO_CHIP

    def __post_init__(self) -> None:
        for name in ("spi_bus", "spi_device", "reset_pin", "nss_pin", "dio0_pin"):
            value = getattr(self, name)
            if value is None and name in ("reset_pin", "nss_pin"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"SX1276 wiring: {name} must be an int >= 0, got {value!r}")
        speed = self.spi_speed_hz
        if isinstance(speed, bool) or not isinstance(speed, int) or not 1 <= speed <= _MAX_SPI_HZ:
            raise ConfigError(
                f"SX1276 wiring: spi_speed_hz {speed!r} must be 1..{_MAX_SPI_HZ} (FSCK max 10 MHz)"
            )


def open_spidev() -> Any:
    """A new, unopened `spidev.SpiDev`, or a clear error if spidev is missing."""
    try:
        import spidev  # type: ignore[import-not-found]
    except ImportError:
        raise MissingDriverLibrary(
            "python 'spidev' is not installed: on the Raspberry Pi run `pip install spidev` "
            "(or `pip install lora_telemetry[gateway]`) and enable SPI (raspi-config); "
            "without hardware, pass the emulator's SPI object instead"
        ) from None
    return spidev.SpiDev()


def _open_gpiod_chip(path: str) -> GpioChip:
    from lora_telemetry.radios.sx1276.gpio import GpiodChip

    return GpiodChip(path)


class SX1276Radio(RawRadio):
    """An SX1276 in LoRa mode: RX continuous while idle, TX on demand, back to RX after.

    ``counters`` (a plain dict, read it any time): ``rx_ok``, ``crc_error``,
    ``header_invalid``, ``spurious_irq``, ``tx``, plus ``no_crc`` (frames whose header said
    "no CRC"), ``overrun`` (frames the chip received while an earlier RxDone was still
    pending, counted from RegRxHeaderCnt: they were overwritten) and ``tx_timeout``.
    """

    def __init__(
        self,
        *,
        spi: Any | None = None,
        gpio: GpioChip | None = None,
        wiring: SX1276Wiring = SX1276Wiring(),
        pa_boost: bool = True,
        tx_power_dbm: float = R.DEFAULT_TX_POWER_DBM,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """``spi``/``gpio``: injected devices (the emulated chip's); ``on_close`` runs once
        when the driver is closed for good, after it released them (the owner of injected
        devices closes them there)."""
        self.wiring = wiring
        self._on_close = on_close
        self.pa_boost = pa_boost
        self.default_tx_power_dbm = tx_power_dbm
        self._clock = clock
        self.counters: dict[str, int] = dict.fromkeys(
            ("rx_ok", "crc_error", "header_invalid", "spurious_irq", "tx", "no_crc", "overrun",
             "tx_timeout", "reconnects"), 0,
        )
        self.name = name or f"SX1276 on SPI{wiring.spi_bus}.{wiring.spi_device}"
        self.version: int | None = None
        self._phy: PhySettings | None = None
        self._lf = False
        self._mode: int | None = None
        self._listening = False
        self._last_header_count = 0
        self._closed = False
        self._spi: Any | None = None
        self._owns_gpio = gpio is None
        self._given = (spi, gpio)  # injected devices (the emulator's), reopened by reconnect
        self._gpio: GpioChip | None = None
        self._reset: OutputLine | None = None
        self._nss: OutputLine | None = None
        self._dio0: RisingEdgeLine | None = None
        try:
            self._open(spi, gpio)
            self._hardware_reset()
            self._check_version()
        except BaseException:
            self.close()
            raise

    # --- set-up -----------------------------------------------------------------------------

    def _open(self, spi: Any | None, gpio: GpioChip | None) -> None:
        w = self.wiring
        self._gpio = chip = gpio if gpio is not None else _open_gpiod_chip(w.gpio_chip)
        try:
            if w.reset_pin is not None:
                self._reset = chip.request_output(w.reset_pin, initial=True, consumer=_CONSUMER)
            if w.nss_pin is not None:
                self._nss = chip.request_output(w.nss_pin, initial=True, consumer=_CONSUMER)
            self._dio0 = chip.request_rising_edge(w.dio0_pin, consumer=_CONSUMER)
        except OSError as exc:
            raise NoSuchDevice(f"{self.name}: cannot request a GPIO line: {exc}") from None
        dev = spi if spi is not None else open_spidev()
        try:
            dev.open(w.spi_bus, w.spi_device)
        except OSError as exc:
            raise NoSuchDevice(
                f"cannot open SPI bus {w.spi_bus} device {w.spi_device} "
                f"(/dev/spidev{w.spi_bus}.{w.spi_device}): {exc.strerror or exc}; "
                "is SPI enabled (raspi-config)?"
            ) from None
        self._spi = dev
        dev.max_speed_hz = w.spi_speed_hz
        dev.mode = 0  # CPOL = 0, CPHA = 0 (datasheet 4.3)

    def _hardware_reset(self) -> None:
        """Datasheet 7.2.2 (line ~18873): NRESET low >= 100 us, then wait 5 ms."""
        if self._reset is None:
            return
        self._reset.set_value(False)
        time.sleep(0.001)
        self._reset.set_value(True)
        time.sleep(0.006)

    def _check_version(self) -> None:
        version = self.read_register(R.REG_VERSION)
        w = self.wiring
        where = f"SPI bus {w.spi_bus} device {w.spi_device}"
        if version in (0x00, 0xFF):
            nss = (f"NSS on GPIO {w.nss_pin}" if w.nss_pin is not None
                   else f"NSS on CE{w.spi_device}")
            raise NoSuchDevice(
                f"no SX127x answered on {where}: RegVersion (0x42) read 0x{version:02X}, "
                f"expected 0x{R.EXPECTED_VERSION:02X}; check power, wiring ({nss}, "
                f"NRESET on GPIO {w.reset_pin}) and that SPI is enabled"
            )
        if version != R.EXPECTED_VERSION:
            raise NoSuchDevice(
                f"the chip on {where} reports RegVersion 0x{version:02X}, not 0x"
                f"{R.EXPECTED_VERSION:02X} (SX1276/77/78/79); an SX1272 reads 0x22"
            )
        self.version = version

    # --- SPI access (datasheet 4.3: address byte with wnr bit, burst auto-increment) ---------

    def _xfer(self, out: list[int]) -> list[int]:
        if self._spi is None:
            raise RadioDisconnected(f"{self.name}: radio is closed")
        if self._nss is not None:
            self._nss.set_value(False)
        try:
            resp = self._spi.xfer2(out)
        except OSError as exc:
            raise RadioDisconnected(f"{self.name}: SPI transfer failed: {exc}") from None
        finally:
            if self._nss is not None:
                self._nss.set_value(True)
        if resp is None or len(resp) != len(out):
            raise RadioError(f"{self.name}: SPI returned {resp!r} for a {len(out)}-byte transfer")
        return list(resp)

    def read_register(self, addr: int) -> int:
        return self._xfer([addr & R.SPI_ADDRESS_MASK, 0x00])[1] & 0xFF

    def write_register(self, addr: int, value: int) -> None:
        self._xfer([R.SPI_WRITE | (addr & R.SPI_ADDRESS_MASK), value & 0xFF])

    def read_burst(self, addr: int, count: int) -> bytes:
        """`count` bytes from consecutive registers (or from the FIFO when addr is 0x00)."""
        if count <= 0:
            return b""
        return bytes(b & 0xFF for b in self._xfer([addr & R.SPI_ADDRESS_MASK] + [0] * count)[1:])

    def write_burst(self, addr: int, data: bytes) -> None:
        self._xfer([R.SPI_WRITE | (addr & R.SPI_ADDRESS_MASK)] + list(data))

    # --- modes ----------------------------------------------------------------------------------

    def _set_mode(self, mode: int) -> None:
        self.write_register(R.REG_OP_MODE, R.op_mode(mode, lf=self._lf))
        self._mode = mode
        if mode in (R.MODE_RX_CONTINUOUS, R.MODE_RX_SINGLE, R.MODE_SLEEP):
            self._last_header_count = 0  # RegRxHeaderCnt restarts on entering RX / in Sleep

    def _enter_rx(self) -> None:
        self.write_register(R.REG_DIO_MAPPING1, R.DIO0_RX_DONE)
        self.write_register(R.REG_FIFO_ADDR_PTR, 0x00)
        self._clear_irqs()
        self._set_mode(R.MODE_RX_CONTINUOUS)

    def _clear_irqs(self) -> None:
        """Clear every IRQ flag and forget edge events they caused (so they are not counted
        as spurious interrupts later)."""
        self.write_register(R.REG_IRQ_FLAGS, 0xFF)
        self._drain_edges()

    def _drain_edges(self) -> None:
        dio0 = self._require_dio0()
        try:
            while dio0.wait_edge(0.0):
                dio0.read_edge_events()
        except OSError as exc:
            raise RadioDisconnected(f"{self.name}: DIO0 line failed: {exc}") from None

    def standby(self) -> None:
        """Stop receiving (Standby: oscillator on, RF off)."""
        self._listening = False
        self._set_mode(R.MODE_STDBY)

    def sleep(self) -> None:
        """Lowest power; the FIFO is cleared (datasheet 4.1.2.3)."""
        self._listening = False
        self._set_mode(R.MODE_SLEEP)

    # --- Radio interface -------------------------------------------------------------------

    @property
    def phy(self) -> PhySettings | None:
        return self._phy

    def configure(self, phy: PhySettings) -> None:
        """Sleep, switch to LoRa, write and verify the configuration, enter RX continuous."""
        plan = self._plan(phy)
        self._lf = R.uses_lf_port(phy.frequency_hz)
        # LongRangeMode may change only in Sleep (RegOpMode, line ~18245): FSK sleep first.
        self.write_register(R.REG_OP_MODE, R.LOW_FREQUENCY_MODE_ON if self._lf else 0x00)
        self._set_mode(R.MODE_SLEEP)
        op = self.read_register(R.REG_OP_MODE)
        if op != R.op_mode(R.MODE_SLEEP, lf=self._lf):
            raise RadioError(
                f"{self.name}: chip did not enter LoRa sleep (RegOpMode reads 0x{op:02X})"
            )
        self._write_plan(plan)
        self._phy = phy
        self._set_mode(R.MODE_STDBY)
        self._listening = True
        self._enter_rx()

    def _plan(self, phy: PhySettings) -> list[tuple[int, int]]:
        return R.config_registers(
            phy, pa_boost=self.pa_boost, tx_power_dbm=self.default_tx_power_dbm
        )

    def _write_plan(self, plan: list[tuple[int, int]]) -> None:
        for addr, value in plan:
            self.write_register(addr, value)
        for addr, value in plan:  # read back: catches a chip that does not listen to writes
            got = self.read_register(addr)
            if got != value:
                raise RadioError(
                    f"{self.name}: register 0x{addr:02X} reads 0x{got:02X} after writing "
                    f"0x{value:02X}; check the SPI wiring"
                )

    def receive(self, timeout: float) -> RxFrame | None:
        """Wait up to `timeout` s for RxDone on DIO0 (a blocking edge wait) and read the frame.

        Frames with a CRC error are returned with ``crc_ok=False`` (and counted); interrupts
        that are not RxDone, or RxDone without ValidHeader, are counted and waited past.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            math.isfinite(timeout) and timeout >= 0
        ):
            raise ConfigError(
                f"receive timeout {timeout!r} must be a finite number of seconds >= 0"
            )
        self._require_configured()
        if self._mode != R.MODE_RX_CONTINUOUS:
            self._listening = True
            self._enter_rx()
        dio0 = self._require_dio0()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if not dio0.wait_edge(max(0.0, remaining)):
                    return None
                dio0.read_edge_events()
            except OSError as exc:
                raise RadioDisconnected(f"{self.name}: DIO0 line failed: {exc}") from None
            frame = self._service_rx_irq(self._clock())
            if frame is not None:
                return frame
            if remaining <= 0:
                return None

    def _service_rx_irq(self, now: float) -> RxFrame | None:
        status = self.read_burst(R.STATUS_BLOCK_START, R.STATUS_BLOCK_LEN)
        reg = lambda addr: status[addr - R.STATUS_BLOCK_START]  # noqa: E731
        flags = reg(R.REG_IRQ_FLAGS)
        if not flags & R.IRQ_RX_DONE:
            self.counters["spurious_irq"] += 1
            self.write_register(R.REG_IRQ_FLAGS, flags or 0xFF)
            return None
        header_count = (reg(R.REG_RX_HEADER_CNT_MSB) << 8) | reg(R.REG_RX_HEADER_CNT_LSB)
        missed = (header_count - self._last_header_count) % 0x10000 - 1
        if missed > 0:
            self.counters["overrun"] += missed
        self._last_header_count = header_count
        if not flags & R.IRQ_VALID_HEADER:
            self.counters["header_invalid"] += 1
            self.write_register(R.REG_IRQ_FLAGS, 0xFF)
            return None
        length = reg(R.REG_RX_NB_BYTES)
        self.write_register(R.REG_FIFO_ADDR_PTR, reg(R.REG_FIFO_RX_CURRENT_ADDR))
        data = self.read_burst(R.REG_FIFO, length)
        self.write_register(R.REG_IRQ_FLAGS, 0xFF)
        phy = self._require_configured()
        snr = R.decode_snr(reg(R.REG_PKT_SNR_VALUE))
        rssi = R.decode_packet_rssi(reg(R.REG_PKT_RSSI_VALUE), snr, self._lf)
        crc_present = bool(reg(R.REG_HOP_CHANNEL) & R.HOP_CHANNEL_CRC_ON_PAYLOAD)
        crc_ok = not flags & R.IRQ_PAYLOAD_CRC_ERROR
        cr = R.rx_coding_rate(reg(R.REG_MODEM_STAT)) or phy.coding_rate
        if not crc_present:
            self.counters["no_crc"] += 1
        if not crc_ok:
            self.counters["crc_error"] += 1
        else:
            self.counters["rx_ok"] += 1
        if cr != phy.coding_rate or crc_present != phy.crc_on:
            phy = dataclasses.replace(phy, coding_rate=cr, crc_on=crc_present)
        return RxFrame(data=data, phy=phy, rssi_dbm=rssi, snr_db=snr, crc_ok=crc_ok, time=now)

    def send(
        self, data: bytes, timeout: float | None = None, *, phy: PhySettings | None = None
    ) -> TxResult:
        """Transmit one frame and wait for TxDone on DIO0; then listen again.

        `phy` (optional) applies other settings for this frame only, e.g. a LoRaWAN downlink
        with ``iq_inverted=True``; the receive settings are restored afterwards.
        """
        rx_phy = self._require_configured()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise RadioError(f"{self.name}: frame must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not 1 <= len(data) <= R.FIFO_SIZE - 1:
            raise RadioError(f"{self.name}: LoRa payload must be 1..255 bytes, got {len(data)}")
        tx_phy = phy or rx_phy
        airtime = tx_phy.time_on_air(len(data))
        if timeout is None:
            timeout = airtime + max(1.0, 0.5 * airtime)
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            math.isfinite(timeout) and timeout > 0
        ):
            raise ConfigError(f"send timeout {timeout!r} must be a finite number of seconds > 0")
        self._set_mode(R.MODE_STDBY)  # the FIFO can only be filled in Standby (4.1.6)
        try:
            if tx_phy != rx_phy:
                self._apply_in_standby(tx_phy)
            self.write_register(R.REG_DIO_MAPPING1, R.DIO0_TX_DONE)
            self.write_register(R.REG_FIFO_ADDR_PTR, 0x00)  # = RegFifoTxBaseAddr
            self.write_burst(R.REG_FIFO, data)
            self.write_register(R.REG_PAYLOAD_LENGTH, len(data))
            self._clear_irqs()
            started = self._clock()
            self._set_mode(R.MODE_TX)
            finished = self._wait_tx_done(timeout)
            self.counters["tx"] += 1
        finally:
            self._after_tx(tx_phy, rx_phy)
        return TxResult(airtime_s=airtime, started=started, finished=finished)

    def _apply_in_standby(self, phy: PhySettings) -> None:
        # Static registers may be written in Standby (4.1.6); the port (LF/HF) must not
        # change, as LowFrequencyModeOn selects it (only a full configure() does that).
        if R.uses_lf_port(phy.frequency_hz) != self._lf:
            raise RadioError(f"{self.name}: cannot switch between the LF and HF port for one frame")
        self._write_plan(self._plan(phy))

    def _wait_tx_done(self, timeout: float) -> float:
        dio0 = self._require_dio0()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                edge = remaining > 0 and dio0.wait_edge(remaining)
                if edge:
                    dio0.read_edge_events()
            except OSError as exc:
                raise RadioDisconnected(f"{self.name}: DIO0 line failed: {exc}") from None
            if not edge:
                self.counters["tx_timeout"] += 1
                raise RadioTimeout(f"{self.name}: no TxDone within {timeout:.3f} s")
            flags = self.read_register(R.REG_IRQ_FLAGS)
            if flags & R.IRQ_TX_DONE:
                return self._clock()
            self.counters["spurious_irq"] += 1
            self.write_register(R.REG_IRQ_FLAGS, flags or 0xFF)

    def _after_tx(self, tx_phy: PhySettings, rx_phy: PhySettings) -> None:
        if self._spi is None:
            return
        self._set_mode(R.MODE_STDBY)  # also aborts a transmission that timed out
        if tx_phy != rx_phy:
            self._write_plan(self._plan(rx_phy))
        self.write_register(R.REG_DIO_MAPPING1, R.DIO0_RX_DONE)
        self._clear_irqs()
        if self._listening:
            self._enter_rx()

    def channel_rssi(self) -> float:
        """Current channel RSSI in dBm (RegRssiValue), e.g. for listen-before-talk."""
        self._require_configured()
        return R.decode_rssi(self.read_register(R.REG_RSSI_VALUE), self._lf)

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

    def reconnect(self, timeout: float = 10.0) -> None:
        """Release SPI and GPIO, open them again (until `timeout`), reset and check the chip,
        and restore the last configuration."""
        phy = self._phy
        self._release()
        deadline = time.monotonic() + timeout
        while True:
            self._closed = False
            try:
                self._open(*self._given)
                self._hardware_reset()
                self._check_version()
                break
            except (NoSuchDevice, RadioDisconnected):
                self._release()  # what the attempt got is released before the next one
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        self._mode = None
        self.counters["reconnects"] = self.counters.get("reconnects", 0) + 1
        if phy is not None:
            self.configure(phy)

    def close(self) -> None:
        """Sleep the chip (best effort), release the GPIO lines and close SPI; idempotent."""
        if self._closed:
            return
        self._release()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def _release(self) -> None:
        """Sleep the chip (best effort), release the GPIO lines and close SPI."""
        self._closed = True
        if self._spi is not None and self._phy is not None:
            try:
                self._set_mode(R.MODE_SLEEP)
            except RadioError:
                pass
        for line in (self._dio0, self._nss, self._reset):
            if line is not None:
                try:
                    line.release()
                except (OSError, RadioError):
                    pass
        self._dio0 = self._nss = self._reset = None
        if self._spi is not None:
            spi, self._spi = self._spi, None
            try:
                spi.close()
            except OSError:
                pass
        if self._owns_gpio and self._gpio is not None:
            self._gpio.close()
        self._gpio = None

    # --- helpers ---------------------------------------------------------------------------------

    def _require_configured(self) -> PhySettings:
        if self._closed:
            raise RadioDisconnected(f"{self.name}: radio is closed")
        if self._phy is None:
            raise RadioError(f"{self.name}: not configured yet (call configure(phy) first)")
        return self._phy

    def _require_dio0(self) -> RisingEdgeLine:
        if self._dio0 is None:
            raise RadioDisconnected(f"{self.name}: radio is closed")
        return self._dio0
