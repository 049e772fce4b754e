"""LoRaWAN 1.0 regional parameters: EU863-870, US902-928, CN779-787 and EU433.

Every figure is transcribed from chapter 7 ("Physical Layer") of the LoRaWAN Specification 1.0
carried in the thesis file (lines ~5100-6270). Table numbers below are the specification's.

Decisions worth knowing:

* Tables are reproduced as printed, quirks included: CN779 Table 27 gives DR6 M=250/N=242 in
  the repeater-compatible table (all other bands give 230/222), and US902-928 Table 18 prints
  indicative bit rates of 980 and 1760 bit/s for DR8/DR9 (SF12 and SF11 at 500 kHz).
* FSK data rates are represented (``modulation == "FSK"``, ``sf``/``bandwidth_hz`` None) but
  :meth:`Region.phy` refuses them: this project's radios speak LoRa only.
* The 1.0 specification gives EU433 and CN779 no separate "default output power"; their
  default here is TXPower 0 (10 dBm), which equals their EIRP limit (sections 7.3.2, 7.4.2).
* ``lorawan_duty_cycle`` is the band-wide limit LoRaWAN asks for (EU433/CN779: 1%).
  EU868's limits are per ETSI sub-band: see :mod:`lora_telemetry.core.dutycycle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings

__all__ = ["DataRate", "MaxPayload", "Region", "REGIONS", "get_region", "region_names"]

# LoRaWAN framing around the MACPayload: MHDR (1 byte) + MIC (4 bytes), spec section 4.
_MHDR_MIC_BYTES = 5


@dataclass(frozen=True)
class DataRate:
    """One row of a region's data-rate table."""

    index: int
    modulation: str  # "LORA" or "FSK"
    sf: int | None
    bandwidth_hz: int | None
    bitrate_bps: int  # the specification's "indicative physical bit rate"

    @property
    def is_lora(self) -> bool:
        return self.modulation == "LORA"

    @property
    def name(self) -> str:
        """Semtech packet-forwarder style identifier: "SF12BW125", or "FSK50000"."""
        if self.is_lora:
            return f"SF{self.sf}BW{self.bandwidth_hz // 1000}"
        return f"FSK{self.bitrate_bps}"


@dataclass(frozen=True)
class MaxPayload:
    """Maximum MACPayload size M and application payload N (without FOpts), in bytes."""

    m: int
    n: int

    @property
    def phy_payload(self) -> int:
        """Largest PHYPayload: M plus MHDR and MIC."""
        return self.m + _MHDR_MIC_BYTES


def _ro(mapping: dict) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class Region:
    """Regional parameters of one LoRaWAN 1.0 band plan (all frequencies in Hz).

    Compared and hashed by identity: each region is a module-level singleton.
    """

    name: str
    description: str
    freq_min_hz: int
    freq_max_hz: int
    sync_word: int
    preamble_symbols: int
    default_channels_hz: tuple[int, ...]
    join_channels_hz: tuple[int, ...]
    data_rates: Mapping[int, DataRate]
    uplink_drs: tuple[int, ...]
    downlink_drs: tuple[int, ...]
    default_channel_drs: tuple[int, int]
    max_payload: Mapping[int, MaxPayload]  # repeater compatible
    max_payload_no_repeater: Mapping[int, MaxPayload]
    tx_power_dbm: Mapping[int, float]  # TXPower index -> dBm
    default_tx_power_dbm: float
    max_eirp_dbm: float
    rx1_dr_table: tuple[tuple[int, ...], ...]  # [uplink position][RX1DROffset] -> DR
    rx1_dr_uplinks: tuple[int, ...]  # the uplink DR of each row of rx1_dr_table
    rx2_frequency_hz: int
    rx2_dr: int
    downlink_channels_hz: tuple[int, ...] = ()  # US902-928: RX1 channel = uplink channel mod 8
    max_channels: int = 16
    lorawan_duty_cycle: float | None = None
    join_duty_cycle: float | None = None
    max_dwell_time_s: float | None = None
    receive_delay1_s: float = 1.0
    receive_delay2_s: float = 2.0
    join_accept_delay1_s: float = 5.0
    join_accept_delay2_s: float = 6.0
    max_fcnt_gap: int = 16384
    adr_ack_limit: int = 64
    adr_ack_delay: int = 32
    ack_timeout_s: float = 2.0
    ack_timeout_jitter_s: float = 1.0
    max_eirp_dbm_by_bandwidth: Mapping[int, float] = field(default_factory=lambda: _ro({}))
    aliases: tuple[str, ...] = ()

    # -- look-ups -------------------------------------------------------------------------
    def data_rate(self, dr: int) -> DataRate:
        """The data-rate table row for ``dr``; ConfigError for RFU/undefined indices."""
        try:
            return self.data_rates[dr]
        except (KeyError, TypeError):
            raise ConfigError(
                f"{self.name} has no data rate DR{dr!r}; defined: "
                + ", ".join(f"DR{i}" for i in sorted(self.data_rates))
            ) from None

    def dr_for(self, sf: int, bandwidth_hz: int, *, uplink: bool = True) -> int:
        """Data-rate index of a LoRa SF/bandwidth pair (uplink DRs first, then downlink)."""
        order = self.uplink_drs if uplink else self.downlink_drs
        for dr in order:
            rate = self.data_rates[dr]
            if rate.is_lora and rate.sf == sf and rate.bandwidth_hz == bandwidth_hz:
                return dr
        direction = "uplink" if uplink else "downlink"
        raise ConfigError(f"{self.name} has no {direction} data rate SF{sf}/{bandwidth_hz} Hz")

    def max_payload_size(self, dr: int, *, repeater: bool = True) -> MaxPayload:
        """M and N for ``dr`` (repeater-compatible table unless ``repeater=False``)."""
        table = self.max_payload if repeater else self.max_payload_no_repeater
        self.data_rate(dr)
        try:
            return table[dr]
        except KeyError:
            raise ConfigError(f"{self.name} defines no maximum payload for DR{dr}") from None

    def max_app_payload(self, dr: int, *, repeater: bool = True) -> int:
        """N: the largest FRMPayload with empty FOpts, in bytes."""
        return self.max_payload_size(dr, repeater=repeater).n

    def tx_power(self, index: int) -> float:
        """TXPower index -> output power in dBm; ConfigError for RFU indices."""
        try:
            return self.tx_power_dbm[index]
        except (KeyError, TypeError):
            raise ConfigError(
                f"{self.name} TXPower index {index!r} is RFU; valid 0..{max(self.tx_power_dbm)}"
            ) from None

    def rx1_dr(self, uplink_dr: int, rx1_dr_offset: int = 0) -> int:
        """Downlink data rate of the RX1 window (Tables "RX1DROffset")."""
        if uplink_dr not in self.rx1_dr_uplinks:
            raise ConfigError(f"{self.name}: DR{uplink_dr!r} is not an uplink data rate")
        row = self.rx1_dr_table[self.rx1_dr_uplinks.index(uplink_dr)]
        if (
            isinstance(rx1_dr_offset, bool)
            or not isinstance(rx1_dr_offset, int)
            or not 0 <= rx1_dr_offset < len(row)
        ):
            raise ConfigError(
                f"{self.name}: RX1DROffset {rx1_dr_offset!r} is out of range 0..{len(row) - 1}"
            )
        return row[rx1_dr_offset]

    def rx1_frequency_hz(self, uplink_frequency_hz: int) -> int:
        """RX1 frequency: the uplink channel itself, or (US902-928) downlink channel = ch mod 8."""
        if not self.downlink_channels_hz:
            self.check_frequency(uplink_frequency_hz)
            return uplink_frequency_hz
        try:
            channel = self.default_channels_hz.index(uplink_frequency_hz)
        except ValueError:
            raise ConfigError(
                f"{self.name}: {uplink_frequency_hz} Hz is not an uplink channel"
            ) from None
        return self.downlink_channels_hz[channel % len(self.downlink_channels_hz)]

    def max_eirp_for(self, bandwidth_hz: int) -> float:
        """Maximum output power for a channel bandwidth (US902-928: 26 dBm at 500 kHz)."""
        return self.max_eirp_dbm_by_bandwidth.get(bandwidth_hz, self.max_eirp_dbm)

    def check_frequency(self, frequency_hz: int) -> None:
        """ConfigError unless ``frequency_hz`` lies in the band the region allows."""
        if isinstance(frequency_hz, bool) or not isinstance(frequency_hz, (int, float)):
            raise ConfigError(f"frequency {frequency_hz!r} must be a number of Hz")
        if not self.freq_min_hz <= frequency_hz <= self.freq_max_hz:
            raise ConfigError(
                f"{frequency_hz} Hz is outside {self.name} "
                f"({self.freq_min_hz / 1e6:g}-{self.freq_max_hz / 1e6:g} MHz)"
            )

    def phy(
        self,
        dr: int,
        frequency_hz: int | None = None,
        *,
        uplink: bool = True,
        tx_power_dbm: float | None = None,
        coding_rate: int = 5,
    ) -> PhySettings:
        """PhySettings for a LoRaWAN frame at ``dr``.

        Uplinks carry a payload CRC, downlinks do not (spec Figure 5, "CRC* is only available
        on uplink messages"); downlinks use inverted IQ, as LoRaWAN gateways transmit them, so
        that end-devices do not hear each other's uplinks. Default frequency: the first default
        channel for uplinks, the RX2 frequency for downlinks. LoRaWAN uses coding rate 4/5.
        """
        rate = self.data_rate(dr)
        if not rate.is_lora:
            raise ConfigError(f"{self.name} DR{dr} is {rate.name}: FSK is not supported here")
        if frequency_hz is None:
            frequency_hz = self.default_channels_hz[0] if uplink else self.rx2_frequency_hz
        self.check_frequency(frequency_hz)
        assert rate.sf is not None and rate.bandwidth_hz is not None
        return PhySettings(
            frequency_hz=frequency_hz,
            sf=rate.sf,
            bandwidth_hz=rate.bandwidth_hz,
            coding_rate=coding_rate,
            preamble_symbols=self.preamble_symbols,
            explicit_header=True,
            crc_on=uplink,
            sync_word=self.sync_word,
            iq_inverted=not uplink,
            tx_power_dbm=tx_power_dbm,
        )


def _lora(index: int, sf: int, bw_khz: int, bitrate: int) -> DataRate:
    return DataRate(index, "LORA", sf, bw_khz * 1000, bitrate)


def _mhz(*values: float) -> tuple[int, ...]:
    return tuple(round(v * 1_000_000) for v in values)


def _payloads(rows: dict[int, tuple[int, int]]) -> Mapping[int, MaxPayload]:
    return _ro({dr: MaxPayload(m, n) for dr, (m, n) in rows.items()})


# EU863-870, EU433 and CN779 share the data-rate table (Tables 14, 25, 31) and the RX1DROffset
# table (sections 7.1.7, 7.3.7, 7.4.7).
_EU_STYLE_DRS = _ro({
    0: _lora(0, 12, 125, 250),
    1: _lora(1, 11, 125, 440),
    2: _lora(2, 10, 125, 980),
    3: _lora(3, 9, 125, 1760),
    4: _lora(4, 8, 125, 3125),
    5: _lora(5, 7, 125, 5470),
    6: _lora(6, 7, 250, 11000),
    7: DataRate(7, "FSK", None, None, 50000),
})
_EU_STYLE_RX1 = tuple(
    tuple(max(up - offset, 0) for offset in range(6)) for up in range(8)
)
# Tables 16/33 (repeater compatible) and 17/28/34 (not repeater compatible).
_EU_STYLE_MAX = {0: (59, 51), 1: (59, 51), 2: (59, 51), 3: (123, 115),
                 4: (230, 222), 5: (230, 222), 6: (230, 222), 7: (230, 222)}
_EU_STYLE_MAX_NO_REPEATER = {0: (59, 51), 1: (59, 51), 2: (59, 51), 3: (123, 115),
                             4: (250, 242), 5: (250, 242), 6: (250, 242), 7: (250, 242)}

EU868 = Region(
    name="EU868",
    description="EU 863-870 MHz ISM band (LoRaWAN 1.0 section 7.1)",
    freq_min_hz=863_000_000,
    freq_max_hz=870_000_000,
    sync_word=0x34,  # Table 11
    preamble_symbols=8,
    default_channels_hz=_mhz(868.10, 868.30, 868.50),  # Table 12
    join_channels_hz=_mhz(864.10, 864.30, 864.50, 868.10, 868.30, 868.50),  # Table 13
    data_rates=_EU_STYLE_DRS,  # Table 14
    uplink_drs=tuple(range(8)),
    downlink_drs=tuple(range(8)),
    default_channel_drs=(0, 5),
    max_payload=_payloads(_EU_STYLE_MAX),  # Table 16
    max_payload_no_repeater=_payloads(_EU_STYLE_MAX_NO_REPEATER),  # Table 17
    tx_power_dbm=_ro({0: 20, 1: 14, 2: 11, 3: 8, 4: 5, 5: 2}),  # Table 14 (0: "if supported")
    default_tx_power_dbm=14,  # "Default radiated transmit output power: 14 dBm"
    max_eirp_dbm=20,  # TXPower 0
    rx1_dr_table=_EU_STYLE_RX1,
    rx1_dr_uplinks=tuple(range(8)),
    rx2_frequency_hz=869_525_000,  # 7.1.7: 869.525 MHz / DR0
    rx2_dr=0,
    max_channels=16,
    lorawan_duty_cycle=None,  # per ETSI sub-band (7.1.2)
    join_duty_cycle=0.001,  # "The JoinReq message transmit duty-cycle should never exceed 0.1%"
    aliases=("EU863-870", "EU863", "EU"),
)

EU433 = Region(
    name="EU433",
    description="EU 433 MHz ISM band (LoRaWAN 1.0 section 7.4)",
    freq_min_hz=433_050_000,  # "operating in the 433.05 to 434.79 MHz frequency band"
    freq_max_hz=434_790_000,
    sync_word=0x34,  # Table 29
    preamble_symbols=8,
    default_channels_hz=_mhz(433.175, 433.375, 433.575),
    join_channels_hz=_mhz(433.175, 433.375, 433.575),  # Table 30
    data_rates=_EU_STYLE_DRS,  # Table 31
    uplink_drs=tuple(range(8)),
    downlink_drs=tuple(range(8)),
    default_channel_drs=(0, 5),
    max_payload=_payloads(_EU_STYLE_MAX),  # Table 33
    max_payload_no_repeater=_payloads(_EU_STYLE_MAX_NO_REPEATER),  # Table 34
    tx_power_dbm=_ro({0: 10, 1: 7, 2: 4, 3: 1, 4: -2, 5: -5}),  # Table 31
    default_tx_power_dbm=10,
    max_eirp_dbm=10,  # "as long as the radio device EIRP is less than 10 mW (or 10 dBm)"
    rx1_dr_table=_EU_STYLE_RX1,
    rx1_dr_uplinks=tuple(range(8)),
    rx2_frequency_hz=434_665_000,  # 7.4.7: 434.665 MHz / DR0
    rx2_dr=0,
    max_channels=16,
    lorawan_duty_cycle=0.01,  # 7.4.2 (ETSI allows 10%; LoRaWAN asks for 1%)
    join_duty_cycle=0.001,
    aliases=("EU433",),
)

CN779 = Region(
    name="CN779",
    description="China 779-787 MHz ISM band (LoRaWAN 1.0 section 7.3)",
    freq_min_hz=779_000_000,  # "operating in the 779 to 787 MHz frequency band"
    freq_max_hz=787_000_000,
    sync_word=0x34,  # Table 23
    preamble_symbols=8,
    default_channels_hz=_mhz(779.5, 779.7, 779.9),
    join_channels_hz=_mhz(779.5, 779.7, 779.9, 780.5, 780.7, 780.9),  # Table 24
    data_rates=_EU_STYLE_DRS,  # Table 25
    uplink_drs=tuple(range(8)),
    downlink_drs=tuple(range(8)),
    default_channel_drs=(0, 5),
    # Table 27 as printed: DR6 is 250/242 even in the repeater-compatible table.
    max_payload=_payloads({**_EU_STYLE_MAX, 6: (250, 242)}),
    max_payload_no_repeater=_payloads(_EU_STYLE_MAX_NO_REPEATER),  # Table 28
    tx_power_dbm=_ro({0: 10, 1: 7, 2: 4, 3: 1, 4: -2, 5: -5}),  # Table 25
    default_tx_power_dbm=10,
    max_eirp_dbm=10,  # "as long as the radio device EIRP is less than 10mW (or 10dBm)"
    rx1_dr_table=_EU_STYLE_RX1,
    rx1_dr_uplinks=tuple(range(8)),
    rx2_frequency_hz=786_000_000,  # 7.3.7: 786 MHz / DR0
    rx2_dr=0,
    max_channels=16,
    lorawan_duty_cycle=0.01,  # "The end-device transmit duty-cycle should be lower than 1%"
    join_duty_cycle=0.001,
    aliases=("CN779-787", "CN780", "CN"),
)

# US902-928: 64 x 125 kHz uplinks from 902.3 MHz in 200 kHz steps, 8 x 500 kHz uplinks from
# 903.0 MHz in 1.6 MHz steps, 8 x 500 kHz downlinks from 923.3 MHz in 600 kHz steps (7.2.2).
_US_UPLINK_125 = tuple(902_300_000 + 200_000 * i for i in range(64))
_US_UPLINK_500 = tuple(903_000_000 + 1_600_000 * i for i in range(8))
_US_DOWNLINK = tuple(923_300_000 + 600_000 * i for i in range(8))

US915 = Region(
    name="US915",
    description="US 902-928 MHz ISM band (LoRaWAN 1.0 section 7.2)",
    freq_min_hz=902_000_000,
    freq_max_hz=928_000_000,
    sync_word=0x34,  # 7.2.1
    preamble_symbols=8,
    default_channels_hz=_US_UPLINK_125 + _US_UPLINK_500,
    join_channels_hz=_US_UPLINK_125 + _US_UPLINK_500,
    data_rates=_ro({  # Table 18
        0: _lora(0, 10, 125, 980),
        1: _lora(1, 9, 125, 1760),
        2: _lora(2, 8, 125, 3125),
        3: _lora(3, 7, 125, 5470),
        4: _lora(4, 8, 500, 12500),
        8: _lora(8, 12, 500, 980),
        9: _lora(9, 11, 500, 1760),
        10: _lora(10, 10, 500, 3900),
        11: _lora(11, 9, 500, 7000),
        12: _lora(12, 8, 500, 12500),
        13: _lora(13, 7, 500, 21900),
    }),
    uplink_drs=(0, 1, 2, 3, 4),
    downlink_drs=(8, 9, 10, 11, 12, 13),
    default_channel_drs=(0, 4),
    max_payload=_payloads({  # Table 20
        0: (19, 11), 1: (61, 53), 2: (137, 129), 3: (250, 242), 4: (250, 242),
        8: (41, 33), 9: (117, 109), 10: (230, 222), 11: (230, 222), 12: (230, 222),
        13: (230, 222),
    }),
    max_payload_no_repeater=_payloads({  # Table 21
        0: (19, 11), 1: (61, 53), 2: (137, 129), 3: (250, 242), 4: (250, 242),
        8: (61, 53), 9: (137, 129), 10: (250, 242), 11: (250, 242), 12: (250, 242),
        13: (250, 242),
    }),
    tx_power_dbm=_ro({i: 30 - 2 * i for i in range(11)}),  # Table 18: 30 dBm - 2*TXpower
    default_tx_power_dbm=20,  # "Default radiated transmit output power: 20 dBm"
    max_eirp_dbm=30,  # 125 kHz: "maximum of +30 dBm" (500 kHz: +26 dBm)
    rx1_dr_table=(  # Table 22
        (10, 9, 8, 8),
        (11, 10, 9, 8),
        (12, 11, 10, 9),
        (13, 12, 11, 10),
        (13, 13, 12, 11),
        (8, 8, 8, 8),
        (9, 8, 8, 8),
        (10, 9, 8, 8),
        (11, 10, 9, 8),
        (12, 11, 10, 9),
        (13, 12, 11, 10),
    ),
    rx1_dr_uplinks=(0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13),
    rx2_frequency_hz=923_300_000,  # 7.2.7: 923.3 MHz / DR8
    rx2_dr=8,
    downlink_channels_hz=_US_DOWNLINK,
    max_channels=72,
    lorawan_duty_cycle=None,
    join_duty_cycle=None,
    max_dwell_time_s=0.4,  # 125 kHz: "The transmission should never last more than 400 ms"
    max_eirp_dbm_by_bandwidth=_ro({500_000: 26}),  # "500 kHz BW may use a maximum of +26 dBm"
    aliases=("US902-928", "US902", "US"),
)

#: Every region, by canonical name.
REGIONS: Mapping[str, Region] = _ro({r.name: r for r in (EU868, EU433, US915, CN779)})


def _key(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalnum())


_LOOKUP = {
    _key(alias): region
    for region in REGIONS.values()
    for alias in (region.name, *region.aliases)
}


def region_names() -> tuple[str, ...]:
    """Canonical region names, e.g. for a CLI ``choices=`` list."""
    return tuple(REGIONS)


def get_region(name: str) -> Region:
    """Region by name or alias ("EU868", "eu863-870", "US915", "CN780", ...)."""
    if not isinstance(name, str) or _key(name) not in _LOOKUP:
        raise ConfigError(
            f"unknown LoRaWAN region {name!r}; known: " + ", ".join(region_names())
        )
    return _LOOKUP[_key(name)]


def region_for_frequency(frequency_hz: int) -> Region:
    """The band plan whose band holds ``frequency_hz`` (433.175 MHz -> EU433, 869.525 MHz ->
    EU868); ConfigError naming the bands when none does. The one place the question "which
    LoRaWAN region is this channel in" is answered (module set-up, emulators, planners)."""
    for region in REGIONS.values():
        if region.freq_min_hz <= frequency_hz <= region.freq_max_hz:
            return region
    bands = ", ".join(f"{r.name} {r.freq_min_hz / 1e6:g}-{r.freq_max_hz / 1e6:g} MHz"
                      for r in REGIONS.values())
    raise ConfigError(f"{frequency_hz / 1e6:g} MHz lies in no LoRaWAN band plan ({bands})")
