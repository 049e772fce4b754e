"""The swarm's radio medium follows the vehicles: the plan's medium and vehicle simulator as
real processes, the gateway's RSSI as the medium reports it.

Figures: the path loss of config/medium.yaml (the built-in defaults, which the plan's medium
keeps): PL(d) = reference_loss_db 68 dB + 10 * path_loss_exponent 2 * log10(d / 1 m), no
shadowing, so a frame sent at 14 dBm from d metres arrives at 14 - 68 - 20 log10(d) dBm.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from lora_telemetry.core.phy import PhySettings
from lora_telemetry.sim.medium import MediumClient, MediumControl, RxEvent, TxDoneEvent
from lora_telemetry.sim.processes import ProcessGroup
from lora_telemetry.sim.swarm import SwarmOptions, plan_swarm, start_swarm

REPO = Path(__file__).resolve().parent.parent
POWER_DBM = 14.0
FRAME = bytes(range(17))


def expected_rssi_dbm(distance_m: float) -> float:
    """config/medium.yaml: 14 dBm - (68 dB + 20 log10(d / 1 m)); d clamped to 1 m."""
    return POWER_DBM - (68.0 + 20.0 * math.log10(max(distance_m, 1.0)))


def _wait_event(client: MediumClient, kind: type, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        event = client.next_event(timeout=left)
        if isinstance(event, kind):
            return event
    return None


def test_gateway_rssi_falls_as_the_uav_flies_away(tmp_path: Path) -> None:
    # One synthetic copter: the formation leader takes off from the north point of its
    # 150 m circle (build_swarm: CirclePath phase 0 -> home (0, radius_m)), climbs to 30 m and
    # flies the circle clockwise. The gateway stands on the ground at that take-off point, so
    # the UAV flies away from it: 30 m overhead, then up to the circle's 300 m diameter.
    radius_m = 150.0
    options = SwarmOptions(uavs=1, radius_m=radius_m, speed=6.0,
                           gateway_position_m=(0.0, radius_m, 0.0))
    plan = plan_swarm(options, tmp_path)
    plan.specs = [s for s in plan.specs if s.kind in ("medium", "vehicle")]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    hub = ("127.0.0.1", plan.medium_port)
    phy = PhySettings(options.frequency_hz, options.spreading_factor, 125_000)
    samples: list[tuple[float, float]] = []  # (distance m, RSSI dBm) per frame
    with ProcessGroup(tmp_path / "logs", env=env) as group:
        start_swarm(plan, group)
        control = MediumControl(hub, timeout_s=2.0)
        gateway = MediumClient("gateway", hub, position_m=options.gateway_position_m)
        uav = MediumClient("uav1", hub)  # no position: the vehicle simulator's stays
        try:
            assert control.ping()  # the hub has handled both clients' hello by now
            deadline = time.monotonic() + 25.0
            while time.monotonic() < deadline and not (
                    samples and samples[-1][0] >= 1.9 * radius_m):
                gateway.listen(phy)
                before = control.stats()["nodes"]["uav1"]["position_m"]
                uav.transmit(FRAME, phy, POWER_DBM)
                done = _wait_event(uav, TxDoneEvent, 2.0)
                rx = _wait_event(gateway, RxEvent, 2.0)
                after = control.stats()["nodes"]["uav1"]["position_m"]
                assert done is not None and rx is not None and rx.data == FRAME, (
                    uav.last_error, gateway.counters)
                if before == after:  # the medium did not move the UAV during the frame
                    samples.append((math.dist(before, options.gateway_position_m), rx.rssi_dbm))
                time.sleep(0.2)
            stats = control.stats()
        finally:
            uav.close()
            gateway.close()
            control.close()
        assert not group.dead(), [c.tail() for c in group.dead()]

    assert len(samples) >= 10, samples
    for distance, rssi in samples:  # every frame: exactly the model at the medium's position
        assert abs(rssi - expected_rssi_dbm(distance)) < 1e-6, (distance, rssi)
    # It flew away, and the RSSI fell with the distance: from 30 m overhead (14 - 68 - 29.5 =
    # -83.5 dBm) to at least 1.9 * 150 = 285 m away (14 - 68 - 49.1 = -103.1 dBm or less).
    nearest = min(d for d, _ in samples)
    farthest, weakest = max(samples)
    assert nearest <= 31.0 and farthest >= 285.0, samples
    assert weakest <= -103.09, samples
    receding = [(a, b) for a, b in zip(samples, samples[1:]) if b[0] > a[0] + 1.0]
    assert len(receding) >= 5, samples
    assert all(b[1] < a[1] for a, b in receding), receding
    assert stats["hub"]["rejected_by_op"]["position"] == 0, stats["hub"]
