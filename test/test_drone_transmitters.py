"""The drone node's two ways to the air, through the RN2483 emulator on a real pty."""

from __future__ import annotations

import threading
import time

import pytest

from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.drone.transmitters import (
    ModuleUplinkTransmitter, RawUplinkTransmitter, radio_factory,
)
from lora_telemetry.keyfile import DeviceKeys
from lora_telemetry.sim.medium import MediumClient, MediumHub, RxEvent
from lora_telemetry.sim.medium_model import MediumModel
from lora_telemetry.sim.emulated_serial import emulated_module

KEYS = DeviceKeys("uav1", 0x260B0001, bytes(range(16)), bytes(range(16, 32)))
PHY = PhySettings(433_175_000, 7, 125_000, tx_power_dbm=10.0)  # EU433 DR5, thesis channel


@pytest.fixture
def air(tmp_path):
    hub = MediumHub(MediumModel(seed=2), port=0)
    thread = threading.Thread(target=hub.serve, daemon=True)
    thread.start()
    sniffer = MediumClient("gateway", hub.address, position_m=(0.0, -100.0, 10.0))
    sniffer.listen(PHY)
    module = MediumClient("uav1", hub.address, position_m=(0.0, 0.0, 30.0))
    emu = emulated_module("rn2483", "uav1", tmp_path / "uav1.tty", module, band=433, seed=1)
    emu.start()
    time.sleep(0.2)
    yield emu, sniffer
    emu.stop()
    emu.close()
    module.close()
    sniffer.close()
    hub.stop()
    thread.join(2)
    hub.close()


def heard(sniffer: MediumClient, timeout: float = 8.0) -> RxEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = sniffer.next_event(timeout=deadline - time.monotonic())
        if isinstance(ev, RxEvent):
            return ev
    raise AssertionError("nothing on the air")


@pytest.mark.parametrize("mode", ["raw", "module"])
def test_uplinks_carry_our_counter_and_the_reported_bytes(air, mode: str) -> None:
    emu, sniffer = air
    make = radio_factory("rn2483", str(emu.path), 57600)
    if mode == "raw":
        tx = RawUplinkTransmitter(make, PHY, KEYS)
    else:
        tx = ModuleUplinkTransmitter(make, PHY, KEYS, next_fcnt=lambda: 40)
        assert (tx.region.name, tx.dr) == ("EU433", 5)  # SF7/125 kHz is DR5 in EU433 (LoRaWAN 1.0 7.4.3)
    tx.open()
    try:
        for fcnt in (40, 41, 45):  # 45: counters skipped after a restart are honoured
            report = tx.send(1, b"\x01" * 16, fcnt)
            ev = heard(sniffer)
            assert ev.data == report.data, "lora/tx must report the bytes that went on the air"
            d = lw.decode_data_frame(ev.data, KEYS.nwkskey, KEYS.appskey)
            assert d.mic_valid and d.fcnt32 == fcnt and d.payload == b"\x01" * 16
    finally:
        tx.close()
    assert not tx.is_open
