"""SX1276 driver, its register helpers and its emulator.

Figures come from the seeds file `uav-swarm-lora-thesis-with-datasheets.txt` ("thesis file"):
the SX1276 datasheet (lines ~12330-19150) and the thesis gateway program (lines ~7850-8800).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
import time
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import BANDWIDTHS_HZ, PhySettings
from lora_telemetry.radios.sx1276 import registers as R
from lora_telemetry.radios.base import NoSuchDevice, RadioDisconnected, RadioError, RadioTimeout
from lora_telemetry.radios.sx1276.gpio import MissingDriverLibrary, RisingEdgeLine
from lora_telemetry.radios.sx1276.driver import SX1276Radio, SX1276Wiring
from lora_telemetry.radios.sx1276.emulator import InjectedRx, SX1276ChipLogic
from lora_telemetry.sim.emulated_spi import EmulatedSpiChip

# The thesis configuration: configFrequency (thesis line ~7908) and configSF[0] = SF7, BW 125 kHz.
HF = PhySettings(frequency_hz=869_525_000, sf=7, bandwidth_hz=125_000)
LF = PhySettings(frequency_hz=433_175_000, sf=7, bandwidth_hz=125_000)


def emulated_chip(medium=None, **options) -> EmulatedSpiChip:
    """The SX1276 chip logic behind the emulated SPI bus and thesis board, run by the loop."""
    logic = SX1276ChipLogic(**options)
    return EmulatedSpiChip(logic, "sx1276", medium, wiring=logic.board_wiring,
                           output_pins=logic.output_pins)


@pytest.fixture
def emu():
    chip = emulated_chip()
    yield chip
    chip.close()


@pytest.fixture
def radio(emu):
    r = SX1276Radio(spi=emu.spi, gpio=emu.gpio)
    r.configure(HF)
    yield r
    r.close()


# --- pure helpers: frequency ------------------------------------------------------------------

@pytest.mark.parametrize(
    "freq, msb, mid, lsb",
    [
        # 869525000 * 2^19 / 32e6 = 14246297.6 -> nearest 14246298 = 0xD9619A
        # (0xD9 = 217: 217 * 65536 = 14221312; remainder 24986 = 0x619A).
        (869_525_000, 0xD9, 0x61, 0x9A),
        # 433175000 * 2^19 / 32e6 = 7097139.2 -> 7097139 = 0x6C4B33
        # (0x6C = 108: 108 * 65536 = 7077888; remainder 19251 = 0x4B33).
        (433_175_000, 0x6C, 0x4B, 0x33),
        # 868100000 * 2^19 / 32e6 = 14222950.4 -> 14222950 = 0xD90666.
        (868_100_000, 0xD9, 0x06, 0x66),
        # Datasheet RegFrfLsb (line ~18300): "Default value is 0x6c8000 = 434 MHz".
        (434_000_000, 0x6C, 0x80, 0x00),
    ],
)
def test_frf_from_frequency_by_hand(freq, msb, mid, lsb):
    # f_RF = F_XOSC * Frf / 2^19 with F_XOSC = 32 MHz (RegFrf formula after line ~18352,
    # FXOSC in Table 45, line ~18855).
    frf = R.frf_from_frequency(freq)
    assert R.frf_bytes(frf) == (msb, mid, lsb)
    assert abs(R.frequency_from_frf(frf) - freq) <= R.FSTEP_HZ / 2
    assert R.nominal_frequency_from_frf(frf) == freq


def test_frf_rounds_where_the_thesis_truncated():
    # The thesis gateway computes int((f << 19) / 32000000) (line ~8566): 0xD96199 for
    # 869.525 MHz, 37 Hz low. Rounding gives 0xD9619A, 24 Hz high: the nearer step.
    assert int((869_525_000 << 19) / 32_000_000) == 0xD96199
    assert R.frf_from_frequency(869_525_000) == 0xD9619A


@pytest.mark.parametrize("freq", [300_000_000, 600_000_000, 1_021_000_000])
def test_out_of_band_frequency_is_refused(freq):
    # Bands: 137-175, 410-525, 862(779)-1020 MHz (datasheet "FR", line ~12651).
    with pytest.raises(R.UnsupportedPhy, match="outside the SX1276 bands"):
        R.frf_from_frequency(freq)


def test_lf_port_below_525_mhz():
    # PA_LF "covers the lower bands (up to 525 MHz)", PA_HF "the upper bands" (line ~16457).
    assert R.uses_lf_port(433_175_000) and not R.uses_lf_port(869_525_000)


# --- pure helpers: modem configuration --------------------------------------------------------

def test_modem_config_thesis_values():
    # Thesis setRate (lines ~8584-8597): RegModemConfig1 = 0x72 "BW 125 | CR 4/5",
    # RegModemConfig2 = SF << 4 | 0x04 "CRC ON", RegModemConfig3 = 0x04 (AGC) below SF11
    # and 0x0C (LowDataRateOptimize + AGC) at SF11/SF12.
    assert R.modem_config1(HF) == 0x72  # Bw 0111 = 125 kHz (line ~18619), 001 = 4/5 (~18629)
    assert R.modem_config2(HF) == 0x74  # SF7 in bits 7-4 (~18644), RxPayloadCrcOn bit 2 (~18661)
    assert R.modem_config3(HF) == 0x04  # AgcAutoOn bit 2 (~18740)
    for sf in (11, 12):
        phy = dataclasses.replace(HF, sf=sf)
        assert R.modem_config2(phy) == (sf << 4) | 0x04
        assert R.modem_config3(phy) == 0x0C  # LowDataRateOptimize bit 3 (~18737)


def test_bandwidth_and_coding_rate_codes():
    # RegModemConfig1 Bw: 0000 = 7.8 kHz (line ~18612) ... 1001 = 500 kHz (line ~18621);
    # CodingRate 001 = 4/5 ... 100 = 4/8 (line ~18629).
    assert [R.bandwidth_code(bw) for bw in BANDWIDTHS_HZ] == list(range(10))
    assert [R.coding_rate_code(cr) for cr in (5, 6, 7, 8)] == [1, 2, 3, 4]
    with pytest.raises(R.UnsupportedPhy):
        R.bandwidth_from_code(0x0A)


def test_iq_register_values():
    # RegInvertIQ bit 6 inverts RX (line ~18804); 0x27 is the reset value the thesis writes
    # (line ~8637). 0x3B is undocumented in this revision (module docstring of sx1276_regs).
    assert R.iq_registers(False) == (0x27, 0x1D)
    assert R.iq_registers(True) == (0x66, 0x19)
    assert R.rx_iq_inverted(0x27, 0x1D) is False and R.rx_iq_inverted(0x66, 0x19) is True
    assert R.rx_iq_inverted(0x66, 0x1D) is None and R.rx_iq_inverted(0x27, 0x19) is None
    assert R.tx_iq_inverted(0x66) and not R.tx_iq_inverted(0x27)


def test_pa_settings():
    # Table 33 (line ~16479): PA_BOOST Pout = 17 - (15 - OutputPower); RFO Pout = Pmax -
    # (15 - OutputPower), Pmax = 10.8 + 0.6 * MaxPower (line ~16477); RegPaDac 0x87 for
    # +20 dBm, default 0x84 (Table 34, line ~16508).
    assert R.pa_registers(14, pa_boost=True) == (0x80 | 0x70 | 12, 0x84, 0x2B)
    assert R.pa_registers(17, pa_boost=True) == (0xFF, 0x84, 0x2B)
    assert R.pa_registers(20, pa_boost=True)[:2] == (0xFF, 0x87)
    assert R.pa_registers(14, pa_boost=False) == (0x7E, 0x84, 0x2B)  # MaxPower 7: Pmax 15
    for p in range(2, 21):
        assert R.pa_output_dbm(*R.pa_registers(p, pa_boost=True)[:2]) == p
    for p in range(0, 16):
        assert R.pa_output_dbm(*R.pa_registers(p, pa_boost=False)[:2]) == p
    with pytest.raises(R.UnsupportedPhy):
        R.pa_registers(21, pa_boost=True)


def test_implicit_header_and_short_preamble_refused():
    with pytest.raises(R.UnsupportedPhy, match="implicit-header"):
        R.config_registers(PhySettings(869_525_000, 6, 125_000, explicit_header=False))
    with pytest.raises(R.UnsupportedPhy, match="minimum of 6"):
        R.config_registers(dataclasses.replace(HF, preamble_symbols=4))


@settings(max_examples=60, deadline=None)
@given(
    freq=st.sampled_from(
        [433_175_000, 433_375_000, 868_100_000, 869_525_000, 915_200_000, 169_000_000]
    ),
    sf=st.integers(7, 12),
    bw=st.sampled_from([62_500, 125_000, 250_000]),
    cr=st.integers(5, 8),
    sync=st.integers(0, 255),
    iq=st.booleans(),
    crc=st.booleans(),
    preamble=st.integers(6, 65535),
)
def test_phy_from_registers_inverts_config_registers(freq, sf, bw, cr, sync, iq, crc, preamble):
    phy = PhySettings(freq, sf, bw, coding_rate=cr, sync_word=sync, iq_inverted=iq, crc_on=crc,
                      preamble_symbols=preamble, tx_power_dbm=14.0)
    regs = dict(R.RESET_VALUES)
    regs.update(R.config_registers(phy))
    for for_tx in (False, True):
        back = R.phy_from_registers(regs, for_tx=for_tx)
        assert back.low_data_rate_optimize == phy.low_data_rate_optimize  # ldro "on"/"off"
        assert back.time_on_air(20) == phy.time_on_air(20)
        power = phy.tx_power_dbm if for_tx else None
        assert back.tx_power_dbm == power
        expected = dataclasses.replace(phy, tx_power_dbm=power)
        assert dataclasses.replace(back, ldro="auto") == expected


# --- pure helpers: RSSI and SNR ---------------------------------------------------------------

def test_snr_decoding():
    # RegPktSnrValue: "In two's compliment format mutiplied by 4" (line ~18547);
    # SNR[dB] = PacketSnr[two's complement] / 4 (line ~18601).
    assert R.decode_snr(0x28) == 10.0
    assert R.decode_snr(0xEC) == -5.0
    assert R.decode_snr(0x7F) == 31.75 and R.decode_snr(0x80) == -32.0
    assert R.encode_snr(-5.0) == 0xEC and R.encode_snr(99.0) == 0x7F


def test_rssi_decoding_section_5_5_5():
    # Datasheet 5.5.5 (lines ~16634-16653): RSSI = -157 + Rssi (HF) / -164 + Rssi (LF);
    # Packet Strength = -157 + PacketRssi (+ PacketSnr * 0.25 when SNR < 0).
    assert R.decode_packet_rssi(60, R.decode_snr(0x28), lf_port=False) == -97.0
    assert R.decode_packet_rssi(60, R.decode_snr(0x28), lf_port=True) == -104.0
    assert R.decode_packet_rssi(50, R.decode_snr(0xEC), lf_port=False) == -112.0  # -157+50-5
    assert R.decode_packet_rssi(50, R.decode_snr(0xEC), lf_port=True) == -119.0
    assert R.decode_rssi(40, lf_port=False) == -117.0 and R.decode_rssi(40, lf_port=True) == -124.0


@settings(max_examples=200, deadline=None)
@given(rssi=st.floats(-150.0, -20.0), snr=st.floats(-20.0, 30.0), lf=st.booleans())
def test_rssi_encoding_is_the_inverse_of_decoding(rssi, snr, lf):
    snr_reg = R.encode_snr(snr)
    assert abs(R.decode_snr(snr_reg) - snr) <= 0.125
    pkt_rssi = R.encode_packet_rssi(rssi, snr_reg, lf)
    decoded = R.decode_packet_rssi(pkt_rssi, R.decode_snr(snr_reg), lf)
    # Half a 1 dB register step; 1e-9 absorbs binary floating-point error at the boundary.
    assert abs(decoded - rssi) <= 0.5 + 1e-9


# Found by the fuzz harness (bench/fuzz, target "sx1276"): NaN, infinities and numbers beyond
# float range reached int()/round() inside these helpers and escaped as ValueError or
# OverflowError instead of the ConfigError (UnsupportedPhy) the module documents.
BAD_NUMBERS = [math.nan, math.inf, -math.inf, 10**400, 1e308, -1e308, "433175000", None]
REGISTER_HELPERS = {
    "frf_from_frequency": lambda x: R.frf_from_frequency(x),
    "check_frequency": lambda x: R.check_frequency(x),
    "pa_registers": lambda x: R.pa_registers(x, pa_boost=True),
    "encode_snr": lambda x: R.encode_snr(x),
    "encode_packet_rssi": lambda x: R.encode_packet_rssi(x, 0x10, lf_port=True),
    "encode_rssi": lambda x: R.encode_rssi(x, lf_port=False),
    "frequency_from_frf": lambda x: R.frequency_from_frf(x),
    "nominal_frequency_from_frf": lambda x: R.nominal_frequency_from_frf(x),
}


@pytest.mark.parametrize("helper", sorted(REGISTER_HELPERS))
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_register_helpers_refuse_non_finite_numbers_with_a_config_error(helper, value):
    call = REGISTER_HELPERS[helper]
    if helper == "encode_snr" and value in (1e308, -1e308):
        assert call(value) == (0x7F if value > 0 else 0x80)  # finite: saturates (-32..31.75 dB)
        return
    if helper.startswith("encode_") and value in (1e308, -1e308):
        assert 0 <= call(value) <= 0xFF  # finite: saturates to the register's range
        return
    with pytest.raises(ConfigError, match="number|Frf|outside"):
        call(value)


def test_frf_helpers_take_only_24_bit_words():
    assert R.nominal_frequency_from_frf(0x6C4B33) == 433_175_000
    with pytest.raises(R.UnsupportedPhy, match="24-bit"):
        R.frequency_from_frf(1 << 24)


# --- driver start-up ---------------------------------------------------------------------------

class _DeadSpi:
    """An SPI bus with nothing on it: MISO floats to a fixed level."""

    def __init__(self, level: int) -> None:
        self.level, self.mode, self.max_speed_hz, self.closed = level, 0, 0, False

    def open(self, bus, dev):
        pass

    def xfer2(self, values):
        return [self.level] * len(values)

    def close(self):
        self.closed = True


@pytest.mark.parametrize("level", [0x00, 0xFF])
def test_version_check_fails_when_no_chip_answers(emu, level):
    spi = _DeadSpi(level)
    with pytest.raises(NoSuchDevice, match=f"no SX127x answered.*0x{level:02X}"):
        SX1276Radio(spi=spi, gpio=emu.gpio)
    assert spi.closed
    SX1276Radio(spi=emu.spi, gpio=emu.gpio).close()  # the GPIO lines were released


def test_version_check_names_another_chip():
    with emulated_chip(version=0x22) as other:  # an SX1272 reads 0x22
        with pytest.raises(NoSuchDevice, match="RegVersion 0x22, not 0x12"):
            SX1276Radio(spi=other.spi, gpio=other.gpio)


def test_reset_pulse_and_lora_mode(emu):
    emu.spi.open(0, 0)
    emu.spi.xfer2([R.SPI_WRITE | R.REG_OP_MODE, 0x80])  # LoRa sleep
    emu.spi.xfer2([R.SPI_WRITE | R.REG_SYMB_TIMEOUT_LSB, 0x11])  # leftover state
    assert emu.logic.register(R.REG_SYMB_TIMEOUT_LSB) == 0x11
    with SX1276Radio(spi=emu.spi, gpio=emu.gpio) as radio:
        assert emu.counters["resets"] == 1
        assert radio.version == 0x12  # RegVersion (line ~18017)
        assert emu.logic.register(R.REG_OP_MODE) == 0x09  # after reset: FSK standby, LF mode on
        radio.configure(HF)
        assert emu.logic.lora
        assert emu.logic.register(R.REG_SYMB_TIMEOUT_LSB) == 0x64  # reset value (line ~18673)
    assert emu.logic.mode == R.MODE_SLEEP  # close() sleeps the chip


def test_gpio_line_in_use(emu):
    with SX1276Radio(spi=emu.spi, gpio=emu.gpio):
        with pytest.raises(NoSuchDevice, match="GPIO line"):
            SX1276Radio(spi=emu.spi, gpio=emu.gpio)  # the lines are held by the first driver


def test_missing_libraries_give_clear_errors(emu, monkeypatch):
    monkeypatch.setitem(sys.modules, "spidev", None)
    monkeypatch.setitem(sys.modules, "gpiod", None)
    with pytest.raises(MissingDriverLibrary, match="spidev"):
        SX1276Radio(gpio=emu.gpio)
    with pytest.raises(MissingDriverLibrary, match="gpiod"):
        SX1276Radio(spi=emu.spi)


def test_wiring_validation():
    with pytest.raises(Exception, match="spi_speed_hz"):
        SX1276Wiring(spi_speed_hz=20_000_000)  # FSCK max 10 MHz (line ~13980)
    with pytest.raises(Exception, match="dio0_pin"):
        SX1276Wiring(dio0_pin=-1)


# --- configuration as written to the chip ----------------------------------------------------

class _RecordingSpi:
    """Wraps the emulator's SPI and notes, for every register write, the chip's mode."""

    def __init__(self, emu: EmulatedSpiChip) -> None:
        self.emu, self.writes = emu, []

    def open(self, bus, dev):
        self.emu.spi.open(bus, dev)

    def close(self):
        self.emu.spi.close()

    def __setattr__(self, name, value):
        if name in ("mode", "max_speed_hz"):
            setattr(self.emu.spi, name, value)
        object.__setattr__(self, name, value)

    def xfer2(self, values):
        if values[0] & R.SPI_WRITE and len(values) == 2:
            chip = self.emu.logic
            self.writes.append((values[0] & 0x7F, values[1], chip.lora, chip.mode))
        return self.emu.spi.xfer2(values)


@pytest.mark.parametrize(
    "phy, op_mode, frf, lna",
    [
        # HF: setMode -> 0x80 | mode (thesis line ~8554); RX continuous = 101 (line ~18278);
        # LNA 0x23 = G1 maximum gain (line ~18380) + 150 % LNA current (line ~18398), thesis ~8631.
        (HF, 0x85, (0xD9, 0x61, 0x9A), 0x23),
        # LF: 0x80 | 0x08 LowFrequencyModeOn (thesis line ~8550); LNA 0x20 (thesis ~8627).
        (LF, 0x8D, (0x6C, 0x4B, 0x33), 0x20),
    ],
)
def test_thesis_configuration_registers(emu, phy, op_mode, frf, lna):
    spi = _RecordingSpi(emu)
    with SX1276Radio(spi=spi, gpio=emu.gpio) as radio:
        radio.configure(phy)
        expected = {
            R.REG_OP_MODE: op_mode,
            R.REG_FRF_MSB: frf[0], R.REG_FRF_MID: frf[1], R.REG_FRF_LSB: frf[2],
            R.REG_MODEM_CONFIG1: 0x72, R.REG_MODEM_CONFIG2: 0x74, R.REG_MODEM_CONFIG3: 0x04,
            R.REG_LNA: lna,
            R.REG_SYNC_WORD: 0x34,  # "Value 0x34 is reserved for LoRaWAN networks" (~18829)
            R.REG_INVERT_IQ: 0x27,  # thesis line ~8637
            R.REG_INVERT_IQ2: 0x1D,
            R.REG_MAX_PAYLOAD_LENGTH: 0xFF,  # thesis line ~8641
            R.REG_HOP_PERIOD: 0x00,  # thesis: "Hopping Period Disabled"
            R.REG_PA_RAMP: 0x08,  # 50 us, thesis line ~8649
            R.REG_PREAMBLE_MSB: 0x00, R.REG_PREAMBLE_LSB: 0x08,
            R.REG_IRQ_FLAGS_MASK: 0x87,  # RxDone, PayloadCrcError, ValidHeader, TxDone unmasked
            R.REG_DIO_MAPPING1: 0x00,  # DIO0 = RxDone (Table 18, line ~14806)
            R.REG_FIFO_RX_BASE_ADDR: 0x00,
            R.REG_PA_CONFIG: 0xFC, R.REG_PA_DAC: 0x84,  # +14 dBm on PA_BOOST
        }
        assert {addr: emu.logic.register(addr) for addr in expected} == expected
        assert emu.logic.mode == R.MODE_RX_CONTINUOUS
        # "Register values must be modified only when device is in SLEEP or STAND-BY mode"
        # (RegFrf, line ~18301; configuration registers 4.1.2.1 line ~14435), and the
        # LoRa page only exists in LoRa mode.
        config = [w for w in spi.writes if w[0] not in (R.REG_OP_MODE, R.REG_IRQ_FLAGS, R.REG_FIFO)]
        assert config
        assert all(lora and mode in (R.MODE_SLEEP, R.MODE_STDBY) for _, _, lora, mode in config)
        # LongRangeMode changed in Sleep only (line ~18248): FSK sleep, then LoRa sleep.
        op_writes = [v for a, v, _, _ in spi.writes if a == R.REG_OP_MODE]
        assert op_writes[:2] == [op_mode & R.LOW_FREQUENCY_MODE_ON, 0x80 | (op_mode & 0x08)]


# --- receiving through the emulator (inject_rx) ------------------------------------------------

def test_received_frame_same_bytes_rssi_snr(emu, radio):
    data = bytes.fromhex("40785634120000000111223344556677")
    assert emu.inject(InjectedRx(data, HF, rssi_dbm=-97.0, snr_db=10.0))
    frame = radio.receive(2.0)
    assert frame is not None and frame.data == data and frame.crc_ok
    assert (frame.rssi_dbm, frame.snr_db) == (-97.0, 10.0)
    assert frame.phy == HF and frame.time > 0
    # SNR < 0 (datasheet 5.5.5): the SNR enters the packet strength.
    assert emu.inject(InjectedRx(b"\x01\x02", HF, rssi_dbm=-121.25, snr_db=-6.25))
    frame = radio.receive(2.0)
    assert frame.data == b"\x01\x02" and frame.snr_db == -6.25 and frame.rssi_dbm == -121.25
    assert emu.logic.register(R.REG_PKT_RSSI_VALUE) == 42  # -121.25 + 157 + 6.25
    assert emu.logic.register(R.REG_PKT_SNR_VALUE) == 0xE7  # -25 in two's complement = -6.25 * 4
    assert radio.counters["rx_ok"] == 2 and radio.counters["crc_error"] == 0


def test_received_frame_on_the_lf_port(emu):
    with SX1276Radio(spi=emu.spi, gpio=emu.gpio) as radio:
        radio.configure(LF)
        assert emu.inject(InjectedRx(b"433", LF, rssi_dbm=-104.0, snr_db=7.5))
        frame = radio.receive(2.0)
        assert frame.data == b"433" and (frame.rssi_dbm, frame.snr_db) == (-104.0, 7.5)
        assert emu.logic.register(R.REG_PKT_RSSI_VALUE) == 60  # -104 = -164 + 60


def test_crc_error_reported_and_counted(emu, radio):
    assert emu.inject(InjectedRx(b"corrupted", HF, crc_ok=False))
    frame = radio.receive(2.0)
    # "all the received data will be written to the FIFO data buffer even if the CRC is
    # invalid" (4.1.2.3, line ~14487): the bytes are delivered, flagged.
    assert frame is not None and frame.data == b"corrupted" and not frame.crc_ok
    assert radio.counters["crc_error"] == 1 and radio.counters["rx_ok"] == 0


def test_frame_without_crc(emu, radio):
    assert emu.inject(InjectedRx(b"nocrc", dataclasses.replace(HF, crc_on=False), crc_ok=False))
    frame = radio.receive(2.0)
    assert frame.data == b"nocrc" and frame.crc_ok and not frame.phy.crc_on
    assert radio.counters["no_crc"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"sf": 8},
        {"frequency_hz": 868_100_000},
        {"frequency_hz": 869_525_000 + 40_000},  # beyond +/-25 % of 125 kHz (line ~14546)
        {"sync_word": 0x12},
        {"iq_inverted": True},
        {"bandwidth_hz": 250_000},
    ],
)
def test_mismatched_frames_never_delivered(emu, radio, change):
    assert not emu.inject(InjectedRx(b"wrong", dataclasses.replace(HF, **change)))
    assert radio.receive(0.05) is None
    assert emu.inject(InjectedRx(b"right", HF))  # still listening
    assert radio.receive(2.0).data == b"right"


def test_small_carrier_offset_is_tolerated(emu, radio):
    assert emu.inject(InjectedRx(b"near", dataclasses.replace(HF, frequency_hz=869_545_000)))
    assert radio.receive(2.0).data == b"near"


def test_not_listening_in_standby(emu, radio):
    radio.standby()
    assert not emu.inject(InjectedRx(b"x", HF))
    assert radio.receive(0.05) is None  # receive() re-enters RX continuous ...
    assert emu.inject(InjectedRx(b"y", HF))  # ... so the next frame arrives
    assert radio.receive(2.0).data == b"y"


def test_overrun_when_host_is_late(emu, radio):
    # RX continuous appends frames and keeps RxDone set: no new DIO0 edge for the second
    # frame, the first is overwritten in the status registers (4.1.6, continuous mode).
    assert emu.inject(InjectedRx(b"first", HF)) and emu.inject(InjectedRx(b"second", HF))
    assert radio.receive(2.0).data == b"second"
    assert radio.counters["overrun"] == 1
    assert radio.receive(0.05) is None


def test_spurious_interrupt_and_missing_valid_header(emu, radio):
    emu.lines["DIO0"].rise()  # an edge with no flag set
    assert radio.receive(0.05) is None
    assert radio.counters["spurious_irq"] == 1
    radio.write_register(R.REG_IRQ_FLAGS_MASK, R.DRIVER_IRQ_MASK | R.IRQ_VALID_HEADER)
    assert emu.inject(InjectedRx(b"hdr", HF))
    assert radio.receive(0.2) is None
    assert radio.counters["header_invalid"] == 1


def test_dio0_mapping_is_honoured(emu, radio):
    # RegDioMapping1 bits 7-6 (line ~17983; Table 18): 01 routes TxDone, not RxDone, to DIO0.
    radio.write_register(R.REG_DIO_MAPPING1, R.DIO0_TX_DONE)
    assert emu.inject(InjectedRx(b"quiet", HF))
    assert emu.logic.irq_flags & R.IRQ_RX_DONE and not emu.lines["DIO0"].get_value()
    assert radio.receive(0.05) is None
    radio.write_register(R.REG_DIO_MAPPING1, R.DIO0_RX_DONE)  # DIO0 now rises
    assert emu.lines["DIO0"].get_value()
    assert radio.receive(1.0).data == b"quiet"


def test_emulator_spi_semantics(emu):
    # Datasheet 4.3 (lines ~16324-16362): wnr bit; burst auto-increments except on RegFifo;
    # "During the write access, the byte transferred from the slave to the master on the
    # MISO line is the value of the written register before the write operation."
    spi = emu.spi
    spi.open(0, 0)
    assert spi.xfer2([R.REG_FRF_MSB, 0, 0, 0]) == [0, 0x6C, 0x80, 0x00]  # reset 434 MHz
    # LongRangeMode cannot be set outside Sleep (RegOpMode line ~18248) ...
    spi.xfer2([R.SPI_WRITE | R.REG_OP_MODE, R.LONG_RANGE_MODE | R.MODE_STDBY])
    assert not emu.logic.lora
    # ... but can with the write that enters Sleep.
    assert spi.xfer2([R.SPI_WRITE | R.REG_OP_MODE, R.LONG_RANGE_MODE]) == [0, 0x01]
    assert emu.logic.lora and emu.logic.mode == R.MODE_SLEEP
    spi.xfer2([R.SPI_WRITE | R.REG_OP_MODE, R.LONG_RANGE_MODE | R.MODE_STDBY])
    spi.xfer2([R.SPI_WRITE | R.REG_FIFO_ADDR_PTR, 0x10])
    spi.xfer2([R.SPI_WRITE | R.REG_FIFO, 1, 2, 3])  # FIFO burst: same address, pointer moves
    assert emu.logic.register(R.REG_FIFO_ADDR_PTR) == 0x13
    spi.xfer2([R.SPI_WRITE | R.REG_FIFO_ADDR_PTR, 0x10])
    assert spi.xfer2([R.REG_FIFO, 0, 0, 0]) == [0, 1, 2, 3]
    assert spi.xfer2([R.SPI_WRITE | R.REG_VERSION, 0x00]) == [0, 0x12]  # read-only
    assert emu.logic.register(R.REG_VERSION) == 0x12
    spi.xfer2([R.SPI_WRITE | R.REG_OP_MODE, R.LONG_RANGE_MODE])  # Sleep clears the FIFO
    spi.xfer2([R.SPI_WRITE | R.REG_OP_MODE, R.LONG_RANGE_MODE | R.MODE_STDBY])
    assert emu.logic.fifo()[0x10:0x13] == bytes(3)
    spi.mode = 3  # the SX1276 is CPOL = 0, CPHA = 0: any other mode reads garbage
    assert spi.xfer2([R.REG_VERSION, 0]) == [0xFF, 0xFF]


def test_receive_waits_on_the_edge_and_times_out(emu, radio):
    t0 = time.monotonic()
    assert radio.receive(0.2) is None
    assert time.monotonic() - t0 >= 0.19  # it waited (bounded), it did not return at once
    threading.Timer(0.05, emu.inject, args=(InjectedRx(b"late", HF),)).start()
    assert radio.receive(5.0).data == b"late"


def test_emulator_close_wakes_a_blocked_receive(emu, radio):
    threading.Timer(0.05, emu.close).start()
    with pytest.raises(RadioDisconnected):
        radio.receive(10.0)


def test_bad_receive_timeout(radio):
    for bad in (-1, float("nan"), "1"):
        with pytest.raises(Exception, match="timeout"):
            radio.receive(bad)


def test_receive_before_configure(emu):
    with SX1276Radio(spi=emu.spi, gpio=emu.gpio) as radio:
        with pytest.raises(RadioError, match="not configured"):
            radio.receive(0.01)


def test_dio0_line_interface(emu):
    assert isinstance(emu.gpio.request_rising_edge(4, consumer="t"), RisingEdgeLine)


# --- transmitting ------------------------------------------------------------------------------

def test_send_raises_txdone_and_returns_to_rx(emu, radio):
    result = radio.send(b"\x60downlink")
    assert result.airtime_s == HF.time_on_air(9)
    assert result.finished >= result.started
    tx = emu.logic.transmitted[-1]
    assert tx.data == b"\x60downlink" and tx.power_dbm == 14.0 and not tx.phy.iq_inverted
    assert radio.counters["tx"] == 1
    assert emu.logic.mode == R.MODE_RX_CONTINUOUS
    assert emu.logic.register(R.REG_DIO_MAPPING1) == R.DIO0_RX_DONE
    assert emu.logic.irq_flags == 0
    assert emu.inject(InjectedRx(b"after", HF))
    assert radio.receive(2.0).data == b"after"


def test_downlink_with_inverted_iq(emu, radio):
    radio.send(b"down", phy=radio.with_phy(iq_inverted=True))
    assert emu.logic.transmitted[-1].phy.iq_inverted
    assert emu.logic.register(R.REG_INVERT_IQ) == 0x27  # RX settings restored
    assert not emu.inject(InjectedRx(b"x", dataclasses.replace(HF, iq_inverted=True)))


def test_send_timeout(emu, radio):
    slow = radio.with_phy(sf=12)  # ~1 s on air
    with pytest.raises(RadioTimeout, match="TxDone"):
        radio.send(b"0123456789", timeout=0.05, phy=slow)
    assert radio.counters["tx_timeout"] == 1 and emu.counters["tx_aborted"] == 1
    assert emu.logic.mode == R.MODE_RX_CONTINUOUS
    assert emu.logic.register(R.REG_MODEM_CONFIG2) == 0x74


@pytest.mark.parametrize("data", [b"", bytes(256), "text"])
def test_send_rejects_bad_payloads(radio, data):
    with pytest.raises(RadioError):
        radio.send(data)


# --- GPIO adapter over a stand-in for python gpiod v2 ----------------------------------------

def _fake_gpiod(calls):
    line = types.ModuleType("gpiod.line")
    line.Direction = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    line.Edge = types.SimpleNamespace(RISING="rising")
    line.Value = types.SimpleNamespace(ACTIVE="active", INACTIVE="inactive")

    class Request:
        fd = 7

        def set_value(self, pin, value):
            calls.append(("set", pin, value))

        def wait_edge_events(self, timeout):
            calls.append(("wait", timeout.total_seconds()))
            return True

        def read_edge_events(self):
            return ["e1", "e2"]

        def get_value(self, pin):
            return line.Value.ACTIVE

        def release(self):
            calls.append(("release",))

    gpiod = types.ModuleType("gpiod")
    gpiod.line = line
    gpiod.LineSettings = lambda **kw: kw

    def request_lines(path, consumer, config):
        calls.append(("request", path, config))
        return Request()

    gpiod.request_lines = request_lines
    return gpiod, line


def test_gpiod_adapter(monkeypatch, tmp_path):
    from lora_telemetry.radios.sx1276.gpio import GpiodChip

    calls: list = []
    gpiod, line = _fake_gpiod(calls)
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    monkeypatch.setitem(sys.modules, "gpiod.line", line)
    chip_path = tmp_path / "gpiochip0"
    chip_path.touch()
    chip = GpiodChip(str(chip_path))
    out = chip.request_output(17, initial=True, consumer="t")
    out.set_value(False)
    edge = chip.request_rising_edge(4, consumer="t")
    assert edge.wait_edge(0.5) and edge.read_edge_events() == 2 and edge.get_value()
    assert edge.fileno() == 7
    edge.release()
    path = str(chip_path)
    assert calls[0] == ("request", path, {17: {"direction": "out", "output_value": "active"}})
    assert ("set", 17, "inactive") in calls
    assert ("request", path, {4: {"direction": "in", "edge_detection": "rising"}}) in calls
    assert ("wait", 0.5) in calls and calls[-1] == ("release",)
    with pytest.raises(NoSuchDevice, match="does not exist"):
        GpiodChip(str(tmp_path / "nochip"))
    del gpiod.request_lines  # the v1 API has no request_lines
    with pytest.raises(MissingDriverLibrary, match="v2"):
        GpiodChip(str(chip_path))


# --- through the simulated radio medium --------------------------------------------------------

@pytest.fixture
def hub():
    medium = pytest.importorskip("lora_telemetry.sim.medium")
    model = pytest.importorskip("lora_telemetry.sim.medium_model")
    server = medium.MediumHub(model.MediumModel(model.MediumParams(), seed=7), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    control = medium.MediumControl(hub=server.address, timeout_s=2.0)
    try:
        yield types.SimpleNamespace(medium=medium, params=model.MediumParams(),
                                    address=server.address, control=control)
    finally:
        control.close()
        server.stop()
        thread.join(5)
        server.close()


def _tx(client, data, phy, hub_ns):
    client.transmit(data, phy, power_dbm=14.0)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if isinstance(client.next_event(timeout=0.5), hub_ns.medium.TxDoneEvent):
            return
    raise AssertionError("no TxDone from the medium")


def test_through_the_medium(hub):
    M = hub.medium
    gateway = M.MediumClient("gw", hub=hub.address, position_m=(0.0, 0.0, 0.0))
    emu = emulated_chip(gateway)
    radio = SX1276Radio(spi=emu.spi, gpio=emu.gpio)
    uav = M.MediumClient("uav1", hub=hub.address, position_m=(1000.0, 0.0, 0.0))
    try:
        radio.configure(HF)
        assert hub.control.ping()  # the hub has seen the gateway's listen
        noise = hub.params.noise_floor_dbm(125_000)
        for distance in (1000.0, 2000.0):  # SNR +2 dB and -4 dB with the default model
            hub.control.set_position("uav1", distance, 0.0, 0.0, wait=True)
            _tx(uav, b"uplink@%d" % distance, HF, hub)
            frame = radio.receive(2.0)
            expected = hub.params.mean_rssi_dbm(14.0, distance)
            assert frame is not None and frame.data == b"uplink@%d" % distance and frame.crc_ok
            assert abs(frame.snr_db - (expected - noise)) <= 0.125
            assert abs(frame.rssi_dbm - expected) <= 0.5
        hub.control.set_position("uav1", 500.0, 0.0, 0.0, wait=True)
        for change in ({"sf": 9}, {"frequency_hz": 868_100_000}, {"sync_word": 0x12},
                       {"iq_inverted": True}):
            _tx(uav, b"wrong", dataclasses.replace(HF, **change), hub)
            assert radio.receive(0.1) is None, change
            _tx(uav, b"right", HF, hub)
            assert radio.receive(2.0).data == b"right", change
        # A downlink (inverted IQ) reaches an inverted listener, not a normal one.
        uav.listen(dataclasses.replace(HF, iq_inverted=True))
        with M.MediumClient("uav2", hub=hub.address, position_m=(500.0, 10.0, 0.0)) as other:
            other.listen(HF)
            assert hub.control.ping()
            radio.send(b"\xa0down", phy=radio.with_phy(iq_inverted=True))
            got = uav.next_event(timeout=2.0)
            assert isinstance(got, M.RxEvent) and got.data == b"\xa0down" and got.phy.iq_inverted
            assert other.next_event(timeout=0.2) is None
        assert radio.counters["rx_ok"] == 6 and radio.counters["tx"] == 1
        assert emu.counters["medium_errors"] == 0
    finally:
        uav.close()
        radio.close()
        emu.close()
        gateway.close()  # its creator closes it, after the chip using it


def test_receive_forever_delivers_to_a_callback_until_stopped():
    emu = emulated_chip()
    radio = SX1276Radio(spi=emu.spi, gpio=emu.gpio)
    radio.configure(PhySettings(433_175_000, 7, 125_000))
    got: list = []
    stop = threading.Event()
    worker = threading.Thread(target=radio.receive_forever, args=(got.append, stop, 0.1))
    worker.start()
    try:
        assert emu.inject(InjectedRx(b"\x40abc", PhySettings(433_175_000, 7, 125_000),
                                        rssi_dbm=-80.0, snr_db=9.0))
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(3)
        radio.close()
        emu.close()
    assert not worker.is_alive()
    assert [f.data for f in got] == [b"\x40abc"]
