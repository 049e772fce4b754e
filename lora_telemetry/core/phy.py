"""LoRa physical-layer description and maths: symbol time, bit rate and time on air.

One value object, :class:`PhySettings`, describes a LoRa transmission completely; every radio
driver, emulator and the simulated medium use it, so two radios "hear" each other exactly when
their settings match. The formulas are those of the SX1276/77/78/79 datasheet section 4.1.1
(thesis file lines ~14150-14400) and of the thesis, equations 4.2.1 and 4.2.2 (lines ~1385-1398).

Decisions worth knowing:

* Bandwidths are the datasheet's nominal values in Hz (RegModemConfig1, thesis line ~18612:
  7.8, 10.4, 15.6, 20.8, 31.25, 41.7, 62.5, 125, 250, 500 kHz). The datasheet's own tables
  compute with these nominal figures, so airtimes here do too.
* SF6 is only possible with an implicit header on the SX1276 ("With SF = 6 selected, implicit
  header mode is the only mode of operation possible", datasheet 4.1.1.6, line ~14301). A
  ``PhySettings`` with ``sf=6`` and ``explicit_header=True`` is therefore rejected.
* Low-data-rate optimisation ``"auto"`` switches on when the symbol time exceeds 16 ms
  ("Its use is mandated when the symbol duration exceeds 16ms", datasheet, line ~14347;
  RegModemConfig3, line ~18738). No
  nominal SF/bandwidth pair gives exactly 16 ms, so ">" and ">=" agree for every valid setting;
  the thesis gateway sets it for SF11 and SF12 at 125 kHz (line ~8590).
* ``preamble_symbols`` is the *programmed* preamble length (register value); the airtime adds
  the datasheet's fixed 4.25 symbols. 0-65535 is accepted (the RN2483 ``radio set prlen`` range,
  line ~21110); the SX1276 register itself documents 6 as its minimum (line ~14275).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lora_telemetry.core.errors import ConfigError

__all__ = [
    "BANDWIDTHS_HZ",
    "CODING_RATES",
    "SPREADING_FACTORS",
    "LDRO_SYMBOL_TIME_S",
    "MAX_PAYLOAD_BYTES",
    "PhySettings",
    "parse_bandwidth",
    "parse_coding_rate",
    "parse_spreading_factor",
    "format_bandwidth",
    "format_coding_rate",
    "symbol_time",
    "symbol_rate",
    "nominal_bit_rate",
    "effective_bit_rate",
    "low_data_rate_optimize",
    "preamble_time",
    "payload_symbols",
    "time_on_air",
    "airtime_ms",
    "max_payload_for_airtime",
    "THERMAL_NOISE_DBM_PER_HZ",
    "DEFAULT_NOISE_FIGURE_DB",
    "noise_floor_dbm",
    "SX127X_TS_FS_S",
    "SX127X_PA_RAMP_RESET_S",
    "sx127x_tx_startup_s",
]

#: Nominal LoRa bandwidths of the SX1276 (RegModemConfig1 Bw field), in Hz.
BANDWIDTHS_HZ: tuple[int, ...] = (
    7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000,
)
#: Spreading factors of the SX1276 (datasheet Table 13).
SPREADING_FACTORS: tuple[int, ...] = (6, 7, 8, 9, 10, 11, 12)
#: Coding rates as the denominator of 4/x: 5 means 4/5 ... 8 means 4/8 (datasheet Table 14).
CODING_RATES: tuple[int, ...] = (5, 6, 7, 8)
#: Symbol time above which low-data-rate optimisation is mandated (datasheet 4.1.1.6).
LDRO_SYMBOL_TIME_S = 0.016
#: Largest LoRa payload, in bytes ("PL is the number of Payload bytes (1 to 255)", 4.1.1.7).
MAX_PAYLOAD_BYTES = 255

_LDRO_MODES = ("auto", "on", "off")
# Labels (kHz) that people and the RN2483 use, mapped to Hz. "31.2" is how the datasheet's
# nominal-bit-rate table prints 31.25 kHz.
_BANDWIDTH_LABELS_KHZ: dict[str, int] = {
    "7.8": 7800, "10.4": 10400, "15.6": 15600, "20.8": 20800, "31.25": 31250, "31.2": 31250,
    "41.7": 41700, "62.5": 62500, "125": 125000, "250": 250000, "500": 500000,
}
_SX1276_FREQ_RANGE_HZ = (137_000_000, 1_020_000_000)  # datasheet Table 1, line ~12452
_TX_POWER_SANITY_DBM = 40.0  # 10 W: far above any LoRa module; catches mW/dBm mix-ups


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_coding_rate(value: str | int) -> int:
    """Parse "4/5".."4/8" (or the denominator 5..8) into the denominator used by PhySettings."""
    if _is_int(value):
        cr = value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if "/" in text:
            num, _, den = text.partition("/")
            if num != "4" or not den.isdecimal():
                raise ConfigError(f"coding rate {value!r} is not of the form 4/5 .. 4/8")
            cr = int(den)
        elif text.isdecimal():
            cr = int(text)
        else:
            raise ConfigError(f"coding rate {value!r} is not of the form 4/5 .. 4/8")
    else:
        raise ConfigError(f"coding rate must be a string like '4/5' or an int 5..8, got {value!r}")
    if cr not in CODING_RATES:
        raise ConfigError(f"coding rate 4/{cr} is not supported; use 4/5, 4/6, 4/7 or 4/8")
    return cr


def format_coding_rate(cr: int) -> str:
    """Denominator 5..8 -> "4/5".."4/8"."""
    return f"4/{parse_coding_rate(cr)}"


def parse_bandwidth(value: str | int | float) -> int:
    """Parse a LoRa bandwidth into Hz.

    Accepts kHz labels as strings or numbers ("125", "7.8", "125 kHz", 62.5), explicit Hz
    ("125000 Hz") and numbers already in Hz (125000). The kHz labels (7.8..500) and the Hz
    values (7800..500000) do not overlap, so a bare number is unambiguous.
    """
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        unit = "khz" if text.endswith("khz") else "hz" if text.endswith("hz") else ""
        text = text[: len(text) - len(unit)]
        if unit != "hz" and text in _BANDWIDTH_LABELS_KHZ:
            return _BANDWIDTH_LABELS_KHZ[text]
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"bandwidth {value!r} is not a number") from None
        hz = _bandwidth_from_number(number, allow_khz=unit != "hz", allow_hz=unit != "khz")
        if hz is not None:
            return hz
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        hz = _bandwidth_from_number(value, allow_khz=True, allow_hz=True)
        if hz is not None:
            return hz
    raise ConfigError(
        f"bandwidth {value!r} is not a LoRa bandwidth; use one of "
        + ", ".join(format_bandwidth(bw) for bw in BANDWIDTHS_HZ) + " kHz"
    )


def _bandwidth_from_number(number: float, *, allow_khz: bool, allow_hz: bool) -> int | None:
    if not math.isfinite(number):
        return None
    if allow_hz and number == int(number) and int(number) in BANDWIDTHS_HZ:
        return int(number)
    if allow_khz:
        return _BANDWIDTH_LABELS_KHZ.get(f"{number:g}")
    return None


def format_bandwidth(bandwidth_hz: int) -> str:
    """Hz -> the kHz label the datasheet and RN2483 use ("125", "7.8", "31.25")."""
    return f"{bandwidth_hz / 1000:g}"


def parse_spreading_factor(value: str | int) -> int:
    """Parse "SF7", "sf7", "7" or 7 into 7 (6..12)."""
    if _is_int(value):
        sf = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("sf"):
            text = text[2:]
        if not text.isdecimal():
            raise ConfigError(f"spreading factor {value!r} is not of the form SF7 or 7")
        sf = int(text)
    else:
        raise ConfigError(f"spreading factor must be a string like 'SF7' or an int, got {value!r}")
    if sf not in SPREADING_FACTORS:
        raise ConfigError(f"spreading factor {sf} is out of range; use 6..12")
    return sf


@dataclass(frozen=True)
class PhySettings:
    """Everything that decides whether, and for how long, a LoRa frame is on the air.

    Frozen and hashable: use it as a dict key, compare two radios' settings with ``==``, and
    derive variants with ``dataclasses.replace`` (which re-validates).
    """

    frequency_hz: int
    sf: int
    bandwidth_hz: int
    coding_rate: int = 5
    preamble_symbols: int = 8
    explicit_header: bool = True
    crc_on: bool = True
    ldro: str = "auto"
    sync_word: int = 0x34
    iq_inverted: bool = False
    tx_power_dbm: float | None = None

    def __post_init__(self) -> None:
        # Normalise friendly spellings first (frozen: go through object.__setattr__).
        freq = self.frequency_hz
        if isinstance(freq, float) and math.isfinite(freq):
            freq = round(freq)
        if not _is_int(freq):
            raise ConfigError(f"frequency_hz must be a number of Hz, got {self.frequency_hz!r}")
        lo, hi = _SX1276_FREQ_RANGE_HZ
        if not lo <= freq <= hi:
            raise ConfigError(
                f"frequency {freq} Hz is outside the LoRa radio range {lo / 1e6:g}-{hi / 1e6:g} MHz"
                " (did you give MHz instead of Hz?)"
            )
        object.__setattr__(self, "frequency_hz", freq)

        if not _is_int(self.sf) or self.sf not in SPREADING_FACTORS:
            raise ConfigError(f"spreading factor {self.sf!r} is out of range; use an int 6..12")
        bw = self.bandwidth_hz
        if isinstance(bw, float) and math.isfinite(bw) and bw == int(bw):
            bw = int(bw)
        if not _is_int(bw) or bw not in BANDWIDTHS_HZ:
            raise ConfigError(
                f"bandwidth {self.bandwidth_hz!r} Hz is not a LoRa bandwidth; use one of "
                + ", ".join(str(b) for b in BANDWIDTHS_HZ) + " (Hz)"
            )
        object.__setattr__(self, "bandwidth_hz", bw)
        if not _is_int(self.coding_rate) or self.coding_rate not in CODING_RATES:
            raise ConfigError(
                f"coding_rate {self.coding_rate!r} must be the denominator 5..8 (4/5..4/8);"
                " parse_coding_rate('4/5') converts the usual spelling"
            )
        if not _is_int(self.preamble_symbols) or not 0 <= self.preamble_symbols <= 65535:
            raise ConfigError(f"preamble_symbols {self.preamble_symbols!r} must be an int 0..65535")
        for name in ("explicit_header", "crc_on", "iq_inverted"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        ldro = self.ldro
        if isinstance(ldro, bool):
            ldro = "on" if ldro else "off"
        if not isinstance(ldro, str) or ldro.lower() not in _LDRO_MODES:
            raise ConfigError(f"ldro {self.ldro!r} must be 'auto', 'on' or 'off'")
        object.__setattr__(self, "ldro", ldro.lower())
        if not _is_int(self.sync_word) or not 0 <= self.sync_word <= 0xFF:
            raise ConfigError(f"sync_word {self.sync_word!r} must be one byte (0x00..0xFF)")
        if self.tx_power_dbm is not None:
            p = self.tx_power_dbm
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
                raise ConfigError(f"tx_power_dbm {p!r} must be a finite number of dBm or None")
            if abs(p) > _TX_POWER_SANITY_DBM:
                raise ConfigError(f"tx_power_dbm {p!r} dBm is not plausible (mW given as dBm?)")
        if self.sf == 6 and self.explicit_header:
            raise ConfigError(
                "SF6 requires implicit header mode (SX1276 datasheet 4.1.1.6): "
                "set explicit_header=False"
            )

    # Convenience wrappers so callers can write ``phy.time_on_air(n)``.
    @property
    def symbol_time(self) -> float:
        """Seconds per symbol."""
        return symbol_time(self)

    @property
    def low_data_rate_optimize(self) -> bool:
        """Whether LowDataRateOptimize is in effect for these settings."""
        return low_data_rate_optimize(self)

    def time_on_air(self, payload_len: int) -> float:
        """Seconds on air for ``payload_len`` bytes of LoRa payload."""
        return time_on_air(self, payload_len)

    def airtime_ms(self, payload_len: int) -> float:
        """Milliseconds on air for ``payload_len`` bytes of LoRa payload."""
        return airtime_ms(self, payload_len)


def symbol_time(phy: PhySettings) -> float:
    """T_s = 2^SF / BW seconds (thesis eq. 4.2.1; datasheet 4.1.1.5)."""
    return (1 << phy.sf) / phy.bandwidth_hz


def symbol_rate(phy: PhySettings) -> float:
    """R_s = BW / 2^SF symbols per second (thesis eq. 4.2.1)."""
    return phy.bandwidth_hz / (1 << phy.sf)


def nominal_bit_rate(phy: PhySettings) -> float:
    """R_b = SF * R_s * 4/(4+CR) bit/s (thesis eq. 4.2.2; datasheet's "Nominal Rb" table).

    Our ``coding_rate`` is the denominator (4+CR), so the factor is 4/coding_rate.
    """
    return phy.sf * symbol_rate(phy) * 4 / phy.coding_rate


def effective_bit_rate(phy: PhySettings) -> float:
    """Bit rate counting the bits per symbol actually carried: (SF - 2*DE) * R_s * 4/CR.

    With low-data-rate optimisation each symbol carries two bits fewer; the LoRaWAN
    "indicative physical bit rate" figures (e.g. 250 bit/s for SF12/125 kHz) follow this.
    """
    de = 2 if low_data_rate_optimize(phy) else 0
    return (phy.sf - de) * symbol_rate(phy) * 4 / phy.coding_rate


def low_data_rate_optimize(phy: PhySettings) -> bool:
    """LowDataRateOptimize: forced by ``ldro`` or, on "auto", when T_s > 16 ms."""
    if phy.ldro == "on":
        return True
    if phy.ldro == "off":
        return False
    return symbol_time(phy) > LDRO_SYMBOL_TIME_S


def preamble_time(phy: PhySettings) -> float:
    """T_preamble = (n_preamble + 4.25) * T_s (datasheet 4.1.1.7)."""
    return (phy.preamble_symbols + 4.25) * symbol_time(phy)


def _check_payload_len(payload_len: int) -> None:
    if not _is_int(payload_len) or not 1 <= payload_len <= MAX_PAYLOAD_BYTES:
        raise ConfigError(
            f"LoRa payload length {payload_len!r} must be an int 1..{MAX_PAYLOAD_BYTES} bytes"
        )


def payload_symbols(phy: PhySettings, payload_len: int) -> int:
    """Number of payload symbols (datasheet 4.1.1.7).

    8 + max(ceil((8PL - 4SF + 28 + 16CRC - 20IH) / (4(SF - 2DE))) * (CR + 4), 0),
    where CR + 4 is our ``coding_rate``. Integer arithmetic: no float rounding at the ceiling.
    """
    _check_payload_len(payload_len)
    crc = 1 if phy.crc_on else 0
    ih = 0 if phy.explicit_header else 1
    de = 1 if low_data_rate_optimize(phy) else 0
    numerator = 8 * payload_len - 4 * phy.sf + 28 + 16 * crc - 20 * ih
    denominator = 4 * (phy.sf - 2 * de)
    blocks = -(-numerator // denominator)  # ceil for ints, also for negative numerators
    return 8 + max(blocks * phy.coding_rate, 0)


def time_on_air(phy: PhySettings, payload_len: int) -> float:
    """T_packet = T_preamble + T_payload in seconds (datasheet 4.1.1.7)."""
    return preamble_time(phy) + payload_symbols(phy, payload_len) * symbol_time(phy)


def airtime_ms(phy: PhySettings, payload_len: int) -> float:
    """:func:`time_on_air` in milliseconds."""
    return time_on_air(phy, payload_len) * 1000.0


def max_payload_for_airtime(phy: PhySettings, max_airtime_s: float) -> int:
    """Largest payload (bytes) whose time on air is <= ``max_airtime_s``; 0 if none fits.

    Useful for dwell-time limits such as US902-928's 400 ms (LoRaWAN 1.0 section 7.2.2).
    """
    if isinstance(max_airtime_s, bool) or not isinstance(max_airtime_s, (int, float)) or not (
        math.isfinite(max_airtime_s)
    ):
        raise ConfigError(f"max_airtime_s {max_airtime_s!r} must be a finite number of seconds")
    lo, hi = 0, MAX_PAYLOAD_BYTES  # invariant: lo fits (0 = "nothing"), answer in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if time_on_air(phy, mid) <= max_airtime_s:
            lo = mid
        else:
            hi = mid - 1
    return lo


#: kT at 290 K, per Hz of bandwidth.
THERMAL_NOISE_DBM_PER_HZ = -174.0
#: Receiver noise figure that reproduces the SX1276's 125 kHz sensitivities (RFS_L125_HF,
#: thesis line ~13482) within 1 dB for SF7-SF12; the simulated medium's default too.
DEFAULT_NOISE_FIGURE_DB = 7.0


def noise_floor_dbm(bandwidth_hz: int, noise_figure_db: float = DEFAULT_NOISE_FIGURE_DB,
                    thermal_dbm_per_hz: float = THERMAL_NOISE_DBM_PER_HZ) -> float:
    """A quiet channel's power: thermal noise in the bandwidth plus the noise figure."""
    return thermal_dbm_per_hz + 10.0 * math.log10(bandwidth_hz) + noise_figure_db


# --- The transceiver's start-up (SX1276/77/78/79 datasheet; the RN2483 and the EByte E32 both
# carry an SX127x, so their firmware's delays add to these) ------------------------------------
#: TS_FS, "Frequency synthesizer wake-up time to PllLock signal From Standby mode", typ. 60 us
#: (datasheet 2.5.2, thesis line ~12676).
SX127X_TS_FS_S = 60e-6
#: RegPaRamp's reset value 0x09: 40 us (datasheet RegPaRamp table, thesis line ~17160-17178).
SX127X_PA_RAMP_RESET_S = 40e-6


def sx127x_tx_startup_s(pa_ramp_s: float = SX127X_PA_RAMP_RESET_S) -> float:
    """From Standby to the first bit on the air: TS_FS + TS_TR, TS_TR = 5 us + 1.25 PaRamp.

    The datasheet's TS_TR formula (4.2.5.1, thesis line ~15224-15271) is the FSK one,
    ``5 us + 1.25 PaRamp + Tbit / 2``; the half bit of the FSK bit clock has no LoRa
    counterpart, so (assumption) a LoRa frame starts 5 us + 1.25 PaRamp after the PLL lock.
    With the reset PaRamp: 60 + 5 + 50 = 115 us; with the thesis gateway's 50 us: 127.5 us.
    """
    return SX127X_TS_FS_S + 5e-6 + 1.25 * pa_ramp_s
