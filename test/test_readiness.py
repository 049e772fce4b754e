"""The ready channel (lora_telemetry/readiness.py): the parser, the bounded reader and the
announcing side, on plain pipes (test_sim_processes_ready.py: ProcessGroup on it)."""

from __future__ import annotations

import os
import time

import pytest

from lora_telemetry import readiness
from lora_telemetry.readiness import (
    Announcement, ChannelClosed, MalformedAnnouncement, ReadyTimeout, ReportedFailure,
    parse_announcement, read_announcement,
)


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    ends = {"r": read_fd, "w": write_fd}
    yield ends
    for fd in ends.values():
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _close_writer(ends) -> None:
    os.close(ends["w"])
    ends["w"] = None


# -- the parser -------------------------------------------------------------------------------
def test_a_ready_line_gives_its_kind_pid_and_fields() -> None:
    got = parse_announcement(b'{"ready": "medium", "pid": 123, "port": 47100, "host": "127.0.0.1"}')
    assert got == Announcement("medium", 123, {"port": 47100, "host": "127.0.0.1"})
    assert got["port"] == 47100


@pytest.mark.parametrize("line, says", [
    (b"medium listening on 127.0.0.1:47100", "not JSON"),
    (b'{"ready": "medium", "pid": 1', "not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'["ready", "medium"]', "not a JSON object"),
    (b'{"pid": 5, "port": 1}', 'neither or both of "ready" and "failed"'),
    (b'{"ready": "medium", "failed": "x", "pid": 5}', 'neither or both'),
    (b'{"ready": "medium"}', 'without a valid "pid"'),
    (b'{"ready": "medium", "pid": "12"}', 'without a valid "pid"'),
    (b'{"ready": "medium", "pid": true}', 'without a valid "pid"'),
    (b'{"ready": "", "pid": 5}', '"ready" is not a kind name'),
    (b'{"ready": 3, "pid": 5}', '"ready" is not a kind name'),
    (b'{"failed": 3, "pid": 5}', '"failed" is not a string'),
    (b'{"ready": "m", "pid": 5, "pad": "' + b"x" * readiness.MAX_LINE_BYTES + b'"}', "longer than"),
])
def test_a_malformed_line_is_refused_with_what_is_wrong(line: bytes, says: str) -> None:
    with pytest.raises(MalformedAnnouncement, match=says):
        parse_announcement(line)


def test_a_failure_line_is_the_childs_reason() -> None:
    with pytest.raises(ReportedFailure, match="reported that it failed: port 47100 in use"):
        parse_announcement(b'{"failed": "port 47100 in use", "pid": 9}')


# -- the reader -------------------------------------------------------------------------------
def test_the_reader_returns_a_line_written_in_pieces(pipe) -> None:
    os.write(pipe["w"], b'{"ready": "module", "pid"')
    os.write(pipe["w"], b': 7, "path": "/tmp/x/uav1.tty"}\n{"ignored": 1}\n')
    got = read_announcement(pipe["r"], 2.0, still_running=lambda: True, kind="module")
    assert got == Announcement("module", 7, {"path": "/tmp/x/uav1.tty"})


def test_the_reader_refuses_another_kind(pipe) -> None:
    os.write(pipe["w"], b'{"ready": "vehicle", "pid": 7}\n')
    with pytest.raises(MalformedAnnouncement, match="as 'vehicle', expected 'drone'"):
        read_announcement(pipe["r"], 2.0, still_running=lambda: True, kind="drone")


def test_the_reader_refuses_a_malformed_line(pipe) -> None:
    os.write(pipe["w"], b"ground listening on 433.175 MHz\n")
    with pytest.raises(MalformedAnnouncement, match="not JSON: 'ground listening"):
        read_announcement(pipe["r"], 2.0, still_running=lambda: True)


def test_the_reader_sees_a_closed_channel(pipe) -> None:
    _close_writer(pipe)  # what a child's exit does
    with pytest.raises(ChannelClosed, match="without announcing"):
        read_announcement(pipe["r"], 5.0, still_running=lambda: True)


def test_the_reader_refuses_a_line_cut_short(pipe) -> None:
    os.write(pipe["w"], b'{"ready": "medium", "pid": 4')
    _close_writer(pipe)
    with pytest.raises(MalformedAnnouncement, match="ready line cut short"):
        read_announcement(pipe["r"], 5.0, still_running=lambda: True)


def test_the_reader_notices_an_exit_while_the_channel_stays_open(pipe) -> None:
    # A descendant may hold the write end; the child's exit still ends the wait at once.
    started = time.monotonic()
    with pytest.raises(ChannelClosed):
        read_announcement(pipe["r"], 10.0, still_running=lambda: False)
    assert time.monotonic() - started < 1.0


def test_a_line_written_just_before_the_exit_still_counts(pipe) -> None:
    os.write(pipe["w"], b'{"ready": "medium", "pid": 4, "port": 1}\n')
    assert read_announcement(pipe["r"], 5.0, still_running=lambda: False).kind == "medium"


def test_the_reader_waits_no_longer_than_its_timeout(pipe) -> None:
    started = time.monotonic()
    with pytest.raises(ReadyTimeout, match="not ready after 0.4 s"):
        read_announcement(pipe["r"], 0.4, still_running=lambda: True)
    assert 0.35 < time.monotonic() - started < 1.5


# -- the announcing side ----------------------------------------------------------------------
def test_announcing_without_a_channel_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv(readiness.ENV_VAR, raising=False)
    assert readiness.announce_ready("medium", port=1) is False
    assert readiness.announce_failed("no") is False


@pytest.mark.parametrize("value", ["", "x", "7", "9999:1", "-1:5"])
def test_announcing_on_a_bad_variable_does_nothing(monkeypatch, value: str) -> None:
    monkeypatch.setenv(readiness.ENV_VAR, value)
    assert readiness.announce_ready("medium") is False


def test_a_descriptor_that_is_not_the_named_pipe_is_left_alone(monkeypatch, pipe) -> None:
    # e.g. a grandchild that inherited the variable: the same number, another pipe
    other_r, other_w = os.pipe()
    try:
        monkeypatch.setenv(readiness.ENV_VAR, f"{other_w}:{os.fstat(pipe['w']).st_ino}")
        assert readiness.announce_ready("medium") is False
        os.set_blocking(other_r, False)
        with pytest.raises(BlockingIOError):
            os.read(other_r, 100)
    finally:
        os.close(other_r)
        os.close(other_w)
