"""ALOHA and GPS-time TDMA side by side: ``bench_swarm.py --access aloha --access tdma``.

For N = 1..``--max-uavs`` the same swarm is flown twice on the pure radio medium
(:class:`lora_telemetry.sim.medium_model.MediumModel`), once per access method, event-driven
in simulated time (a heap of events, no sleeps, no per-millisecond stepping), seeded and
reproducible: every UAV draws from its own ``random.Random(f"swarm_access/{seed}/{n}/{i}")``
(its clock first, so both accesses fly the same clocks). Radio and geometry are
``bench_swarm.py``'s ``equal`` geometry: 433.175 MHz, SF7, 125 kHz, CR 4/5, 29-byte uplinks
(66.816 ms), 10 dBm, every UAV 500 m from the gateway, so any overlap destroys both frames (no
capture to flatter either method).

The project's own pieces do the work, not re-implementations: ALOHA is
:class:`~lora_telemetry.core.access.AlohaPolicy` (jitter 25 %, the drone node's default) in an
:class:`~lora_telemetry.core.access.UplinkScheduler` with a real
:class:`~lora_telemetry.core.dutycycle.DutyCycleLedger` (433 MHz band: 10 %), as in
``bench_swarm.simulate``; TDMA is :func:`~lora_telemetry.core.tdma.plan_schedule` (with the
ledger's real duty-cycle limits for UAVs and gateway) and, per UAV, a
:class:`lora_telemetry.drone.tdma.TdmaAccess` (its :class:`~lora_telemetry.core.timesync.TimeKeeper`,
its :class:`~lora_telemetry.core.tdma.TdmaPolicy` and the lead it computes) in the same
``UplinkScheduler``; the ground is a :class:`~lora_telemetry.core.tdma_gateway.GatewaySchedule`
that sends the real 17-byte beacon (``core/beacon.py``) into the medium in slot 0 of every
superframe its duty cycle allows (so beacons occupy air and could collide) and places every
received uplink on the schedule (the slot timing error).

Every modelled error source, and where its figure comes from:

* **Host clock offset**, uniform +-2 s against true (GPS) time: a companion computer without
  NTP (core/timesync.py's docstring: SITL clocks seconds off are common). TDMA must not care;
  the TimeKeeper estimates it.
* **Host clock drift**, uniform +-50 ppm: a crystal oscillator's tolerance ("tens of ppm",
  core/timesync.py ``_MAX_DRIFT``, which allows for 100 ppm).
* **SYSTEM_TIME** from the flight controller at 4 Hz (``mavlink/streams.py``
  ``TDMA_STREAM_RATES_HZ``), each one stamped exactly in GPS time by the flight controller
  (GPS-disciplined UTC; its microsecond error is not modelled) and received on the host a
  uniform 0-8 ms later: the MAVLink link at 57600 baud carries a SYSTEM_TIME (20 bytes of
  payload + 12 of MAVLink 2 framing) in 5.6 ms, plus the host's scheduling. Each pair goes to
  that UAV's TimeKeeper (``TdmaAccess.update``: ``add_gps(gps_time, host_time_at_receipt)``).
* **The drone loop's wake-up lateness**: the command is written when the scheduler says
  (``UplinkScheduler.next_start``, host time) plus a host scheduling delay uniform 0-1 ms
  (bench/bench_module_timing.py measured the host's own cost at 0.5-0.8 ms, which is why
  ``drone/tdma.HOST_ALLOWANCE_S`` is 0.7 ms).
* **The module's command-to-air latency**: the drone leads by the family's nominal
  ``timing.command_to_air_s(29, baud)`` + ``HOST_ALLOWANCE_S`` (computed by ``TdmaAccess``);
  the actual latency is the command's serial time at the baud (exact: the bytes the driver
  sends) plus ``timing.tx.draw(rng)``, the family's processing time with its jitter
  (``radios/rn2483/timing.py``: 2.0 +- 1.0 ms + the SX127x start-up; ``radios/ebyte/timing.py``:
  1.0 +- 0.5 ms + start-up). Default radio: the RN2483 at 57600 baud (the demo's default drone
  module, ``registry.DEFAULT_MODULE_FAMILY``); ``--radios mix`` cycles the emulated serial
  families like ``sim/swarm.py``. ``--lead-error-ms E`` makes the modules of every other UAV
  (slots 1, 3, 5 ...) E ms slower than their model says, as if half the swarm ran another
  firmware: their lead is wrong, their frames land E ms late, into the next slot (a shift
  of the whole swarm would keep the frames apart and prove nothing). It is the negative
  control of test/test_bench_swarm_access.py, as is ``--guard-ms`` near zero.
* **Vehicle states** every 0.1 s per UAV (its own phase). Under TDMA the state sent is carried
  to its time on air (``DroneRuntime._freshest``: sample time = ``core/tdma.sample_time_for``
  the planned GPS frame start, the codec's first 20 ms grid point at or after it), so its age
  at the ground is reception end - that time = airtime + the timing error - 0..20 ms. Under
  ALOHA the state sent is the newest 0.1 s tick before the command (newest wins), age =
  reception end - that tick.
* **Not modelled**: propagation (1.7 us over 500 m), the gateway's own clock and beacon latency
  (it is the GPS-disciplined reference, core/tdma_gateway.py), the gateway's reception-report
  latency (it knows it), beacon reception by the UAVs (irrelevant while GPS time is good; they
  do not listen here, the beacons only occupy the air), radio errors.

Measured per N and access (all over frames whose first symbol falls in the measured window,
``--minutes`` long, which starts after a ``--warmup-s`` warm-up, default 10 s, so that the
TimeKeeper's start-up (8 SYSTEM_TIME samples and <= 2 ms uncertainty before TDMA may send)
does not count against TDMA; ALOHA gets the same window):

* ``delivery_ratio`` = ``delivered`` / ``sent``, gateway receptions with ``crc_ok``;
* ``updates_per_s_min`` / ``_mean``: the worst / average UAV's delivered frames per simulated
  second of the window;
* ``state_age_p95_s``: 95th percentile (nearest rank) of the state age over all delivered
  frames, and its median;
* TDMA: ``timing_error_p95_s`` / ``_max_s``: |frame start - planned start| from
  ``GatewaySchedule.observe``, and ``outside_slot`` (errors beyond a guard); ``beacons`` sent;
  ``slots``/``uplink_every`` of the plan; ``time_usable_after_s``: the slowest UAV's
  TimeKeeper start-up. A swarm larger than one superframe holds at ``--period``
  (``plan_schedule`` refuses it: 12 UAVs at SF7 and 1 s) is flown at the shortest period that
  holds it (``min_period`` rounded up to 1 ms), recorded in the row's ``period_s`` with
  ``period_stretched``;
* ALOHA: ``finite_aloha`` = (1 - 2T/P)^(n-1) (``core/aloha.finite_aloha_success``) at the
  effective period max(P, T / duty cycle), the analytic value to compare with.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bench_swarm import (
    FRAME_BYTES,
    FREQUENCY_HZ,
    GATEWAY,
    GATEWAY_POSITION,
    JITTER_FRACTION,
    OFFER_INTERVAL_S,
    PHY,
    TX_POWER_DBM,
    equal_positions,
)
from bench.common import print_table, write_result
from lora_telemetry.core.access import AlohaPolicy, UplinkScheduler
from lora_telemetry.core.aloha import finite_aloha_success
from lora_telemetry.core.beacon import BEACON_BYTES
from lora_telemetry.core.dutycycle import DutyCycleLedger
from lora_telemetry.core.errors import ConfigError
from lora_telemetry.core.tdma import (
    DEFAULT_GUARD_S,
    UPLINK_FRAME_BYTES,
    TdmaSchedule,
    frame_airtimes,
    max_swarm,
    min_period,
    plan_schedule,
    sample_time_for,
)
from lora_telemetry.core.tdma_gateway import GatewaySchedule
from lora_telemetry.drone.tdma import HOST_ALLOWANCE_S, TdmaAccess
from lora_telemetry.core.uart import serial_time_s
from lora_telemetry.radios import registry
from lora_telemetry.sim.medium_model import MediumError, MediumModel, MediumParams, RxEvent

ACCESSES = ("aloha", "tdma")
RADIO_CHOICES = ("rn2483", "ebyte", "mix")
DEFAULT_MINUTES = 30.0  # measured minutes per N and access: n = 1..20 x 2 in about 2 min wall
DEFAULT_WARMUP_S = 10.0
#: The simulation's true time is GPS time (Unix seconds): TimeKeeper refuses implausible times.
T0_GPS = 1_750_000_000.0
CLOCK_OFFSET_S = 2.0  # host clock offset uniform +-this
CLOCK_DRIFT = 50e-6  # host clock drift uniform +-this
SYSTEM_TIME_HZ = 4.0  # mavlink/streams.py TDMA_STREAM_RATES_HZ["SYSTEM_TIME"]
MAVLINK_DELAY_S = (0.0, 0.008)  # SYSTEM_TIME: 32 bytes at 57600 8N1 = 5.6 ms + scheduling
WAKE_LATENESS_S = (0.0, 0.001)  # the drone loop's host scheduling delay
BEACON_KEY = bytes(16)  # any key: nobody decodes the beacons here
_FRAME_ID = struct.Struct("<I")

# Heap event kinds (ties on time resolve in this order, then by sequence number).
_AIR, _BEACON, _SEND, _TICK = range(4)


def _system_time_s() -> float:
    """SYSTEM_TIME's 20-byte payload + 12 bytes of MAVLink 2 framing at 57600 8N1."""
    return serial_time_s(20 + 12, 57600)


@dataclass
class _Uav:
    """One UAV's clock, drone loop state and counters (see the module docstring)."""

    name: str
    rng: random.Random
    offset_s: float
    drift: float
    family: registry.FamilySpec
    baud: int
    scheduler: UplinkScheduler[int]
    access: TdmaAccess | None
    tick_phase: float
    serial_s: float
    ticks: int = 0  # index of the next state tick
    fc_phase: float = 0.0
    fc_next: int = 0  # index of the next SYSTEM_TIME
    fc_rx: float = math.inf  # true time the next SYSTEM_TIME reaches the host
    sent: int = 0
    delivered: int = 0
    usable_at: float | None = None

    def host(self, t: float) -> float:
        """Host clock reading at true (GPS) time ``t``."""
        return t + self.offset_s + self.drift * (t - T0_GPS)

    def true(self, h: float) -> float:
        """True time at which the host clock reads ``h``."""
        return T0_GPS + (h - T0_GPS - self.offset_s) / (1.0 + self.drift)

    def tick_time(self, k: int) -> float:
        return T0_GPS + self.tick_phase + k * OFFER_INTERVAL_S

    def _draw_fc(self) -> None:
        self.fc_rx = (T0_GPS + self.fc_phase + self.fc_next / SYSTEM_TIME_HZ
                      + self.rng.uniform(*MAVLINK_DELAY_S))

    def time_samples(self, t: float) -> list[tuple[float, float]]:
        """(gps time, host receipt time) of every SYSTEM_TIME received by true time ``t``."""
        out = []
        while self.fc_rx <= t:
            out.append((T0_GPS + self.fc_phase + self.fc_next / SYSTEM_TIME_HZ,
                        self.host(self.fc_rx)))
            self.fc_next += 1
            self._draw_fc()
        return out


@dataclass
class _Frame:
    uav: int
    sample_time: float
    start: float = math.nan
    measured: bool = False


@dataclass
class Options:
    period_s: float
    minutes: float
    warmup_s: float
    seed: int
    guard_s: float = DEFAULT_GUARD_S
    lead_error_s: float = 0.0
    radios: str = "rn2483"
    params: MediumParams = field(default_factory=MediumParams)


def radio_of(radios: str, index: int) -> registry.FamilySpec:
    if radios == "mix":  # the demo's mix: sim/swarm.py SwarmOptions.radio_of
        mix = registry.families(role=registry.Role.SERIAL_MODULE, emulated=True)
        return mix[index % len(mix)]
    return registry.module_family(radios)


def tdma_schedule(n: int, opts: Options) -> tuple[TdmaSchedule, bool]:
    """The plan for slots 1..n at ``opts.period_s``, or at the shortest period (whole ms) that
    holds them when ``plan_schedule`` refuses; (schedule, stretched)."""
    beacon_airtime, uplink_airtime = frame_airtimes(PHY, BEACON_BYTES, UPLINK_FRAME_BYTES)
    limit = DutyCycleLedger().limit(FREQUENCY_HZ)
    slots = {f"uav{i + 1:02d}": i + 1 for i in range(n)}
    period, stretched = opts.period_s, False
    if max_swarm(period, beacon_airtime, uplink_airtime, opts.guard_s) < n:
        period = math.ceil(min_period(n, beacon_airtime, uplink_airtime, opts.guard_s) * 1e3
                           - 1e-6) / 1e3
        stretched = True
    schedule = plan_schedule(period, slots, beacon_airtime_s=beacon_airtime,
                             uplink_airtime_s=uplink_airtime, guard_s=opts.guard_s,
                             uav_duty_cycle=limit, gateway_duty_cycle=limit)
    return schedule, stretched


def _p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile (as core/tdma_gateway.SlotTiming), None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def simulate(n: int, access: str, opts: Options) -> dict[str, Any]:
    """Fly ``n`` UAVs with ``access`` for warm-up + ``opts.minutes``; see the module docstring."""
    airtime = PHY.time_on_air(FRAME_BYTES)
    where = equal_positions(n)
    medium = MediumModel(opts.params, seed=opts.seed)
    medium.add_node(GATEWAY, GATEWAY_POSITION)
    medium.set_listening(GATEWAY, PHY, T0_GPS)
    window = (T0_GPS + opts.warmup_s, T0_GPS + opts.warmup_s + 60.0 * opts.minutes)
    end = window[1]

    schedule: TdmaSchedule | None = None
    gateway: GatewaySchedule | None = None
    stretched = False
    if access == "tdma":
        schedule, stretched = tdma_schedule(n, opts)
        gateway = GatewaySchedule(schedule, {f"uav{i + 1:02d}": i + 1 for i in range(n)},
                                  BEACON_KEY)
    period = schedule.period_s if schedule else opts.period_s

    uavs: list[_Uav] = []
    for i in range(n):
        name = f"uav{i + 1:02d}"
        rng = random.Random(f"swarm_access/{opts.seed}/{n}/{i}")
        offset = rng.uniform(-CLOCK_OFFSET_S, CLOCK_OFFSET_S)
        drift = rng.uniform(-CLOCK_DRIFT, CLOCK_DRIFT)
        tick_phase = rng.uniform(0.0, OFFER_INTERVAL_S)
        fc_phase = rng.uniform(0.0, 1.0 / SYSTEM_TIME_HZ)
        spec = radio_of(opts.radios, i)
        baud = spec.default_baud
        assert spec.timing is not None and spec.timing.tx_command is not None
        serial = spec.timing.command_to_air_s(UPLINK_FRAME_BYTES, baud) - spec.timing.tx.nominal_s
        tdma = None
        if schedule is not None:
            tdma = TdmaAccess(schedule, i + 1, timing=spec.timing, baud=baud, beacon_key=None)
            policy: Any = tdma.policy
        else:
            policy = AlohaPolicy(period, jitter_fraction=JITTER_FRACTION, rng=rng)
        uav = _Uav(name, rng, offset, drift, spec, baud,
                   UplinkScheduler(DutyCycleLedger(), policy, FREQUENCY_HZ), tdma, tick_phase,
                   serial, fc_phase=fc_phase)
        uav._draw_fc()
        uavs.append(uav)
        medium.add_node(name, where(i, 0.0))

    frames: list[_Frame] = []
    ages: list[float] = []
    errors: list[float] = []
    outside_slot = 0
    busy = 0
    index = {u.name: k for k, u in enumerate(uavs)}

    def settle(now: float) -> None:
        nonlocal outside_slot
        for node, event in medium.finish_due(now):
            if node != GATEWAY or not isinstance(event, RxEvent) or not event.crc_ok \
                    or event.tx_node not in index:
                continue
            frame = frames[_FRAME_ID.unpack_from(event.data)[0]]
            obs = gateway.observe(event.tx_node, event.t_end, airtime) if gateway else None
            if not frame.measured:
                continue
            uavs[frame.uav].delivered += 1
            ages.append(event.t_end - frame.sample_time)
            if obs is not None:
                errors.append(abs(obs.error_s))
                if abs(obs.error_s) > schedule.guard_s:  # type: ignore[union-attr]
                    outside_slot += 1

    seq = 0
    heap: list[tuple[float, int, int, int]] = []

    def push(t: float, kind: int, i: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, kind, seq, i))

    for i, u in enumerate(uavs):
        push(u.tick_time(0), _TICK, i)

    def push_beacon(now: float) -> None:
        assert gateway is not None
        m, start = gateway.next_beacon(now)
        push(start, _BEACON, m)

    if gateway is not None:
        push_beacon(T0_GPS)
    gateway_ledger = DutyCycleLedger()
    beacon_airtime = PHY.time_on_air(BEACON_BYTES)

    def offer_ticks(u: _Uav, t: float) -> None:
        while u.tick_time(u.ticks) <= t:
            u.scheduler.offer(u.ticks, airtime, u.host(u.tick_time(u.ticks)))
            u.ticks += 1

    def plan(i: int, u: _Uav, t: float, h: float) -> None:
        """Wake at the scheduler's plan (plus the loop's lateness), or at the next tick."""
        planned = u.scheduler.next_start(h)
        if planned is None or not math.isfinite(planned):
            push(u.tick_time(u.ticks), _TICK, i)
        else:
            push(max(t, u.true(planned)) + u.rng.uniform(*WAKE_LATENESS_S), _SEND, i)

    while heap and heap[0][0] < end:
        t, kind, _, i = heapq.heappop(heap)
        if kind == _BEACON:
            assert gateway is not None and schedule is not None
            m = i
            settle(t)
            if gateway_ledger.next_allowed(FREQUENCY_HZ, beacon_airtime, t) > t + 1e-9:
                gateway.skip_beacon(m, "duty_cycle")
            else:
                medium.start_tx(GATEWAY, gateway.beacon(m), PHY, TX_POWER_DBM, t)
                gateway.sent(m)
                medium.set_listening(GATEWAY, PHY, t)  # back to RX when the beacon ends
                gateway_ledger.record(FREQUENCY_HZ, t, beacon_airtime)
            push_beacon(t)
            continue
        if kind == _AIR:
            frame = frames[i]
            u = uavs[frame.uav]
            settle(t)
            data = _FRAME_ID.pack(i) + bytes(FRAME_BYTES - _FRAME_ID.size)
            try:
                medium.start_tx(u.name, data, PHY, TX_POWER_DBM, t)
            except MediumError:  # still transmitting (cannot happen at these periods)
                busy += 1
                continue
            frame.start = t
            frame.measured = window[0] <= t < window[1]
            if frame.measured:
                u.sent += 1
            continue
        u = uavs[i]
        h = u.host(t)
        if u.access is not None:
            u.access.update(h, u.time_samples(t))
            if u.usable_at is None and u.access.keeper.usable:
                u.usable_at = t - T0_GPS
        offer_ticks(u, t)
        if kind == _TICK:
            plan(i, u, t, h)
            continue
        item = u.scheduler.due(h)
        if item is None:  # the plan moved (a better time estimate) or time became unusable
            plan(i, u, t, h)
            continue
        if u.access is not None:
            last_plan = u.access.planned_frame_gps()
            assert last_plan is not None
            sample_time = sample_time_for(last_plan[1])  # as DroneRuntime._freshest carries it
        else:
            sample_time = u.tick_time(item)  # the newest tick (newest wins)
        assert u.family.timing is not None
        latency = u.serial_s + u.family.timing.tx.draw(u.rng)
        if i % 2 == 0:  # slots 1, 3, 5 ...: the negative control's wrong lead
            latency += opts.lead_error_s
        frames.append(_Frame(i, sample_time))
        u.scheduler.sent(h, airtime)  # report.started: the host time the command was written
        push(t + latency, _AIR, len(frames) - 1)
        push(u.tick_time(u.ticks), _TICK, i)
    settle(end + 10.0)  # let the last frames end

    seconds = 60.0 * opts.minutes
    sent, delivered = sum(u.sent for u in uavs), sum(u.delivered for u in uavs)
    rates = [u.delivered / seconds for u in uavs]
    row: dict[str, Any] = {
        "access": access, "n": n, "period_s": period,
        "delivery_ratio": delivered / sent if sent else 0.0,
        "updates_per_s_min": min(rates),
        "state_age_p95_s": _p95(ages),
        "sent": sent, "delivered": delivered,
        "updates_per_s_mean": sum(rates) / n,
        "sent_per_uav_min": min(u.sent for u in uavs),
        "state_age_median_s": sorted(ages)[len(ages) // 2] if ages else None,
        "tx_busy": busy,
    }
    if access == "aloha":
        effective = max(period, airtime / DutyCycleLedger().limit(FREQUENCY_HZ))
        row["finite_aloha"] = finite_aloha_success(n, airtime, effective)
    else:
        assert schedule is not None and gateway is not None
        usable = [u.usable_at for u in uavs]
        row.update({
            "period_stretched": stretched, "slots": schedule.slots,
            "uplink_every": schedule.uplink_every,
            "timing_error_p95_s": _p95(errors),
            "timing_error_max_s": max(errors) if errors else None,
            "outside_slot": outside_slot,
            "beacons": gateway.beacons_sent,
            "beacons_skipped": sum(gateway.beacons_skipped.values()),
            "time_usable_after_s": None if None in usable else max(usable),  # type: ignore
        })
    return row


# -- command line -----------------------------------------------------------------------------
def settings(opts: Options, accesses: list[str], max_uavs: int) -> dict[str, Any]:
    airtime = PHY.time_on_air(FRAME_BYTES)
    ledger = DutyCycleLedger()
    radios = sorted({radio_of(opts.radios, i).name for i in range(max_uavs)})
    modules = {}
    for name in radios:
        spec = registry.module_family(name)
        assert spec.timing is not None
        nominal = spec.timing.command_to_air_s(UPLINK_FRAME_BYTES, spec.default_baud)
        modules[name] = {
            "baud": spec.default_baud, "command_to_air_nominal_s": nominal,
            "serial_s": nominal - spec.timing.tx.nominal_s,
            "tx_latency_nominal_s": spec.timing.tx.nominal_s,
            "tx_latency_jitter_s": spec.timing.tx.jitter_s,
            "lead_s": nominal + HOST_ALLOWANCE_S,
        }
    return {
        "accesses": accesses, "frequency_hz": PHY.frequency_hz, "sf": PHY.sf,
        "bandwidth_hz": PHY.bandwidth_hz, "coding_rate": f"4/{PHY.coding_rate}",
        "frame_bytes": FRAME_BYTES, "airtime_s": airtime,
        "beacon_bytes": BEACON_BYTES, "beacon_airtime_s": PHY.time_on_air(BEACON_BYTES),
        "geometry": "equal", "gateway_position_m": list(GATEWAY_POSITION),
        "tx_power_dbm": TX_POWER_DBM, "capture_margin_db": opts.params.capture_margin_db,
        "period_s": opts.period_s, "duty_cycle": ledger.limit(FREQUENCY_HZ),
        "guard_s": opts.guard_s, "jitter_fraction": JITTER_FRACTION,
        "offer_interval_s": OFFER_INTERVAL_S,
        "radios": opts.radios, "modules": modules, "host_allowance_s": HOST_ALLOWANCE_S,
        "lead_error_s": opts.lead_error_s,
        "clock": {
            "offset_s": [-CLOCK_OFFSET_S, CLOCK_OFFSET_S],
            "drift_ppm": [-1e6 * CLOCK_DRIFT, 1e6 * CLOCK_DRIFT],
            "system_time_hz": SYSTEM_TIME_HZ,
            "system_time_delay_s": list(MAVLINK_DELAY_S),
            "system_time_serial_s": _system_time_s(),
            "wake_lateness_s": list(WAKE_LATENESS_S),
        },
        "warmup_s": opts.warmup_s,
        "warmup_note": "every figure counts frames starting after the warm-up: the "
                       "TimeKeeper needs 8 SYSTEM_TIME samples and <= 2 ms uncertainty "
                       "before TDMA sends",
        "minutes": opts.minutes, "seed": opts.seed, "max_uavs": max_uavs,
    }


def run(args: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
    """``bench_swarm.py --access ...``: see the module docstring."""
    accesses = [a for a in ACCESSES if a in args.access]
    minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
    opts = Options(period_s=args.period, minutes=minutes,
                   warmup_s=DEFAULT_WARMUP_S if args.warmup_s is None else args.warmup_s,
                   seed=args.seed,
                   guard_s=DEFAULT_GUARD_S if args.guard_ms is None else args.guard_ms / 1e3,
                   lead_error_s=(args.lead_error_ms or 0.0) / 1e3,
                   radios=args.radios or "rn2483")
    if 60.0 * minutes < 10 * args.period:
        ap.error(f"--minutes {minutes:g}: simulate at least ten update periods "
                 f"({10 * args.period / 60:.3g} min) so every UAV sends")
    worst = min(s.timing.command_to_air_s(UPLINK_FRAME_BYTES, s.default_baud) - s.timing.tx.jitter_s
                for s in (radio_of(opts.radios, i) for i in range(args.max_uavs))
                if s.timing is not None)
    if worst + opts.lead_error_s < 0:
        ap.error(f"--lead-error-ms {args.lead_error_ms:g}: a module cannot be faster than "
                 "instantaneous")
    try:
        tdma_schedule(1, opts)
    except ConfigError as exc:
        ap.error(str(exc))

    airtime = PHY.time_on_air(FRAME_BYTES)
    print(f"ALOHA and TDMA on one channel: {PHY.frequency_hz / 1e6:.3f} MHz SF{PHY.sf} "
          f"{PHY.bandwidth_hz // 1000} kHz, {FRAME_BYTES}-byte frames = {airtime * 1e3:.3f} ms, "
          f"period {args.period:g} s, guard {opts.guard_s * 1e3:g} ms, radios {opts.radios}, "
          f"{minutes:g} simulated min per N after a {opts.warmup_s:g} s warm-up, seed {args.seed}"
          + (f", lead error {opts.lead_error_s * 1e3:g} ms" if opts.lead_error_s else ""))
    rows: list[dict[str, Any]] = []
    runtime = {a: 0.0 for a in accesses}
    for n in range(1, args.max_uavs + 1):
        for access in accesses:
            t0 = time.perf_counter()
            rows.append(simulate(n, access, opts))
            runtime[access] += time.perf_counter() - t0
    _print(rows, accesses)
    print("runtime: " + ", ".join(f"{a} {runtime[a]:.1f} s" for a in accesses))
    body = {"settings": settings(opts, accesses, args.max_uavs),
            "runtime_s": {a: round(v, 2) for a, v in runtime.items()}, "rows": rows}
    path = write_result("swarm_access", body)
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1e3 * value:.1f}"


def _print(rows: list[dict[str, Any]], accesses: list[str]) -> None:
    by = {(r["access"], r["n"]): r for r in rows}
    headers = ["N"]
    if "aloha" in accesses:
        headers += ["ALOHA del %", "finite %", "worst upd/s", "age p95 ms"]
    if "tdma" in accesses:
        headers += ["TDMA period s", "del %", "worst upd/s", "age p95 ms", "timing p95 ms"]
    table = []
    for n in sorted({r["n"] for r in rows}):
        line: list[Any] = [n]
        if "aloha" in accesses:
            a = by["aloha", n]
            line += [f"{100 * a['delivery_ratio']:.1f}", f"{100 * a['finite_aloha']:.1f}",
                     f"{a['updates_per_s_min']:.3f}", _ms(a["state_age_p95_s"])]
        if "tdma" in accesses:
            d = by["tdma", n]
            line += [f"{d['period_s']:g}" + ("*" if d["period_stretched"] else ""),
                     f"{100 * d['delivery_ratio']:.1f}", f"{d['updates_per_s_min']:.3f}",
                     _ms(d["state_age_p95_s"]), _ms(d["timing_error_p95_s"])]
        table.append(line)
    print()
    print_table(headers, table)
    if "tdma" in accesses and any(r.get("period_stretched") for r in rows):
        print("* TDMA period stretched: the swarm does not fit one superframe of the period asked "
              "for (plan_schedule refuses it); flown at the shortest period that holds it")
