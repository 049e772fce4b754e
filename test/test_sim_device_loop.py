"""The device loop that runs every emulator, its typed control and its pty writes."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from lora_telemetry.cli.sim_module import apply_control, parse_control
from lora_telemetry.core.emulation import (
    Accepted, DropAnswers, Garbage, HostBytes, PowerOn, PowerOnMoment, Refused, Replug, Reset,
    SetChannelRssi, Silence, StartTimer, TimerFired, ToHost, Transmit, TxDoneEvent, Unplug,
)
from lora_telemetry.core.phy import PhySettings
from lora_telemetry.radios import registry
from lora_telemetry.sim.device_loop import DeviceLoop, TimerHeap
from lora_telemetry.sim.emulated_serial import EmulatedSerialModule, emulated_module
from lora_telemetry.sim.emulated_spi import emulated_chip

PHY = PhySettings(433_175_000, 7, 125_000)


class Recorder:
    """A logic that records its events and does what the test scripts for each."""

    power_on_at = PowerOnMoment.SERVING

    def __init__(self) -> None:
        self.events: list[tuple[object, float]] = []
        self.script: dict[type, list] = {}
        self.counters: Counter[str] = Counter()

    def handle(self, event, now):
        self.events.append((event, now))
        return list(self.script.get(type(event), []))

    def of(self, kind: type) -> list:
        return [(e, t) for e, t in self.events if isinstance(e, kind)]


def _wait(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert condition()


def test_timer_heap_orders_moves_and_cancels() -> None:
    heap = TimerHeap()
    heap.start("a", 3.0)
    heap.start("b", 1.0)
    heap.start("c", 2.0)
    heap.start("a", 0.5)  # moved earlier: the 3.0 entry is dead
    heap.cancel("c")
    assert heap.next_at() == 0.5 and len(heap) == 2
    assert heap.due(0.9) == ["a"]
    assert heap.due(10.0) == ["b"]
    assert heap.due(10.0) == [] and heap.next_at() is None


def test_timers_and_a_transmission_without_medium_are_timed_by_the_loop() -> None:
    logic = Recorder()
    logic.script[PowerOn] = [StartTimer("t", 0.0), Transmit(b"x" * 10, PHY)]
    loop = DeviceLoop(logic, "rec")
    loop.start()
    try:
        _wait(lambda: logic.of(TxDoneEvent))
        (fired, _), = logic.of(TimerFired)
        assert fired.key == "t"
        (done, at), = logic.of(TxDoneEvent)
        airtime = PHY.time_on_air(10)
        assert done.airtime_s == pytest.approx(airtime)
        assert done.t_end - done.t_start == pytest.approx(airtime, abs=1e-6)
        assert at >= done.t_end  # delivered when the frame has left the air, not before
    finally:
        loop.close()


def test_control_goes_through_the_queue_and_comes_back_typed() -> None:
    logic = Recorder()
    logic.script[Reset] = [Accepted()]
    logic.script[Silence] = [Refused("no silent mode here")]
    loop = DeviceLoop(logic, "rec")
    loop.start()
    try:
        assert loop.control(Reset()) == Accepted()
        assert loop.control(Silence(True)) == Refused("no silent mode here")
        assert loop.control(Garbage()) == Refused("the device gave no answer")
    finally:
        loop.close()
    assert loop.control(Reset()).reason == "rec is closed"  # type: ignore[union-attr]


@pytest.mark.parametrize("baud", [57600, 115200])
def test_the_uart_carries_bytes_no_faster_than_the_line_rate(tmp_path: Path, baud: int) -> None:
    """Host -> logic: the command reaches the logic when its last byte has crossed the line;
    logic -> host: the answer reaches the host a line time after the logic wrote it."""
    import serial

    from lora_telemetry.core.uart import serial_time_s

    logic = Recorder()
    answer = b"x" * 100
    logic.script[Garbage] = [ToHost(answer), Accepted()]
    command = b"radio tx " + b"00" * 29 + b"\r\n"  # 69 bytes: 12.0 ms at 57600 baud
    with EmulatedSerialModule(logic, "line", tmp_path / "line.tty", baud=baud) as emu:
        emu.start()
        with serial.Serial(emu.path, baud, timeout=0.5) as host:
            t0 = time.time()
            host.write(command)
            _wait(lambda: sum(len(e.data) for e, _ in logic.of(HostBytes)) == len(command))
            chunks = logic.of(HostBytes)
            assert b"".join(e.data for e, _ in chunks) == command
            line_s = serial_time_s(len(command), baud)
            # never early (the loop reads the pty a little after the host wrote it) ...
            assert chunks[-1][1] - t0 >= line_s - 1e-4
            # ... and not late by more than a loaded machine's scheduling
            assert chunks[-1][1] - t0 < line_s + 0.05
            assert len(chunks) > 1  # handed on as the bytes arrive, in chunks
            t1 = time.time()
            assert emu.control(Garbage()) == Accepted()
            got = b""
            while len(got) < len(answer) and time.time() - t1 < 2.0:
                got += host.read(len(answer) - len(got))
            elapsed = time.time() - t1
            assert got == answer
            assert elapsed >= serial_time_s(len(answer), baud) - 1e-4


def test_baud_zero_is_an_instant_line(tmp_path: Path) -> None:
    import serial

    logic = Recorder()
    with EmulatedSerialModule(logic, "instant", tmp_path / "instant.tty", baud=0) as emu:
        emu.start()
        with serial.Serial(emu.path, 57600, timeout=0.5) as host:
            t0 = time.time()
            host.write(bytes(500))  # 87 ms at 57600 baud; at once on an instant line
            _wait(lambda: sum(len(e.data) for e, _ in logic.of(HostBytes)) == 500)
            assert logic.of(HostBytes)[-1][1] - t0 < 0.05


def test_a_host_that_stops_reading_loses_bytes_counted_and_the_device_goes_on(
        tmp_path: Path) -> None:
    logic = Recorder()
    logic.script[Garbage] = [ToHost(b"z" * 60000), Accepted()]
    logic.script[Reset] = [Accepted()]
    # baud 0: this is about the pty's overrun rule, not the line's rate
    with EmulatedSerialModule(logic, "flood", tmp_path / "flood.tty", baud=0) as emu:
        emu.start()
        slave = os.open(emu.path, os.O_RDWR | os.O_NOCTTY)  # a host that never reads
        try:
            t0 = time.monotonic()
            for _ in range(4):
                assert emu.control(Garbage()) == Accepted()
            assert time.monotonic() - t0 < 0.5  # writes never block the loop
            _wait(lambda: emu.counters["host_overrun_bytes"] > 0)
            assert emu.control(Reset()) == Accepted()  # still serving
        finally:
            os.close(slave)


def test_text_commands_parse_once_into_typed_commands() -> None:
    assert parse_control("garbage") == Garbage(None)
    assert parse_control("garbage 00ff") == Garbage(b"\x00\xff")
    assert parse_control(" RESET ") == Reset()
    assert parse_control("drop") == DropAnswers(1)
    assert parse_control("drop 3") == DropAnswers(3)
    assert parse_control("unplug") == Unplug(None)
    assert parse_control("unplug 1.5") == Unplug(1.5)
    assert parse_control("replug") == Replug()
    assert parse_control("silent") == Silence(True)
    assert parse_control("silent off") == Silence(False)
    for bad, why in [("explode", "unknown command"), ("", "unknown command"),
                     ("garbage zz", "hexadecimal"), ("drop -1", "0 or more"),
                     ("drop x", "invalid literal"), ("unplug -2", "0 to 86400"),
                     ("silent maybe", "on or off"), ("reset now", "at most 0")]:
        with pytest.raises(ValueError, match=why):
            parse_control(bad)


@pytest.mark.parametrize("family, command, reason", [
    ("ebyte", Silence(True), "no silent mode"),
    ("rn2483", SetChannelRssi(-70.0), "no listen before talk"),
    ("sx1276", Unplug(), "no plug"),
    ("sx1276", Garbage(), "no byte stream"),
])
def test_each_emulator_refuses_what_its_device_cannot_do(tmp_path: Path, family: str,
                                                         command, reason: str) -> None:
    spec = registry.family(family)
    if spec.role is registry.Role.SERIAL_MODULE:
        device = emulated_module(family, "dev", tmp_path / "dev.tty")
        device.start()
    else:
        device = emulated_chip(family, "dev")
    with device:
        answer = device.control(command)
        assert isinstance(answer, Refused) and reason in answer.reason
        assert isinstance(device.control(Reset()), Accepted)  # every one of them can reset


def test_sim_module_text_control_reports_the_refusal(tmp_path: Path) -> None:
    with emulated_module("ebyte", "dev", tmp_path / "dev.tty") as emu:
        emu.start()
        assert apply_control(emu, "silent on").startswith("error: the EByte custom firmware "
                                                          "cannot silence")
        assert apply_control(emu, "garbage 4053") == "ok"
        assert apply_control(emu, "explode").startswith("error: unknown command 'explode'")
