"""The ground node's receive loop: radio -> gateway pipeline -> durable counters -> callbacks.

No ROS here. Frames are judged on the receive thread; `DurableDelivery` writes the counters
they advanced and then calls back, on its own thread (see ground/delivery.py).

With ``access: tdma`` the same loop also sends the beacon in slot 0 (ground/beacons.py: each
receive call is bounded so the loop is back in time for it) and places every accepted
frame on the schedule (core/tdma_gateway.GatewaySchedule.observe): the frame's start
against its UAV's slot, per UAV, for LinkStats and diagnostics, and the slots heard, for
the next beacon's bitmap.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.core.gateway import Gateway, Verdict
from lora_telemetry.core.tdma_gateway import GatewaySchedule
from lora_telemetry.ground.beacons import BeaconTransmitter
from lora_telemetry.ground.config import GroundConfig
from lora_telemetry.ground.delivery import DurableDelivery
from lora_telemetry.keyfile import load_network_keys
from lora_telemetry.persist import GroundCounterStore, session_fingerprint
from lora_telemetry.radios import registry
from lora_telemetry.radios.base import RadioError, RawRadio, RxFrame

FrameCallback = Callable[[RxFrame, Verdict], None]


def restore_counters(gateway: Gateway, store: GroundCounterStore) -> dict[int, str]:
    """Continue every registered device's session from the store; returns the session
    fingerprint per DevAddr (new keys start a new session at counter 0)."""
    sessions: dict[int, str] = {}
    for addr, device in gateway.devices.items():
        session = session_fingerprint(device.nwkskey, device.appskey)
        sessions[addr] = session
        gateway.restore_counter(addr, store.restore(addr, session).fcnt_up)
    return sessions


def gateway_family() -> registry.FamilySpec:
    """The gateway's transceiver family (the one SPI transceiver family the registry has)."""
    return registry.families(role=registry.Role.SPI_TRANSCEIVER, emulated=True)[0]


def open_gateway_radio(config: GroundConfig) -> RawRadio:
    """The configured gateway transceiver: on SPI, or the registry's emulated chip (the
    virtual backend) on the simulated medium."""
    from lora_telemetry.radios.sx1276.driver import SX1276Radio, SX1276Wiring

    radio: RawRadio
    if config.radio == "emulator":
        emulated = gateway_family().emulated_radio(
            node_id=config.gateway_id, medium=config.medium or None,
            position_m=(config.gateway_x_m, config.gateway_y_m, config.gateway_z_m))
        assert isinstance(emulated, RawRadio)  # every transceiver family sends and receives
        radio = emulated
    else:
        wiring = SX1276Wiring(
            spi_bus=config.spi_bus, spi_device=config.spi_device, spi_speed_hz=config.spi_speed_hz,
            reset_pin=None if config.reset_pin < 0 else config.reset_pin,
            nss_pin=None if config.nss_pin < 0 else config.nss_pin,
            dio0_pin=config.dio0_pin, gpio_chip=config.gpio_chip,
        )
        radio = SX1276Radio(wiring=wiring)
    try:
        radio.configure(config.phy)
    except BaseException:
        radio.close()
        raise
    return radio


class GroundRuntime:
    """Receives frames forever, judging each with the gateway pipeline."""

    def __init__(self, config: GroundConfig, gateway: Gateway, on_frame: FrameCallback, *,
                 counter_store: GroundCounterStore,
                 open_radio: Callable[[GroundConfig], RawRadio] = open_gateway_radio,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 on_event: Callable[[str, str], None] | None = None,
                 on_listening: Callable[[RawRadio], None] | None = None) -> None:
        self.config = config
        self.gateway = gateway
        self.on_event = on_event or (lambda level, text: None)
        #: called each time the radio is (re)opened, configured and about to receive
        self.on_listening = on_listening or (lambda radio: None)
        self.counter_store = counter_store
        self.delivery = DurableDelivery(counter_store, restore_counters(gateway, counter_store),
                                        on_frame, on_event=self.on_event)
        self._open_radio = open_radio
        self._clock = clock
        self.tdma: GatewaySchedule | None = None
        self.beacons: BeaconTransmitter | None = None
        if config.access == "tdma":
            network = load_network_keys(config.key_file)
            if network is None:
                raise ConfigError(f"access tdma: the key file {config.key_file} has no network "
                                  "section with the beacon key (lora-telemetry keys generate "
                                  "writes one)")
            self.tdma = GatewaySchedule(config.schedule(), config.slots(), network.beacon_key)
            self.beacons = BeaconTransmitter(self.tdma, frequency_hz=config.frequency_hz,
                                             timing=gateway_family().timing, clock=clock,
                                             sleep=sleep, on_event=self.on_event)
            for note in self.tdma.schedule.notes:
                self.on_event("warn", f"TDMA: {note}")
        self.radio: RawRadio | None = None
        self.radio_error: str | None = None
        self.frames = 0
        self.last_frame_time: float | None = None
        self.started = time.time()

    def run(self, stop: threading.Event) -> None:
        delivery = threading.Thread(target=self.delivery.run, args=(stop,),
                                    name="gateway-delivery", daemon=True)
        delivery.start()
        try:
            self._receive(stop)
        finally:
            self.delivery.close()
            delivery.join(timeout=5.0)

    def _receive(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            if self.radio is None:
                try:
                    self.radio = self._open_radio(self.config)
                except LoraTelemetryError as exc:  # no chip, SPI/GPIO busy, medium down
                    if self.radio_error != str(exc):
                        self.on_event("error", f"gateway radio unavailable: {exc}; retrying")
                    self.radio_error = str(exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self.on_event("info", f"{self.radio.name} listening on {self.config.phy.frequency_hz / 1e6:.3f} MHz "
                                      f"SF{self.config.phy.sf}")
                self.radio_error = None
                backoff = 0.5
                self.on_listening(self.radio)
            try:
                timeout = self.config.receive_timeout_s
                if self.beacons is not None:
                    if self.beacons.send_due(self.radio, self._clock()):
                        continue
                    timeout = self.beacons.receive_budget(self._clock(), timeout)
                    if timeout <= 0.0:
                        continue
                frame = self.radio.receive(timeout)
            except RadioError as exc:
                self.on_event("error", f"gateway radio failed: {exc}; reopening")
                self.radio_error = str(exc)
                self.close_radio()
                continue
            if frame is None:
                continue
            self.frames += 1
            self.last_frame_time = frame.time or self._clock()
            airtime = frame.phy.time_on_air(len(frame.data)) if frame.data else 0.0
            verdict = self.gateway.process(
                frame.data, crc_ok=frame.crc_ok, rx_time=self.last_frame_time,
                rssi_dbm=frame.rssi_dbm, snr_db=frame.snr_db, airtime_s=airtime,
            )
            if self.tdma is not None and verdict.accepted and verdict.device is not None:
                self.tdma.observe(verdict.device.name, self.last_frame_time, airtime)
            self.delivery.submit(frame, verdict)

    def close_radio(self) -> None:
        radio, self.radio = self.radio, None
        if radio is not None:
            try:
                radio.close()
            except RadioError:
                pass
