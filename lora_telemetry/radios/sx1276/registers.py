"""SX1276/77/78/79 LoRa register map, constants and pure encode/decode helpers.

One implementation of the chip's register arithmetic, used by the driver
(`driver.py`) *and* the emulator (`emulator.py`): the emulator encodes
RSSI/SNR and decodes the PHY from registers with the exact inverse of what the driver
writes and reads, so the two can only disagree where the datasheet does.

"Datasheet" below is the SX1276/77/78/79 datasheet inside the thesis file
(`uav-swarm-lora-thesis-with-datasheets.txt`, lines ~12330-19150); "thesis gateway" is the
original gateway program in the same file (Annex IV, lines ~7850-8800). Decisions:

* FRF is rounded to the *nearest* synthesiser step (f * 2^19 / 32 MHz, datasheet 4.1.4 and
  RegFrf, line ~18300). The thesis gateway truncates with ``int()`` (line ~8566); for
  869.525 MHz that is one step (61 Hz) lower. Both are within the receiver's tolerance.
* Packet RSSI follows datasheet 5.5.5 (line ~16634): ``offset + PacketRssi`` and, when
  SNR < 0, ``offset + PacketRssi + PacketSnr * 0.25`` where ``PacketSnr`` is the register
  value, i.e. the SNR in dB is added once. (The thesis gateway multiplies the already
  divided SNR by 0.25 again, lines ~8365 and ~8393; we do not copy that.) The optional 16/15 slope
  correction of note 3 is not applied: it is a calibration choice, not the encoding.
* Offsets: -157 dBm on the HF port, -164 dBm on the LF port. The LF port serves bands 2/3
  (up to 525 MHz, datasheet 5.4.2 line ~16457); the thesis uses LF for 433.175 MHz.
* IQ inversion: the datasheet documents only bit 6 of RegInvertIQ (0x33, line ~18799) and
  calls 0x3B reserved in LoRa mode. Semtech's later application notes (and every LoRaWAN
  stack) use RegInvertIQ = 0x27 / RegInvertIQ2 = 0x1D for normal IQ and 0x66 / 0x19 for
  inverted IQ: bit 6 inverts RX, bit 0 *cleared* inverts TX, 0x3B completes the RX path.
  A radio here inverts both directions together (`PhySettings.iq_inverted`).
"""

from __future__ import annotations

from typing import Callable, Mapping

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.numbers import finite_float
from lora_telemetry.core.phy import BANDWIDTHS_HZ, PhySettings, sx127x_tx_startup_s
from lora_telemetry.radios.base import RadioError

# --- Crystal and synthesiser (datasheet 4.1.4, Table 45 "FXOSC 32 MHz") -------------------
FXOSC_HZ = 32_000_000
FRF_SHIFT = 19  # f_RF = FXOSC * Frf / 2^19  (RegFrf, line ~18300)
FSTEP_HZ = FXOSC_HZ / (1 << FRF_SHIFT)  # 61.035 Hz

# --- Register addresses (LoRa page, datasheet 6.1 Table 41 line ~16754, 6.4 line ~18222) --
REG_FIFO = 0x00
REG_OP_MODE = 0x01
REG_FRF_MSB = 0x06
REG_FRF_MID = 0x07
REG_FRF_LSB = 0x08
REG_PA_CONFIG = 0x09
REG_PA_RAMP = 0x0A
REG_OCP = 0x0B
REG_LNA = 0x0C
REG_FIFO_ADDR_PTR = 0x0D
REG_FIFO_TX_BASE_ADDR = 0x0E
REG_FIFO_RX_BASE_ADDR = 0x0F
REG_FIFO_RX_CURRENT_ADDR = 0x10
REG_IRQ_FLAGS_MASK = 0x11
REG_IRQ_FLAGS = 0x12
REG_RX_NB_BYTES = 0x13
REG_RX_HEADER_CNT_MSB = 0x14
REG_RX_HEADER_CNT_LSB = 0x15
REG_RX_PACKET_CNT_MSB = 0x16
REG_RX_PACKET_CNT_LSB = 0x17
REG_MODEM_STAT = 0x18
REG_PKT_SNR_VALUE = 0x19
REG_PKT_RSSI_VALUE = 0x1A
REG_RSSI_VALUE = 0x1B
REG_HOP_CHANNEL = 0x1C
REG_MODEM_CONFIG1 = 0x1D
REG_MODEM_CONFIG2 = 0x1E
REG_SYMB_TIMEOUT_LSB = 0x1F
REG_PREAMBLE_MSB = 0x20
REG_PREAMBLE_LSB = 0x21
REG_PAYLOAD_LENGTH = 0x22
REG_MAX_PAYLOAD_LENGTH = 0x23
REG_HOP_PERIOD = 0x24
REG_FIFO_RX_BYTE_ADDR = 0x25
REG_MODEM_CONFIG3 = 0x26
REG_DETECT_OPTIMIZE = 0x31
REG_INVERT_IQ = 0x33
REG_DETECTION_THRESHOLD = 0x37
REG_SYNC_WORD = 0x39
REG_INVERT_IQ2 = 0x3B  # undocumented in this datasheet revision, see module docstring
REG_DIO_MAPPING1 = 0x40
REG_DIO_MAPPING2 = 0x41
REG_VERSION = 0x42
REG_PA_DAC = 0x4D

#: First bit of the SPI address byte: 1 = write, 0 = read (datasheet 4.3, line ~16345).
SPI_WRITE = 0x80
SPI_ADDRESS_MASK = 0x7F
FIFO_SIZE = 256
#: The status block read in one burst after RxDone: RegFifoRxCurrentAddr .. RegHopChannel.
STATUS_BLOCK_START = REG_FIFO_RX_CURRENT_ADDR
STATUS_BLOCK_LEN = REG_HOP_CHANNEL - REG_FIFO_RX_CURRENT_ADDR + 1

# --- RegOpMode (0x01, datasheet line ~18245) -----------------------------------------------
LONG_RANGE_MODE = 0x80  # 1 = LoRa; writable only in Sleep
ACCESS_SHARED_REG = 0x40
LOW_FREQUENCY_MODE_ON = 0x08
MODE_MASK = 0x07
MODE_SLEEP = 0x00
MODE_STDBY = 0x01
MODE_FSTX = 0x02
MODE_TX = 0x03
MODE_FSRX = 0x04
MODE_RX_CONTINUOUS = 0x05
MODE_RX_SINGLE = 0x06
MODE_CAD = 0x07
MODE_NAMES = {
    MODE_SLEEP: "SLEEP", MODE_STDBY: "STDBY", MODE_FSTX: "FSTX", MODE_TX: "TX",
    MODE_FSRX: "FSRX", MODE_RX_CONTINUOUS: "RXCONTINUOUS", MODE_RX_SINGLE: "RXSINGLE",
    MODE_CAD: "CAD",
}

# --- RegIrqFlags / RegIrqFlagsMask bits (0x11/0x12, datasheet line ~18426) ---------------
IRQ_RX_TIMEOUT = 0x80
IRQ_RX_DONE = 0x40
IRQ_PAYLOAD_CRC_ERROR = 0x20
IRQ_VALID_HEADER = 0x10
IRQ_TX_DONE = 0x08
IRQ_CAD_DONE = 0x04
IRQ_FHSS_CHANGE_CHANNEL = 0x02
IRQ_CAD_DETECTED = 0x01
#: The driver unmasks exactly the IRQs it reads; a masked IRQ is "disactivated"
#: (datasheet 4.1.2.4) so its flag would never be seen.
DRIVER_IRQ_MASK = 0xFF & ~(IRQ_RX_DONE | IRQ_PAYLOAD_CRC_ERROR | IRQ_VALID_HEADER | IRQ_TX_DONE)

# --- RegDioMapping1 bits 7-6: DIO0 source (datasheet Table 18, line ~14806) ---------------
DIO0_MAPPING_MASK = 0xC0
DIO0_RX_DONE = 0x00
DIO0_TX_DONE = 0x40
DIO0_CAD_DONE = 0x80
_DIO0_SOURCES = {DIO0_RX_DONE: IRQ_RX_DONE, DIO0_TX_DONE: IRQ_TX_DONE, DIO0_CAD_DONE: IRQ_CAD_DONE}

# --- RegModemStat (0x18), RegHopChannel (0x1C) ---------------------------------------------
MODEM_STAT_CLEAR = 0x10  # bit 4 "Modem clear", reset '1'
HOP_CHANNEL_CRC_ON_PAYLOAD = 0x40  # bit 6, from the received explicit header

# --- Identity (RegVersion 0x42, line ~18016) --------------------------------------------------
EXPECTED_VERSION = 0x12

# --- Sync word (RegSyncWord 0x39, line ~18825: "Value 0x34 is reserved for LoRaWAN") ------
LORAWAN_SYNC_WORD = 0x34

# --- IQ (see module docstring) ------------------------------------------------------------
INVERT_IQ_NORMAL = 0x27
INVERT_IQ_INVERTED = 0x66
INVERT_IQ2_NORMAL = 0x1D
INVERT_IQ2_INVERTED = 0x19
INVERT_IQ_RX = 0x40  # bit 6 set: RX path inverted
INVERT_IQ_TX_NORMAL = 0x01  # bit 0 set: TX path normal; cleared: TX inverted

# --- LNA (RegLna 0x0C, line ~18374; values of the thesis gateway, line ~8627/8631) --------
LNA_GAIN_G1 = 0x20  # bits 7-5 = 001: maximum gain
LNA_BOOST_HF = 0x03  # bits 1-0 = 11: 150 % LNA current (HF port only)

# --- PA (RegPaConfig 0x09 line ~18306, Table 33 line ~16465, RegPaDac Table 34 line ~16508)
PA_SELECT_BOOST = 0x80
PA_DAC_DEFAULT = 0x84
PA_DAC_HIGH_POWER = 0x87  # +20 dBm on PA_BOOST
PA_RAMP_50US = 0x08  # thesis gateway, line ~8649
#: RegPaRamp bits 3-0 -> ramp time in s (RegPaRamp table, thesis lines ~17160-17178).
PA_RAMP_S: tuple[float, ...] = (3.4e-3, 2e-3, 1e-3, 500e-6, 250e-6, 125e-6, 100e-6, 62e-6,
                                50e-6, 40e-6, 31e-6, 25e-6, 20e-6, 15e-6, 12e-6, 10e-6)
OCP_DEFAULT = 0x2B  # OcpOn, 100 mA (reset value)
OCP_HIGH_POWER = 0x20 | 17  # OcpOn, Imax = -30 + 10 * 17 = 140 mA for +20 dBm
DEFAULT_TX_POWER_DBM = 14.0

# --- RSSI (datasheet 5.5.5, line ~16634) ----------------------------------------------------
RSSI_OFFSET_HF = -157
RSSI_OFFSET_LF = -164

#: Frequency bands of the family (datasheet "FR Synthesizer frequency range", line ~12651:
#: band 3 137-175, band 2 410-525, band 1 862-1020 MHz; 779-960 MHz on the SX1279, which
#: shares RegVersion 0x12, so 779 MHz is accepted).
BANDS_HZ: tuple[tuple[int, int], ...] = (
    (137_000_000, 175_000_000), (410_000_000, 525_000_000), (779_000_000, 1_020_000_000),
)
LF_PORT_MAX_HZ = 525_000_000

#: Reset values of the LoRa page and the common registers the driver and emulator care about
#: (datasheet 6.4 register descriptions; RegOpMode resets to FSK standby with
#: LowFrequencyModeOn = 1, i.e. 0x09).
RESET_VALUES: dict[int, int] = {
    REG_OP_MODE: 0x09, REG_FRF_MSB: 0x6C, REG_FRF_MID: 0x80, REG_FRF_LSB: 0x00,
    REG_PA_CONFIG: 0x4F, REG_PA_RAMP: 0x09, REG_OCP: 0x2B, REG_LNA: 0x20,
    REG_FIFO_ADDR_PTR: 0x00, REG_FIFO_TX_BASE_ADDR: 0x80, REG_FIFO_RX_BASE_ADDR: 0x00,
    REG_MODEM_STAT: MODEM_STAT_CLEAR, REG_MODEM_CONFIG1: 0x72, REG_MODEM_CONFIG2: 0x70,
    REG_SYMB_TIMEOUT_LSB: 0x64, REG_PREAMBLE_MSB: 0x00, REG_PREAMBLE_LSB: 0x08,
    REG_PAYLOAD_LENGTH: 0x01, REG_MAX_PAYLOAD_LENGTH: 0xFF, REG_DETECT_OPTIMIZE: 0xC3,
    REG_INVERT_IQ: INVERT_IQ_NORMAL, REG_DETECTION_THRESHOLD: 0x0A, REG_SYNC_WORD: 0x12,
    REG_INVERT_IQ2: INVERT_IQ2_NORMAL, REG_VERSION: EXPECTED_VERSION, REG_PA_DAC: PA_DAC_DEFAULT,
}


class UnsupportedPhy(RadioError, ConfigError):
    """PHY settings the SX1276 cannot apply (out-of-band frequency, power, mode)."""


def _finite(value: object, what: str) -> float:
    """A number the register arithmetic can use; NaN, infinities, ints beyond float range and
    non-numbers are UnsupportedPhy (they would otherwise fail inside int()/round())."""
    number = finite_float(value)
    if number is None:
        raise UnsupportedPhy(f"{what} {value!r} is not a finite number")
    return number


def _frf_word(frf: object) -> int:
    if isinstance(frf, bool) or not isinstance(frf, int) or not 0 <= frf < 1 << 24:
        raise UnsupportedPhy(f"Frf {frf!r} is not a 24-bit register word (RegFrf)")
    return frf


# --- Frequency ---------------------------------------------------------------------------------

def check_frequency(frequency_hz: int) -> None:
    """Raise `UnsupportedPhy` unless the frequency lies in one of the chip's bands."""
    hz = _finite(frequency_hz, "frequency")
    if not any(lo <= hz <= hi for lo, hi in BANDS_HZ):
        bands = ", ".join(f"{lo / 1e6:g}-{hi / 1e6:g}" for lo, hi in BANDS_HZ)
        raise UnsupportedPhy(
            f"frequency {hz / 1e6:g} MHz is outside the SX1276 bands ({bands} MHz)"
        )


def uses_lf_port(frequency_hz: float) -> bool:
    """True when the frequency is served by the LF port (bands 2/3, up to 525 MHz)."""
    return frequency_hz <= LF_PORT_MAX_HZ


def frf_from_frequency(frequency_hz: int) -> int:
    """Nearest 24-bit Frf for a carrier: round(f * 2^19 / 32 MHz), integer arithmetic."""
    check_frequency(frequency_hz)
    return ((int(frequency_hz) << FRF_SHIFT) + FXOSC_HZ // 2) // FXOSC_HZ


def frequency_from_frf(frf: int) -> float:
    """Exact synthesiser frequency for an Frf word, in Hz."""
    return _frf_word(frf) * FXOSC_HZ / (1 << FRF_SHIFT)


def nominal_frequency_from_frf(frf: int) -> int:
    """The channel frequency an Frf word was programmed for, to the nearest 100 Hz.

    Rounding to the nearest step is within 30.5 Hz of the request, so every frequency that
    is a multiple of 100 Hz (all regional channel plans) is recovered exactly.
    """
    return int(round(frequency_from_frf(frf) / 100.0)) * 100


def frf_bytes(frf: int) -> tuple[int, int, int]:
    """(RegFrfMsb, RegFrfMid, RegFrfLsb)."""
    return (frf >> 16) & 0xFF, (frf >> 8) & 0xFF, frf & 0xFF


# --- Modem configuration (RegModemConfig1/2/3, lines ~18606/18641/18732) ----------------------

def bandwidth_code(bandwidth_hz: int) -> int:
    """RegModemConfig1 Bw field: 0 (7.8 kHz) .. 9 (500 kHz)."""
    if bandwidth_hz not in BANDWIDTHS_HZ:
        raise UnsupportedPhy(f"bandwidth {bandwidth_hz} Hz is not an SX1276 LoRa bandwidth")
    return BANDWIDTHS_HZ.index(bandwidth_hz)


def bandwidth_from_code(code: int) -> int:
    if not 0 <= code < len(BANDWIDTHS_HZ):
        raise UnsupportedPhy(f"RegModemConfig1 Bw field {code:#x} is reserved")
    return BANDWIDTHS_HZ[code]


def coding_rate_code(coding_rate: int) -> int:
    """4/5..4/8 (denominator 5..8) -> CodingRate field 1..4."""
    if coding_rate not in (5, 6, 7, 8):
        raise UnsupportedPhy(f"coding rate 4/{coding_rate} is not supported")
    return coding_rate - 4


def coding_rate_from_code(code: int) -> int:
    if not 1 <= code <= 4:
        raise UnsupportedPhy(f"coding-rate field {code:#x} is reserved")
    return code + 4


def modem_config1(phy: PhySettings) -> int:
    """Bw(7-4) | CodingRate(3-1) | ImplicitHeaderModeOn(0)."""
    implicit = 0 if phy.explicit_header else 1
    bw = bandwidth_code(phy.bandwidth_hz)
    return (bw << 4) | (coding_rate_code(phy.coding_rate) << 1) | implicit


def modem_config2(phy: PhySettings) -> int:
    """SpreadingFactor(7-4) | TxContinuousMode 0 | RxPayloadCrcOn(2) | SymbTimeout(9:8) 0."""
    return (phy.sf << 4) | (0x04 if phy.crc_on else 0x00)


def modem_config3(phy: PhySettings) -> int:
    """LowDataRateOptimize(3) | AgcAutoOn(2) = 1 (LNA gain from the AGC, as the thesis)."""
    return (0x08 if phy.low_data_rate_optimize else 0x00) | 0x04


def lna_value(frequency_hz: int) -> int:
    """Maximum gain; 150 % LNA current on the HF port only (LnaBoostLf must stay 00)."""
    return LNA_GAIN_G1 if uses_lf_port(frequency_hz) else LNA_GAIN_G1 | LNA_BOOST_HF


def iq_registers(inverted: bool) -> tuple[int, int]:
    """(RegInvertIQ, RegInvertIQ2) for both directions normal or both inverted."""
    if inverted:
        return INVERT_IQ_INVERTED, INVERT_IQ2_INVERTED
    return INVERT_IQ_NORMAL, INVERT_IQ2_NORMAL


def rx_iq_inverted(invert_iq: int, invert_iq2: int) -> bool | None:
    """RX polarity from the two registers; None if they disagree (the chip then hears
    neither polarity reliably)."""
    rx_bit = bool(invert_iq & INVERT_IQ_RX)
    if invert_iq2 == INVERT_IQ2_INVERTED:
        return True if rx_bit else None
    if invert_iq2 == INVERT_IQ2_NORMAL:
        return None if rx_bit else False
    return None


def tx_iq_inverted(invert_iq: int) -> bool:
    return not invert_iq & INVERT_IQ_TX_NORMAL


def op_mode(mode: int, frequency_hz: float | None = None, *, lf: bool | None = None) -> int:
    """RegOpMode for LoRa `mode`, with LowFrequencyModeOn set for the LF port."""
    if lf is None:
        lf = frequency_hz is not None and uses_lf_port(frequency_hz)
    return LONG_RANGE_MODE | (LOW_FREQUENCY_MODE_ON if lf else 0) | (mode & MODE_MASK)


def dio0_source(dio_mapping1: int) -> int:
    """The IRQ flag bit routed to DIO0 by RegDioMapping1 (0 when mapping 11 = none)."""
    return _DIO0_SOURCES.get(dio_mapping1 & DIO0_MAPPING_MASK, 0)


# --- Power amplifier ---------------------------------------------------------------------------

def pa_registers(power_dbm: float, *, pa_boost: bool) -> tuple[int, int, int]:
    """(RegPaConfig, RegPaDac, RegOcp) for an output power (datasheet Table 33/34).

    PA_BOOST: +2..+17 dBm with Pout = 17 - (15 - OutputPower); +18..+20 dBm with
    RegPaDac = 0x87 (Pmax +20 dBm) and the current limit raised to 140 mA.
    RFO: Pout = Pmax - (15 - OutputPower), Pmax = 10.8 + 0.6 * MaxPower; MaxPower 7
    (Pmax 15 dBm) for 0..+15 dBm, MaxPower 0 (Pmax 10.8 dBm) for -4..-1 dBm.
    """
    p = int(round(_finite(power_dbm, "TX power (dBm)")))
    if pa_boost:
        if not 2 <= p <= 20:
            raise UnsupportedPhy(f"TX power {power_dbm:g} dBm is outside PA_BOOST's +2..+20 dBm")
        if p > 17:
            return PA_SELECT_BOOST | 0x70 | (p - 5), PA_DAC_HIGH_POWER, OCP_HIGH_POWER
        return PA_SELECT_BOOST | 0x70 | (p - 2), PA_DAC_DEFAULT, OCP_DEFAULT
    if not -4 <= p <= 15:
        raise UnsupportedPhy(f"TX power {power_dbm:g} dBm is outside RFO's -4..+15 dBm")
    if p >= 0:
        return 0x70 | p, PA_DAC_DEFAULT, OCP_DEFAULT
    return 0x00 | int(round(p + 4.2)), PA_DAC_DEFAULT, OCP_DEFAULT


def pa_output_dbm(pa_config: int, pa_dac: int) -> float:
    """Output power programmed by RegPaConfig/RegPaDac (inverse of `pa_registers`)."""
    output_power = pa_config & 0x0F
    if pa_config & PA_SELECT_BOOST:
        if pa_dac & 0x07 == 0x07:
            return float(20 - (15 - output_power))
        return float(17 - (15 - output_power))
    pmax = 10.8 + 0.6 * ((pa_config >> 4) & 0x07)
    return round(pmax - (15 - output_power), 1)


# --- The whole configuration -------------------------------------------------------------------

def config_registers(
    phy: PhySettings, *, pa_boost: bool = True, tx_power_dbm: float | None = None
) -> list[tuple[int, int]]:
    """Every register write that applies `phy`, in order; write in LoRa Sleep/Standby.

    RegOpMode is not included (the caller sequences modes). FIFO: both base addresses 0x00
    so RX and TX may each use all 256 bytes (datasheet 4.1.2.3). DIO0 is mapped to RxDone.
    """
    check_frequency(phy.frequency_hz)
    if phy.sf == 6 or not phy.explicit_header:
        raise UnsupportedPhy(
            "implicit-header mode (and so SF6) needs a fixed payload length per frame; "
            "this driver uses explicit headers as LoRaWAN does"
        )
    if phy.preamble_symbols < 6:
        raise UnsupportedPhy(
            f"preamble of {phy.preamble_symbols} symbols is below the SX1276 minimum of 6"
        )
    power = phy.tx_power_dbm if phy.tx_power_dbm is not None else tx_power_dbm
    pa_config, pa_dac, ocp = pa_registers(
        DEFAULT_TX_POWER_DBM if power is None else power, pa_boost=pa_boost
    )
    msb, mid, lsb = frf_bytes(frf_from_frequency(phy.frequency_hz))
    invert_iq, invert_iq2 = iq_registers(phy.iq_inverted)
    return [
        (REG_FRF_MSB, msb), (REG_FRF_MID, mid), (REG_FRF_LSB, lsb),
        (REG_PA_CONFIG, pa_config), (REG_PA_RAMP, PA_RAMP_50US), (REG_OCP, ocp),
        (REG_LNA, lna_value(phy.frequency_hz)),
        (REG_FIFO_TX_BASE_ADDR, 0x00), (REG_FIFO_RX_BASE_ADDR, 0x00),
        (REG_IRQ_FLAGS_MASK, DRIVER_IRQ_MASK),
        (REG_MODEM_CONFIG1, modem_config1(phy)), (REG_MODEM_CONFIG2, modem_config2(phy)),
        (REG_PREAMBLE_MSB, (phy.preamble_symbols >> 8) & 0xFF),
        (REG_PREAMBLE_LSB, phy.preamble_symbols & 0xFF),
        (REG_MAX_PAYLOAD_LENGTH, 0xFF), (REG_HOP_PERIOD, 0x00),
        (REG_MODEM_CONFIG3, modem_config3(phy)),
        (REG_DETECT_OPTIMIZE, 0xC3),  # reserved bits 7-3 keep 0xC0; 0x03 = SF7..SF12
        (REG_INVERT_IQ, invert_iq), (REG_DETECTION_THRESHOLD, 0x0A),
        (REG_SYNC_WORD, phy.sync_word), (REG_INVERT_IQ2, invert_iq2),
        (REG_DIO_MAPPING1, DIO0_RX_DONE), (REG_PA_DAC, pa_dac),
    ]


def phy_from_registers(
    read: Callable[[int], int] | Mapping[int, int], *, for_tx: bool
) -> PhySettings:
    """The PHY a chip with these register values would transmit (`for_tx`) or listen with.

    Raises `UnsupportedPhy` for reserved field values or inconsistent RX IQ registers.
    """
    get: Callable[[int], int] = read.__getitem__ if isinstance(read, Mapping) else read
    frf = (get(REG_FRF_MSB) << 16) | (get(REG_FRF_MID) << 8) | get(REG_FRF_LSB)
    cfg1, cfg2, cfg3 = get(REG_MODEM_CONFIG1), get(REG_MODEM_CONFIG2), get(REG_MODEM_CONFIG3)
    sf = cfg2 >> 4
    if not 6 <= sf <= 12:
        raise UnsupportedPhy(f"RegModemConfig2 spreading factor {sf} is reserved")
    if for_tx:
        iq = tx_iq_inverted(get(REG_INVERT_IQ))
        power: float | None = pa_output_dbm(get(REG_PA_CONFIG), get(REG_PA_DAC))
    else:
        rx_iq = rx_iq_inverted(get(REG_INVERT_IQ), get(REG_INVERT_IQ2))
        if rx_iq is None:
            raise UnsupportedPhy(
                f"RegInvertIQ {get(REG_INVERT_IQ):#04x} and RegInvertIQ2 {get(REG_INVERT_IQ2):#04x}"
                " disagree on the RX IQ polarity"
            )
        iq, power = rx_iq, None
    try:
        return PhySettings(
            frequency_hz=nominal_frequency_from_frf(frf),
            sf=sf,
            bandwidth_hz=bandwidth_from_code(cfg1 >> 4),
            coding_rate=coding_rate_from_code((cfg1 >> 1) & 0x07),
            preamble_symbols=(get(REG_PREAMBLE_MSB) << 8) | get(REG_PREAMBLE_LSB),
            explicit_header=not cfg1 & 0x01,
            crc_on=bool(cfg2 & 0x04),
            ldro="on" if cfg3 & 0x08 else "off",
            sync_word=get(REG_SYNC_WORD),
            iq_inverted=iq,
            tx_power_dbm=power,
        )
    except ConfigError as exc:
        if isinstance(exc, UnsupportedPhy):
            raise
        raise UnsupportedPhy(f"registers do not describe a valid LoRa PHY: {exc}") from None


# --- RSSI and SNR (datasheet 5.5.5 line ~16634; RegPktSnrValue/RegPktRssiValue/RegRssiValue
#     lines ~18541-18576; "SNR[dB] = PacketSnr[two's complement] / 4", line ~18601) ------------

def rssi_offset(lf_port: bool) -> int:
    return RSSI_OFFSET_LF if lf_port else RSSI_OFFSET_HF


def decode_snr(reg: int) -> float:
    """RegPktSnrValue (two's complement, x4) -> SNR in dB."""
    reg &= 0xFF
    return (reg - 256 if reg & 0x80 else reg) / 4.0


def encode_snr(snr_db: float) -> int:
    """SNR in dB -> RegPktSnrValue, rounded to 0.25 dB and saturated to -32..+31.75 dB."""
    snr = max(-64.0, min(64.0, _finite(snr_db, "SNR (dB)")))  # saturates below anyway
    quarter = max(-128, min(127, int(round(snr * 4.0))))
    return quarter & 0xFF


def decode_packet_rssi(pkt_rssi_reg: int, snr_db: float, lf_port: bool) -> float:
    """Packet strength in dBm: offset + PacketRssi, plus the SNR when it is negative."""
    strength = rssi_offset(lf_port) + (pkt_rssi_reg & 0xFF)
    return strength + snr_db if snr_db < 0 else float(strength)


def encode_packet_rssi(rssi_dbm: float, snr_reg: int, lf_port: bool) -> int:
    """Inverse of `decode_packet_rssi` for the SNR the chip reports (register `snr_reg`)."""
    snr_db = decode_snr(snr_reg)
    raw = _finite(rssi_dbm, "packet RSSI (dBm)") - rssi_offset(lf_port) - (snr_db if snr_db < 0 else 0.0)
    return max(0, min(255, int(round(raw))))


def decode_rssi(rssi_reg: int, lf_port: bool) -> float:
    """RegRssiValue (current channel RSSI) -> dBm."""
    return float(rssi_offset(lf_port) + (rssi_reg & 0xFF))


def encode_rssi(rssi_dbm: float, lf_port: bool) -> int:
    return max(0, min(255, int(round(_finite(rssi_dbm, "RSSI (dBm)") - rssi_offset(lf_port)))))


def rx_coding_rate(modem_stat: int) -> int | None:
    """Coding rate (denominator) of the last header from RegModemStat bits 7-5, or None."""
    code = (modem_stat >> 5) & 0x07
    return code + 4 if 1 <= code <= 4 else None


def tx_startup_s(pa_ramp_register: int) -> float:
    """Standby -> first symbol with RegPaRamp = ``pa_ramp_register`` (core.phy's formula)."""
    return sx127x_tx_startup_s(PA_RAMP_S[pa_ramp_register & 0x0F])
