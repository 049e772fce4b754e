"""core/uart.py (the UART's timing) and core/latency.py (a delay with its jitter)."""

from __future__ import annotations

import random

import pytest

from lora_telemetry.core.latency import Latency
from lora_telemetry.core.phy import sx127x_tx_startup_s
from lora_telemetry.core.uart import UartLine, bits_per_byte, serial_time_s


def test_serial_time_is_ten_bits_a_byte_at_8n1() -> None:
    assert bits_per_byte(8, "N", 1) == 10 and bits_per_byte(8, "E", 2) == 12
    # a 29-byte frame's `radio tx <58 hex>\r\n` is 69 bytes: 11.98 ms at 57600 baud
    assert serial_time_s(69, 57600) == pytest.approx(0.011979, abs=1e-6)
    assert serial_time_s(5, 115200) == pytest.approx(434e-6, abs=1e-6)
    assert serial_time_s(1000, 0) == 0.0  # an instant line
    with pytest.raises(ValueError):
        serial_time_s(-1, 57600)


def test_a_line_never_hands_a_byte_on_before_its_last_bit_has_arrived() -> None:
    line = UartLine(57600)
    bt = serial_time_s(1, 57600)
    line.put(b"radio tx 00\r\n", 100.0)  # 13 bytes
    assert line.take(100.0) == b"" and line.pending == 13
    got = b""
    for k in range(1, 14):  # half a byte before byte k's last bit, then at it
        got += line.take(100.0 + (k - 0.5) * bt)
        assert len(got) == k - 1
        got += line.take(100.0 + k * bt)
        assert len(got) == k
    assert got == b"radio tx 00\r\n" and line.next_at() is None and line.pending == 0


def test_the_line_says_when_its_next_chunk_is_complete() -> None:
    line = UartLine(57600)  # 2 ms chunks: 11 bytes
    bt = serial_time_s(1, 57600)
    line.put(bytes(69), 0.0)
    wakes, got = 0, b""
    while (due := line.next_at()) is not None:
        got += line.take(due)
        wakes += 1
    assert got == bytes(69) and wakes == 7  # 6 full chunks and the last 3 bytes
    assert due is None and line.take(69 * bt) == b""


def test_bytes_put_while_the_line_is_busy_wait_for_it_and_chunks_are_bounded() -> None:
    line = UartLine(115200, chunk_s=0.001)
    bt = serial_time_s(1, 115200)
    line.put(b"a" * 100, 0.0)
    line.put(b"b", 0.0)  # behind the 100 bytes
    assert line.next_at() == pytest.approx(11 * bt)  # 1 ms chunks: 11 bytes
    assert line.take(100 * bt) == b"a" * 100
    assert line.take(100.5 * bt) == b""
    assert line.take(101 * bt) == b"b"
    line.put(b"xyz", 1.0)
    assert line.clear() == 3 and line.take(2.0) == b""


def test_an_instant_line_hands_everything_on_at_once() -> None:
    line = UartLine(0)
    line.put(b"hello", 5.0)
    assert line.next_at() == 5.0 and line.take(5.0) == b"hello"


def test_latency_draws_within_its_bounds_seeded() -> None:
    latency = Latency(0.002, 0.001)
    draws = [latency.draw(random.Random(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # same seed, same delay
    rng = random.Random(1)
    many = [latency.draw(rng) for _ in range(2000)]
    assert 0.001 <= min(many) < 0.0011 and 0.0029 < max(many) <= 0.003
    assert Latency(0.005).draw(rng) == 0.005
    with pytest.raises(ValueError):
        Latency(0.001, 0.002)  # would go negative


def test_sx127x_start_up_is_the_datasheet_sum() -> None:
    # TS_FS 60 us + TS_TR (5 us + 1.25 PaRamp): 115 us with the reset ramp of 40 us
    assert sx127x_tx_startup_s() == pytest.approx(115e-6)
    assert sx127x_tx_startup_s(50e-6) == pytest.approx(127.5e-6)
