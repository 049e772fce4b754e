"""ROS 2 drone node: MAVLink in, secured LoRa telemetry out (wiring only; logic in drone/).

Publishes (relative names, so a namespace per UAV works):
  lora/tx       lora_telemetry/RadioFrame   every uplink that reached the air
  /diagnostics  diagnostic_msgs/DiagnosticArray  link, radio and duty-cycle state, 1 Hz

Ready (lora_telemetry/readiness.py) once its parameters are valid and the uplink loop has made
its first pass; an unopened radio does not hold that back, it is retried and reported.
"""

from __future__ import annotations

import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from lora_telemetry.drone.config import DroneConfig
from lora_telemetry.drone.runtime import DroneRuntime, SentFrame
from lora_telemetry.drone.transmitters import (
    ModuleUplinkTransmitter, RawUplinkTransmitter, radio_factory,
)
from lora_telemetry.drone.host_clock import skew_host_clock
from lora_telemetry.drone.tdma import BeaconStateStore, TdmaAccess, system_time_transit_s
from lora_telemetry.keyfile import load_network_keys, own_device_keys
from lora_telemetry.mavlink.link import MavlinkLink
from lora_telemetry.mavlink.streams import TDMA_STREAM_RATES_HZ
from lora_telemetry.msg import RadioFrame
from lora_telemetry.nodes import ros_convert as conv
from lora_telemetry.nodes.common import declare_dataclass_parameters, log_event, run_node
from lora_telemetry.persist import FrameCounterStore
from lora_telemetry.readiness import announce_ready


class DroneNode(Node):
    def __init__(self) -> None:
        super().__init__("drone_node")
        self.config = DroneConfig.from_mapping(declare_dataclass_parameters(self, DroneConfig))
        cfg = self.config
        keys = own_device_keys(cfg.key_file, cfg.uav_name, allow_shared=cfg.allow_shared_key_file)
        self.store = FrameCounterStore(cfg.counter_state_path, f"{keys.devaddr:08X}",
                                       session=keys.session)
        tdma = cfg.access == "tdma"
        if cfg.sim_clock_offset_s or cfg.sim_clock_drift_ppm:
            skew_host_clock(cfg.sim_clock_offset_s, cfg.sim_clock_drift_ppm)
        if tdma:
            sys.setswitchinterval(0.0005)  # a waiting uplink thread gets the GIL within 0.5 ms
        self.link = MavlinkLink(cfg.mavlink_url, cfg.mavlink_system_id or None,
                                stale_timeout_s=cfg.stale_timeout_s,
                                time_source="gps" if tdma else "auto",
                                stream_rates_hz=TDMA_STREAM_RATES_HZ if tdma else None,
                                clock=time.time)  # the host clock as it is now (maybe skewed)
        make_radio = radio_factory(cfg.radio_type, cfg.radio_port, cfg.baud)
        if cfg.lorawan_mode == "module":
            tx = ModuleUplinkTransmitter(make_radio, cfg.phy, keys,
                                         next_fcnt=lambda: self.store.next_counter)
        else:
            tx = RawUplinkTransmitter(make_radio, cfg.phy, keys)
        access = None
        if tdma:
            network = load_network_keys(cfg.key_file)
            if network is None:
                self.get_logger().warning(
                    f"{cfg.key_file} has no network beacon key: beacons are ignored, slots are "
                    "timed by the flight controller's GPS time only")
            access = TdmaAccess(
                cfg.schedule(), cfg.tdma_slot, timing=cfg.family.timing, baud=cfg.baud,
                beacon_key=network.beacon_key if network else None,
                beacon_state=BeaconStateStore(TdmaAccess.beacon_state_path(cfg.counter_state_path)),
                max_missed_beacons=cfg.tdma_max_missed_beacons,
                trust_host_clock=cfg.tdma_trust_host_clock,
                lead_s=cfg.tdma_lead_s if cfg.tdma_lead_s >= 0 else None,
                system_time_transit_s=system_time_transit_s(cfg.mavlink_url),
                on_event=self._on_event)
        self.runtime = DroneRuntime(cfg, self.link, tx, self.store, tdma=access,
                                    on_sent=self._on_sent, on_event=self._on_event)
        self.tx_pub = self.create_publisher(RadioFrame, "lora/tx", qos_profile_sensor_data)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(cfg.diagnostics_period_s, self._publish_diagnostics)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._mavlink_loop, name="mavlink", daemon=True),
            threading.Thread(target=self.runtime.run, args=(self._stop,), name="uplink",
                             kwargs={"on_started": self._announce_ready, "clock": time.time},
                             daemon=True),
        ]
        for t in self._threads:
            t.start()
        when = (f"TDMA slot {cfg.tdma_slot} of {cfg.tdma_period_s:g} s superframes, lead "
                f"{access.lead_s * 1e3:.1f} ms" if access is not None
                else f"period {cfg.update_period_s:g} s")
        self.get_logger().info(
            f"{cfg.uav_name}: MAVLink {cfg.mavlink_url} -> {cfg.radio_type} on {cfg.radio_port} "
            f"({cfg.lorawan_mode} LoRaWAN, {cfg.frequency_hz / 1e6:.3f} MHz SF{cfg.spreading_factor}, "
            f"{when}, frame airtime {self.runtime.frame_airtime_s * 1e3:.1f} ms)"
        )

    def _announce_ready(self) -> None:
        """Parameters valid, uplink loop running: ready, whether or not the radio opened on
        the first try (it is retried; see lora_telemetry/readiness.py)."""
        status = self.runtime.status(time.time())
        announce_ready("drone", uav=self.config.uav_name, radio_open=status["radio_open"],
                       radio_error=status["radio_error"])

    def _mavlink_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.link.poll(timeout=0.2)
            except Exception as exc:  # noqa: BLE001 - the link must never kill the node
                self.get_logger().error(f"MAVLink link error: {exc}", throttle_duration_sec=5.0)
                self._stop.wait(1.0)

    def _on_sent(self, frame: SentFrame) -> None:
        msg = conv.radio_frame(
            direction=RadioFrame.DIRECTION_UPLINK_TX, node_id=self.config.uav_name,
            data=frame.report.data, phy=self.config.phy, t_unix_s=frame.report.started,
            status="sent", uav_name=self.config.uav_name, devaddr=self.runtime.tx.keys.devaddr,
        )
        msg.airtime_s = frame.report.airtime_s
        self.tx_pub.publish(msg)

    def _on_event(self, level: str, text: str) -> None:
        log_event(self, level, text)

    def _publish_diagnostics(self) -> None:
        now = time.time()
        status = self.runtime.status(now)
        level, message = DiagnosticStatus.OK, "sending"
        if status["stale"]:
            level, message = DiagnosticStatus.STALE, "flight controller silent: telemetry paused"
        elif not status["radio_open"]:
            level, message = DiagnosticStatus.ERROR, f"radio unavailable: {status['radio_error']}"
        elif (saturated := self.runtime.saturation_warning(now)) is not None:
            level, message = DiagnosticStatus.WARN, f"sending, but saturated: {saturated}"
        link = self.link.stats()
        values = {**status, "mavlink_connected": link.get("connected"),
                  "mavlink_receive_errors": link.get("receive_errors"),
                  **{f"radio.{k}": v for k, v in self.runtime.tx.stats().items()}}
        arr = DiagnosticArray()
        arr.header.stamp = conv.stamp(now)
        arr.status.append(conv.diagnostic_status(
            f"lora_telemetry/drone/{self.config.uav_name}", level[0], message,
            self.config.uav_name, values))
        self.diag_pub.publish(arr)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3.0)
        self.runtime.tx.close()
        self.link.close()


def main() -> int:
    return run_node(DroneNode, "drone_node")


if __name__ == "__main__":
    raise SystemExit(main())
