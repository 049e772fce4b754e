"""Benchmark: delivery ratio and update rate per UAV versus swarm size, one channel, ALOHA access.

What a swarm designer reads before choosing N. For N = 1..``--max-uavs`` the swarm is
simulated, with no processes and no wall clock, on the pure radio medium
(:class:`lora_telemetry.sim.medium_model.MediumModel`) with a fixed seed:

* every UAV gets a new vehicle state every 0.1 s (its own phase) and offers it to its own
  :class:`~lora_telemetry.core.access.UplinkScheduler` with
  :class:`~lora_telemetry.core.access.AlohaPolicy` (period ``--period``, jitter 25 %, the drone
  node's defaults) and a :class:`~lora_telemetry.core.dutycycle.DutyCycleLedger` (433 MHz band:
  10 %). A frame goes on the air when the scheduler releases it: event-driven, so start times
  are continuous and not rounded to the 0.1 s state ticks;
* the demo's radio settings (``sim/swarm.py``): 433.175 MHz, SF7, 125 kHz, CR 4/5, 29-byte
  frames (16-byte telemetry + 13 bytes LoRaWAN, see ``bench_codec.py``) = 66.816 ms on air,
  10 dBm (the drone node's default ``tx_power_dbm``); one gateway 500 m south of the
  formation centre, listening all the time;
* geometry ``equal``: every UAV at the same distance (500 m) from the gateway, so every
  overlap destroys both frames: the pure-ALOHA check. ``formation``: the demo's formation
  (``sim/vehicle/trajectories.py``: a V, 15 m spacing, behind a leader circling 150 m around
  the origin at 8 m/s, UAV i at 30 + 5 i m), flown continuously; positions follow the flight,
  so a frame can survive an overlap when it is ``capture_margin_db`` (6 dB) above its
  interferers.
  For one seed and N both geometries send at exactly the same times, so their difference is
  the capture effect alone.

Each N runs ``--minutes`` simulated minutes (default 30) and sits next to the analytic
pure-ALOHA curves of :mod:`lora_telemetry.core.aloha` (finite population and Poisson), both
evaluated at the effective period max(period, T / duty cycle). (Below T / duty cycle the duty
cycle paces every frame and the policy only adds up to one frame time of jitter after T_off,
so the analytic curves are approximate there; the benchmark prints a note.)

Usage: ``python bench/bench_swarm.py [--period S] [--max-uavs N] [--minutes M] [--seed K]
[--geometry equal|formation|both] [--min-delivery F]``. Writes ``bench/results/swarm.json``
(with ``--access aloha --access tdma``: the ALOHA/TDMA comparison of :mod:`bench.swarm_access`
instead, into ``bench/results/swarm_access.json``; this study is unchanged without it):

* ``settings``: the radio, access and run parameters above (``airtime_s``, ``period_s``,
  ``effective_period_s``, ``duty_cycle``, ``offer_interval_s``, ``jitter_fraction``,
  ``minutes``, ``seed``, ``gateway_position_m``, ``tx_power_dbm``, ``capture_margin_db``,
  ``min_delivery`` ...);
* ``geometries.<equal|formation>``: ``description``, ``runtime_s`` (wall clock, informative),
  ``max_n`` (``measured`` / ``finite_aloha`` / ``poisson_aloha``: the largest N up to which
  every swarm size keeps delivery >= ``min_delivery``; ``None`` if even N = 1 does not) and
  ``rows``, one per N with:

  - ``n``; ``offered_load`` G = n T / effective period;
  - ``sent`` (frames put on the air), ``delivered`` (received by the gateway),
    ``delivery_ratio`` = delivered / sent; ``finite_aloha`` = (1 - 2T/P)^(n-1) and
    ``poisson_aloha`` = e^(-2G), the analytic success probabilities;
  - ``updates_per_s_mean`` / ``updates_per_s_min``: delivered frames per second per UAV,
    averaged over the swarm / of the worst UAV; ``mean_interval_s``: simulated seconds
    between two frames of one UAV;
  - ``collisions`` and ``below_sensitivity``: the medium's own loss counters (gateway only:
    the UAVs never listen); ``overlapped``: frames that overlapped another in time (counted
    here from the start times); ``captured``: overlapped frames the gateway still received;
  - ``replaced``: states superseded in a scheduler before they went out (newest wins).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import print_table, write_result  # noqa: E402
from lora_telemetry.core.access import AlohaPolicy, UplinkScheduler  # noqa: E402
from lora_telemetry.core.aloha import (  # noqa: E402
    finite_aloha_success,
    offered_load,
    pure_aloha_success,
)
from lora_telemetry.core.dutycycle import DutyCycleLedger  # noqa: E402
from lora_telemetry.core.phy import PhySettings  # noqa: E402
from lora_telemetry.sim.medium_model import (  # noqa: E402
    MediumError,
    MediumModel,
    MediumParams,
    RxEvent,
)

# The demo's radio and geometry (lora_telemetry/sim/swarm.py SwarmOptions,
# sim/vehicle/trajectories.py).
FREQUENCY_HZ = 433_175_000
PHY = PhySettings(FREQUENCY_HZ, 7, 125_000)
FRAME_BYTES = 29  # 16-byte telemetry payload + 13 bytes LoRaWAN (bench_codec.py)
TX_POWER_DBM = 10.0  # DroneConfig.tx_power_dbm default
GATEWAY = "gateway"
GATEWAY_POSITION = (0.0, -500.0, 10.0)  # SwarmOptions.gateway_position_m
FORMATION_RADIUS_M = 150.0  # SwarmOptions.radius_m
FORMATION_SPACING_M = 15.0  # build_swarm formation_spacing_m
ALT_M, ALT_STEP_M = 30.0, 5.0  # sim_vehicle --alt-m / --alt-step-m defaults
SPEED_MPS = 8.0  # sim_vehicle --speed-mps default
OFFER_INTERVAL_S = 0.1  # a new vehicle state per UAV every 0.1 s
JITTER_FRACTION = 0.25  # DroneConfig.jitter_fraction default
GEOMETRIES = ("equal", "formation")

Position = tuple[float, float, float]


# -- geometry -----------------------------------------------------------------------------------
def equal_positions(n: int) -> Callable[[int, float], Position]:
    """UAVs on an arc 500 m north of the gateway, same height: equal RSSI, so no capture."""
    gx, gy, _ = GATEWAY_POSITION
    r = 500.0
    points = []
    for i in range(n):
        bearing = math.radians(-30.0 + (60.0 * i / (n - 1) if n > 1 else 30.0))
        points.append((gx + r * math.sin(bearing), gy + r * math.cos(bearing), ALT_M))
    return lambda i, t: points[i]


def formation_positions(n: int) -> Callable[[int, float], Position]:
    """The demo's V formation (sim/vehicle/trajectories.py build_swarm "formation"), flown
    for ever."""
    # Imported here: the vehicle simulator pulls in pymavlink, which `equal` does not need.
    from lora_telemetry.sim.vehicle import CirclePath, OffsetPath

    leader = CirclePath(0.0, 0.0, FORMATION_RADIUS_M, 0.0)
    paths: list[Any] = [leader]
    for k in range(1, n):
        row, side = (k + 1) // 2, (1 if k % 2 else -1)
        paths.append(OffsetPath(leader, -row * FORMATION_SPACING_M,
                                side * row * FORMATION_SPACING_M))

    def position(i: int, t: float) -> Position:
        e, north = paths[i].point(SPEED_MPS * t)
        return (e, north, ALT_M + ALT_STEP_M * i)

    return position


# -- one swarm size -------------------------------------------------------------------------
def simulate(n: int, *, geometry: str, period_s: float, duration_s: float, seed: int,
             params: MediumParams | None = None) -> dict[str, Any]:
    """Fly ``n`` UAVs for ``duration_s`` simulated seconds; counts per the module docstring."""
    where = equal_positions(n) if geometry == "equal" else formation_positions(n)
    medium = MediumModel(params, seed=seed)
    medium.add_node(GATEWAY, GATEWAY_POSITION)
    medium.set_listening(GATEWAY, PHY, 0.0)
    frame = bytes(FRAME_BYTES)
    airtime = PHY.time_on_air(FRAME_BYTES)

    names = [f"uav{i + 1:02d}" for i in range(n)]
    index = {name: i for i, name in enumerate(names)}
    schedulers: list[UplinkScheduler[int]] = []
    phases: list[float] = []
    ticks = [0] * n  # index of each UAV's next state tick
    for i, name in enumerate(names):
        # str seeds are hashed with SHA-512: stable across runs and Python versions. The
        # geometry is left out on purpose: both geometries then send at exactly the same
        # times (common random numbers), so their difference is the capture effect alone.
        rng = random.Random(f"bench_swarm/{seed}/{n}/{i}")
        schedulers.append(UplinkScheduler(
            DutyCycleLedger(), AlohaPolicy(period_s, jitter_fraction=JITTER_FRACTION, rng=rng),
            FREQUENCY_HZ))
        phases.append(rng.uniform(0.0, OFFER_INTERVAL_S))
        medium.add_node(name, where(i, 0.0))

    sent = [0] * n
    delivered = [0] * n
    starts: list[float] = []
    delivered_starts: list[float] = []

    def settle(now: float) -> None:
        for node, event in medium.finish_due(now):
            if node == GATEWAY and isinstance(event, RxEvent) and event.crc_ok:
                delivered[index[event.tx_node]] += 1
                delivered_starts.append(event.t_start)

    def tick_time(i: int) -> float:
        return phases[i] + ticks[i] * OFFER_INTERVAL_S

    # Each UAV has one event in the heap: its next state tick while nothing waits, else the
    # start its scheduler planned. States arriving while a frame waits only replace it
    # (newest wins), so they are offered in a batch just before the send: same outcome, a
    # tenth of the events.
    heap: list[tuple[float, int, bool]] = [(tick_time(i), i, False) for i in range(n)]
    heapq.heapify(heap)
    while heap and heap[0][0] < duration_s:
        now, i, is_send = heapq.heappop(heap)
        sched = schedulers[i]
        if not is_send:
            sched.offer(ticks[i], airtime, now)
            ticks[i] += 1
            planned = sched.next_start(now)
            assert planned is not None
            heapq.heappush(heap, (planned, i, True))
            continue
        while tick_time(i) <= now:
            sched.offer(ticks[i], airtime, tick_time(i))
            ticks[i] += 1
        if sched.due(now) is None:  # re-planned (cannot happen with the ledger above)
            heapq.heappush(heap, (sched.next_start(now) or now, i, True))
            continue
        settle(now)
        medium.set_position(names[i], where(i, now), now)
        try:
            medium.start_tx(names[i], frame, PHY, TX_POWER_DBM, now)
        except MediumError:  # still transmitting: the radio would answer "busy"
            sched.failed(now)
        else:
            sched.sent(now, airtime)
            sent[i] += 1
            starts.append(now)
        heapq.heappush(heap, (tick_time(i), i, False))
    settle(duration_s + 10.0)  # let the last frames end

    stats = medium.stats()
    overlapped_starts = _overlapped(starts, airtime)
    captured = sum(1 for s in delivered_starts if _contains(overlapped_starts, s))
    total_sent, total_delivered = sum(sent), sum(delivered)
    rates = [d / duration_s for d in delivered]
    return {
        "n": n,
        "sent": total_sent,
        "delivered": total_delivered,
        "delivery_ratio": total_delivered / total_sent if total_sent else 0.0,
        "updates_per_s_mean": sum(rates) / n,
        "updates_per_s_min": min(rates),
        "mean_interval_s": n * duration_s / total_sent if total_sent else None,
        "collisions": stats["dropped"]["collision"],
        "below_sensitivity": stats["dropped"]["below_sensitivity"],
        "overlapped": len(overlapped_starts),
        "captured": captured,
        "replaced": sum(s.counters.replaced for s in schedulers),
    }


def _overlapped(starts: list[float], airtime: float) -> list[float]:
    """Sorted start times of the frames that overlap another (all frames last ``airtime``)."""
    s = sorted(starts)
    return [t for k, t in enumerate(s)
            if (k > 0 and t - s[k - 1] < airtime) or (k + 1 < len(s) and s[k + 1] - t < airtime)]


def _contains(sorted_values: list[float], value: float) -> bool:
    k = bisect_left(sorted_values, value)
    return k < len(sorted_values) and sorted_values[k] == value


def max_n_meeting(values: list[float], threshold: float) -> int | None:
    """Largest N such that N = 1..N all reach ``threshold`` (values[k] is for N = k + 1)."""
    best = None
    for k, v in enumerate(values):
        if v < threshold:
            break
        best = k + 1
    return best


# -- command line -----------------------------------------------------------------------------
def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value
    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a float") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def _non_negative(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _fraction(text: str) -> float:
    value = _positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction in (0, 1]")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--period", type=_positive(float), default=2.0, metavar="S",
                    help="target update period per UAV (default 2.0 s)")
    ap.add_argument("--max-uavs", type=_positive(int), default=20, metavar="N",
                    help="simulate N = 1..this many UAVs (default 20)")
    ap.add_argument("--minutes", type=_positive(float), default=None, metavar="M",
                    help="simulated minutes per swarm size (default 30; with --access: "
                         "measured minutes per swarm size and access, default 30)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--geometry", choices=(*GEOMETRIES, "both"), default=None,
                    help="ALOHA study only (default both); --access flies 'equal'")
    ap.add_argument("--min-delivery", type=_fraction, default=None, metavar="F",
                    help="mark the largest N keeping delivery >= F (default 0.5; ALOHA study "
                         "only)")
    access = ap.add_argument_group(
        "access comparison", "--access (repeatable) flies ALOHA and/or GPS-time TDMA side by "
        "side and writes bench/results/swarm_access.json instead (bench/swarm_access.py)")
    access.add_argument("--access", action="append", choices=("aloha", "tdma"),
                        help="compare this access method (give it twice for both)")
    access.add_argument("--warmup-s", type=_non_negative, default=None, metavar="S",
                        help="simulated seconds before the measured window (default 10: the "
                             "TimeKeeper's start-up)")
    access.add_argument("--guard-ms", type=_positive(float), default=None, metavar="MS",
                        help="TDMA guard on each side of a frame (default 5)")
    access.add_argument("--lead-error-ms", type=_finite, default=None, metavar="MS",
                        help="the modules of every other UAV (slots 1, 3 ...) are this much "
                             "slower than their timing model (a wrong lead; negative control, "
                             "default 0)")
    access.add_argument("--radios", choices=("rn2483", "ebyte", "mix"), default=None,
                        help="drone modules at their default baud (default rn2483; mix: the "
                             "demo's families in turn)")
    args = ap.parse_args(argv)
    if args.max_uavs > 200:
        ap.error("--max-uavs: choose 1..200")
    if args.access:
        if args.geometry is not None or args.min_delivery is not None:
            ap.error("--geometry and --min-delivery belong to the ALOHA study, not --access")
        from bench import swarm_access  # imported here: it imports this module's constants
        return swarm_access.run(args, ap)
    given = [f"--{name.replace('_', '-')}" for name in
             ("warmup_s", "guard_ms", "lead_error_ms", "radios") if getattr(args, name) is not None]
    if given:
        ap.error(f"{', '.join(given)}: only with --access")
    if args.minutes is None:
        args.minutes = 30.0
    if args.geometry is None:
        args.geometry = "both"
    if args.min_delivery is None:
        args.min_delivery = 0.5

    airtime = PHY.time_on_air(FRAME_BYTES)
    ledger = DutyCycleLedger()
    duty_cycle = ledger.limit(FREQUENCY_HZ)
    effective_period = max(args.period, airtime / duty_cycle)
    duration_s = args.minutes * 60.0
    if duration_s < 10 * effective_period:
        ap.error(f"--minutes {args.minutes:g}: simulate at least ten update periods "
                 f"({10 * effective_period / 60:.3g} min) so every UAV sends")
    params = MediumParams()
    geometries = GEOMETRIES if args.geometry == "both" else (args.geometry,)
    descriptions = {
        "equal": "all UAVs 500 m from the gateway, same height: no capture (pure ALOHA)",
        "formation": "the demo's V formation circling 150 m around a point 500 m north of "
                     "the gateway: capture possible",
    }
    print(f"Swarm on one channel: {PHY.frequency_hz / 1e6:.3f} MHz SF{PHY.sf} "
          f"{PHY.bandwidth_hz // 1000} kHz, {FRAME_BYTES}-byte frames = {airtime * 1e3:.3f} ms, "
          f"period {args.period:g} s (effective {effective_period:g} s at "
          f"{duty_cycle:.0%} duty cycle), ALOHA, {args.minutes:g} simulated min per N, "
          f"seed {args.seed}")
    if args.period < airtime / duty_cycle:
        # AlohaPolicy.next_start takes max(target, earliest_allowed): every frame then starts
        # exactly at the end of its T_off, the jitter is lost and phases never drift.
        print(f"note: period {args.period:g} s < T/duty cycle = {airtime / duty_cycle:.3f} s: the "
              "duty cycle paces every frame; only the policy's one-frame jitter after T_off "
              "separates the UAVs (see the worst UAV column)")
    results: dict[str, Any] = {}
    for geometry in geometries:
        t0 = time.perf_counter()
        rows = []
        for n in range(1, args.max_uavs + 1):
            row = simulate(n, geometry=geometry, period_s=args.period, duration_s=duration_s,
                           seed=args.seed, params=params)
            load = offered_load(n, airtime, effective_period)
            row = {"n": n, "offered_load": load, **{k: v for k, v in row.items() if k != "n"},
                   "finite_aloha": finite_aloha_success(n, airtime, effective_period),
                   "poisson_aloha": pure_aloha_success(load)}
            rows.append(row)
        runtime = time.perf_counter() - t0
        limits = {key: max_n_meeting([r[key] for r in rows], args.min_delivery)
                  for key in ("delivery_ratio", "finite_aloha", "poisson_aloha")}
        max_n = {"measured": limits["delivery_ratio"], "finite_aloha": limits["finite_aloha"],
                 "poisson_aloha": limits["poisson_aloha"]}
        results[geometry] = {"description": descriptions[geometry], "runtime_s": round(runtime, 2),
                             "max_n": max_n, "rows": rows}
        _print_geometry(geometry, descriptions[geometry], rows, max_n, args.min_delivery,
                        args.max_uavs, runtime)

    settings = {
        "frequency_hz": PHY.frequency_hz, "sf": PHY.sf, "bandwidth_hz": PHY.bandwidth_hz,
        "coding_rate": f"4/{PHY.coding_rate}", "frame_bytes": FRAME_BYTES,
        "airtime_s": airtime, "period_s": args.period, "effective_period_s": effective_period,
        "duty_cycle": duty_cycle, "offer_interval_s": OFFER_INTERVAL_S,
        "jitter_fraction": JITTER_FRACTION, "minutes": args.minutes, "seed": args.seed,
        "gateway_position_m": list(GATEWAY_POSITION), "tx_power_dbm": TX_POWER_DBM,
        "capture_margin_db": params.capture_margin_db,
        "path_loss_exponent": params.path_loss_exponent, "min_delivery": args.min_delivery,
        "max_uavs": args.max_uavs,
    }
    path = write_result("swarm", {"settings": settings, "geometries": results})
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


def _print_geometry(geometry: str, description: str, rows: list[dict[str, Any]],
                    max_n: dict[str, int | None], threshold: float, max_uavs: int,
                    runtime: float) -> None:
    print(f"\n[{geometry}] {description}")
    table = []
    for r in rows:
        mark = "*" if r["delivery_ratio"] < threshold else ""
        table.append([r["n"], round(r["offered_load"], 3),
                      f"{100 * r['delivery_ratio']:.1f}{mark}",
                      f"{100 * r['finite_aloha']:.1f}", f"{100 * r['poisson_aloha']:.1f}",
                      f"{r['updates_per_s_mean']:.3f}", f"{r['updates_per_s_min']:.3f}",
                      r["collisions"], r["captured"]])
    print_table(["N", "G", "delivered %", "finite %", "Poisson %", "upd/s/UAV", "worst UAV",
                 "collisions", "captured"], table)

    def say(n: int | None) -> str:
        if n is None:
            return "never (not even N = 1)"
        return f"N <= {n}" + (" (all sizes tried)" if n == max_uavs else "")

    print(f"delivery >= {threshold:.0%}: measured {say(max_n['measured'])}; "
          f"finite ALOHA {say(max_n['finite_aloha'])}; Poisson {say(max_n['poisson_aloha'])}"
          f"   (* = below; {runtime:.1f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
