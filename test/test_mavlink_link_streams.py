"""MavlinkLink against fake autopilots: stream requests, fallback, reboots, heartbeat, reconnects.

The fake autopilots speak MAVLink through pymavlink over loopback UDP/TCP (ephemeral ports) or
a pseudo-terminal (``sim.pty_port``), in the test's own thread: every wait is a bounded loop of
short polls. Message ids and rates are those of MAVLink common.xml and the link's
DEFAULT_STREAM_RATES_HZ; stream groups are ArduPilot's (GCS_Mavlink.cpp STREAM_*_msgs).
"""

from __future__ import annotations

import math
import socket
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from lora_telemetry.mavlink.link import MavlinkLink, MavlinkLinkError
from lora_telemetry.mavlink.streams import (
    DATA_STREAM_OF_MESSAGE,
    DEFAULT_STREAM_RATES_HZ,
    StreamRequester,
)
from lora_telemetry.mavlink.transport import open_transport
from lora_telemetry.mavlink.urls import parse_url
from lora_telemetry.sim.pty_port import PtyPort

SET_MESSAGE_INTERVAL = 511
WANTED = {getattr(mavlink2, f"MAVLINK_MSG_ID_{n}"): r for n, r in DEFAULT_STREAM_RATES_HZ.items()}


class FakeAutopilot:
    """An ArduCopter at 1/1 that answers SET_MESSAGE_INTERVAL as told ("accept",
    "unsupported" or "ignore") and records what it receives."""

    def __init__(self, url: str, answer: str = "accept", sysid: int = 1) -> None:
        self.spec = parse_url(url)
        self.conn = open_transport(self.spec)
        self.mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self.answer = answer
        self.received: list = []

    def send(self, msg) -> None:
        self.conn.write(msg.pack(self.mav))
        self.mav.seq = (self.mav.seq + 1) % 256

    def heartbeat(self) -> None:
        self.send(self.mav.heartbeat_encode(2, 3, 1, 4, 3, 3))

    def system_time(self, boot_ms: int) -> None:
        self.send(self.mav.system_time_encode(0, boot_ms))

    def pump(self) -> None:
        for _ in range(100):
            msg = self.conn.recv_msg()
            if msg is None:
                return
            if msg.get_type() == "BAD_DATA":
                continue
            self.received.append(msg)
            if msg.get_type() == "COMMAND_LONG" and msg.command == SET_MESSAGE_INTERVAL:
                if self.answer != "ignore":
                    result = 0 if self.answer == "accept" else 3  # ACCEPTED / UNSUPPORTED
                    self.send(self.mav.command_ack_encode(SET_MESSAGE_INTERVAL, result, 0, 0,
                                                          msg.get_srcSystem(),
                                                          msg.get_srcComponent()))  # fmt: skip

    def of_type(self, mtype: str) -> list:
        return [m for m in self.received if m.get_type() == mtype]

    def intervals(self) -> list:
        return [m for m in self.of_type("COMMAND_LONG") if m.command == SET_MESSAGE_INTERVAL]

    def close(self) -> None:
        self.conn.close()


def run_until(link: MavlinkLink, fake: FakeAutopilot | None, done: Callable[[], bool],
              timeout: float = 5.0, heartbeat: bool = True) -> None:  # fmt: skip
    """Poll both sides until ``done()`` (bounded); the fake sends a heartbeat every 0.2 s."""
    deadline = time.monotonic() + timeout
    next_hb = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if fake is not None and heartbeat and now >= next_hb:
            fake.heartbeat()
            next_hb = now + 0.2
        link.poll(0.02)
        if fake is not None:
            fake.pump()
        if done():
            return
    raise AssertionError("condition not reached in time")


@pytest.fixture
def udp_pair(request):
    """A link listening on an ephemeral loopback port and a fake autopilot talking to it."""
    answer, link_kwargs = request.param if hasattr(request, "param") else ("accept", {})
    link = MavlinkLink("udpin:127.0.0.1:0", backoff_initial_s=0.05, **link_kwargs)
    link.poll(0)
    fake = FakeAutopilot(f"udpout:127.0.0.1:{link.local_address[1]}", answer)
    yield link, fake
    fake.close()
    link.close()


def test_requests_every_needed_message_and_sends_its_heartbeat(udp_pair) -> None:
    link, fake = udp_pair
    run_until(link, fake, lambda: len(fake.intervals()) >= len(WANTED)
              and all(s == "accepted" for s in link.requester.status.values())
              and fake.of_type("HEARTBEAT"))  # fmt: skip
    asked = {int(m.param1): m.param2 for m in fake.intervals()}
    assert asked == {msg_id: pytest.approx(1e6 / rate) for msg_id, rate in WANTED.items()}
    assert all((m.target_system, m.target_component) == (1, 1) for m in fake.intervals())
    assert fake.of_type("REQUEST_DATA_STREAM") == []
    # Our heartbeat: an onboard controller (MAV_TYPE 18) with MAV_AUTOPILOT_INVALID (8), from
    # component 191 of the vehicle's own system.
    ours = fake.of_type("HEARTBEAT")
    assert ours and all((m.type, m.autopilot) == (18, 8) for m in ours)
    assert {(m.get_srcSystem(), m.get_srcComponent()) for m in ours} == {(1, 191)}


@pytest.mark.parametrize("udp_pair", [("unsupported", {})], indirect=True)
def test_falls_back_to_request_data_stream_on_unsupported(udp_pair) -> None:
    link, fake = udp_pair
    streams = set(DATA_STREAM_OF_MESSAGE.values())
    run_until(link, fake, lambda: {m.req_stream_id for m in fake.of_type("REQUEST_DATA_STREAM")}
              >= streams)  # fmt: skip
    requests = {m.req_stream_id: m for m in fake.of_type("REQUEST_DATA_STREAM")}
    assert set(requests) == {2, 6, 10, 11, 12}  # EXTENDED_STATUS, POSITION, EXTRA1/2/3
    # Each stream at the fastest rate one of its messages needs (ceil, Hz).
    assert requests[6].req_message_rate == 10  # GLOBAL_POSITION_INT 10 Hz
    assert requests[2].req_message_rate == 2  # SYS_STATUS, GPS_RAW_INT 2 Hz
    assert requests[12].req_message_rate == 1  # SYSTEM_TIME, BATTERY_STATUS 1 Hz
    assert all(m.start_stop == 1 for m in requests.values())
    assert len(fake.intervals()) == 1  # one UNSUPPORTED is enough to know
    assert link.requester.legacy


@pytest.mark.parametrize(
    "udp_pair", [("ignore", {"command_timeout_s": 0.15, "command_retries": 1})], indirect=True
)
def test_falls_back_when_the_command_is_never_answered(udp_pair) -> None:
    link, fake = udp_pair
    run_until(link, fake, lambda: len(fake.of_type("REQUEST_DATA_STREAM")) >= 5)
    confirmations = [m.confirmation for m in fake.intervals()]
    assert confirmations == [0, 1]  # the command protocol's retry, then give up
    assert link.requester.counters["no_ack"] == 1


def test_rerequests_after_a_reboot(udp_pair) -> None:
    link, fake = udp_pair
    run_until(link, fake, lambda: all(s == "accepted" for s in link.requester.status.values())
              and len(link.requester.status) == len(WANTED))  # fmt: skip
    first = len(fake.intervals())
    fake.system_time(600_000)
    fake.system_time(1_500)  # time_boot_ms restarted: the flight controller rebooted
    run_until(link, fake, lambda: len(fake.intervals()) >= first + len(WANTED))
    assert link.stats()["rerequest_after_reboot"] == 1
    again = {int(m.param1) for m in fake.intervals()[first:]}
    assert again == set(WANTED)


@pytest.mark.parametrize("udp_pair", [("accept", {"stale_timeout_s": 0.3})], indirect=True)
def test_rerequests_when_a_silent_autopilot_returns(udp_pair) -> None:
    link, fake = udp_pair
    run_until(link, fake, lambda: all(s == "accepted" for s in link.requester.status.values())
              and len(link.requester.status) == len(WANTED))  # fmt: skip
    first = len(fake.intervals())
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:  # silence: no heartbeat
        link.poll(0.05)
        fake.pump()
    assert link.is_stale()
    run_until(link, fake, lambda: len(fake.intervals()) >= first + len(WANTED))
    assert link.stats()["rerequest_after_resumed"] == 1
    assert not link.is_stale()


def test_stream_requester_state_machine() -> None:
    req = StreamRequester({"GLOBAL_POSITION_INT": 5.0, "SYS_STATUS": 2.0}, command_timeout_s=1.0,
                          command_retries=2, verify_after_s=5.0, max_rounds=2)  # fmt: skip
    assert req.due(0.0) == []  # nothing before an autopilot is known
    req.start(0.0)
    (first,) = req.due(0.0)
    assert (first.kind, first.message, first.message_id) == ("set_message_interval",
                                                             "GLOBAL_POSITION_INT", 33)
    assert first.interval_us == 200_000 and first.confirmation == 0
    assert req.due(0.5) == []  # one command in flight at a time
    (retry,) = req.due(1.0)
    assert retry.confirmation == 1
    req.on_message("COMMAND_ACK", {"command": 511, "result": 5}, 1.1)  # IN_PROGRESS: wait on
    req.on_message("COMMAND_ACK", {"command": 400, "result": 0}, 1.2)  # another command's ACK
    assert req.status["GLOBAL_POSITION_INT"] == "waiting"
    req.on_message("COMMAND_ACK", {"command": 511, "result": 0}, 1.3)
    assert req.status["GLOBAL_POSITION_INT"] == "accepted"
    (second,) = req.due(1.3)
    assert second.message == "SYS_STATUS" and second.interval_us == 500_000
    req.on_message("COMMAND_ACK", {"command": 511, "result": 4}, 1.4)  # FAILED: this one only
    (stream,) = req.due(1.4)
    assert (stream.kind, stream.stream_id, stream.rate_hz) == ("request_data_stream", 2, 2)
    assert not req.legacy
    # Verification: GLOBAL_POSITION_INT never arrived, so it is asked for again after 5 s...
    req.on_message("SYS_STATUS", {}, 2.0)
    (again,) = req.due(6.4)
    assert again.message == "GLOBAL_POSITION_INT"
    assert req.counters["rerequests"] == 1
    req.on_message("COMMAND_ACK", {"command": 511, "result": 0}, 6.5)
    # ...and given up after max_rounds.
    assert req.due(12.0) == []
    assert req.status["GLOBAL_POSITION_INT"] == "missing"
    assert req.status["SYS_STATUS"] == "data_stream"  # it did arrive


def test_tcp_link_reconnects_after_a_reset() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(2)
    server.settimeout(3.0)
    port = server.getsockname()[1]
    mav = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    heartbeat = mav.heartbeat_encode(2, 3, 1, 4, 3, 3).pack(mav)
    link = MavlinkLink(f"tcp:127.0.0.1:{port}", backoff_initial_s=0.05, backoff_max_s=0.2)
    try:
        link.poll(0.05)
        client, _ = server.accept()
        client.sendall(heartbeat)
        run_until(link, None, lambda: link.state.autopilot == (1, 1))
        client.close()  # the flight controller's TCP end goes away
        run_until(link, None, lambda: link.stats().get("disconnects", 0) == 1)
        assert not link.connected
        link.poll(0.3)  # reconnects after the backoff
        client, _ = server.accept()
        client.sendall(heartbeat)
        run_until(link, None, lambda: link.state.messages_by_type["HEARTBEAT"] == 2)
        assert link.stats()["connects"] == 2
        assert link.stats()["last_error"].startswith(f"tcp:127.0.0.1:{port}: ")
        client.close()
    finally:
        link.close()
        server.close()


def test_connection_attempts_are_bounded() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    link = MavlinkLink(f"tcp:127.0.0.1:{port}", max_connect_attempts=3, backoff_initial_s=0.01,
                       connect_timeout_s=0.5)  # fmt: skip
    with pytest.raises(MavlinkLinkError, match="gave up after 3 attempts"):
        for _ in range(100):
            link.poll(0.05)
    assert link.stats()["connect_failures"] == 3
    # Unlimited attempts (the default) keep trying with a growing, capped backoff.
    patient = MavlinkLink(f"tcp:127.0.0.1:{port}", backoff_initial_s=0.01, backoff_max_s=0.04)
    for _ in range(20):
        patient.poll(0.02)
    assert patient.stats()["connect_failures"] >= 3
    assert patient.reconnect_schedule.backoff_s == pytest.approx(0.04)


def test_serial_link_survives_unplug_and_replug(tmp_path: Path) -> None:
    port = PtyPort(tmp_path / "fc.tty")
    mav = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)

    def send(msg) -> None:
        port.write(msg.pack(mav))
        mav.seq = (mav.seq + 1) % 256

    link = MavlinkLink(f"serial:{port.path}:921600", backoff_initial_s=0.05, backoff_max_s=0.1)
    try:
        link.poll(0.05)
        assert link.connected
        send(mav.heartbeat_encode(2, 3, 1, 4, 3, 3))
        run_until(link, None, lambda: link.state.autopilot == (1, 1))
        port.unplug()
        run_until(link, None, lambda: link.stats().get("disconnects", 0) == 1)
        port.plug()
        run_until(link, None, lambda: link.connected)
        assert link.stats()["connects"] == 2
        send(mav.global_position_int_encode(5000, 473977418, 85455939, 488000, 30000, 0, 0, 0, 0))
        run_until(link, None, lambda: link.state.value("position") is not None)
        assert link.state.value("position") == pytest.approx((47.3977418, 8.5455939))
        # The heartbeat went out on the serial line too.
        written = port.read(0.5)
        assert written[:1] in (b"\xfd", b"\xfe")
    finally:
        link.close()
        port.close()


def test_link_is_usable_from_a_thread(udp_pair) -> None:
    link, fake = udp_pair
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            link.poll(0.05)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5.0
        sample = None
        while time.monotonic() < deadline:
            fake.heartbeat()
            fake.send(fake.mav.global_position_int_encode(
                1000, 473977418, 85455939, 488000, 30000, 0, 0, 0, 9000))  # fmt: skip
            fake.pump()
            sample = link.sample()
            if sample is not None and sample.lat_deg is not None:
                break
            time.sleep(0.05)
        assert sample is not None and sample.heading_deg == 90.0
        assert math.isclose(sample.lat_deg, 47.3977418)
        stats = link.stats()
        assert stats["connected"] and stats["state"]["autopilot"] == [1, 1]
    finally:
        stop.set()
        link.close()  # safe while the worker polls
        thread.join(timeout=2.0)
    assert not thread.is_alive()
