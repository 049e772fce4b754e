"""The ground under TDMA: a schedule that cannot work is refused at start, the beacon goes out
in slot 0 within the gateway's duty cycle, and every accepted frame is placed on its slot.

Figures:
* 29-byte uplink at SF7/125 kHz = 66.816 ms, 17-byte beacon = 51.456 ms (SX1276 datasheet
  4.1.1.7, core.phy; test_core_tdma.py asserts both). Slots of 5 ms guard + frame + 5 ms:
  beacon slot 61.456 ms, uplink slot 76.816 ms, so a 1 s superframe holds
  floor((1000 - 61.456) / 76.816) = 12 UAVs, and 13 need 61.456 + 13 x 76.816 = 1.060 s.
* Gateway duty cycle: 10 % at 433.175 MHz, 1 % at 868.1 MHz (2006/771/EC annex, the
  ledger's EU bands, core/dutycycle.py): a 51.456 ms beacon each second is 5.1 %, allowed at
  433 MHz; at 868.1 MHz one beacon every ceil(51.456 / 10) = 6 s at most.
* The SX1276's command-to-air time: TS_FS + TS_TR = 127.5 us (radios/sx1276/timing.py).
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from radio_fakes import FakeRawRadio

from lora_telemetry.core import beacon as bc
from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.ground.config import GroundConfig
from lora_telemetry.ground.runtime import GroundRuntime
from lora_telemetry.core.gateway import Gateway
from lora_telemetry.keyfile import DeviceKeys, NetworkKeys, write_key_file
from lora_telemetry.persist import GroundCounterStore
from lora_telemetry.radios.base import RxFrame, TxResult

T0 = 1_796_000_000.0
BEACON_KEY = bytes(range(40, 56))
ORIGIN = {"origin_lat_deg": 47.3977, "origin_lon_deg": 8.5456, "origin_alt_m": 488.0}
UPLINK_S, BEACON_S = 0.066816, 0.051456
#: The driver's SPI writes before the TX command (Standby, DIO mapping, FIFO pointer, 17-byte
#: burst, length, IRQ clear): six transfers, about 0.9 ms on a Raspberry Pi's spidev at 500 kHz.
SPI_WRITES_S = 0.0009


def keys(n: int) -> dict[str, DeviceKeys]:
    return {f"uav{i}": DeviceKeys(f"uav{i}", 0x260B0000 + i, bytes([i] * 16), bytes([i + 100] * 16))
            for i in range(1, n + 1)}


def config(tmp_path: Path, n: int = 3, *, slots: dict[str, int] | None = None,
           network: bool = True, **extra) -> GroundConfig:
    path = tmp_path / "keys.yaml"
    write_key_file(path, keys(n), network=NetworkKeys(BEACON_KEY) if network else None)
    slots = {f"uav{i}": i for i in range(1, n + 1)} if slots is None else slots
    devices = {name: {"system_id": i + 1, **({"slot": slots[name]} if name in slots else {})}
               for i, name in enumerate(keys(n))}
    values = {"key_file": str(path), "radio": "emulator", "access": "tdma",
              "frequency_hz": 433_175_000, "fcnt_state_file": str(tmp_path / "fcnt.json"),
              "devices": devices, **ORIGIN, **extra}
    return GroundConfig.from_mapping(values)


# -- refused at start ---------------------------------------------------------------------------
def test_an_overfull_schedule_is_refused_naming_the_largest_feasible_swarm(tmp_path) -> None:
    assert config(tmp_path, 12).schedule().slots == 12
    with pytest.raises(ConfigError, match=r"largest feasible swarm is 12 UAVs; 13 slots need "
                                          r"a period of at least 1\.060 s"):
        config(tmp_path, 13)


def test_duplicate_and_missing_slots_are_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="slot 2 is given to both uav2 and uav3"):
        config(tmp_path, 3, slots={"uav1": 1, "uav2": 2, "uav3": 2})
    with pytest.raises(ConfigError, match="devices.uav3 has no slot"):
        config(tmp_path, 3, slots={"uav1": 1, "uav2": 2})


def test_the_beacon_must_fit_the_gateways_duty_cycle(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"gateway's 1 % duty cycle: every 6 at least"):
        config(tmp_path, 3, frequency_hz=868_100_000)
    assert config(tmp_path, 3, frequency_hz=868_100_000, tdma_beacon_every=6).schedule().beacon_every == 6


def test_tdma_without_a_beacon_key_is_refused_at_start(tmp_path) -> None:
    cfg = config(tmp_path, 2, network=False)
    with pytest.raises(ConfigError, match="no network section with the beacon key"):
        GroundRuntime(cfg, Gateway(cfg.registry()), lambda f, v: None,
                      counter_store=GroundCounterStore(tmp_path / "fcnt.json"))


# -- the receive loop on a simulated clock --------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = T0 + 0.5

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds + 0.0001  # time.sleep on Linux: ~0.1 ms late


class AirRadio(FakeRawRadio):
    """A gateway chip on a simulated clock: frames arrive at scripted times; sends are logged
    with their first symbol's time (the SPI writes, then the chip's 127.5 us)."""

    def __init__(self, clock: Clock, arrivals: list[tuple[float, bytes]], stop: threading.Event,
                 until: float) -> None:
        self.clock, self.arrivals, self.stop, self.until = clock, sorted(arrivals), stop, until
        self.sent: list[tuple[float, bytes]] = []
        self.rng = random.Random(5)
        self._phy = PhySettings(433_175_000, 7, 125_000)

    def send(self, data: bytes, timeout=None) -> TxResult:
        start = self.clock.t + SPI_WRITES_S + 0.0001275
        self.sent.append((start, data))
        airtime = self._phy.time_on_air(len(data))
        started = self.clock.t
        self.clock.t = start + airtime
        return TxResult(airtime, started, self.clock.t)

    def receive(self, timeout: float):
        assert timeout >= 0
        closes = self.clock.t + timeout
        if closes >= self.until:
            self.stop.set()
        if self.arrivals and self.arrivals[0][0] <= closes:
            at, data = self.arrivals.pop(0)
            self.clock.t = max(self.clock.t, at)
            return RxFrame(data, self._phy, rssi_dbm=-80.0, snr_db=9.0, time=self.clock.t)
        self.clock.t = closes + self.rng.uniform(0.0, 0.002)  # a real wait returns a bit late
        return None


def uplink(cfg: GroundConfig, name: str, fcnt: int, start: float) -> tuple[float, bytes]:
    k = keys(12)[name]
    sample = tcodec.TelemetrySample(start, lat_deg=47.3978, lon_deg=8.5457, alt_amsl_m=500.0)
    fport, payload = tcodec.encode(sample, cfg.codec_for("arducopter"))
    data = lw.build_data_frame(k.devaddr, fcnt, payload, nwkskey=k.nwkskey, appskey=k.appskey,
                               fport=fport)
    return start + UPLINK_S, data  # arrives as its last symbol ends


def test_beacons_in_slot_0_with_the_heard_bitmap_and_slot_errors_per_uav(tmp_path) -> None:
    cfg = config(tmp_path, 3)
    s = cfg.schedule()
    m0 = s.superframe_of(T0) + 1
    # uav1 on time, uav2 3 ms late (inside its guard), uav3 8 ms early (outside it), in
    # superframes m0 .. m0+9; uav3 is silent in m0+5.
    arrivals = []
    for k in range(10):
        m = m0 + k
        arrivals.append(uplink(cfg, "uav1", k, s.uplink_start(m, 1)))
        arrivals.append(uplink(cfg, "uav2", k, s.uplink_start(m, 2) + 0.003))
        if k != 5:
            arrivals.append(uplink(cfg, "uav3", k, s.uplink_start(m, 3) - 0.008))
    clock, stop = Clock(), threading.Event()
    radio = AirRadio(clock, arrivals, stop, until=s.superframe_start(m0 + 11) + 0.5)
    delivered = []
    rt = GroundRuntime(cfg, Gateway(cfg.registry()), lambda f, v: delivered.append(v),
                       counter_store=GroundCounterStore(tmp_path / "fcnt.json"),
                       open_radio=lambda c: radio, clock=clock, sleep=clock.sleep)
    rt.run(stop)
    # One beacon per superframe from m0 on, each starting one guard into its superframe.
    beacons = [bc.decode_beacon(data, BEACON_KEY) for _, data in radio.sent]
    assert [b.superframe for b in beacons] == list(range(m0, m0 + 12))
    for (start, _), b in zip(radio.sent, beacons):
        assert start == pytest.approx(s.beacon_start(b.superframe), abs=0.0003)
    # Each beacon names the slots heard in the superframe before it.
    heard = {b.superframe: b.heard for b in beacons}
    assert heard[m0 + 1] == {1, 2, 3} and heard[m0 + 6] == {1, 2} and heard[m0] == frozenset()
    timing = rt.tdma.timing
    assert timing["uav1"].frames == 10 and abs(timing["uav1"].mean_error_s) < 1e-6
    assert timing["uav2"].mean_error_s == pytest.approx(0.003, abs=1e-6)
    assert timing["uav2"].outside_slot == 0
    assert timing["uav3"].mean_error_s == pytest.approx(-0.008, abs=1e-6)
    assert timing["uav3"].outside_slot == 9
    assert len(delivered) == 29 and all(v.accepted for v in delivered)
    # The beacons' airtime is on the gateway's duty-cycle ledger: 12 x 51.456 ms.
    stats = rt.beacons.stats(clock.t)
    assert stats["beacons_sent"] == 12
    assert stats["beacon_airtime_last_hour_s"] == pytest.approx(12 * BEACON_S, rel=1e-6)


def test_a_beacon_whose_moment_passed_is_skipped_and_counted_not_sent_late(tmp_path) -> None:
    cfg = config(tmp_path, 2)
    s = cfg.schedule()
    clock = Clock()
    rt = GroundRuntime(cfg, Gateway(cfg.registry()), lambda f, v: None,
                       counter_store=GroundCounterStore(tmp_path / "fcnt.json"), clock=clock,
                       sleep=clock.sleep)
    radio = AirRadio(clock, [], threading.Event(), until=T0 + 100)
    m = s.superframe_of(clock.t) + 1
    assert not rt.beacons.send_due(radio, clock.t)  # not yet due
    clock.t = s.beacon_start(m) - rt.beacons.lead_s
    assert rt.beacons.send_due(radio, clock.t)
    clock.t = s.beacon_start(m + 3) + 0.004  # the loop stalled: beacons m+1, m+2, m+3 passed
    assert not rt.beacons.send_due(radio, clock.t)
    assert rt.tdma.beacons_skipped == {"late": 3} and len(radio.sent) == 1
