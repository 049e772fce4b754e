"""Test helpers: a MavlinkLink fed by the vehicle simulator over real UDP, for a while."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from lora_telemetry.mavlink.link import MavlinkLink
from lora_telemetry.sim.vehicle import SimulatedAutopilot, VehicleSimulator


@contextmanager
def simulated_link(autopilots: Sequence[SimulatedAutopilot], *, system_id: int,
                   duration_s: float = 30.0) -> Iterator[tuple[MavlinkLink, VehicleSimulator]]:
    """A link listening on a free UDP port and a simulator thread sending to it; both are
    stopped and closed on exit (the thread is joined, bounded)."""
    link = MavlinkLink("udpin:127.0.0.1:0", system_id=system_id)
    link.poll(0)
    sim = VehicleSimulator([f"udpout:127.0.0.1:{link.local_address[1]}"], autopilots=autopilots)
    stop = threading.Event()
    thread = threading.Thread(target=sim.run, kwargs={"stop": stop, "duration_s": duration_s})
    thread.start()
    try:
        yield link, sim
    finally:
        stop.set()
        thread.join(timeout=5.0)
        sim.close()
        link.close()
    assert not thread.is_alive()


def poll_until(link: MavlinkLink, done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll the link until ``done()`` or ``timeout_s`` passes; whether ``done()`` held."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        link.poll(0.1)
    return done()
