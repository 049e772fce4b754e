"""The ground's frame counters survive restarts: store, gateway restore, durable delivery.

The process-level proof (ground node killed with SIGKILL mid-stream, frames replayed after
each restart) is test_e2e_ground_restart.py; these are the pieces, on plain objects.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from lora_telemetry.core import codec as tcodec
from lora_telemetry.core import gateway as gw
from lora_telemetry.core import lorawan as lw
from lora_telemetry.ground.delivery import STATE_WRITE_FAILED, DurableDelivery
from lora_telemetry.ground.runtime import restore_counters
from lora_telemetry.persist import (
    GroundCounterStore, StateFileError, session_fingerprint,
)
from lora_telemetry.radios.base import RxFrame
from lora_telemetry.core.phy import PhySettings

ADDR = 0x260B0001
NWK = bytes(range(16))
APP = bytes(range(16, 32))
CODEC = tcodec.CodecConfig(47.3977, 8.5456, 488.0, "arducopter")
T0 = 1_763_700_000.0
SESSION = session_fingerprint(NWK, APP)
PHY = PhySettings(433_175_000, 7, 125_000)


def frame(fcnt: int, t: float = T0, *, nwk: bytes = NWK, app: bytes = APP) -> bytes:
    sample = tcodec.TelemetrySample(t, lat_deg=47.3978, lon_deg=8.5457, alt_amsl_m=500.0)
    fport, payload = tcodec.encode(sample, CODEC)
    return lw.build_data_frame(ADDR, fcnt, payload, nwkskey=nwk, appskey=app, fport=fport)


def new_gateway(nwk: bytes = NWK, app: bytes = APP) -> gw.Gateway:
    return gw.Gateway([gw.Device("uav1", ADDR, nwk, app, CODEC, system_id=1)])


def restarted(path: Path, nwk: bytes = NWK, app: bytes = APP) -> tuple[gw.Gateway, dict[int, str], GroundCounterStore]:
    gateway = new_gateway(nwk, app)
    store = GroundCounterStore(path)
    return gateway, restore_counters(gateway, store), store


def test_a_frame_accepted_before_a_restart_is_a_replay_after_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gateway.fcnt.json"
    gateway, sessions, store = restarted(path)
    recorded = [frame(n) for n in range(5)]
    for data in recorded:
        v = gateway.process(data, crc_ok=True, rx_time=T0 + 1)
        assert v.accepted and v.advanced
        store.record_uplinks({ADDR: (sessions[ADDR], v.fcnt32)})
    # Without the stored counter the first frame after a start set the baseline, so a frame
    # recorded 100 s earlier was accepted and its 20 ms timestamp put on the wrong window.
    gateway, _, _ = restarted(path)
    replayed = gateway.process(recorded[2], crc_ok=True, rx_time=T0 + 100)
    assert replayed.status == gw.REPLAY and gateway.links["uav1"].replays == 1
    assert gateway.process(recorded[4], crc_ok=True, rx_time=T0 + 100).status == gw.DUPLICATE
    assert gateway.process(frame(5, T0 + 100), crc_ok=True, rx_time=T0 + 100.1).accepted
    assert gateway.links["uav1"].lost == 0


def test_state_file_is_owner_only_and_in_an_owner_only_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "gw.fcnt.json"
    store = GroundCounterStore(path)
    store.record_uplinks({ADDR: (SESSION, 7)})
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    data = json.loads(path.read_text())
    assert data == {"format": 1, "devices": {"260B0001": {
        "session": SESSION, "fcnt_up": 7, "fcnt_down_next": 0}}}
    assert NWK.hex() not in path.read_text() and NWK.hex().upper() not in path.read_text()


def test_counters_never_go_back_in_the_store(tmp_path: Path) -> None:
    store = GroundCounterStore(tmp_path / "s.json")
    store.record_uplinks({ADDR: (SESSION, 100)})
    store.record_uplinks({ADDR: (SESSION, 50)})
    assert GroundCounterStore(tmp_path / "s.json").restore(ADDR, SESSION).fcnt_up == 100
    assert store.writes == 1  # nothing changed: no write


@pytest.mark.parametrize("content, why", [
    ("{not json", "unreadable"),
    ('[1, 2]', "not a ground counter file"),
    ('{"format": 2, "devices": {}}', "not a ground counter file"),
    ('{"format": 1, "devices": {"260B0001": {"session": "x", "fcnt_up": -1}}}', "damaged"),
    ('{"format": 1, "devices": {"nothex!!": {"session": "x", "fcnt_up": 1}}}', "damaged"),
    ('{"format": 1, "devices": {"260B0001": {"session": "x", "fcnt_up": true}}}', "damaged"),
])
def test_a_damaged_state_file_stops_start_up_with_the_way_out(tmp_path: Path, content: str,
                                                              why: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(StateFileError, match=why) as info:
        GroundCounterStore(path)
    assert str(path) in str(info.value) and "move it away" in str(info.value)
    assert path.read_text() == content  # never silently reset


def test_a_state_file_others_may_change_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    GroundCounterStore(path).record_uplinks({ADDR: (SESSION, 3)})
    path.chmod(0o666)
    with pytest.raises(StateFileError, match="chmod 600"):
        GroundCounterStore(path)


def test_new_session_keys_start_the_counters_over(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    gateway, sessions, store = restarted(path)
    old = frame(40)
    assert gateway.process(old, crc_ok=True, rx_time=T0).accepted
    store.record_uplinks({ADDR: (sessions[ADDR], 40)})
    new_nwk, new_app = bytes(range(100, 116)), bytes(range(200, 216))
    gateway, sessions, store = restarted(path, new_nwk, new_app)
    assert gateway.trackers[ADDR].last_fcnt32 is None  # a new session at FCnt 0
    assert gateway.process(frame(0, nwk=new_nwk, app=new_app), crc_ok=True, rx_time=T0).accepted
    # The old session's frame cannot come back: it does not verify under the new keys.
    assert gateway.process(old, crc_ok=True, rx_time=T0).status == gw.MIC_FAILED


def test_first_contact_past_65535_verifies_with_the_upper_bits_found() -> None:
    # Fuzzing found a device whose counter is past 65,535 locked out after a gateway restart:
    # the air carries 16 bits. A stored counter fixes restarts; a device never heard (no
    # stored counter at all) is found by trying the upper 16 bits.
    gateway = new_gateway()
    v = gateway.process(frame(3 * 65536 + 17), crc_ok=True, rx_time=T0)
    assert v.accepted and v.fcnt32 == 3 * 65536 + 17
    assert gateway.process(frame(3 * 65536 + 18), crc_ok=True, rx_time=T0).fcnt32 == 3 * 65536 + 18
    # Once heard, no search: a frame from another upper word is not silently accepted.
    assert gateway.process(frame(9 * 65536 + 19), crc_ok=True, rx_time=T0).status == gw.MIC_FAILED
    # A forged frame of a device never heard is still a MIC failure after the search.
    fresh = new_gateway()
    forged = frame(5, nwk=bytes(16))
    assert fresh.process(forged, crc_ok=True, rx_time=T0).status == gw.MIC_FAILED
    assert fresh.trackers[ADDR].last_fcnt32 is None


def test_restored_counter_past_65535_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    GroundCounterStore(path).record_uplinks({ADDR: (SESSION, 70_000)})
    gateway, _, _ = restarted(path)
    v = gateway.process(frame(70_001), crc_ok=True, rx_time=T0)
    assert v.accepted and v.fcnt32 == 70_001


def test_counter_that_went_back_is_explained() -> None:
    from lora_telemetry.ground.health import uav_health

    gateway = new_gateway()
    for n in range(100, 103):
        assert gateway.process(frame(n), crc_ok=True, rx_time=T0).accepted
    for n in range(0, 3):  # a drone that lost its state file starts again at 0
        assert gateway.process(frame(n), crc_ok=True, rx_time=T0).status == gw.REPLAY
    level, text = uav_health("uav1", gateway.links["uav1"], T0, 10.0)
    assert level == "warn" and "counter went back" in text and "keys rotate --name uav1" in text
    assert gateway.process(frame(103), crc_ok=True, rx_time=T0).accepted
    assert uav_health("uav1", gateway.links["uav1"], T0, 10.0) == ("ok", "fresh")


# ------------------------------------------------------------------------- durable delivery


class RecordingStore(GroundCounterStore):
    """A real store that can be told to fail, and records when it wrote."""

    def __init__(self, path: Path, events: list) -> None:
        super().__init__(path)
        self.fail = False
        self.events = events

    def record_uplinks(self, accepted):  # type: ignore[override]
        if self.fail:
            raise StateFileError(f"cannot write frame-counter state file {self.path}: disk full")
        super().record_uplinks(accepted)
        self.events.append(("write", dict(accepted)))


def _judge(gateway: gw.Gateway, fcnts: list[int]) -> list[tuple[RxFrame, gw.Verdict]]:
    out = []
    for n in fcnts:
        data = frame(n)
        out.append((RxFrame(data, PHY, time=T0), gateway.process(data, crc_ok=True, rx_time=T0)))
    return out


def test_frames_are_delivered_only_after_their_counters_are_written(tmp_path: Path) -> None:
    events: list = []
    store = RecordingStore(tmp_path / "s.json", events)
    gateway = new_gateway()
    delivery = DurableDelivery(store, restore_counters(gateway, store),
                               lambda f, v: events.append(("deliver", v.fcnt32, v.status)))
    batch = _judge(gateway, [0, 1, 1, 2])  # the second 1 is a duplicate
    delivery.deliver_batch(batch)
    # One write for the whole batch (group commit), holding the newest counter, before any
    # frame of it is delivered; then every frame in reception order.
    assert events == [("write", {ADDR: (SESSION, 2)}), ("deliver", 0, "accepted"),
                      ("deliver", 1, "accepted"), ("deliver", 1, "duplicate"),
                      ("deliver", 2, "accepted")]


def test_a_frame_whose_counter_cannot_be_written_is_withheld(tmp_path: Path) -> None:
    events: list = []
    store = RecordingStore(tmp_path / "s.json", events)
    gateway = new_gateway()
    said: list[tuple[str, str]] = []
    delivery = DurableDelivery(store, restore_counters(gateway, store),
                               lambda f, v: events.append(("deliver", v.fcnt32, v.status)),
                               on_event=lambda lvl, text: said.append((lvl, text)))
    store.fail = True
    delivery.deliver_batch(_judge(gateway, [0, 1]))
    assert events == [("deliver", 0, STATE_WRITE_FAILED), ("deliver", 1, STATE_WRITE_FAILED)]
    assert delivery.counters["withheld"] == 2 and delivery.last_error is not None
    assert said[0][0] == "error" and "disk full" in said[0][1]
    store.fail = False
    events.clear()
    delivery.deliver_batch(_judge(gateway, [2]))
    assert events == [("write", {ADDR: (SESSION, 2)}), ("deliver", 2, "accepted")]
    assert delivery.last_error is None


def test_delivery_thread_drains_the_queue_and_stops(tmp_path: Path) -> None:
    events: list = []
    store = RecordingStore(tmp_path / "s.json", events)
    gateway = new_gateway()
    delivered = threading.Event()
    got: list[int] = []

    def deliver(f, v):
        got.append(v.fcnt32)
        if len(got) == 50:
            delivered.set()

    delivery = DurableDelivery(store, restore_counters(gateway, store), deliver)
    stop = threading.Event()
    thread = threading.Thread(target=delivery.run, args=(stop,))
    thread.start()
    for f, v in _judge(gateway, list(range(50))):
        delivery.submit(f, v)
    assert delivered.wait(10.0)
    stop.set()
    thread.join(5.0)
    assert not thread.is_alive()
    assert got == list(range(50))
    assert GroundCounterStore(store.path).restore(ADDR, SESSION).fcnt_up == 49
    assert delivery.counters["state_writes"] <= 50


def test_queue_is_bounded(tmp_path: Path) -> None:
    store = GroundCounterStore(tmp_path / "s.json")
    gateway = new_gateway()
    delivery = DurableDelivery(store, restore_counters(gateway, store), lambda f, v: None,
                               max_pending=3)
    for f, v in _judge(gateway, [0, 1, 2, 3, 4]):
        delivery.submit(f, v)
    assert delivery.counters["dropped_queue_full"] == 2 and delivery.stats()["pending"] == 3


def test_default_state_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_telemetry.ground.config import GroundConfig

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    config = GroundConfig(key_file="/k", origin_lat_deg=47.0, origin_lon_deg=8.0,
                          origin_alt_m=400.0, gateway_id="field-2",
                          devices={"uav1": {"system_id": 1}})
    assert config.counter_state_path == tmp_path / "lora_telemetry" / "field-2.fcnt.json"
    assert os.fspath(GroundConfig(**{**config.__dict__, "fcnt_state_file": "/x/y.json"})
                     .counter_state_path) == "/x/y.json"


def test_the_receive_loop_says_when_its_radio_listens_and_after_each_reopen(tmp_path: Path) -> None:
    # The ground node announces itself ready from this hook (lora_telemetry/readiness.py).
    from lora_telemetry.core.errors import ConfigError
    from lora_telemetry.ground.config import GroundConfig
    from lora_telemetry.ground.runtime import GroundRuntime
    from lora_telemetry.radios.base import RadioError

    config = GroundConfig(key_file="/k", origin_lat_deg=47.0, origin_lon_deg=8.0,
                          origin_alt_m=400.0, devices={"uav1": {"system_id": 1}})
    stop = threading.Event()
    opened: list[object] = []
    listening: list[object] = []

    class Radio:
        name = "fake"

        def __init__(self, fails: bool) -> None:
            self.fails = fails

        def receive(self, timeout: float):
            if self.fails:
                raise RadioError("gone")
            stop.set()
            return None

        def close(self) -> None:
            pass

    def open_radio(_config):
        if not opened:
            opened.append(None)
            raise ConfigError("no medium yet")  # not listening: no call
        radio = Radio(fails=len(opened) == 1)
        opened.append(radio)
        return radio

    runtime = GroundRuntime(config, new_gateway(), lambda f, v: None,
                            counter_store=GroundCounterStore(tmp_path / "s.json"),
                            open_radio=open_radio, on_listening=listening.append)
    runtime.run(stop)
    # not after the failed open; after the first radio opened, and after the reopen that
    # followed its failure
    assert listening == opened[1:] and len(listening) == 2
