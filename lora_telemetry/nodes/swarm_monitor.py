"""What a swarm coordinator sees, measured: subscribes to the ground node's topics and to each
drone node's `lora/tx`, for the live table and the end-of-run summary of `sim swarm`."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from lora_telemetry.msg import LinkStats, RadioFrame, SwarmState, UavTelemetry
from lora_telemetry.nodes.ros_convert import stamp_to_float

SWARM_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class Received:
    fcnt: int
    sample_time: float
    lat: float
    lon: float
    alt_amsl: float
    latency_s: float
    rx_time: float


@dataclass
class UavRecord:
    sent: dict[int, float] = field(default_factory=dict)  # fcnt -> send time
    received: dict[int, Received] = field(default_factory=dict)
    latest: UavTelemetry | None = None
    link: LinkStats | None = None
    age_s: float = math.inf
    stale: bool = True


class SwarmMonitor(Node):
    def __init__(self, uav_names: list[str], clock) -> None:
        super().__init__("swarm_monitor")
        self._clock = clock
        self._lock = threading.Lock()
        self.uavs = {name: UavRecord() for name in uav_names}
        self.swarm_messages = 0
        self.create_subscription(SwarmState, "/swarm/state", self._on_swarm, SWARM_QOS)
        for name in uav_names:
            self.create_subscription(UavTelemetry, f"/swarm/{name}/telemetry",
                                     lambda m, n=name: self._on_telemetry(n, m), RELIABLE)
            self.create_subscription(LinkStats, f"/swarm/{name}/link",
                                     lambda m, n=name: self._on_link(n, m), RELIABLE)
            self.create_subscription(RadioFrame, f"/{name}/lora/tx",
                                     lambda m, n=name: self._on_tx(n, m), qos_profile_sensor_data)

    def _on_swarm(self, msg: SwarmState) -> None:
        with self._lock:
            self.swarm_messages += 1
            for uav, stale, age in zip(msg.uavs, msg.stale, msg.age_s):
                rec = self.uavs.get(uav.uav_name)
                if rec is not None:
                    rec.latest, rec.stale, rec.age_s = uav, bool(stale), float(age)

    def _on_telemetry(self, name: str, msg: UavTelemetry) -> None:
        with self._lock:
            rec = self.uavs[name]
            rec.latest = msg
            rec.received[msg.link.frame_counter] = Received(
                msg.link.frame_counter, stamp_to_float(msg.header.stamp), msg.latitude_deg,
                msg.longitude_deg, msg.altitude_amsl_m, msg.link.latency_s, self._clock())

    def _on_link(self, name: str, msg: LinkStats) -> None:
        with self._lock:
            self.uavs[name].link = msg

    def _on_tx(self, name: str, msg: RadioFrame) -> None:
        # The drone node's frame counter is in the LoRaWAN header of the sent PHYPayload.
        data = bytes(msg.data)
        if len(data) >= 8:
            fcnt16 = data[6] | data[7] << 8
            with self._lock:
                rec = self.uavs[name]
                base = max(rec.sent, default=-1)
                # Rebuild the 32-bit counter as the gateway does (counters only grow).
                fcnt = (base & ~0xFFFF) | fcnt16 if base >= 0 else fcnt16
                if base >= 0 and fcnt < base - 0x8000:
                    fcnt += 0x10000
                rec.sent[fcnt] = stamp_to_float(msg.header.stamp)

    def snapshot(self) -> dict[str, UavRecord]:
        with self._lock:
            return {n: UavRecord(dict(r.sent), dict(r.received), r.latest, r.link, r.age_s, r.stale)
                    for n, r in self.uavs.items()}
