"""Benchmark: a serial module's command-to-air and air-to-host latency, measured against the
registry's timing model (issue 13: the lead time a TDMA drone node schedules with).

For each serial family with an emulator, the production driver runs against the family's
emulator on a pseudo-terminal (sim/emulated_serial.py: the UART at the family's baud, the
firmware's processing delays with their seeded jitter), joined to a real medium hub
(sim/medium.py, in a thread of this process, on loopback) and measures, per frame:

* **command to air**: from the driver's ``send()`` being called to the frame's ``t_start`` on
  the medium (the hub stamps it; a sniffer node listening on the channel gets it with the
  frame);
* **air to host**: from a frame's end on the medium (injected by a virtual transmitter; the hub
  answers with its ``t_end``) to ``RxFrame.time``, the moment the driver's ``receive()`` has the
  module's report (what a drone times a beacon by). The moment ``receive()`` returns is shown
  too: the RN2483 driver then asks ``radio get rssi`` and ``radio get snr``, two more round
  trips that no beacon timing needs.

Each is compared with the registry's prediction (``FamilySpec.timing``: ``command_to_air_s``
and ``air_to_host_s`` at the emulator's baud) by :func:`check`: the mean must lie within the
model's jitter of the prediction, allowing :data:`HOST_ALLOWANCE_S` on the late side for what
the model leaves out on purpose (Python's driver and device loop, select wake-ups, the UDP hop
to the hub: all host costs, not the module's), and no frame may be earlier than the model's
lower bound. test/test_module_timing.py runs this with 30 frames per family.

Usage: ``python bench/bench_module_timing.py [--frames N] [--payload N] [--seed N]``
(``lora-telemetry bench module_timing``). Writes ``bench/results/module_timing.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import print_table, write_result  # noqa: E402
from lora_telemetry.core.emulation import RxEvent  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.radios import registry  # noqa: E402
from lora_telemetry.radios.base import RawReceive, RawTransmit  # noqa: E402
from lora_telemetry.sim.emulated_serial import emulated_module  # noqa: E402
from lora_telemetry.sim.medium import (  # noqa: E402
    MediumClient, MediumControl, MediumHub, MediumModel, MediumParams,
)

#: The late-side allowance for host costs the model leaves out (see the module docstring).
HOST_ALLOWANCE_S = 0.002
#: A frame may be this much earlier than the model's lower bound (clock reads, rounding).
EARLY_SLACK_S = 0.0002
#: Every wait of the benchmark is bounded by this.
WAIT_S = 3.0


@dataclass(frozen=True)
class Measured:
    """One family's samples (seconds) and the prediction they are held to."""

    family: str
    baud: int
    frame_bytes: int
    tx_s: tuple[float, ...]  # send() called -> t_start on the medium
    rx_s: tuple[float, ...]  # t_end on the medium -> RxFrame.time
    rx_return_s: tuple[float, ...]  # t_end on the medium -> receive() returned


def serial_families() -> list[registry.FamilySpec]:
    return [spec for spec in registry.families(role=registry.Role.SERIAL_MODULE, emulated=True)
            if spec.timing is not None]


def _phy(spec: registry.FamilySpec) -> PhySettings:
    return PhySettings(frequency_hz=spec.default_frequency_hz, sf=7, bandwidth_hz=125_000)


def _next_rx(client: MediumClient) -> RxEvent:
    deadline = time.monotonic() + WAIT_S
    while (remaining := deadline - time.monotonic()) > 0:
        event = client.next_event(timeout=remaining)
        if isinstance(event, RxEvent):
            return event
    raise TimeoutError(f"no frame on the medium within {WAIT_S} s")


def measure(spec: registry.FamilySpec, frames: int, frame_bytes: int = 29, seed: int = 1,
            baud: int | None = None) -> Measured:
    """Drive the family's production driver against its emulator (see the module docstring)."""
    assert spec.serial is not None
    baud = spec.serial.baud if baud is None else baud
    phy = _phy(spec)
    frame = bytes((i * 37 + 11) & 0xFF for i in range(frame_bytes))
    hub = MediumHub(MediumModel(MediumParams(), seed=seed), "127.0.0.1", 0)
    hub_thread = threading.Thread(target=hub.serve, name="bench-hub", daemon=True)
    hub_thread.start()
    made: list = []  # closed in reverse: the radio, the emulator, then the clients
    try:
        with tempfile.TemporaryDirectory(prefix="lt-timing-") as tmp:
            module_client = MediumClient("uav", hub=hub.address)
            made.append(module_client)
            sniffer = MediumClient("sniffer", hub=hub.address)
            made.append(sniffer)
            control = MediumControl(hub=hub.address, timeout_s=WAIT_S)
            made.append(control)
            options = {"seed": seed} if any(o.name == "seed" for o in spec.emulator_options) \
                else {}
            emu = emulated_module(spec.name, "uav", Path(tmp) / "uav.tty", module_client,
                                  baud=baud, **options)
            made.append(emu)
            emu.start()
            emu.wait_line_idle(WAIT_S)
            radio = spec.open_serial(emu.path, baud or spec.serial.baud)
            made.append(radio)
            if not isinstance(radio, (RawTransmit)) or not isinstance(radio, RawReceive):
                raise TypeError(f"{spec.title} driver has no raw transmit and receive")
            radio.configure(phy)
            sniffer.listen(phy)
            control.ping()
            tx: list[float] = []
            for i in range(frames + 3):  # 3 warm-up frames (first pause, watchdog settings)
                t0 = time.time()
                radio.send(frame)
                event = _next_rx(sniffer)
                if i >= 3:
                    tx.append(event.t_start - t0)
            rx: list[float] = []
            rx_return: list[float] = []
            for i in range(frames + 2):
                replies: list[dict] = []
                injector = threading.Timer(0.05, lambda: replies.append(control.inject(
                    frame, phy, tx_node="peer", position_m=(0.0, 0.0, 0.0))))
                injector.start()
                got = radio.receive(1.0)
                returned = time.time()
                injector.join(WAIT_S)
                if got is None or not replies:
                    raise TimeoutError(f"{spec.name}: the injected frame {i} was not received")
                if i >= 2:
                    rx.append(got.time - replies[0]["t_end"])
                    rx_return.append(returned - replies[0]["t_end"])
            return Measured(spec.name, baud, frame_bytes, tuple(tx), tuple(rx),
                            tuple(rx_return))
    finally:
        for thing in reversed(made):
            thing.close()
        hub.stop()
        hub_thread.join(WAIT_S)
        hub.close()


def predicted(spec: registry.FamilySpec, m: Measured,
              timing: registry.FamilyTiming | None = None) -> dict[str, tuple[float, float]]:
    """(nominal, jitter) of each direction from ``timing`` (default: the registry's)."""
    timing = timing or spec.timing
    assert timing is not None and spec.serial is not None
    bits = spec.serial.bits_per_byte
    return {"command_to_air": (timing.command_to_air_s(m.frame_bytes, m.baud, bits),
                               timing.tx_jitter_s),
            "air_to_host": (timing.air_to_host_s(m.frame_bytes, m.baud, bits),
                            timing.rx_jitter_s)}


def check(spec: registry.FamilySpec, m: Measured,
          timing: registry.FamilyTiming | None = None) -> list[str]:
    """Where the measurement disagrees with the model (empty: it agrees; see the docstring)."""
    problems = []
    for name, samples in (("command_to_air", m.tx_s), ("air_to_host", m.rx_s)):
        nominal, jitter = predicted(spec, m, timing)[name]
        mean = statistics.fmean(samples)
        if not nominal - jitter <= mean <= nominal + jitter + HOST_ALLOWANCE_S:
            problems.append(f"{m.family} {name}: mean {mean * 1e3:.3f} ms is not within "
                            f"{nominal * 1e3:.3f} ms -{jitter * 1e3:.3f}/+"
                            f"{(jitter + HOST_ALLOWANCE_S) * 1e3:.3f} ms")
        if min(samples) < nominal - jitter - EARLY_SLACK_S:
            problems.append(f"{m.family} {name}: a frame at {min(samples) * 1e3:.3f} ms, earlier "
                            f"than the model's lower bound {(nominal - jitter) * 1e3:.3f} ms")
    return problems


def _stats_ms(samples: tuple[float, ...]) -> dict[str, float]:
    ms = sorted(s * 1e3 for s in samples)
    return {"mean_ms": round(statistics.fmean(ms), 3),
            "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 3),
            "min_ms": round(ms[0], 3), "max_ms": round(ms[-1], 3),
            "spread_ms": round(ms[-1] - ms[0], 3), "samples": len(ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per family and way")
    parser.add_argument("--payload", type=int, default=29, help="frame size in bytes (29)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows, results, problems = [], [], []
    for spec in serial_families():
        m = measure(spec, args.frames, args.payload, args.seed)
        pred = predicted(spec, m)
        problems += check(spec, m)
        entry = {"family": spec.name, "baud": m.baud, "frame_bytes": m.frame_bytes}
        for name, samples in (("command_to_air", m.tx_s), ("air_to_host", m.rx_s),
                              ("air_to_receive_return", m.rx_return_s)):
            stats = _stats_ms(samples)
            nominal, jitter = pred.get(name, (None, None))
            entry[name] = {**stats, "predicted_ms": None if nominal is None else
                           round(nominal * 1e3, 3),
                           "jitter_ms": None if jitter is None else round(jitter * 1e3, 3)}
            rows.append((spec.name, m.baud, name, "-" if nominal is None else
                         f"{nominal * 1e3:.3f} +/- {jitter * 1e3:.3f}",
                         f"{stats['mean_ms']:.3f}", f"{stats['p95_ms']:.3f}",
                         f"{stats['max_ms']:.3f}", f"{stats['spread_ms']:.3f}"))
        results.append(entry)
    print_table(("family", "baud", "way", "predicted ms", "mean ms", "p95 ms", "max ms",
                 "spread ms"), rows)
    verdict = "agrees" if not problems else "DISAGREES"
    print(f"\nmodel {verdict} with the measurement (mean within the jitter, host allowance "
          f"{HOST_ALLOWANCE_S * 1e3:g} ms late)")
    for problem in problems:
        print("  " + problem)
    path = write_result("module_timing", {
        "frames": args.frames, "payload_bytes": args.payload, "seed": args.seed,
        "host_allowance_ms": HOST_ALLOWANCE_S * 1e3, "agrees": not problems,
        "problems": problems, "families": results})
    print(f"wrote {path}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
