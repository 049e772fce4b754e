"""Tests for lora_telemetry.core.regions against the LoRaWAN 1.0 specification in the thesis.

Line numbers refer to ../shared/seeds/uav-swarm-lora-thesis-with-datasheets.txt (approx.);
table numbers are the specification's own (chapter 7, lines ~5100-6270).
"""

from __future__ import annotations

import pytest

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import effective_bit_rate, time_on_air
from lora_telemetry.core.regions import REGIONS, get_region, region_names

EU_LIKE = ("EU868", "EU433", "CN779")

# Tables 14 (EU868 ~5245), 25 (CN779 ~5800), 31 (EU433 ~6085): identical DR tables.
EU_DR_TABLE = {
    0: ("LORA", 12, 125_000, 250),
    1: ("LORA", 11, 125_000, 440),
    2: ("LORA", 10, 125_000, 980),
    3: ("LORA", 9, 125_000, 1760),
    4: ("LORA", 8, 125_000, 3125),
    5: ("LORA", 7, 125_000, 5470),
    6: ("LORA", 7, 250_000, 11000),
    7: ("FSK", None, None, 50000),
}
# Table 18 (US902-928, ~5515-5535).
US_DR_TABLE = {
    0: ("LORA", 10, 125_000, 980),
    1: ("LORA", 9, 125_000, 1760),
    2: ("LORA", 8, 125_000, 3125),
    3: ("LORA", 7, 125_000, 5470),
    4: ("LORA", 8, 500_000, 12500),
    8: ("LORA", 12, 500_000, 980),
    9: ("LORA", 11, 500_000, 1760),
    10: ("LORA", 10, 500_000, 3900),
    11: ("LORA", 9, 500_000, 7000),
    12: ("LORA", 8, 500_000, 12500),
    13: ("LORA", 7, 500_000, 21900),
}


def _dr_rows(region_name: str) -> dict:
    r = get_region(region_name)
    return {dr: (d.modulation, d.sf, d.bandwidth_hz, d.bitrate_bps) for dr, d in r.data_rates.items()}


@pytest.mark.parametrize("name", EU_LIKE)
def test_eu_style_data_rate_tables(name: str) -> None:
    assert _dr_rows(name) == EU_DR_TABLE


def test_us915_data_rate_table() -> None:
    assert _dr_rows("US915") == US_DR_TABLE
    us = get_region("US915")
    assert us.uplink_drs == (0, 1, 2, 3, 4)
    for rfu in (5, 6, 7, 14, 15):
        with pytest.raises(ConfigError, match="no data rate"):
            us.data_rate(rfu)


def test_thesis_table_4_5_1_matches_eu868() -> None:
    # Thesis Table 4.5.1 (~2372-2388): DR, configuration, max message size, bit rate. Its
    # "max message" is the largest PHYPayload = M (Table 17, no repeater) + MHDR + MIC.
    thesis = {0: (12, 64, 250), 1: (11, 64, 440), 2: (10, 64, 980),
              3: (9, 128, 1760), 4: (8, 255, 3125), 5: (7, 255, 5470)}
    for region_name in ("EU868", "EU433"):  # the thesis ran the same DRs at 433 and 868 MHz
        region = get_region(region_name)
        for dr, (sf, size, bitrate) in thesis.items():
            rate = region.data_rate(dr)
            assert (rate.sf, rate.bandwidth_hz, rate.bitrate_bps) == (sf, 125_000, bitrate)
            assert region.max_payload_size(dr, repeater=False).phy_payload == size


def test_indicative_bit_rates_follow_phy_effective_rate() -> None:
    # The specification's "indicative physical bit rate" is (SF-2DE)*BW/2^SF*4/5 rounded.
    # US DR8/DR9 (SF12, SF11 at 500 kHz) print 980/1760, which that formula does not give
    # (1172/2148): a quirk of Table 18, kept as printed and skipped here.
    for region in REGIONS.values():
        for dr, rate in region.data_rates.items():
            if not rate.is_lora or (region.name == "US915" and dr in (8, 9)):
                continue
            p = region.phy(dr, region.default_channels_hz[0]
                           if dr in region.uplink_drs else region.rx2_frequency_hz)
            assert effective_bit_rate(p) == pytest.approx(rate.bitrate_bps, rel=0.025), (
                region.name, dr)


# Tables 16/33 (repeater compatible) and 17/28/34 (not repeater compatible), M and N.
EU_MAX = {0: (59, 51), 1: (59, 51), 2: (59, 51), 3: (123, 115),
          4: (230, 222), 5: (230, 222), 6: (230, 222), 7: (230, 222)}
EU_MAX_NO_REPEATER = {0: (59, 51), 1: (59, 51), 2: (59, 51), 3: (123, 115),
                      4: (250, 242), 5: (250, 242), 6: (250, 242), 7: (250, 242)}
# Table 27 (CN780, ~5904) prints DR6 as 250/242 even in the repeater-compatible table.
CN_MAX = {**EU_MAX, 6: (250, 242)}
# Tables 20 and 21 (US902-928, ~5590-5647).
US_MAX = {0: (19, 11), 1: (61, 53), 2: (137, 129), 3: (250, 242), 4: (250, 242),
          8: (41, 33), 9: (117, 109), 10: (230, 222), 11: (230, 222), 12: (230, 222),
          13: (230, 222)}
US_MAX_NO_REPEATER = {0: (19, 11), 1: (61, 53), 2: (137, 129), 3: (250, 242), 4: (250, 242),
                      8: (61, 53), 9: (137, 129), 10: (250, 242), 11: (250, 242),
                      12: (250, 242), 13: (250, 242)}


@pytest.mark.parametrize(
    "name,repeater_table,plain_table",
    [("EU868", EU_MAX, EU_MAX_NO_REPEATER), ("EU433", EU_MAX, EU_MAX_NO_REPEATER),
     ("CN779", CN_MAX, EU_MAX_NO_REPEATER), ("US915", US_MAX, US_MAX_NO_REPEATER)],
)
def test_max_payload_tables(name: str, repeater_table: dict, plain_table: dict) -> None:
    region = get_region(name)
    assert {dr: (p.m, p.n) for dr, p in region.max_payload.items()} == repeater_table
    assert {dr: (p.m, p.n) for dr, p in region.max_payload_no_repeater.items()} == plain_table
    for dr, (m, n) in repeater_table.items():
        assert region.max_app_payload(dr) == n
        assert region.max_payload_size(dr).m == m
        assert m - n == 8  # FHDR (7, no FOpts) + FPort (1): spec chapter 4
    for dr, (_, n) in plain_table.items():
        assert region.max_app_payload(dr, repeater=False) == n


def test_max_phy_payload_fits_lora() -> None:
    # Every maximum PHYPayload (M + 5) fits the SX1276's 255-byte payload limit.
    for region in REGIONS.values():
        for dr, size in region.max_payload_no_repeater.items():
            assert size.phy_payload <= 255
            if region.data_rate(dr).is_lora:
                assert time_on_air(region.phy(dr, region.rx2_frequency_hz, uplink=False),
                                   size.phy_payload) > 0


def test_tx_power_tables() -> None:
    # Table 14 (EU868): 0 = 20 dBm (if supported), 1 = 14 ... 5 = 2 dBm; 6..15 RFU.
    assert dict(get_region("EU868").tx_power_dbm) == {0: 20, 1: 14, 2: 11, 3: 8, 4: 5, 5: 2}
    # Tables 25 (CN779) and 31 (EU433): 10, 7, 4, 1, -2, -5 dBm.
    for name in ("EU433", "CN779"):
        assert dict(get_region(name).tx_power_dbm) == {0: 10, 1: 7, 2: 4, 3: 1, 4: -2, 5: -5}
    # Table 18 (US915): "30 dBm - 2*TXpower", 1 = 28, 2 = 26, ..., 10 = 10 dBm; 11:15 RFU.
    us = get_region("US915")
    assert us.tx_power(0) == 30 and us.tx_power(1) == 28 and us.tx_power(2) == 26
    assert us.tx_power(10) == 10 and len(us.tx_power_dbm) == 11
    with pytest.raises(ConfigError, match="RFU"):
        us.tx_power(11)
    with pytest.raises(ConfigError, match="RFU"):
        get_region("EU868").tx_power(6)


def test_default_and_maximum_power() -> None:
    eu = get_region("EU868")
    assert eu.default_tx_power_dbm == 14  # "Default radiated transmit output power: 14 dBm"
    assert eu.max_eirp_dbm == 20
    assert get_region("EU433").max_eirp_dbm == 10  # "EIRP is less than 10 mW (or 10 dBm)"
    assert get_region("CN779").max_eirp_dbm == 10
    us = get_region("US915")
    assert us.default_tx_power_dbm == 20  # 7.2.2: default 20 dBm
    assert us.max_eirp_for(125_000) == 30 and us.max_eirp_for(500_000) == 26
    assert us.max_dwell_time_s == 0.4  # "should never last more than 400 ms"


def test_default_and_join_channels() -> None:
    # Table 12 / thesis Table 4.2.1 (~1566): 868.10, 868.30, 868.50 MHz.
    assert get_region("EU868").default_channels_hz == (868_100_000, 868_300_000, 868_500_000)
    # Table 13 (~5238): JoinReq channels add 864.10, 864.30, 864.50 MHz.
    assert get_region("EU868").join_channels_hz == (
        864_100_000, 864_300_000, 864_500_000, 868_100_000, 868_300_000, 868_500_000)
    # 7.4.2 / thesis Table 4.2.2 (~1654): 433.175, 433.375, 433.575 MHz.
    assert get_region("EU433").default_channels_hz == (433_175_000, 433_375_000, 433_575_000)
    # 7.3.2: 779.5, 779.7, 779.9 MHz; Table 24 adds 780.5, 780.7, 780.9 MHz.
    cn = get_region("CN779")
    assert cn.default_channels_hz == (779_500_000, 779_700_000, 779_900_000)
    assert cn.join_channels_hz[3:] == (780_500_000, 780_700_000, 780_900_000)
    for name in EU_LIKE:
        assert get_region(name).default_channel_drs == (0, 5)  # "DR0 to DR5"
        assert get_region(name).max_channels == 16


def test_seed_vector_gateway_frequencies_are_known_channels(seed_vectors: dict) -> None:
    # The thesis gateway listens on 433.175, 868.1 and 869.525 MHz (seed_vectors.json).
    freqs = seed_vectors["sx1276_gateway_thesis"]["frequencies_hz"]
    assert freqs[0] == get_region("EU433").default_channels_hz[0]
    assert freqs[1] == get_region("EU868").default_channels_hz[0]
    assert freqs[2] == get_region("EU868").rx2_frequency_hz


def test_us915_channel_plan() -> None:
    # 7.2.2 (~5448): 64 x 125 kHz from 902.3 to 914.9 MHz (200 kHz steps); 8 x 500 kHz from
    # 903.0 to 914.2 MHz (1.6 MHz steps); 8 downlinks from 923.3 to 927.5 MHz (600 kHz).
    us = get_region("US915")
    up = us.default_channels_hz
    assert len(up) == 72 and us.max_channels == 72
    assert (up[0], up[63], up[64], up[71]) == (902_300_000, 914_900_000, 903_000_000, 914_200_000)
    assert us.downlink_channels_hz[0] == 923_300_000 and us.downlink_channels_hz[-1] == 927_500_000
    assert len(us.downlink_channels_hz) == 8
    # 7.2.7: "RX1 Channel Number = Transmit Channel Number modulo 8".
    assert us.rx1_frequency_hz(up[9]) == 923_900_000
    assert us.rx1_frequency_hz(up[64]) == 923_300_000
    with pytest.raises(ConfigError):
        us.rx1_frequency_hz(915_000_000)
    assert get_region("EU868").rx1_frequency_hz(868_300_000) == 868_300_000


# EU-style RX1DROffset table (7.1.7 ~5385, 7.3.7, 7.4.7): rows DR0..DR7, offsets 0..5.
EU_RX1 = [
    [0, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [2, 1, 0, 0, 0, 0],
    [3, 2, 1, 0, 0, 0],
    [4, 3, 2, 1, 0, 0],
    [5, 4, 3, 2, 1, 0],
    [6, 5, 4, 3, 2, 1],
    [7, 6, 5, 4, 3, 2],
]
# Table 22 (US902-928 ~5665-5686): uplink DR -> RX1 DR for offsets 0..3.
US_RX1 = {0: [10, 9, 8, 8], 1: [11, 10, 9, 8], 2: [12, 11, 10, 9], 3: [13, 12, 11, 10],
          4: [13, 13, 12, 11], 8: [8, 8, 8, 8], 9: [9, 8, 8, 8], 10: [10, 9, 8, 8],
          11: [11, 10, 9, 8], 12: [12, 11, 10, 9], 13: [13, 12, 11, 10]}


def test_rx1_data_rate_tables() -> None:
    for name in EU_LIKE:
        region = get_region(name)
        for up, row in enumerate(EU_RX1):
            assert [region.rx1_dr(up, off) for off in range(6)] == row
        with pytest.raises(ConfigError, match="RX1DROffset"):
            region.rx1_dr(5, 6)  # [6:7] reserved
    us = get_region("US915")
    for up, row in US_RX1.items():
        assert [us.rx1_dr(up, off) for off in range(4)] == row
    with pytest.raises(ConfigError, match="RX1DROffset"):
        us.rx1_dr(0, 4)
    with pytest.raises(ConfigError):
        us.rx1_dr(5)


def test_rx2_defaults() -> None:
    # 7.1.7: 869.525 MHz / DR0; 7.2.7: 923.3 MHz / DR8; 7.3.7: 786 MHz / DR0;
    # 7.4.7: 434.665 MHz / DR0.
    expected = {"EU868": (869_525_000, 0), "US915": (923_300_000, 8),
                "CN779": (786_000_000, 0), "EU433": (434_665_000, 0)}
    for name, (freq, dr) in expected.items():
        region = get_region(name)
        assert (region.rx2_frequency_hz, region.rx2_dr) == (freq, dr)
        region.check_frequency(freq)


def test_default_settings_sections() -> None:
    # 7.1.8, 7.2.8, 7.3.8, 7.4.8: identical recommended values in every band.
    for region in REGIONS.values():
        assert (region.receive_delay1_s, region.receive_delay2_s) == (1.0, 2.0)
        assert (region.join_accept_delay1_s, region.join_accept_delay2_s) == (5.0, 6.0)
        assert region.max_fcnt_gap == 16384
        assert (region.adr_ack_limit, region.adr_ack_delay) == (64, 32)
        assert (region.ack_timeout_s, region.ack_timeout_jitter_s) == (2.0, 1.0)
        assert region.receive_delay2_s == region.receive_delay1_s + 1  # "must be ... + 1s"


def test_sync_word_preamble_and_duty_cycle_figures() -> None:
    for region in REGIONS.values():
        # Tables 11, 23, 29 and 7.2.1: LoRa sync word 0x34, 8-symbol preamble.
        assert (region.sync_word, region.preamble_symbols) == (0x34, 8)
    assert get_region("EU433").lorawan_duty_cycle == 0.01  # 7.4.2 "lower than 1%"
    assert get_region("CN779").lorawan_duty_cycle == 0.01  # 7.3.2
    assert get_region("EU868").join_duty_cycle == 0.001  # "never exceed 0.1%"


def test_frequency_ranges() -> None:
    eu = get_region("EU868")
    eu.check_frequency(863_000_000)
    eu.check_frequency(870_000_000)
    with pytest.raises(ConfigError, match="outside EU868"):
        eu.check_frequency(433_175_000)
    with pytest.raises(ConfigError):
        eu.check_frequency("868.1")  # type: ignore[arg-type]
    # EU433 channel centres may be 433.175 .. 434.665 MHz, band 433.05 .. 434.79 MHz (7.4.2).
    eu433 = get_region("EU433")
    eu433.check_frequency(434_665_000)
    with pytest.raises(ConfigError):
        eu433.check_frequency(434_800_000)


def test_phy_settings_for_uplink_and_downlink() -> None:
    eu = get_region("EU868")
    up = eu.phy(5)
    assert (up.frequency_hz, up.sf, up.bandwidth_hz, up.coding_rate) == (868_100_000, 7, 125_000, 5)
    assert up.crc_on and not up.iq_inverted and up.sync_word == 0x34
    down = eu.phy(eu.rx2_dr, uplink=False)
    assert down.frequency_hz == 869_525_000 and down.sf == 12
    assert not down.crc_on and down.iq_inverted  # spec Figure 5: CRC only on uplinks
    assert eu.phy(3, 868_500_000, tx_power_dbm=14).tx_power_dbm == 14
    with pytest.raises(ConfigError, match="FSK"):
        eu.phy(7)
    with pytest.raises(ConfigError, match="outside"):
        eu.phy(5, 915_000_000)
    assert get_region("US915").phy(4).bandwidth_hz == 500_000


def test_dr_for_reverse_lookup() -> None:
    assert get_region("EU868").dr_for(12, 125_000) == 0
    assert get_region("EU868").dr_for(7, 250_000) == 6
    us = get_region("US915")
    assert us.dr_for(8, 500_000) == 4  # uplink DR4 (identical to downlink DR12)
    assert us.dr_for(8, 500_000, uplink=False) == 12
    with pytest.raises(ConfigError):
        us.dr_for(12, 125_000)


def test_get_region_names_and_aliases() -> None:
    assert region_names() == ("EU868", "EU433", "US915", "CN779")
    assert get_region("eu868") is get_region("EU863-870") is get_region("eu 863 870")
    assert get_region("US902-928") is get_region("us915")
    assert get_region("CN780") is get_region("CN779-787") is get_region("cn779")
    for bad in ("AS923", "", "EU915", None, 868):
        with pytest.raises(ConfigError, match="unknown LoRaWAN region"):
            get_region(bad)  # type: ignore[arg-type]
    assert get_region("EU").name == "EU868"


def test_tables_are_read_only() -> None:
    eu = get_region("EU868")
    with pytest.raises(TypeError):
        eu.data_rates[9] = eu.data_rates[0]  # type: ignore[index]
    with pytest.raises(AttributeError):
        eu.rx2_dr = 3  # type: ignore[misc]
