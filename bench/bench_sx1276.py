"""Benchmark: what the SX1276 gateway driver costs per received frame, and when idle.

Runs the real driver (`radios/sx1276/driver.py`) against the emulated chip (its logic in
`radios/sx1276/emulator.py`, behind sim/emulated_spi.py, no medium): each frame is injected
into the chip and read back by ``receive()`` through the same SPI transfers and DIO0 edge
wait as on a Raspberry Pi. Reports

* per received frame: emulator (``inject``), driver ``receive()`` (which includes the
  emulated register file answering its SPI transfers) and both together, in microseconds;
* idle: the process CPU time while the driver sits blocked in ``receive()`` for N seconds
  with nothing on the air. A blocking edge wait costs ~0; a polling loop would show up here.

Usage: ``python bench/bench_sx1276.py [--idle-seconds N] [--frames N] [--payload N]``.
Writes ``bench/results/sx1276.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.radios.sx1276.driver import SX1276Radio  # noqa: E402
from lora_telemetry.radios.sx1276.emulator import InjectedRx  # noqa: E402
from lora_telemetry.sim.emulated_spi import EmulatedSpiChip, emulated_chip  # noqa: E402

PHY = PhySettings(frequency_hz=869_525_000, sf=7, bandwidth_hz=125_000)  # thesis DR5 channel


def _summary(samples_s: list[float]) -> dict[str, float]:
    us = sorted(s * 1e6 for s in samples_s)
    return {
        "mean_us": round(statistics.fmean(us), 2),
        "p50_us": round(us[len(us) // 2], 2),
        "p99_us": round(us[min(len(us) - 1, int(len(us) * 0.99))], 2),
        "max_us": round(us[-1], 2),
    }


def bench_frames(radio: SX1276Radio, emu: EmulatedSpiChip, frames: int, payload: int) -> dict:
    data = bytes(range(payload % 256)) * (payload // 256) + bytes(range(payload % 256))
    data = data[:payload]
    event = InjectedRx(data, PHY, rssi_dbm=-95.0, snr_db=8.0)
    for _ in range(50):  # warm-up
        emu.inject(event)
        radio.receive(1.0)
    inject, receive, total = [], [], []
    transfers0 = emu.spi.transfers
    cpu0 = time.process_time()
    for _ in range(frames):
        t0 = time.perf_counter()
        if not emu.inject(event):
            raise RuntimeError("emulator refused the frame")
        t1 = time.perf_counter()
        frame = radio.receive(1.0)
        t2 = time.perf_counter()
        if frame is None or frame.data != data:
            raise RuntimeError("driver did not return the injected frame")
        inject.append(t1 - t0)
        receive.append(t2 - t1)
        total.append(t2 - t0)
    cpu = time.process_time() - cpu0
    return {
        "frames": frames,
        "payload_bytes": payload,
        "emulator_inject": _summary(inject),
        "driver_receive": _summary(receive),
        "driver_plus_emulator": _summary(total),
        "process_cpu_us_per_frame": round(cpu / frames * 1e6, 2),
        "spi_transfers_per_frame": round((emu.spi.transfers - transfers0) / frames, 2),
    }


def bench_idle(radio: SX1276Radio, seconds: float) -> dict:
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    frame = radio.receive(seconds)
    cpu, thread = time.process_time() - cpu0, time.thread_time() - thread0
    wall = time.perf_counter() - wall0
    if frame is not None:
        raise RuntimeError("a frame arrived during the idle measurement")
    return {
        "idle_seconds": round(wall, 3),
        "process_cpu_ms": round(cpu * 1e3, 3),
        "thread_cpu_ms": round(thread * 1e3, 3),
        "cpu_percent": round(100.0 * cpu / wall, 4) if wall > 0 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=10.0,
                        help="how long the driver blocks in receive() with no traffic (default 10)")
    parser.add_argument("--frames", type=int, default=2000, help="frames to receive (default 2000)")
    parser.add_argument("--payload", type=int, default=23,
                        help="frame length in bytes, 1..255 (default 23: a small LoRaWAN uplink)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "sx1276.json")
    args = parser.parse_args(argv)
    if not 0 < args.idle_seconds <= 3600:
        parser.error("--idle-seconds must be in (0, 3600]")
    if not 1 <= args.frames <= 1_000_000:
        parser.error("--frames must be 1..1000000")
    if not 1 <= args.payload <= 255:
        parser.error("--payload must be 1..255")

    with emulated_chip("sx1276", "bench") as emu, SX1276Radio(spi=emu.spi, gpio=emu.gpio) as radio:
        radio.configure(PHY)
        frames = bench_frames(radio, emu, args.frames, args.payload)
        idle = bench_idle(radio, args.idle_seconds)

    result = {
        "benchmark": "sx1276",
        "phy": {"frequency_hz": PHY.frequency_hz, "sf": PHY.sf, "bandwidth_hz": PHY.bandwidth_hz},
        "per_frame": frames,
        "idle": idle,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    rows = [
        ("emulator inject", frames["emulator_inject"]),
        ("driver receive()", frames["driver_receive"]),
        ("driver + emulator", frames["driver_plus_emulator"]),
    ]
    print(f"SX1276 driver vs emulator: {args.frames} frames of {args.payload} bytes, "
          f"SF{PHY.sf}/{PHY.bandwidth_hz // 1000} kHz")
    print(f"{'per received frame':<22}{'mean us':>10}{'p50 us':>10}{'p99 us':>10}{'max us':>10}")
    for name, s in rows:
        cells = "".join(f"{s[k]:>10.1f}" for k in ("mean_us", "p50_us", "p99_us", "max_us"))
        print(f"{name:<22}{cells}")
    print(f"{'process CPU / frame':<22}{frames['process_cpu_us_per_frame']:>10.1f} us"
          f"   ({frames['spi_transfers_per_frame']:g} SPI transfers per frame)")
    print(f"idle in receive() for {idle['idle_seconds']:.1f} s: "
          f"process CPU {idle['process_cpu_ms']:.2f} ms ({idle['cpu_percent']:.3f} %), "
          f"driver thread CPU {idle['thread_cpu_ms']:.2f} ms")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
