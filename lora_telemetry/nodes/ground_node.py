"""ROS 2 ground node: SX1276 gateway -> verified, decoded telemetry topics (wiring only).

Topics (see docs/topics.md):
  /swarm/state            SwarmState      reliable, transient-local; at state_rate_hz and on change
  /swarm/<uav>/telemetry  UavTelemetry    every accepted frame
  /swarm/<uav>/fix        NavSatFix       every accepted frame
  /swarm/<uav>/battery    BatteryState    every accepted frame
  /swarm/<uav>/link       LinkStats       every frame of that UAV and at state_rate_hz
  /lora/rx                RadioFrame      every received frame, rejected ones with the reason
  /diagnostics            DiagnosticArray gateway health and per-UAV freshness, 1 Hz

Ready (lora_telemetry/readiness.py) once its radio is configured and listening.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import BatteryState, NavSatFix

from lora_telemetry.core import gateway as gw
from lora_telemetry.core.lorawan import format_dev_addr
from lora_telemetry.ground.config import GroundConfig
from lora_telemetry.ground.delivery import STATE_WRITE_FAILED
from lora_telemetry.ground.health import uav_health
from lora_telemetry.ground.runtime import GroundRuntime
from lora_telemetry.msg import LinkStats, RadioFrame, SwarmState, UavTelemetry
from lora_telemetry.nodes import ros_convert as conv
from lora_telemetry.nodes.common import log_event, run_node
from lora_telemetry.persist import GroundCounterStore
from lora_telemetry.radios.base import RawRadio, RxFrame
from lora_telemetry.readiness import announce_ready

SWARM_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
RCLPY_BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")
RELIABLE_10 = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class GroundNode(Node):
    def __init__(self) -> None:
        # Devices come as nested parameters (devices.<uav>.system_id ...), whose names are not
        # known in advance: take every parameter given in the parameter file or command line.
        super().__init__("ground_node", automatically_declare_parameters_from_overrides=True)
        names = self.list_parameters([], 0).names  # depth 0: recursive, every parameter
        values = {p.name: p.value for p in self.get_parameters(names)
                  if p.name not in RCLPY_BUILTIN_PARAMETERS}
        self.config = GroundConfig.from_mapping(values)
        self.gateway = gw.Gateway(self.config.registry())
        self.counter_store = GroundCounterStore(self.config.counter_state_path)
        self._lock = threading.Lock()
        self._latest: dict[str, UavTelemetry] = {}
        self._pubs: dict[str, tuple] = {}
        for device in self.gateway.devices.values():
            base = f"/swarm/{device.name}"
            self._pubs[device.name] = (
                self.create_publisher(UavTelemetry, f"{base}/telemetry", RELIABLE_10),
                self.create_publisher(NavSatFix, f"{base}/fix", qos_profile_sensor_data),
                self.create_publisher(BatteryState, f"{base}/battery", qos_profile_sensor_data),
                self.create_publisher(LinkStats, f"{base}/link", RELIABLE_10),
            )
        self.swarm_pub = self.create_publisher(SwarmState, "/swarm/state", SWARM_QOS)
        self.rx_pub = self.create_publisher(RadioFrame, "/lora/rx", qos_profile_sensor_data)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0 / self.config.state_rate_hz, self._periodic)
        self.create_timer(1.0, self._publish_diagnostics)
        self.runtime = GroundRuntime(self.config, self.gateway, self._on_frame,
                                     counter_store=self.counter_store, on_event=self._on_event,
                                     on_listening=self._announce_ready)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.runtime.run, args=(self._stop,),
                                        name="gateway-rx", daemon=True)
        self._thread.start()
        names = ", ".join(f"{d.name}={format_dev_addr(d.devaddr)}" for d in self.gateway.devices.values())
        self.get_logger().info(f"gateway {self.config.gateway_id}: {len(self.gateway.devices)} UAV(s): {names}")
        resumed = [d.name for a, d in self.gateway.devices.items()
                   if self.gateway.trackers[a].last_fcnt32 is not None]
        self.get_logger().info(
            f"frame counters in {self.counter_store.path}: "
            + (f"resumed for {', '.join(resumed)}" if resumed else "no session to resume"))

    # -- receive thread ----------------------------------------------------------------------
    def _on_frame(self, frame: RxFrame, verdict: gw.Verdict) -> None:
        device = verdict.device
        self.rx_pub.publish(conv.radio_frame(
            direction=RadioFrame.DIRECTION_UPLINK_RX, node_id=self.config.gateway_id,
            data=frame.data, phy=frame.phy, t_unix_s=frame.time, status=verdict.status,
            uav_name=device.name if device else "", devaddr=verdict.devaddr,
            rssi_dbm=frame.rssi_dbm, snr_db=frame.snr_db, crc_ok=frame.crc_ok))
        if verdict.status == gw.UNKNOWN_DEVADDR and verdict.first_report:
            self.get_logger().warning(
                f"frames from unregistered DevAddr {format_dev_addr(verdict.devaddr or 0)} "
                "(reported once per address; see /lora/rx)")
        elif verdict.status in (gw.MIC_FAILED, gw.REPLAY, gw.DECODE_ERROR, STATE_WRITE_FAILED):
            self.get_logger().warning(f"{verdict.status}: {verdict.detail}",
                                      throttle_duration_sec=5.0)
        if device is None:
            return
        telemetry_pub, fix_pub, battery_pub, link_pub = self._pubs[device.name]
        now = time.time()
        if verdict.accepted and verdict.sample is not None:
            msg = conv.uav_telemetry(verdict.sample, device, fcnt32=verdict.fcnt32 or 0,
                                     phy=frame.phy, rssi_dbm=frame.rssi_dbm, snr_db=frame.snr_db,
                                     latency_s=verdict.latency_s)
            telemetry_pub.publish(msg)
            fix_pub.publish(conv.nav_sat_fix(verdict.sample, device.name))
            battery_pub.publish(conv.battery_state(verdict.sample, device.name))
            with self._lock:
                self._latest[device.name] = msg
            self._publish_swarm(now)  # on change
        link_pub.publish(self._link_stats(device, now))

    # -- timers --------------------------------------------------------------------------------
    def _periodic(self) -> None:
        now = time.time()
        self._publish_swarm(now)
        for device in self.gateway.devices.values():
            self._pubs[device.name][3].publish(self._link_stats(device, now))

    def _link_stats(self, device: gw.Device, now: float) -> LinkStats:
        tdma = self.runtime.tdma
        return conv.link_stats(device, self.gateway.links[device.name], now,
                               self.config.stale_after_s,
                               slot=tdma.slots[device.name] if tdma else 0,
                               timing=tdma.timing[device.name] if tdma else None)

    def _publish_swarm(self, now: float) -> None:
        msg = SwarmState()
        msg.header.stamp = conv.stamp(now)
        msg.header.frame_id = "map"
        msg.origin_latitude_deg = self.config.origin_lat_deg
        msg.origin_longitude_deg = self.config.origin_lon_deg
        msg.origin_altitude_amsl_m = float(self.config.origin_alt_m)
        with self._lock:
            for name in sorted(self._latest):
                age = self.gateway.links[name].age_s(now)
                msg.uavs.append(self._latest[name])
                msg.stale.append(age > self.config.stale_after_s)
                msg.age_s.append(age)
        self.swarm_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        now = time.time()
        arr = DiagnosticArray()
        arr.header.stamp = conv.stamp(now)
        rt = self.runtime
        delivery = rt.delivery.stats()
        if rt.delivery.last_error is not None:
            level, message = DiagnosticStatus.ERROR, (
                f"frame counters cannot be written, frames withheld: {rt.delivery.last_error}")
        elif rt.radio is None:
            level, message = DiagnosticStatus.ERROR, f"radio unavailable: {rt.radio_error}"
        elif rt.last_frame_time is None or now - rt.last_frame_time > self.config.stale_after_s:
            level, message = DiagnosticStatus.WARN, "band silent: no frame received recently"
        else:
            level, message = DiagnosticStatus.OK, "receiving"
        counters = rt.radio.stats() if rt.radio is not None else {}
        values = {"frames": rt.frames, **{f"verdict.{k}": v for k, v in self.gateway.totals.items()},
                  **{f"radio.{k}": v for k, v in counters.items()},
                  "unknown_devaddrs": " ".join(f"{format_dev_addr(a)}x{n}"
                                               for a, n in self.gateway.most_frequent_unknown()),
                  "unknown_devaddrs_distinct": len(self.gateway.unknown_devaddrs),
                  "unknown_devaddrs_forgotten": self.gateway.unknown_devaddrs_forgotten,
                  "fcnt_state_file": str(self.counter_store.path),
                  **{f"fcnt_state.{k}": v for k, v in delivery.items()},
                  "access": self.config.access,
                  **(rt.beacons.stats(now) if rt.beacons is not None else {})}
        arr.status.append(conv.diagnostic_status(
            f"lora_telemetry/gateway/{self.config.gateway_id}", level[0], message,
            self.config.gateway_id, values))
        for device in self.gateway.devices.values():
            link = self.gateway.links[device.name]
            lvl, text = uav_health(device.name, link, now, self.config.stale_after_s)
            arr.status.append(conv.diagnostic_status(
                f"lora_telemetry/uav/{device.name}", conv.LEVELS[lvl], text, format_dev_addr(device.devaddr),
                {"age_s": link.age_s(now), "received": link.received, "lost": link.lost,
                 "delivery_ratio": link.delivery_ratio, "mic_failures": link.mic_failures,
                 "replays": link.replays, "duplicates": link.duplicates,
                 "saturated_samples": link.saturated_samples,
                 **{f"saturated.{k}": v for k, v in sorted(link.saturated_by_field.items())},
                 **self._slot_diagnostics(device.name)}))
        self.diag_pub.publish(arr)

    def _slot_diagnostics(self, name: str) -> dict[str, float | int]:
        tdma = self.runtime.tdma
        if tdma is None:
            return {}
        t = tdma.timing[name]
        return {"tdma_slot": tdma.slots[name], "frames_outside_slot": t.outside_slot,
                "slot_error_last_ms": 1e3 * t.last_error_s,
                "slot_error_mean_ms": 1e3 * t.mean_error_s,
                "slot_error_p95_ms": 1e3 * t.p95_abs_error_s,
                "slot_error_max_ms": 1e3 * t.max_abs_error_s}

    def _announce_ready(self, radio: RawRadio) -> None:
        """The radio is configured and receiving: ready (once; a reopened radio says nothing
        more, see lora_telemetry/readiness.py)."""
        phy = self.config.phy
        announce_ready("ground", listening=True, radio=radio.name, frequency_hz=phy.frequency_hz,
                       sf=phy.sf)

    def _on_event(self, level: str, text: str) -> None:
        log_event(self, level, text)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3.0)
        self.runtime.close_radio()


def main() -> int:
    return run_node(GroundNode, "ground_node")


if __name__ == "__main__":
    raise SystemExit(main())
