"""GPS-time TDMA in the core: slots, the planner, the beacon and the time keeper.

Figures: a 29-byte uplink lasts 66.816 ms and the 17-byte beacon 51.456 ms at SF7/125 kHz,
CR 4/5 (SX1276 datasheet formula, core.phy; test_cli_core checks 66.816 ms); slots are
airtime + 2 x 5 ms of guard (core/tdma.py); the EU433 sub-band allows 10 % (ETSI EN 300 220,
thesis Table 2.3.3.1), LoRaWAN's EU433 plan asks 1 % (LoRaWAN 1.0 section 7.4).
"""

from __future__ import annotations

import math
import random

import pytest

from lora_telemetry.core import beacon as bc
from lora_telemetry.core import tdma
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.core.timesync import TimeKeeper, TimeSource

PHY = PhySettings(433_175_000, 7, 125_000)
BEACON_S, UPLINK_S = tdma.frame_airtimes(PHY, bc.BEACON_BYTES)
KEY = bytes(range(16))
T0 = 1_796_000_000.0  # a superframe boundary at period 1 s


def schedule(n: int = 12, period: float = 1.0, **kw) -> tdma.TdmaSchedule:
    return tdma.plan_schedule(period, {f"uav{i}": i for i in range(1, n + 1)},
                              beacon_airtime_s=BEACON_S, uplink_airtime_s=UPLINK_S, **kw)


def test_airtimes_and_capacity_at_sf7() -> None:
    assert UPLINK_S == pytest.approx(0.066816)
    assert BEACON_S == pytest.approx(0.051456)
    # 61.456 ms of beacon slot + 12 x 76.816 ms = 983.2 ms: twelve UAVs fit one second.
    assert tdma.max_swarm(1.0, BEACON_S, UPLINK_S) == 12
    assert tdma.min_period(12, BEACON_S, UPLINK_S) == pytest.approx(0.983248)


def test_slots_tile_the_superframe_without_overlap() -> None:
    s = schedule()
    m = s.superframe_of(T0)
    assert s.superframe_start(m) == pytest.approx(T0)
    assert s.beacon_start(m) == pytest.approx(T0 + 0.005)
    ends = [s.beacon_start(m) + BEACON_S]
    for slot in range(1, 13):
        start = s.uplink_start(m, slot)
        assert start - ends[-1] == pytest.approx(0.010, abs=1e-6)  # two guards between frames
        assert s.slot_of(start) == (m, slot)
        ends.append(start + UPLINK_S)
    assert ends[-1] + 0.005 <= T0 + 1.0
    assert s.slot_of(T0 + 0.999) == (m, None)  # the idle end


def test_duplicate_and_overfull_schedules_are_refused_with_the_largest_swarm() -> None:
    with pytest.raises(ConfigError, match="slot 3 is given to both uav3 and uav9"):
        tdma.plan_schedule(1.0, {"uav3": 3, "uav9": 3}, beacon_airtime_s=BEACON_S,
                           uplink_airtime_s=UPLINK_S)
    with pytest.raises(ConfigError, match=r"largest feasible swarm is 12 UAVs; 13 slots need a "
                                          r"period of at least 1.060 s"):
        schedule(13)
    with pytest.raises(ConfigError, match="slot 0 is the beacon's"):
        tdma.plan_schedule(1.0, {"uav1": 0}, beacon_airtime_s=BEACON_S, uplink_airtime_s=UPLINK_S)


def test_duty_cycle_spreads_uavs_over_superframes_and_says_so() -> None:
    assert schedule(uav_duty_cycle=0.10).uplink_every == 1  # 6.7 % per UAV: fine at 10 %
    s = schedule(uav_duty_cycle=0.01, gateway_duty_cycle=0.01)
    assert s.uplink_every == 7  # 66.8 ms / 1 % = 6.68 s -> one superframe in 7
    assert s.beacon_every == 6  # 51.5 ms / 1 % = 5.15 s
    assert any("one superframe of every 7" in n for n in s.notes)
    sends = [m for m in range(100, 121) if s.sends_in(m, 3)]
    assert [b - a for a, b in zip(sends, sends[1:])] == [7, 7]


class FixedClock:
    """A host clock that runs `offset` behind GPS time (what a TimeKeeper would say)."""

    def __init__(self, offset: float, usable: bool = True) -> None:
        self.offset, self.usable = offset, usable

    def to_gps(self, host: float) -> float:
        return host + self.offset

    def to_host(self, gps: float) -> float:
        return gps - self.offset


def test_policy_starts_the_command_early_by_the_lead_on_the_host_clock() -> None:
    s = schedule()
    clock = FixedClock(offset=2.0)  # host 2 s behind GPS
    policy = tdma.TdmaPolicy(s, 4, clock, lead_s=0.012)
    host_now = T0 - 2.0 + 0.1  # GPS T0 + 0.1: slot 4 of this superframe is still ahead
    start = policy.next_start(last_start=None, earliest_allowed=host_now)
    assert clock.to_gps(start) + 0.012 == pytest.approx(s.uplink_start(s.superframe_of(T0), 4))
    # Once sent in this superframe, the next attempt is the next superframe's slot 4.
    again = policy.next_start(last_start=start, earliest_allowed=start + 0.07)
    assert again - start == pytest.approx(1.0)


def test_policy_skips_a_slot_it_would_reach_too_late_and_waits_without_time() -> None:
    s = schedule()
    clock = FixedClock(offset=0.0)
    policy = tdma.TdmaPolicy(s, 1, clock, lead_s=0.0)
    slot1 = s.uplink_start(s.superframe_of(T0), 1)
    assert policy.next_start(last_start=None, earliest_allowed=slot1 + 0.002) == pytest.approx(slot1)
    late = policy.next_start(last_start=None, earliest_allowed=slot1 + 0.004)
    assert late == pytest.approx(slot1 + 1.0)  # beyond half a guard: the next superframe
    clock.usable = False
    assert policy.next_start(last_start=None, earliest_allowed=slot1 - 0.5) == math.inf


def test_beacon_round_trip_forgery_replay_wrong_time_and_epoch() -> None:
    beacon = bc.Beacon(superframe=1_796_000_000, epoch=3, heard=frozenset({1, 2, 12}),
                       pending=frozenset({24}))
    data = bc.encode_beacon(beacon, KEY)
    assert len(data) == bc.BEACON_BYTES == 17 and data[0] == 0xE0
    assert bc.decode_beacon(data, KEY) == beacon
    tracker = bc.BeaconTracker(KEY, epoch=3)
    assert tracker.process(data, expected_superframe=1_796_000_000).accepted
    assert tracker.process(data).status is bc.BeaconStatus.REPLAY
    forged = bytearray(bc.encode_beacon(bc.Beacon(1_796_000_001, 3), bytes(16)))
    assert tracker.process(bytes(forged)).status is bc.BeaconStatus.MIC_FAILED
    flipped = bytearray(bc.encode_beacon(bc.Beacon(1_796_000_001, 3), KEY))
    flipped[4] ^= 0x01  # shift the schedule by 256 superframes: the MIC catches it
    assert tracker.process(bytes(flipped)).status is bc.BeaconStatus.MIC_FAILED
    far = bc.encode_beacon(bc.Beacon(1_796_000_050, 3), KEY)
    assert tracker.process(far, expected_superframe=1_796_000_001).status is bc.BeaconStatus.WRONG_TIME
    other = bc.encode_beacon(bc.Beacon(1_796_000_002, 4), KEY)
    assert tracker.process(other, expected_superframe=1_796_000_002).status is bc.BeaconStatus.WRONG_EPOCH
    assert tracker.process(b"\x40" + bytes(28)).status is bc.BeaconStatus.NOT_BEACON
    assert tracker.counts == {"accepted": 1, "not_beacon": 1, "mic_failed": 2, "replay": 1,
                              "wrong_time": 1, "wrong_epoch": 1}
    assert tracker.last_superframe == 1_796_000_000  # only accepted beacons move it
    # After a restart the persisted counter still refuses the recorded beacon.
    assert bc.BeaconTracker(KEY, epoch=3, last_superframe=1_796_000_000).process(
        data).status is bc.BeaconStatus.REPLAY


def test_gps_time_through_a_host_clock_2_s_off_with_50_ppm_drift() -> None:
    # The case: the host clock is 2 s off and drifts 50 ppm; SYSTEM_TIME arrives at
    # 4 Hz with 0-8 ms of serial and scheduling delay. The keeper must put the host's idea of
    # a slot start within a millisecond of GPS time.
    rng = random.Random(7)
    keeper = TimeKeeper()

    def host_of(gps: float) -> float:
        return gps - 2.0 + 50e-6 * (gps - T0)

    errors = []
    for i in range(4 * 180):
        gps_sent = T0 + i * 0.25
        delay = rng.uniform(0.0, 0.008)
        keeper.add_gps(gps_sent, host_of(gps_sent + delay))
        now_gps = gps_sent + 0.1
        est = keeper.update(host_of(now_gps))
        if i >= 4 * 20:  # after the first 20 s (its least-delay samples settle)
            errors.append(keeper.to_gps(host_of(now_gps)) - now_gps)
    assert est.source is TimeSource.GPS and keeper.usable
    assert max(abs(e) for e in errors) < 0.001, max(errors, key=abs)
    # The host runs fast, so the offset shrinks. The slope through 60 one-second maxima of
    # 0-8 ms delays scatters by about 10 ppm (one standard error): three of them allowed.
    assert est.drift_ppm == pytest.approx(-50, abs=30)
    assert "host clock is 1.991 s behind gps time" in keeper.warning()  # 2 s - 180 s x 50 ppm


def test_without_gps_and_beacons_the_keeper_is_not_usable() -> None:
    keeper = TimeKeeper(gps_timeout_s=3.0, beacon_timeout_s=5.0)
    keeper.add_gps(T0, T0)
    assert keeper.update(T0 + 0.1).source is TimeSource.HOST  # one sample is not an estimate
    for k in range(1, 8):  # LeastDelayFilter.min_samples
        keeper.add_gps(T0 + 0.125 * k, T0 + 0.125 * k)
    assert keeper.update(T0 + 1.0).source is TimeSource.GPS and keeper.usable
    for k in range(3):  # the beacon filter's min_samples
        keeper.add_beacon(T0 + 1.0 + 0.5 * k, T0 + 1.0 + 0.5 * k)
    assert keeper.update(T0 + 4.5).source is TimeSource.BEACON and keeper.usable
    assert keeper.update(T0 + 7.5).source is TimeSource.HOST and not keeper.usable
    assert "TDMA frames are held" in keeper.warning()
    assert not keeper.add_gps(0.0, T0)  # SYSTEM_TIME 0: no GPS fix yet
    assert keeper.rejected_gps == 1


def test_gateway_beacons_heard_bitmap_and_slot_timing() -> None:
    from lora_telemetry.core.tdma_gateway import GatewaySchedule

    s = schedule(n=3)
    gw = GatewaySchedule(s, {"uav1": 1, "uav2": 2, "uav3": 3}, KEY)
    m, start = gw.next_beacon(T0 + 0.001)
    assert (m, start) == (s.superframe_of(T0), pytest.approx(T0 + 0.005))
    first = bc.decode_beacon(gw.beacon(m), KEY)
    assert first.superframe == m and first.heard == frozenset()
    assert gw.next_beacon(T0 + 0.001)[0] == m + 1  # sent: the next one is due
    # uav1 on time, uav2 3 ms late (inside its guard), uav3 7 ms early (outside it).
    for name, slot, err in (("uav1", 1, 0.0), ("uav2", 2, 0.003), ("uav3", 3, -0.007)):
        begin = s.uplink_start(m, slot) + err
        obs = gw.observe(name, begin + UPLINK_S, UPLINK_S)
        assert (obs.superframe, obs.slot) == (m, slot) and obs.error_s == pytest.approx(err, abs=1e-6)
    gw.set_pending(["uav3"])
    second = bc.decode_beacon(gw.beacon(m + 1), KEY)
    assert second.heard == frozenset({1, 2, 3}) and second.pending == frozenset({3})
    assert gw.timing["uav2"].last_error_s == pytest.approx(0.003, abs=1e-6)
    assert gw.timing["uav3"].outside_slot == 1 and gw.timing["uav1"].outside_slot == 0


def test_beacon_bytes_match_the_worked_example_in_docs_wire_format() -> None:
    # docs/wire-format.md "TDMA beacon": the MIC is AES-CMAC (RFC 4493, pycryptodome) over
    # "LTB1" and the 13 header bytes; the superframe number little-endian (0x6B0CC900).
    frame = bc.encode_beacon(bc.Beacon(superframe=1796000000, epoch=0,
                                       heard=frozenset({1, 2, 3, 12}), pending=frozenset({5})),
                             bytes(range(16)))
    assert frame.hex(" ").upper() == "E0 01 00 00 C9 0C 6B 07 08 00 10 00 00 BF A9 75 0E"
    from Crypto.Cipher import AES
    from Crypto.Hash import CMAC

    mac = CMAC.new(bytes(range(16)), ciphermod=AES)
    mac.update(b"LTB1" + frame[:13])
    assert frame[13:] == mac.digest()[:4]  # an independent CMAC agrees
