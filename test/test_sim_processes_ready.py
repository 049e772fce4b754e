"""`ProcessGroup` (sim/processes.py) waits on each child's ready channel, never on its log:
a ready child's announcement, and a ProcessError naming the child, with the reason and its
log tail, for an exit, a malformed line, a reported failure or silence."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lora_telemetry import readiness
from lora_telemetry.sim.processes import ProcessError, ProcessGroup

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def own_channel():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


@pytest.fixture
def group(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with ProcessGroup(tmp_path / "logs", env=env) as g:
        yield g


def test_a_child_announces_once_and_then_its_channel_is_gone(group) -> None:
    child = group.start("medium", _script("""
        import json, os, time
        from lora_telemetry.readiness import ENV_VAR, announce_ready, announce_failed
        first = announce_ready("medium", port=47100)
        again = announce_ready("medium", port=1), announce_failed("late")
        env = os.environ.get(ENV_VAR)
        print(json.dumps({"first": first, "again": again, "env": env}), flush=True)
        time.sleep(30)
    """), ready="medium", ready_timeout_s=20.0)
    assert child.ready is not None and child.ready["port"] == 47100 and child.ready.pid == child.pid
    deadline = time.monotonic() + 10.0
    while not child.lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(child.lines[0]) == {"first": True, "again": [False, False], "env": None}


# -- ProcessGroup on the channel --------------------------------------------------------------
def test_a_child_that_exits_first_names_itself_with_its_log_tail(group) -> None:
    with pytest.raises(ProcessError) as err:
        group.start("vehicles", _script("""
            import sys
            print("cannot open udpout:nowhere", flush=True)
            sys.exit(3)
        """), ready="vehicle", ready_timeout_s=20.0)
    text = str(err.value)
    assert text.startswith("vehicles exited with 3 before it was ready; its log")
    assert text.endswith("ends with:\ncannot open udpout:nowhere\n")


def test_a_malformed_line_is_a_process_error_naming_the_child(group) -> None:
    with pytest.raises(ProcessError) as err:
        group.start("module-uav1", _script("""
            import os, time
            fd = int(os.environ["LORA_TELEMETRY_READY_FD"].split(":")[0])
            os.write(fd, b"/tmp/uav1.tty\\n")
            time.sleep(30)
        """), ready="module", ready_timeout_s=20.0)
    assert str(err.value).startswith(
        "module-uav1 wrote a ready line that is not JSON: '/tmp/uav1.tty'; its log")


def test_a_reported_failure_gives_the_childs_reason(group) -> None:
    with pytest.raises(ProcessError) as err:
        group.start("ground", _script("""
            from lora_telemetry.readiness import announce_failed
            announce_failed("key file /k.yaml: no such file")
        """), ready="ground", ready_timeout_s=20.0)
    assert str(err.value).startswith(
        "ground reported that it failed: key file /k.yaml: no such file; its log")


def test_a_silent_child_times_out_within_the_wait(group) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessError, match=r"^drone-uav1 not ready after 3 s; its log .*"
                                           r"ends with:\ndrone uav1: MAVLink udpin:1 -> ebyte\n$"):
        group.start("drone-uav1", _script("""
            import time
            print("drone uav1: MAVLink udpin:1 -> ebyte", flush=True)  # words are not readiness
            time.sleep(30)
        """), ready="drone", ready_timeout_s=3.0)
    assert time.monotonic() - started < 8.0


def test_a_child_never_inherits_the_channel_of_the_process_that_starts_it(group, monkeypatch,
                                                                          own_channel) -> None:
    # This process was itself given a channel (it runs under another ProcessGroup): a child
    # started without ready= must not see it, one started with ready= sees only its own.
    read_fd, write_fd = own_channel
    monkeypatch.setenv(readiness.ENV_VAR, readiness.channel_value(write_fd))
    group.env[readiness.ENV_VAR] = readiness.channel_value(write_fd)
    show = _script("""
        import os
        print(os.environ.get("LORA_TELEMETRY_READY_FD"), flush=True)
        from lora_telemetry.readiness import announce_ready
        announce_ready("probe")
    """)
    plain = group.spawn("plain", show)
    waited = group.start("waited", show, ready="probe", ready_timeout_s=20.0)
    assert plain.popen.wait(20.0) == 0 and waited.popen.wait(20.0) == 0
    plain.log_reader.join(5.0)
    waited.log_reader.join(5.0)
    assert plain.lines == ["None\n"]
    own = waited.lines[0].strip()
    assert own != "None" and own != readiness.channel_value(write_fd), own
    os.set_blocking(read_fd, False)
    with pytest.raises(BlockingIOError):  # nothing ever came on this process's own channel
        os.read(read_fd, 100)
