"""Tests for lora_telemetry.core.dutycycle: sub-bands, T_off and the sliding-window ledger.

Line numbers refer to ../shared/seeds/uav-swarm-lora-thesis-with-datasheets.txt (approx.).
"""

from __future__ import annotations

import bisect
import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_telemetry.core.dutycycle import (
    EU433_SUBBANDS,
    EU868_SUBBANDS,
    ETSI_SUBBANDS,
    AirtimeTooLongError,
    DutyCycleLedger,
    SubBand,
    time_off,
)
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings, time_on_air
from lora_telemetry.core.regions import get_region

HOUR = 3600.0
G1 = 868_100_000  # EU868 default channel (1% sub-band)
G3 = 869_525_000  # EU868 RX2 / thesis 10% channel


# --- the figures -------------------------------------------------------------------------

def test_subband_table_figures() -> None:
    bands = {b.name: (b.low_hz, b.high_hz, b.duty_cycle) for b in ETSI_SUBBANDS}
    # 2006/771/EC annex (thesis ~3283-3324) and UN-39 (~3568-3631):
    assert bands["g1"] == (868_000_000, 868_600_000, 0.01)  # "868,0-868,6 MHz ... hasta el 1 %"
    assert bands["g2"] == (868_700_000, 869_200_000, 0.001)  # "868,7-869,2 ... hasta el 0,1 %"
    assert bands["g3"] == (869_400_000, 869_650_000, 0.10)  # "869,4-869,65 ... hasta el 10 %"
    assert bands["g4"] == (869_700_000, 870_000_000, 0.01)  # UN-39 "869,700 - 870 ... 1%"
    assert bands["eu433"] == (433_050_000, 434_790_000, 0.10)  # "433,05-434,79 ... 10 %"
    # Not in the thesis (EN 300 220-2): 863-865 MHz 0.1% (matches LoRaWAN Table 13's "<0.1%"
    # for the 864.x JoinReq channels, ~5236) and 865-868 MHz 1%.
    assert bands["g_863_865"] == (863_000_000, 865_000_000, 0.001)
    assert bands["g_865_868"] == (865_000_000, 868_000_000, 0.01)
    assert ETSI_SUBBANDS == EU868_SUBBANDS + EU433_SUBBANDS


def test_thesis_channels_and_their_limits() -> None:
    # Thesis ~2676-2682: channel 0 at 433.175 MHz has a 10% limit; the 868 MHz channels 1%;
    # so the tests used 869.525 MHz, "que dispone de la limitación del 10%".
    ledger = DutyCycleLedger()
    assert ledger.limit(433_175_000) == 0.10
    assert ledger.limit(868_100_000) == 0.01
    assert ledger.limit(869_525_000) == 0.10
    assert ledger.subband_name(868_500_000) == "g1"
    # The LoRaWAN spec example: the default channels' sub-band is "(868 - 868.6)" (~5181).
    for f in get_region("EU868").default_channels_hz:
        assert ledger.subband_name(f) == "g1"
    for f in get_region("EU868").join_channels_hz[:3]:
        assert ledger.limit(f) == 0.001  # Table 13: JoinReq duty cycle <0.1%
    for f in get_region("EU433").default_channels_hz:
        assert ledger.subband_name(f) == "eu433"


def test_time_off_spec_example() -> None:
    # LoRaWAN 1.0 7.1.2 (~5179): "A device just transmitted a 0.5 s long frame on one default
    # channel. This channel is in a sub-band allowing 1% duty-cycle. Therefore this whole
    # sub-band (868 - 868.6) will be unavailable for 49.5 s." (thesis eq. 4.2.3, ~1585.)
    assert time_off(0.5, 0.01) == pytest.approx(49.5, rel=1e-12)
    ledger = DutyCycleLedger(policy="toff")
    ledger.record(868_100_000, 100.0, 0.5)
    # The whole sub-band is blocked, other channel included: free at 100 + 0.5 + 49.5 = 150.
    assert ledger.next_allowed(868_500_000, 0.1, 100.5) == pytest.approx(150.0, rel=1e-12)
    assert not ledger.can_send(868_300_000, 0.1, 149.9)
    assert ledger.can_send(868_300_000, 0.1, 150.0)
    assert ledger.budget_left(868_300_000, 120.0) == 0.0
    # ... while another sub-band stays free ("the device may still be able to transmit on
    # another sub-band").
    assert ledger.can_send(G3, 0.5, 100.5)


def test_time_off_thesis_10_percent_rhythm() -> None:
    # Thesis Table 4.5.6 (~2700): 255-byte frames at DR5 on 869.525 MHz with the RN2483 at
    # 10% (`mac set ch dcycle 3 9`, ~9585): the next frame may go 10 x airtime after the
    # previous start, 3.99616 s, under the 4.50 s the thesis settled on.
    airtime = time_on_air(PhySettings(G3, 7, 125_000), 255)
    assert airtime == pytest.approx(0.399616, rel=1e-12)
    ledger = DutyCycleLedger(policy="toff")
    ledger.record(G3, 0.0, airtime)
    assert ledger.next_allowed(G3, airtime, airtime) == pytest.approx(3.99616, rel=1e-12)
    assert ledger.next_allowed(G3, airtime, airtime) < 4.50


def test_next_allowed_is_exactly_now_when_free() -> None:
    # Callers compare "now >= next_allowed": no round-off may push a free slot past now.
    for policy in ("both", "sliding_window", "toff"):
        ledger = DutyCycleLedger(policy=policy)
        assert ledger.next_allowed(G1, 0.066816, 0.0) == 0.0
        ledger.record(G1, 0.6, 0.066816)
        for now in (7.3, 7.4, 123.456789, 3607.3):
            assert ledger.next_allowed(G1, 0.066816, now) == now


def test_time_off_rejects_bad_input() -> None:
    for bad in ((0, 0.01), (-1, 0.01), (1, 0), (1, 1.5), (float("nan"), 0.01), (1, True)):
        with pytest.raises(ConfigError):
            time_off(*bad)


# --- greedy sender: never over the limit in any window, and close to the limit --------------

def _max_window_usage(frames: list[tuple[float, float]], window: float) -> float:
    """Largest airtime inside any [x, x + window): exact, frames sorted and not overlapping.

    The maximum is reached by a window that starts at a frame start or ends at a frame end.
    """
    starts = [s for s, _ in frames]
    prefix = [0.0]
    for _, a in frames:
        prefix.append(prefix[-1] + a)

    def usage(x: float) -> float:
        y = x + window
        i = bisect.bisect_left(starts, x)  # first frame starting at/after x
        j = bisect.bisect_left(starts, y)  # first frame starting at/after y
        total = prefix[j] - prefix[i]
        if j > i:  # the last frame inside may run past y
            s, a = frames[j - 1]
            total -= max(0.0, s + a - y)
        if i > 0:  # the frame before x may run into the window
            s, a = frames[i - 1]
            total += max(0.0, min(s + a, y) - x)
        return total

    candidates = [s for s, _ in frames] + [s + a - window for s, a in frames]
    return max(usage(x) for x in candidates)


# A repeating mix of frame lengths: LoRaWAN uplinks of 13..64 bytes at DR0..DR5 (EU868).
_MIX = [time_on_air(PhySettings(G1, sf, 125_000), pl)
        for sf, pl in itertools.product((7, 8, 9, 10), (13, 30, 64))]


def _greedy(ledger: DutyCycleLedger, freq: int, duration: float, mix: list[float]):
    frames, t, i = [], 0.0, 0
    while True:
        a = mix[i % len(mix)]
        t = ledger.next_allowed(freq, a, t)
        if t >= duration:
            return frames
        assert ledger.can_send(freq, a, t)
        ledger.record(freq, t, a)
        frames.append((t, a))
        t += a  # one radio: busy while transmitting
        i += 1


BANDS = [(G1, 0.01), (G3, 0.10), (868_900_000, 0.001)]  # g1 1%, g3 10%, g2 0.1%
# A telemetry frame of fixed size: 30-byte LoRaWAN uplink at DR5 (SF7/125 kHz), 71.936 ms.
_FIXED = [time_on_air(PhySettings(G1, 7, 125_000), 30)]


@pytest.mark.parametrize("policy", ["both", "sliding_window"])
@pytest.mark.parametrize("freq,dc", BANDS)
@pytest.mark.parametrize("mix", [_FIXED, _MIX], ids=["fixed", "mixed"])
def test_greedy_sender_never_exceeds_any_hour(policy, freq, dc, mix) -> None:
    ledger = DutyCycleLedger(policy=policy)
    frames = _greedy(ledger, freq, 2.5 * HOUR, mix)
    # No one-hour window, wherever it lies, holds more than dc x 3600 s.
    assert _max_window_usage(frames, HOUR) <= dc * HOUR + 1e-6
    # Memory stays bounded: only the last hour's frames are remembered.
    assert ledger.entry_count() <= sum(1 for s, a in frames if s + a > frames[-1][0] - HOUR)


@pytest.mark.parametrize(
    "policy,freq,dc,mix",
    [(p, f, dc, _FIXED) for p in ("both", "sliding_window") for f, dc in BANDS]
    + [("sliding_window", f, dc, _MIX) for f, dc in BANDS]
    + [("both", f, dc, _MIX) for f, dc in BANDS[:2]],
)
def test_greedy_sender_uses_at_least_99_percent(policy, freq, dc, mix) -> None:
    ledger = DutyCycleLedger(policy=policy)
    duration = 2.5 * HOUR
    frames = _greedy(ledger, freq, duration, mix)
    assert sum(a for _, a in frames) >= 0.99 * dc * duration


def test_greedy_both_with_large_mixed_frames_on_g2() -> None:
    # The one case below 99%: mixed frames of up to 0.70 s against g2's 3.6 s hourly budget
    # (0.1%). T_off pacing lets a long frame after short ones reach past the hour budget, so
    # the window rule then delays it; each such delay costs up to about one frame, which is
    # ~20% of this budget. Observed: 96% over 2.5 h. (Fixed-size frames reach 99%, above.)
    ledger = DutyCycleLedger(policy="both")
    frames = _greedy(ledger, 868_900_000, 2.5 * HOUR, _MIX)
    assert sum(a for _, a in frames) >= 0.95 * 0.001 * 2.5 * HOUR


def test_both_policy_keeps_every_hour_nearly_full() -> None:
    # With T_off pacing the budget is spread evenly: after the first frames every one-hour
    # window is full up to the frames cut at its two edges.
    ledger = DutyCycleLedger(policy="both")
    frames = _greedy(ledger, G1, 2.5 * HOUR, _MIX)
    for x in range(0, int(1.5 * HOUR), 97):
        used = sum(max(0.0, min(s + a, x + HOUR) - max(s, x)) for s, a in frames)
        assert used >= 0.01 * HOUR - 2 * max(_MIX) - 1e-9


def test_sliding_window_allows_a_burst_then_waits() -> None:
    ledger = DutyCycleLedger(policy="sliding_window")
    frames = _greedy(ledger, G1, 1.2 * HOUR, [1.0])
    # 36 one-second frames back to back fill the 36 s budget, the 37th waits for the first
    # to leave the window: it starts at 3600 s exactly.
    assert [s for s, _ in frames[:36]] == pytest.approx([float(i) for i in range(36)])
    assert frames[36][0] == pytest.approx(HOUR, rel=1e-12)


def test_toff_alone_can_exceed_an_hour_window() -> None:
    # Why "both" is the default: T_off paces each frame by its own length, so small frames
    # followed by a long one overfill the window that ends with the long frame.
    toff_only = DutyCycleLedger(policy="toff")
    frames, t = [], 0.0
    for a in [0.05] * 700 + [2.5]:
        t = toff_only.next_allowed(G1, a, t)
        toff_only.record(G1, t, a)
        frames.append((t, a))
        t += a
    assert _max_window_usage(frames, HOUR) > 0.01 * HOUR + 1.0
    both = DutyCycleLedger(policy="both")
    frames = _greedy(both, G1, 4000.0, [0.05] * 700 + [2.5])
    assert _max_window_usage(frames, HOUR) <= 0.01 * HOUR + 1e-6


def test_budget_left_is_exact_for_sliding_window() -> None:
    ledger = DutyCycleLedger(policy="sliding_window")
    for k in range(30):
        ledger.record(G1, 10.0 * k, 1.0)  # 30 s used within [0, 291)
    for now in (300.0, 1000.0, 3590.0, 3605.0, 3700.0, 3895.0):
        left = ledger.budget_left(G1, now)
        assert 0.0 <= left <= 36.0
        assert ledger.can_send(G1, left, now)
        if left < 36.0 - 1e-6:
            assert not ledger.can_send(G1, left + 1e-3, now)
    # At 300 s all 30 s lie in the window whatever the frame's length: 6 s remain.
    assert ledger.budget_left(G1, 300.0) == pytest.approx(6.0, rel=1e-9)
    # At 3605 s a frame of length a is judged on [5 + a, 3605 + a): 29 s recorded (frames at
    # 10..290 s); once a >= 6 the frame at 10 s leaves too: a = 8 gives 28 + 8 = 36 s.
    assert ledger.budget_left(G1, 3605.0) == pytest.approx(8.0, rel=1e-9)
    # At 3700 s: frames at 100..290 s (20 s); a = 18 drops those at 100 and 110: 18 + 18 = 36.
    assert ledger.budget_left(G1, 3700.0) == pytest.approx(18.0, rel=1e-9)


def test_budget_left_toff_and_both() -> None:
    both = DutyCycleLedger()
    assert both.budget_left(G3, 0.0) == pytest.approx(360.0)  # 10% of an hour, nothing sent
    both.record(G3, 0.0, 1.0)
    assert both.budget_left(G3, 5.0) == 0.0  # T_off pause until 10 s
    assert both.budget_left(G3, 10.0) == pytest.approx(359.0)
    toff = DutyCycleLedger(policy="toff")
    assert toff.budget_left(G3, 0.0) == math.inf


def test_used_and_status() -> None:
    ledger = DutyCycleLedger()
    ledger.record(G1, 10.0, 2.0)
    ledger.record(G1, 300.0, 1.0)
    assert ledger.used(G1, 0.0, 11.0) == pytest.approx(1.0)
    assert ledger.used(868_300_000, 0.0, HOUR) == pytest.approx(3.0)
    status = ledger.status(400.0)
    assert status["g1"]["used_s"] == pytest.approx(3.0)
    assert status["g1"]["budget_s"] == pytest.approx(36.0)
    assert status["g1"]["blocked_until"] == pytest.approx(400.0)
    assert status["g3"]["used_s"] == 0.0


# --- configuration and errors --------------------------------------------------------------

def test_frequency_outside_every_subband() -> None:
    ledger = DutyCycleLedger()
    for f in (868_650_000, 869_300_000, 915_000_000, 870_000_000):
        with pytest.raises(ConfigError, match="no duty-cycle sub-band"):
            ledger.next_allowed(f, 0.1, 0.0)
        with pytest.raises(ConfigError):
            ledger.record(f, 0.0, 0.1)
    lenient = DutyCycleLedger(default_limit=0.01)
    assert lenient.subband_name(915_000_000) == "default"
    lenient.record(915_000_000, 0.0, 1.0)
    # All unknown frequencies share one conservative band.
    assert lenient.next_allowed(923_300_000, 1.0, 1.0) == pytest.approx(100.0)


def test_cap_applies_lorawan_eu433_one_percent() -> None:
    # LoRaWAN 7.4.2 (~6013): EU433 devices keep below 1% although ETSI allows 10% (~6073).
    ledger = DutyCycleLedger(EU433_SUBBANDS, cap=get_region("EU433").lorawan_duty_cycle)
    assert ledger.limit(433_175_000) == 0.01
    ledger.record(433_175_000, 0.0, 0.5)
    assert ledger.next_allowed(433_375_000, 0.5, 0.5) == pytest.approx(50.0)


def test_frame_longer_than_budget_is_a_config_error() -> None:
    # g2 allows 0.1% = 3.6 s per hour; SF12/125 kHz with 255 bytes is ~9.1 s.
    long_frame = time_on_air(PhySettings(868_900_000, 12, 125_000), 255)
    assert long_frame > 3.6
    ledger = DutyCycleLedger()
    with pytest.raises(AirtimeTooLongError, match="never be sent"):
        ledger.next_allowed(868_900_000, long_frame, 0.0)
    with pytest.raises(ConfigError):
        ledger.can_send(868_900_000, long_frame, 0.0)
    # T_off alone has no per-frame cap.
    assert DutyCycleLedger(policy="toff").can_send(868_900_000, long_frame, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(window_s=0), dict(window_s=float("inf")), dict(policy="fair"), dict(cap=0),
     dict(cap=1.5), dict(default_limit=-0.1), dict(default_limit=True)],
)
def test_bad_ledger_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        DutyCycleLedger(**kwargs)


def test_bad_subbands() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        DutyCycleLedger([SubBand("a", 1, 10, 0.1), SubBand("b", 5, 20, 0.1)])
    with pytest.raises(ConfigError, match="unique"):
        DutyCycleLedger([SubBand("a", 1, 10, 0.1), SubBand("a", 10, 20, 0.1)])
    with pytest.raises(ConfigError):
        SubBand("x", 10, 5, 0.1)
    with pytest.raises(ConfigError):
        SubBand("x", 5, 10, 0.0)
    with pytest.raises(ConfigError):
        DutyCycleLedger(["g1"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "args", [(G1, 0.0, 0.0), (G1, 0.0, -1.0), (G1, float("nan"), 1.0), (G1, 0.0, "1"),
             ("868.1", 0.0, 1.0), (None, 0.0, 1.0)],
)
def test_bad_record_arguments(args) -> None:
    with pytest.raises(ConfigError):
        DutyCycleLedger().record(*args)


# --- persistence ---------------------------------------------------------------------------

def test_round_trip_through_json() -> None:
    ledger = DutyCycleLedger(window_s=1800.0, cap=0.05)
    assert _greedy(ledger, G3, 2000.0, _MIX)
    ledger.record(G1, 1990.0, 0.3)
    restored = DutyCycleLedger.from_dict(json.loads(json.dumps(ledger.to_dict())))
    assert restored.to_dict() == ledger.to_dict()
    assert (restored.window_s, restored.policy, restored.cap) == (1800.0, "both", 0.05)
    for freq, a, now in [(G3, 0.2, 2001.0), (G1, 0.1, 1995.0), (G1, 0.1, 2100.0)]:
        assert restored.next_allowed(freq, a, now) == ledger.next_allowed(freq, a, now)
    # ... the T_off pause after the last frame included (1990 + 0.3/1% = 2020 s).
    assert restored.can_send(G1, 0.1, 1990.3) is False


def test_toff_survives_pruning() -> None:
    ledger = DutyCycleLedger(policy="toff", window_s=10.0)
    ledger.record(868_900_000, 0.0, 1.0)  # 0.1% -> blocked until 1000 s
    ledger.prune(500.0)
    assert ledger.entry_count() == 0
    assert ledger.next_allowed(868_900_000, 1.0, 500.0) == pytest.approx(1000.0)
    restored = DutyCycleLedger.from_dict(ledger.to_dict())
    assert restored.next_allowed(868_900_000, 1.0, 500.0) == pytest.approx(1000.0)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format="other"),
        lambda d: d.pop("subbands"),
        lambda d: d.update(policy="fair"),
        lambda d: d.update(entries={"nope": [[0.0, 1.0]]}),
        lambda d: d.update(entries={"g1": [[0.0]]}),
        lambda d: d.update(entries={"g1": [[5.0, 1.0]]}),
        lambda d: d.update(entries={"g1": [["a", 1.0]]}),
        lambda d: d.update(entries=[1, 2]),
        lambda d: d.update(blocked_until={"g1": "soon"}),
        lambda d: d["subbands"].append({"name": "bad"}),
        lambda d: d.update(window_s=None),
    ],
)
def test_from_dict_rejects_malformed(mutate) -> None:
    ledger = DutyCycleLedger()
    ledger.record(G1, 0.0, 1.0)
    data = json.loads(json.dumps(ledger.to_dict()))
    mutate(data)
    with pytest.raises(ConfigError):
        DutyCycleLedger.from_dict(data)


def test_from_dict_rejects_non_mapping() -> None:
    for bad in (None, [], "ledger"):
        with pytest.raises(ConfigError):
            DutyCycleLedger.from_dict(bad)  # type: ignore[arg-type]


# --- the fast bookkeeping against first principles -------------------------------------------

def _union_overlap(frames: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Busy time inside [lo, hi) of the union of frames (start, airtime): brute force."""
    merged: list[list[float]] = []
    for s, a in sorted(frames):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], s + a)
        else:
            merged.append([s, s + a])
    return sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in merged)


_frame = st.tuples(st.floats(0, 500, allow_nan=False), st.floats(0.01, 8, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(_frame, max_size=25), now_offset=st.floats(0, 200),
       airtime=st.floats(0.01, 10), window=st.sampled_from([60.0, 300.0, 3600.0]))
def test_next_allowed_is_feasible_and_earliest(frames, now_offset, airtime, window) -> None:
    # Frames in any order, overlapping or not (overlaps count once: time "transmitting").
    ledger = DutyCycleLedger([SubBand("b", 1, 2_000_000_000, 0.1)], window_s=window,
                             policy="sliding_window")
    for s, a in frames:
        ledger.record(G1, s, a)
    budget = 0.1 * window
    now = max((s + a for s, a in frames), default=0.0) + now_offset  # after the last frame
    if airtime > budget:
        with pytest.raises(AirtimeTooLongError):
            ledger.next_allowed(G1, airtime, now)
        return
    t = ledger.next_allowed(G1, airtime, now)
    assert t >= now

    def fits(start: float) -> bool:  # every window holding the new frame stays in budget
        return _union_overlap(frames, start + airtime - window, start) + airtime <= budget + 1e-6

    assert fits(t)
    if t > now + 1e-6:
        assert not fits(t - 1e-3)  # 1 ms earlier would be too early: t is the earliest
    assert ledger.used(G1, now - window, now) == pytest.approx(
        _union_overlap(frames, now - window, now), abs=1e-6)
    left = ledger.budget_left(G1, now)
    assert left >= 0
    if left > 0:
        assert _union_overlap(frames, now + left - window, now) + left <= budget + 1e-6
    if left < budget - 1e-3:
        longer = left + 1e-3
        assert _union_overlap(frames, now + longer - window, now) + longer > budget


def test_overlapping_and_out_of_order_frames_count_once() -> None:
    ledger = DutyCycleLedger(policy="sliding_window")
    ledger.record(G1, 100.0, 2.0)
    ledger.record(G1, 50.0, 1.0)  # out of order
    ledger.record(G1, 101.0, 2.0)  # overlaps [100, 102): union [100, 103)
    ledger.record(868_300_000, 100.5, 0.5)  # another g1 channel, inside the union
    assert ledger.used(G1, 0.0, HOUR) == pytest.approx(4.0)
    assert ledger.entry_count() == 2
    assert ledger.budget_left(G1, 200.0) == pytest.approx(32.0)
