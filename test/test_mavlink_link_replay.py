"""MavlinkLink over the recorded logs in testdata/tlogs: state vs pymavlink, components, bad bytes.

The reference is pymavlink's own reader of the same file (``mavutil.mavlink_connection``), so the
test compares the link's state with an independent parse: every GLOBAL_POSITION_INT and every
HEARTBEAT of the autopilot, in order. Log facts quoted below come from testdata/tlogs/README.md.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from pymavlink import mavutil

from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.geo import haversine_m
from lora_telemetry.mavlink.link import MavlinkLink
from lora_telemetry.mavlink.tlog import TlogReader
from lora_telemetry.mavlink.urls import ConnectionSpec, parse_url

AUTOPILOT = (1, 1)


def _reference(path: Path) -> dict:
    """Positions and mode names of the autopilot (1/1) as pymavlink parses them, from its
    first HEARTBEAT on (before it, nobody can tell which component is the autopilot)."""
    # Parse v1 and v2 with pymavlink's MAVLink 2 dialect; restore its global choice afterwards.
    saved_env, saved_module = os.environ.get("MAVLINK20"), mavutil.mavlink
    os.environ["MAVLINK20"] = "1"
    mavutil.set_dialect("ardupilotmega")
    conn = mavutil.mavlink_connection(str(path))
    positions, modes = [], []
    try:
        while True:
            msg = conn.recv_match(type=["GLOBAL_POSITION_INT", "HEARTBEAT"])
            if msg is None:
                break
            if (msg.get_srcSystem(), msg.get_srcComponent()) != AUTOPILOT:
                continue
            if msg.get_type() == "HEARTBEAT":
                modes.append(mavutil.mode_string_v10(msg))
            elif modes:
                pos = None if (msg.lat, msg.lon) == (0, 0) else (msg.lat * 1e-7, msg.lon * 1e-7)
                positions.append((msg.time_boot_ms, pos, msg.alt * 1e-3, msg.relative_alt * 1e-3))
    finally:
        conn.close()
        if saved_env is None:
            os.environ.pop("MAVLINK20", None)
        else:
            os.environ["MAVLINK20"] = saved_env
        mavutil.mavlink = saved_module
    return {"positions": positions, "modes": modes}


def _replay(path: Path, **kwargs) -> tuple[MavlinkLink, list, list]:
    """Run the link over a log one message at a time, recording its state after each
    position and heartbeat it accepts."""
    link = MavlinkLink(str(path), **kwargs)
    positions, modes = [], []
    state = link.state
    for _ in range(10_000_000):
        handled = link.poll(timeout=0, max_messages=1)
        if not handled:
            if link.eof:
                break
            continue
        msg = handled[0]
        if msg.get_type() == "GLOBAL_POSITION_INT":
            link.last_position_log_time = msg._timestamp  # type: ignore[attr-defined]
            positions.append((msg.time_boot_ms, state.value("position"),
                              state.value("alt_amsl_m"), state.value("alt_rel_m")))  # fmt: skip
        elif msg.get_type() == "HEARTBEAT":
            modes.append((state.value("mode_name"), state.pymavlink_mode))
    return link, positions, modes


@pytest.fixture(scope="module")
def replays(tlog_paths: list[Path]) -> dict[str, tuple]:
    assert len(tlog_paths) == 3, "testdata/tlogs/README.md lists three logs"
    return {p.name: (_reference(p), *_replay(p)) for p in tlog_paths}


@pytest.mark.parametrize(
    "name",
    ["ardusub_small.tlog", "uavlogviewer_pr437_flight_logs.tlog", "uavlogviewer_vtol.tlog"],
)
def test_positions_and_modes_match_pymavlink(replays: dict, name: str) -> None:
    reference, link, positions, modes = replays[name]
    assert len(reference["positions"]) > 700  # hundreds of positions in each log
    assert positions == reference["positions"]
    assert [ours for ours, _ in modes] == reference["modes"]
    assert [theirs for _, theirs in modes] == reference["modes"]
    assert link.state.counters["mode_name_mismatch"] == 0
    assert link.state.autopilot == AUTOPILOT
    stats = link.stats()
    assert stats["state"]["messages_by_type"]["GLOBAL_POSITION_INT"] == len(positions)


def test_vtol_log_is_the_arduplane_sitl_at_cmac(replays: dict) -> None:
    # README: "ArduPlane V3.10.0-dev SITL (SIMSTATE present, CMAC -35.36,149.16), QuadPlane".
    _, link, positions, modes = replays["uavlogviewer_vtol.tlog"]
    lat, lon = next(p for _, p, _, _ in positions if p is not None)
    assert haversine_m(lat, lon, -35.36, 149.16) < 2000
    assert link.state.family.value == "arduplane"
    assert "QLAND" in {m for m, _ in modes}  # a QuadPlane mode (ArduPlane custom_mode 20)
    sample = link.sample()
    # A replay's clock is the log's: the sample time is the newest position's record time.
    assert sample.time_unix_s == link.last_position_log_time


def test_rover_log_sees_the_sitl_reboot(replays: dict) -> None:
    # The autotest log restarts SITL: time_boot_ms goes from 8451 ms back to 2442 ms.
    _, link, _, modes = replays["uavlogviewer_pr437_flight_logs.tlog"]
    assert link.state.counters["reboots"] == 1
    assert link.state.family.value == "ardurover"
    assert "AUTO" in {m for m, _ in modes}
    # Its other system (250/250, a GCS heartbeat) is ignored, and counted.
    assert link.state.ignored_by_source["250/250"] > 5000
    assert link.stats().get("sent_set_message_interval", 0) == 0  # a replay sends nothing


def test_ardusub_component_filtering(replays: dict) -> None:
    # README: "real ArduSub ... multiple components (1/1, 1/100 camera, 1/194, 1/220)", and the
    # QGC ground station that recorded it (255/190).
    _, link, positions, modes = replays["ardusub_small.tlog"]
    state = link.state
    assert state.autopilot == (1, 1)
    assert state.family.value == "ardusub"
    assert set(state.ignored_by_source) == {"1/100", "1/194", "1/220", "255/190"}
    assert all(n > 100 for n in state.ignored_by_source.values())
    assert {m for m, _ in modes} == {"MANUAL"}  # ArduSub custom_mode 19
    # The camera's heartbeats never touched the vehicle's mode or type.
    assert state.mav_type == 12  # MAV_TYPE_SUBMARINE


def _corrupt_copy(src: Path, dst: Path, count: int, seed: int) -> list[int]:
    data = bytearray(src.read_bytes())
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(4096, len(data)), count))
    for off in offsets:
        data[off] ^= rng.randrange(1, 256)  # always a different byte
    dst.write_bytes(bytes(data))
    return offsets


@pytest.mark.parametrize("name", ["uavlogviewer_vtol.tlog", "ardusub_small.tlog"])  # v1, v2
def test_corrupted_bytes_are_counted_and_skipped(
    replays: dict, testdata_dir: Path, tmp_path: Path, name: str
) -> None:
    reference = replays[name][0]
    corrupt = tmp_path / name
    _corrupt_copy(testdata_dir / "tlogs" / name, corrupt, count=40, seed=1234)
    link, positions, modes = _replay(corrupt)
    clean_stats = replays[name][1].stats()
    stats = link.stats()
    assert stats["bad_data"] > clean_stats.get("bad_data", 0)
    assert stats["bad_bytes"] > clean_stats.get("bad_bytes", 0)
    assert stats["receive_errors"] > clean_stats["receive_errors"]
    # Every position the link took is one the clean log has (none invented from garbage)...
    known = set(reference["positions"])
    assert all(p in known for p in positions)
    # ...and at most one record per corrupted byte was lost.
    assert len(positions) >= len(reference["positions"]) - 40
    assert len(modes) >= len(reference["modes"]) - 40


def test_truncated_and_garbage_files(testdata_dir: Path, tmp_path: Path) -> None:
    src = (testdata_dir / "tlogs" / "uavlogviewer_vtol.tlog").read_bytes()
    cut = tmp_path / "cut.tlog"
    cut.write_bytes(src[:100_010])  # a record starts at byte 100003: keep 7 bytes of it
    link = MavlinkLink(str(cut))
    while not link.eof:
        link.poll(timeout=0)
    assert link.state.autopilot == AUTOPILOT
    assert link.stats()["bad_bytes"] == 7
    garbage = tmp_path / "garbage.tlog"
    garbage.write_bytes(bytes(random.Random(7).randrange(256) for _ in range(20_000)))
    reader = TlogReader(garbage)
    bad = 0
    while (msg := reader.recv_msg()) is not None:
        assert msg.get_type() == "BAD_DATA"
        bad += len(msg.data)
    assert bad == reader.bad_bytes == 20_000
    reader.close()


def test_connection_strings() -> None:
    ama0 = ConnectionSpec("serial", "/dev/ttyAMA0", 921600)
    assert parse_url("serial:/dev/ttyAMA0:921600") == ama0  # the spelling
    assert parse_url("/dev/ttyAMA0:921600") == ama0
    assert parse_url("/dev/ttyAMA0,57600") == ConnectionSpec("serial", "/dev/ttyAMA0", 57600)
    assert parse_url("/dev/ttyUSB0") == ConnectionSpec("serial", "/dev/ttyUSB0", 115200)
    by_path = "/dev/serial/by-path/platform-3f980000.usb-usb-0:1.2:1.0-port0"
    assert parse_url(f"serial:{by_path}:921600") == ConnectionSpec("serial", by_path, 921600)
    assert parse_url("udpin:0.0.0.0:14550") == ConnectionSpec("udpin", "0.0.0.0:14550")
    assert parse_url("udp:127.0.0.1:14550").kind == "udpin"
    assert parse_url("udpout:127.0.0.1:14550").kind == "udpout"
    assert parse_url("tcp:localhost:5760") == ConnectionSpec("tcp", "localhost:5760")
    assert parse_url("udpin:127.0.0.1:0").address.endswith(":0")  # a listener may take port 0
    for bad in ("", "udpin:14550", "tcp:host:70000", "udpout:127.0.0.1:0", "ftp:x:1",
                "serial:/dev/ttyS0:0", "/nonexistent/flight.tlog"):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_url(bad)


def test_missing_log_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        MavlinkLink(str(tmp_path / "nothing.tlog"))
    (tmp_path / "folder.tlog").mkdir()
    with pytest.raises(ConfigError, match="not a file"):
        MavlinkLink(str(tmp_path / "folder.tlog"))
