"""The drone send loop on a simulated clock: newest state, duty cycle, stale FC, radio faults."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

import pytest

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import lorawan as lw
from lora_telemetry.drone.config import DroneConfig
from lora_telemetry.drone.runtime import DroneRuntime
from lora_telemetry.drone.transmitters import RawUplinkTransmitter
from lora_telemetry.keyfile import DeviceKeys
from lora_telemetry.radios.base import (
    ModuleReset, RadioBusy, RadioDisconnected, RawRadio, RxFrame, TxResult,
)

KEYS = DeviceKeys("uav1", 0x26011CA2, bytes(range(16)), bytes(range(16, 32)))
T0 = 1_763_700_000.0


def config(**changes) -> DroneConfig:
    base = dict(uav_name="uav1", mavlink_url="udpin:127.0.0.1:14550", radio_port="/dev/null",
                key_file="/nonexistent", fcnt_state_file="/nonexistent",
                origin_lat_deg=47.3977, origin_lon_deg=8.5456, origin_alt_m=400.0,
                update_period_s=0.5)
    base.update(changes)
    return DroneConfig(**base)


class Clock:
    def __init__(self) -> None:
        self.t = T0


@dataclass
class FakeVehicle:
    """A flight controller whose state advances with the simulated clock (10 Hz)."""

    clock: Clock
    silent_after: float = float("inf")

    def sample(self, now: float | None = None) -> tcodec.TelemetrySample | None:
        t = min(self.clock.t, self.silent_after)
        t = T0 + int((t - T0) * 10) / 10
        return tcodec.TelemetrySample(time_unix_s=t, lat_deg=47.3977 + (t - T0) * 1e-6,
                                      lon_deg=8.5456, alt_amsl_m=450.0, alt_rel_m=50.0,
                                      custom_mode=3, armed=True)

    def is_stale(self, now: float | None = None) -> bool:
        return self.clock.t > self.silent_after + 3.0


@dataclass
class FakeRadio(RawRadio):
    """Records what would go on the air; can fail on request."""

    clock: Clock
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    faults: list[Exception] = field(default_factory=list)
    configured: int = 0
    closed: bool = False
    _phy: object = None

    @property
    def phy(self):
        return self._phy

    def configure(self, phy) -> None:
        self._phy = phy
        self.configured += 1

    def send(self, data: bytes, timeout: float | None = None) -> TxResult:
        if self.faults:
            raise self.faults.pop(0)
        at = self._phy.time_on_air(len(data))
        self.sent.append((self.clock.t, data))
        return TxResult(at, self.clock.t, self.clock.t + at)

    def receive(self, timeout: float) -> RxFrame | None:
        return None

    def close(self) -> None:
        self.closed = True

    def reconnect(self, timeout: float = 10.0) -> None:
        self.closed = False

    def stats(self) -> dict[str, int]:
        return {"sent": len(self.sent)}


class Counters:
    def __init__(self) -> None:
        self.n = 0

    def take(self) -> int:
        self.n += 1
        return self.n - 1


def make(cfg: DroneConfig, clock: Clock, vehicle: FakeVehicle | None = None,
         radios: list[FakeRadio] | None = None):
    radios = radios if radios is not None else []

    def factory() -> FakeRadio:
        r = FakeRadio(clock)
        radios.append(r)
        return r

    tx = RawUplinkTransmitter(factory, cfg.phy, KEYS)
    events: list[tuple[str, str]] = []
    rt = DroneRuntime(cfg, vehicle or FakeVehicle(clock), tx, Counters(),
                      rng=random.Random(1), on_event=lambda lvl, txt: events.append((lvl, txt)))
    return rt, radios, events


def run(rt: DroneRuntime, clock: Clock, seconds: float) -> None:
    end = clock.t + seconds
    while clock.t < end:
        clock.t = max(clock.t + 1e-3, min(rt.step(clock.t), end))


def decode_all(radio: FakeRadio, cfg: DroneConfig) -> list[tuple[int, tcodec.TelemetrySample]]:
    out = []
    for t, data in radio.sent:
        d = lw.decode_data_frame(data, KEYS.nwkskey, KEYS.appskey)
        assert d.mic_valid
        out.append((d.fcnt32, tcodec.decode(d.frame.fport, d.payload, cfg.codec, t)))
    return out


def test_one_percent_band_never_exceeded_and_used_fully() -> None:
    # 868.1 MHz: g1 (868.0-868.6 MHz), 1 % (thesis ~3470; LoRaWAN 7.1.2). 29-byte frames at
    # SF7/125 kHz take 66.816 ms, so T_off = 99 x 66.816 ms and the best interval is 6.68 s.
    clock = Clock()
    cfg = config(frequency_hz=868_100_000)
    rt, radios, _ = make(cfg, clock)
    run(rt, clock, 2.2 * 3600)
    starts = [t for t, _ in radios[0].sent]
    airtime = cfg.phy.time_on_air(29)
    for i, s in enumerate(starts):  # every hour window that opens with a frame
        on_air = sum(min(airtime, s + 3600 - x) for x in starts[i:] if x < s + 3600)
        assert on_air <= 0.01 * 3600 + 1e-9
    assert len(starts) >= 0.99 * (2.2 * 3600) / (100 * airtime)


def test_frames_carry_newest_state_with_increasing_counters() -> None:
    clock = Clock()
    cfg = config()
    rt, radios, _ = make(cfg, clock)
    run(rt, clock, 30)
    decoded = decode_all(radios[0], cfg)
    assert len(decoded) >= 30 / 0.7  # period 0.5 s, 10 % band: T_off 0.6 s
    fcnts = [f for f, _ in decoded]
    assert fcnts == sorted(set(fcnts))
    for (t_sent, _), (_, s) in zip(radios[0].sent, decoded):
        assert 0 <= t_sent - s.time_unix_s <= 0.1 + tcodec.TIME_STEP_S  # newest 10 Hz state


def test_silent_flight_controller_stops_sending_and_says_so() -> None:
    clock = Clock()
    vehicle = FakeVehicle(clock, silent_after=T0 + 10)
    rt, radios, events = make(config(), clock, vehicle)
    run(rt, clock, 30)
    last = max(t for t, _ in radios[0].sent)
    assert last <= T0 + 13 + 0.01  # stale 3 s after the last message: nothing after that
    assert rt.status(clock.t)["stale"] is True
    assert any("silent" in text for _, text in events)
    assert all(t - s.time_unix_s <= cfg_age() for (t, _), (_, s) in
               zip(radios[0].sent, decode_all(radios[0], config())))


def cfg_age() -> float:
    return config().max_sample_age_s


@pytest.mark.parametrize("fault, reopened", [
    (RadioDisconnected("port gone"), True),
    (ModuleReset("banner"), True),
    (RadioBusy("no_free_ch"), False),
])
def test_radio_faults_are_recovered(fault: Exception, reopened: bool) -> None:
    clock = Clock()
    rt, radios, _ = make(config(), clock)
    run(rt, clock, 3)
    before = len(radios[0].sent)
    radios[0].faults.append(fault)
    run(rt, clock, 10)
    total = sum(len(r.sent) for r in radios)
    assert total >= before + 10  # kept sending after the fault
    assert (len(radios) == 2) is reopened
    assert sum(rt.failures.values()) == 1


def test_unopenable_radio_retries_with_backoff() -> None:
    clock = Clock()
    attempts: list[float] = []

    def factory():
        attempts.append(clock.t)
        raise RadioDisconnected("no such port")

    cfg = config()
    tx = RawUplinkTransmitter(factory, cfg.phy, KEYS)
    rt = DroneRuntime(cfg, FakeVehicle(clock), tx, Counters(), rng=random.Random(1))
    run(rt, clock, 60)
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] == pytest.approx(0.5, abs=0.01) and max(gaps) <= cfg.reconnect_backoff_max_s + 0.01
    assert rt.status(clock.t)["radio_open"] is False


def test_duty_cycle_cap_lowers_the_limit() -> None:
    # LoRaWAN EU433 asks for 1 % (Region.lorawan_duty_cycle) on a sub-band ETSI allows 10 %.
    clock = Clock()
    cfg = config(duty_cycle_cap=0.01)
    rt, radios, _ = make(cfg, clock)
    run(rt, clock, 600)
    starts = [t for t, _ in radios[0].sent]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 100 * cfg.phy.time_on_air(29) - 1e-6


def test_the_loop_says_it_started_once_after_a_first_pass_that_tried_the_radio() -> None:
    # The drone node announces itself ready from this hook (lora_telemetry/readiness.py).
    clock = Clock()
    rt, radios, _ = make(config(), clock)
    stop = threading.Event()
    seen: list[tuple[int, bool]] = []
    passes = 0

    def tick() -> float:
        nonlocal passes
        passes += 1
        if passes > 8:
            stop.set()
        clock.t += 0.01
        return clock.t

    rt.run(stop, clock=tick,
           on_started=lambda: seen.append((passes, rt.status(clock.t)["radio_open"])))
    assert seen == [(1, True)]  # once, right after the first pass, which opened the radio
    assert len(radios) == 1
