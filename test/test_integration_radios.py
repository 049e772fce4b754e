"""Module -> air -> gateway: the production drivers on both ends, through the medium process.

RN2483 and EByte emulators serve pseudo-terminals driven by the real serial drivers; the
gateway is the real SX1276 driver on the emulated chip; all three meet on a radio medium
hub running as its own process. Raw receive is tested the same way for every family of the
registry: its driver receives a frame another node puts on the air.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from lora_telemetry.core import lorawan as lw
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios import registry
from lora_telemetry.radios.ebyte.driver import EByteRadio
from lora_telemetry.radios.rn2483.driver import RN2483Radio
from lora_telemetry.radios.sx1276.driver import SX1276Radio
from lora_telemetry.sim.emulated_serial import emulated_module
from lora_telemetry.sim.emulated_spi import emulated_chip
from lora_telemetry.sim.medium import MediumClient

REPO = Path(__file__).resolve().parent.parent
# 433.175 MHz, SF7, 125 kHz: EU433 channel 0 at DR5, the thesis's 433 MHz configuration
# (seed_vectors.json sx1276_gateway_thesis.frequencies_hz; RN2483 set-up "mac set dr 5").
PHY_433 = PhySettings(433_175_000, 7, 125_000)


@pytest.fixture
def hub() -> Iterator[tuple[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lora_telemetry.cli.sim_medium", "--port", "0", "--json",
         "--seed", "5"], stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        ready = json.loads(lines.get(timeout=15))
        yield ready["host"], ready["port"]
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def gateway(hub: tuple[str, int]) -> Iterator[SX1276Radio]:
    client = MediumClient("gateway", hub, position_m=(0.0, -300.0, 10.0))
    chip = emulated_chip("sx1276", "gateway", client)
    radio = SX1276Radio(spi=chip.spi, gpio=chip.gpio)
    radio.configure(PHY_433)
    yield radio
    radio.close()
    chip.close()
    client.close()


@contextlib.contextmanager
def serving(emu) -> Iterator:
    thread = threading.Thread(target=emu.serve_forever, daemon=True)
    thread.start()
    time.sleep(0.2)  # powered on before the host opens the port, as with real modules
    try:
        yield emu
    finally:
        emu.stop()
        thread.join(5)
        emu.close()


def receive(radio: SX1276Radio, timeout: float = 5.0):
    frame = radio.receive(timeout)
    assert frame is not None, "nothing reached the gateway"
    return frame


def test_thesis_rn2483_lorawan_uplink_reaches_sx1276(tmp_path: Path, hub, gateway,
                                                     seed_vectors: dict) -> None:
    vec = seed_vectors["lorawan_uplink_thesis_annex_iii"]
    setup = seed_vectors["rn2483_abp_setup_thesis"]["commands"]
    assert setup[0] == "mac reset 433" and "mac set dr 5" in setup
    client = MediumClient("uav1", hub, position_m=(0.0, 0.0, 50.0))
    emu = emulated_module("rn2483", "uav1", tmp_path / "uav1.tty", client, band=433, seed=1)
    with serving(emu):
        with RN2483Radio(emu.path) as rn:
            # The thesis's end-node set-up (band 433, ch 0 only, dcycle 9, DR5, pwridx 0, ABP).
            rn.lorawan_setup(433, 433_175_000, 5, 0, vec["expected"]["devaddr_hex"],
                             vec["nwkskey_hex"], vec["appskey_hex"], dcycle=9, upctr=1)
            rn.mac_tx(1, bytes.fromhex(vec["expected"]["frm_payload_plain_hex"]))
            frame = receive(gateway)
    client.close()
    assert frame.crc_ok
    # The module framed it exactly as the thesis's Annex III frame.
    assert frame.data.hex() == vec["phy_payload_hex"]
    decoded = lw.decode_data_frame(frame.data, vec["nwkskey_hex"], vec["appskey_hex"])
    assert decoded.payload == b"LoRa" and decoded.mic_valid
    assert -125 < frame.rssi_dbm < -60 and frame.snr_db > -7.5


def test_rn2483_p2p_frame_reaches_sx1276(tmp_path: Path, hub, gateway) -> None:
    client = MediumClient("uav2", hub, position_m=(20.0, 0.0, 50.0))
    data = lw.build_data_frame(0x26011CA3, 42, b"\x01" * 16, nwkskey=bytes(16),
                               appskey=bytes(16), fport=1)
    emu = emulated_module("rn2483", "uav2", tmp_path / "uav2.tty", client, band=433, seed=2)
    with serving(emu):
        with RN2483Radio(emu.path) as rn:
            rn.configure(PHY_433)
            result = rn.send(data)
            frame = receive(gateway)
    client.close()
    assert frame.data == data and frame.crc_ok
    assert result.airtime_s == pytest.approx(PHY_433.time_on_air(len(data)))


def test_ebyte_frame_reaches_sx1276(tmp_path: Path, hub, gateway) -> None:
    client = MediumClient("uav3", hub, position_m=(-20.0, 0.0, 50.0))
    data = bytes(range(29))
    with serving(emulated_module("ebyte", "uav3", tmp_path / "uav3.tty", client)) as emu:
        with EByteRadio(emu.path) as eb:
            eb.configure(PHY_433)
            eb.send(data)
            frame = receive(gateway)
    client.close()
    assert frame.data == data and frame.crc_ok


def test_wrong_sf_never_reaches_the_gateway(tmp_path: Path, hub, gateway) -> None:
    client = MediumClient("uav4", hub, position_m=(0.0, 10.0, 50.0))
    with serving(emulated_module("ebyte", "uav4", tmp_path / "uav4.tty", client)) as emu:
        with EByteRadio(emu.path) as eb:
            eb.configure(PhySettings(433_175_000, 8, 125_000))
            eb.send(bytes(20))
            assert gateway.receive(1.0) is None
    client.close()


# --- raw receive on every family, through the medium hub ---------------------------------------

RX_POSITION, TX_POSITION, TX_POWER_DBM = (0.0, 0.0, 10.0), (300.0, 0.0, 10.0), 14.0
#: How far a reported figure may be from the model's: the device's own resolution (whole dB
#: for the serial modules' integers; the SX1276's RSSI register is 1 dB, its SNR 0.25 dB).
FIGURE_RESOLUTION_DB = 0.5


@contextlib.contextmanager
def receiver(family: str, client: MediumClient, tmp_path: Path) -> Iterator:
    """Family ``family``'s production driver on its emulated device (built as `sim module`
    and the ground node build them, through the registry), joined to the medium by ``client``."""
    spec = registry.family(family)
    if spec.role is registry.Role.SERIAL_MODULE:
        options = spec.emulator_settings(PHY_433.frequency_hz, 3)
        emu = emulated_module(family, "rx", tmp_path / "rx.tty", client, **options)
        with serving(emu), spec.open_serial(emu.path) as radio:
            yield radio
    else:
        with emulated_chip(family, "rx", client) as chip:
            driver = spec.driver_class()
            with driver(spi=chip.spi, gpio=chip.gpio) as radio:  # type: ignore[call-arg]
                yield radio


@pytest.mark.parametrize("family", registry.FAMILIES)
def test_raw_receive_of_a_frame_another_node_transmits(tmp_path: Path, hub, family: str) -> None:
    from lora_telemetry.sim.medium import TxDoneEvent
    from lora_telemetry.sim.medium_model import MediumParams

    data = bytes(range(1, 25))
    sent: queue.Queue = queue.Queue()
    rx_client = MediumClient("rx", hub, position_m=RX_POSITION)
    tx_client = MediumClient("tx", hub, position_m=TX_POSITION)

    def transmit_later() -> None:
        time.sleep(0.5)  # the receiver is listening by then
        tx_client.transmit(data, PHY_433, power_dbm=TX_POWER_DBM)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            event = tx_client.next_event(timeout=0.5)
            if isinstance(event, TxDoneEvent):
                sent.put(event)
                return

    try:
        with receiver(family, rx_client, tmp_path) as radio:
            radio.configure(PHY_433)
            # Nothing on the air: the receive ends empty when its time is up, not before.
            t0 = time.monotonic()
            assert radio.receive(0.3) is None
            assert 0.29 <= time.monotonic() - t0 < 2.0
            sender = threading.Thread(target=transmit_later, daemon=True)
            sender.start()
            frame = radio.receive(5.0)
            sender.join(5)
            done = sent.get(timeout=1)
    finally:
        tx_client.close()
        rx_client.close()
    assert frame is not None, f"{family}: nothing received"
    assert frame.data == data and frame.crc_ok and frame.phy == PHY_433
    # The medium model's figures for this link (default parameters, no shadowing).
    params = MediumParams()
    distance = math.dist(RX_POSITION, TX_POSITION)
    rssi = params.mean_rssi_dbm(TX_POWER_DBM, distance)
    snr = rssi - params.noise_floor_dbm(PHY_433.bandwidth_hz)
    assert frame.rssi_dbm is not None and abs(frame.rssi_dbm - rssi) <= FIGURE_RESOLUTION_DB
    assert frame.snr_db is not None and abs(frame.snr_db - snr) <= FIGURE_RESOLUTION_DB
    # Received when the frame ended on the air, not before and not much later.
    assert done.t_end - done.t_start == pytest.approx(PHY_433.time_on_air(len(data)), abs=1e-6)
    assert done.t_end - 0.05 <= frame.time <= done.t_end + 0.5
