"""The drone under TDMA, on a simulated clock: it hits its slot from GPS time, listens for the
beacon, refuses forged and replayed ones, and goes quiet without time rather than collide.

The world: true (GPS) time ``t``; the drone's host clock runs ``HOST_OFFSET_S`` behind with
``DRIFT_PPM`` of drift (issue 13's case: 2 s off, 50 ppm); the flight controller sends
SYSTEM_TIME at 4 Hz through a link that delays it by 0-8 ms; the module puts a frame on the
air ``LEAD_S`` after the command (as the family's timing model says, radios/registry.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from radio_fakes import FakeRawRadio

from lora_telemetry.core import beacon as bc
from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import lorawan as lw
from lora_telemetry.drone.config import DroneConfig
from lora_telemetry.drone.runtime import DroneRuntime
from lora_telemetry.drone.tdma import BeaconStateStore, TdmaAccess
from lora_telemetry.drone.transmitters import RawUplinkTransmitter
from lora_telemetry.keyfile import DeviceKeys
from lora_telemetry.radios.base import RxFrame, TxResult

KEYS = DeviceKeys("uav4", 0x260B0004, bytes(range(16)), bytes(range(16, 32)))
BEACON_KEY = bytes(range(40, 56))
T0 = 1_796_000_000.0
HOST_OFFSET_S = -2.0  # host = GPS - 2 s
DRIFT_PPM = 50.0
LEAD_S = 0.014  # the RN2483's command-to-air time for a 29-byte frame, roughly
REPORT_S = 0.013  # ... and its beacon report's air-to-host time (radios/rn2483/timing.py)


class World:
    def __init__(self, seed: int = 3) -> None:
        self.t = T0 + 0.3  # true time
        self.rng = random.Random(seed)
        self.gps_ok = True
        self._next_system_time = self.t
        self.beacons: dict[int, bytes] = {}  # superframe -> frame the ground sends
        self.beacon_loss = 0.0

    def host(self, t: float | None = None) -> float:
        t = self.t if t is None else t
        return t + HOST_OFFSET_S + DRIFT_PPM * 1e-6 * (t - T0)

    def true_of(self, host: float) -> float:
        return (host - HOST_OFFSET_S + DRIFT_PPM * 1e-6 * T0) / (1 + DRIFT_PPM * 1e-6)


@dataclass
class Vehicle:
    world: World

    def sample(self, now=None, *, at_time=None, clock_offset_s: float = 0.0):
        t = int(self.world.t * 10) / 10  # 10 Hz states, GPS-timed
        east = 8.0 * (t - T0)  # flying east at 8 m/s
        lat, lon = tcodec.CodecConfig(47.3977, 8.5456, 488.0, "arducopter").projection.to_geodetic(east, 0.0)
        if at_time is not None:
            lat, lon = tcodec.CodecConfig(47.3977, 8.5456, 488.0, "arducopter").projection.to_geodetic(
                8.0 * (at_time - T0), 0.0)
            t = at_time
        return tcodec.TelemetrySample(time_unix_s=t, lat_deg=lat, lon_deg=lon, alt_amsl_m=520.0,
                                      alt_rel_m=32.0, custom_mode=3, armed=True)

    def is_stale(self, now=None) -> bool:
        return False

    def take_time_samples(self):
        w = self.world
        out = []
        while w._next_system_time <= w.t:
            if w.gps_ok:
                out.append((w._next_system_time, w.host(w._next_system_time + w.rng.uniform(0, 0.008))))
            w._next_system_time += 0.25
        return out


@dataclass
class Radio(FakeRawRadio):
    world: World
    air: list[float] = field(default_factory=list)  # true frame starts
    listened: list[tuple[float, float]] = field(default_factory=list)

    def send(self, data: bytes, timeout=None) -> TxResult:
        w = self.world
        start = w.t + LEAD_S
        at = self._phy.time_on_air(len(data))
        self.air.append(start)
        host_start = w.host()
        w.t = start + at + 0.003  # radio_tx_ok
        return TxResult(at, host_start, w.host())

    def receive(self, timeout: float) -> RxFrame | None:
        w = self.world
        opened, closes = w.t, w.t + timeout
        self.listened.append((opened, closes))
        for m, frame in sorted(w.beacons.items()):
            begins = m * 1.0 + 0.005  # the ground's beacon, one guard into superframe m
            ends = begins + 0.051456  # 17 bytes at SF7/125 kHz
            if opened <= begins and ends <= closes and w.rng.random() >= w.beacon_loss:
                w.t = ends + REPORT_S  # the module's report
                return RxFrame(frame, self._phy, rssi_dbm=-90.0, snr_db=8.0, time=w.host())
        w.t = closes
        return None


class Counters:
    n = 0

    def take(self) -> int:
        self.n += 1
        return self.n - 1


def setup(tmp_path, *, slot: int = 4, key: bytes | None = BEACON_KEY, seed: int = 3):
    world = World(seed)
    cfg = DroneConfig(uav_name="uav4", mavlink_url="udpin:127.0.0.1:1", radio_port="/dev/null",
                      key_file="/nonexistent", origin_lat_deg=47.3977, origin_lon_deg=8.5456,
                      origin_alt_m=488.0, access="tdma", tdma_slot=slot,
                      tdma_max_missed_beacons=3)
    radio = Radio(world)
    events: list[tuple[str, str]] = []
    access = TdmaAccess(cfg.schedule(), slot, timing=None, baud=57600, beacon_key=key,
                        beacon_state=BeaconStateStore(tmp_path / "beacon.json"),
                        max_missed_beacons=3, lead_s=LEAD_S,
                        on_event=lambda lvl, txt: events.append((lvl, txt)))
    access.report_s = REPORT_S  # what the family's timing model says (radios/registry.py)
    tx = RawUplinkTransmitter(lambda: radio, cfg.phy, KEYS)
    rt = DroneRuntime(cfg, Vehicle(world), tx, Counters(), tdma=access,
                      on_event=lambda lvl, txt: events.append((lvl, txt)))
    return world, radio, rt, access, cfg, events


def run(world: World, rt: DroneRuntime, seconds: float) -> None:
    end = world.t + seconds
    while world.t < end:
        wake = rt.step(world.host())
        world.t = max(world.t + 1e-4, min(world.true_of(wake), end))


def test_hits_its_slot_from_gps_time_although_the_host_clock_is_2_s_off(tmp_path) -> None:
    world, radio, rt, access, cfg, events = setup(tmp_path, key=None)  # GPS time only
    run(world, rt, 120)
    s = access.schedule
    late = []
    for start in radio.air[40:]:  # after the time keeper has settled
        m = s.superframe_of(start)
        late.append(start - s.uplink_start(m, 4))
    assert len(radio.air) >= 115  # one frame per superframe
    assert max(abs(x) for x in late) < 0.0015, max(late, key=abs)  # a 5 ms guard holds
    superframes = [s.superframe_of(t) for t in radio.air]
    assert superframes == sorted(set(superframes))  # never twice in one superframe
    status = rt.status(world.host())
    assert status["time_source"] == "gps" and "behind gps time" in status["time_warning"]


def test_sent_state_is_the_state_at_its_on_air_time(tmp_path) -> None:
    world, radio, rt, access, cfg, _ = setup(tmp_path, key=None)
    sent: list[bytes] = []
    rt.on_sent = lambda frame: sent.append(frame.report.data)
    run(world, rt, 60)
    for start, data in list(zip(radio.air, sent))[20:]:
        d = lw.decode_data_frame(data, KEYS.nwkskey, KEYS.appskey)
        sample = tcodec.decode(d.frame.fport, d.payload, cfg.codec, start + 0.07)
        planned = access.schedule.uplink_start(access.schedule.superframe_of(start), 4)
        # The sample time is the codec's first 20 ms grid point in the frame's time on air
        # (66.8 ms from its first symbol), and the position is the one at that time.
        assert planned - 1e-6 <= sample.time_unix_s < planned + tcodec.TIME_STEP_S
        assert start - 0.002 <= sample.time_unix_s <= start + 0.0668
        east, _ = cfg.codec.projection.to_local(sample.lat_deg, sample.lon_deg)
        assert east == pytest.approx(8.0 * (sample.time_unix_s - T0), abs=0.5)  # 0.5 m grid


def test_without_gps_it_follows_beacons_and_goes_quiet_when_they_stop(tmp_path) -> None:
    world, radio, rt, access, cfg, events = setup(tmp_path)
    world.gps_ok = False
    for m in range(int(T0), int(T0) + 200):
        world.beacons[m] = bc.encode_beacon(bc.Beacon(m), BEACON_KEY)
    run(world, rt, 40)
    assert access.keeper.estimate.source.value == "beacon"
    sent_before = len(radio.air)
    assert sent_before >= 30
    s = access.schedule
    assert all(abs(t - s.uplink_start(s.superframe_of(t), 4)) < 0.003 for t in radio.air[10:])
    world.beacons.clear()  # the ground goes silent too
    run(world, rt, 20)
    quiet_from = max(radio.air)
    assert quiet_from < world.t - 15  # 3 missed beacons: quiet within ~3.5 s, not 20
    assert any("holding frames rather than collide" in txt for _, txt in events)
    assert rt.status(world.host())["tdma.slot_missed.no_time"] >= 10


def test_forged_and_replayed_beacons_are_refused_and_counted(tmp_path) -> None:
    world, radio, rt, access, cfg, _ = setup(tmp_path)
    m0 = int(T0)
    for m in range(m0, m0 + 30):
        world.beacons[m] = bc.encode_beacon(bc.Beacon(m), BEACON_KEY)
    run(world, rt, 10)
    accepted = access.tracker.counts["accepted"]
    assert accepted >= 8
    recorded = world.beacons[m0 + 2]
    world.beacons = {m: bc.encode_beacon(bc.Beacon(m), bytes(16)) for m in range(m0 + 11, m0 + 15)}
    run(world, rt, 4)
    assert access.tracker.counts["mic_failed"] >= 3
    world.beacons = {m: recorded for m in range(m0 + 15, m0 + 18)}  # an old beacon, replayed
    run(world, rt, 3)
    assert access.tracker.counts["replay"] >= 2
    assert access.tracker.counts["accepted"] == accepted  # neither moved the schedule
    # The persisted counter keeps refusing the recording after a restart.
    assert BeaconStateStore(tmp_path / "beacon.json").last_superframe >= m0 + 9
    status = rt.status(world.host())
    assert status["beacons.mic_failed"] >= 3 and status["beacons.replay"] >= 2


def test_slot_1_does_not_listen_when_the_module_reports_too_slowly(tmp_path) -> None:
    world, radio, rt, access, cfg, _ = setup(tmp_path, slot=1)
    for m in range(int(T0), int(T0) + 20):
        world.beacons[m] = bc.encode_beacon(bc.Beacon(m), BEACON_KEY)
    run(world, rt, 15)
    assert access.misses["beacons_not_listened"] >= 5
    # It still sends in every superframe, on GPS time, once that time is good to 2 ms
    # (TimeKeeper.max_uncertainty_s: 5-8 s of SYSTEM_TIME at 4 Hz with 0-8 ms of delay).
    superframes = [access.schedule.superframe_of(t) for t in radio.air]
    assert len(superframes) >= 6
    assert superframes == list(range(superframes[0], superframes[0] + len(superframes)))


def test_a_damaged_beacon_state_file_is_refused_with_the_way_out(tmp_path) -> None:
    from lora_telemetry.persist import StateFileError

    path = tmp_path / "uav4.fcnt.beacon.json"
    for content in ("{not json", '{"last_superframe": "12"}', "[]"):
        path.write_text(content)
        with pytest.raises(StateFileError, match="move it away|unreadable"):
            BeaconStateStore(path)
    path.unlink()
    store = BeaconStateStore(path)  # none yet: no beacon accepted so far
    assert store.last_superframe is None
    store.record(1796000012)
    assert BeaconStateStore(path).last_superframe == 1796000012
