"""The registry's timing model (FamilySpec.timing) agrees with the emulated modules, and a
wrong model, or an emulation without the UART, does not (issue 13, part 6).

Runs bench/bench_module_timing.py's measurement (the production driver against its emulator
on a pty, joined to a real medium hub) with 30 frames per family and way; the agreement rule
is the benchmark's :func:`check` (mean within the model's jitter, a stated late allowance for
host costs, no frame before the model's lower bound).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import bench_module_timing as bench  # noqa: E402
from lora_telemetry.core.latency import Latency  # noqa: E402
from lora_telemetry.radios import registry  # noqa: E402

FAMILIES = [spec.name for spec in bench.serial_families()]


@pytest.fixture(scope="module")
def measured() -> dict[str, bench.Measured]:
    return {name: bench.measure(registry.family(name), frames=30, seed=3) for name in FAMILIES}


def test_every_serial_family_has_a_timing_model() -> None:
    assert set(FAMILIES) == {"rn2483", "ebyte"}
    rn = registry.family("rn2483").timing
    assert rn is not None and rn.tx_command is not None
    # the serial part is the driver's own command: 69 bytes for a 29-byte frame, 12.0 ms
    assert len(rn.tx_command(29)) == 69
    assert rn.command_to_air_s(29, 57600) - rn.tx.nominal_s == pytest.approx(0.011979, abs=1e-6)
    assert rn.command_to_air_s(29, 0) == rn.tx.nominal_s  # an instant line: processing only


@pytest.mark.parametrize("family", FAMILIES)
def test_the_registry_predicts_the_measured_latency(measured, family: str) -> None:
    spec, m = registry.family(family), measured[family]
    assert len(m.tx_s) == 30 and len(m.rx_s) == 30
    assert bench.check(spec, m) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_a_wrong_model_fails_the_check(measured, family: str) -> None:
    spec, m = registry.family(family), measured[family]
    timing = spec.timing
    assert timing is not None
    no_serial = dataclasses.replace(timing, tx_command=None, rx_report=None)
    slow_firmware = dataclasses.replace(
        timing, tx=Latency(timing.tx.nominal_s + 0.003, timing.tx.jitter_s),
        rx=Latency(timing.rx.nominal_s + 0.003, timing.rx.jitter_s))
    for wrong in (no_serial, slow_firmware):
        problems = bench.check(spec, m, wrong)
        assert any("command_to_air" in p for p in problems), problems
        assert any("air_to_host" in p for p in problems), problems


def test_an_emulation_without_the_uart_fails_the_check() -> None:
    spec = registry.family("rn2483")
    instant = bench.measure(spec, frames=8, seed=4, baud=0)
    as_if_real = dataclasses.replace(instant, baud=spec.default_baud)  # what the model expects
    problems = bench.check(spec, as_if_real)
    assert any("command_to_air" in p for p in problems), problems
    assert any("air_to_host" in p for p in problems), problems
