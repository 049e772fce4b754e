"""The real-time shell of the vehicle simulator: pacing, MAVLink endpoints, truth, medium.

:class:`VehicleSimulator` is the I/O shell: it paces either source (synthetic autopilots or a
log replayer) in real time, writes the packets to the endpoints, routes commands back to the
right simulated autopilot, writes the truth to a JSON file atomically (tmp + rename) and
pushes positions to the radio medium (:func:`medium_position_sink`).

Simulated time ``t`` is seconds since the simulation started, times ``speed``; the vehicles'
UTC clock (SYSTEM_TIME) is the wall-clock start plus ``t``.
"""

from __future__ import annotations

import logging
import math
import os
import select
import threading
import time
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from lora_telemetry.core.errors import ConfigError, LoraTelemetryError
from lora_telemetry.mavlink.transport import open_transport, write_transport
from lora_telemetry.mavlink.urls import parse_url
from lora_telemetry.persist import atomic_write_json
from lora_telemetry.sim.medium import MediumControl, MediumError
from lora_telemetry.sim.vehicle.autopilot import SimulatedAutopilot
from lora_telemetry.sim.vehicle.replay import LogReplayer

__all__ = ["VehicleSimulator", "medium_position_sink"]

log = logging.getLogger(__package__)  # the package's one logger (see its notes)

def medium_position_sink(
    hub: str | None, node_ids: Mapping[int, str]
) -> tuple[Callable[[int, float, float, float], None], Callable[[], None]]:
    """A ``position_sink`` that moves radio-medium node ``node_ids[sysid]`` to each vehicle's
    position (``lora_telemetry.sim.medium.MediumControl.set_position_geodetic``; the medium
    needs its origin configured), and a function closing it. The first update of each node is
    confirmed so a refusal is reported once; later ones are fire-and-forget."""
    control = MediumControl(hub)
    confirmed: set[int] = set()

    def sink(sysid: int, lat: float, lon: float, height_m: float) -> None:
        node = node_ids.get(sysid)
        if node is None:
            return
        if sysid in confirmed:
            control.set_position_geodetic(node, lat, lon, height_m)
            return
        confirmed.add(sysid)
        try:
            control.set_position_geodetic(node, lat, lon, height_m, wait=True)
        except MediumError as exc:
            log.warning("radio medium position update for %s: %s", node, exc)

    return sink, control.close


class _Output:
    """One MAVLink endpoint the simulator writes to (and reads commands from)."""

    def __init__(self, url: str) -> None:
        self.spec = parse_url(url)
        if self.spec.kind == "tlog":
            raise ConfigError(f"cannot send MAVLink to a log file ({url})")
        self.conn: Any = None
        self.retry_at = 0.0
        self.counters: Counter[str] = Counter()
        self.open()

    def open(self) -> None:
        try:
            self.conn = open_transport(self.spec)
        except (OSError, ValueError) as exc:
            self.conn = None
            self.retry_at = time.monotonic() + 1.0
            self.counters["open_failures"] += 1
            if self.counters["open_failures"] == 1:
                log.warning("cannot open %s: %s (retrying every second)", self.spec, exc)

    def write(self, buf: bytes) -> None:
        if self.conn is None:
            if time.monotonic() < self.retry_at:
                self.counters["dropped"] += 1
                return
            self.open()
            if self.conn is None:
                return
        try:
            write_transport(self.conn, self.spec, buf)
            self.counters["packets"] += 1
        except OSError as exc:
            log.warning("%s: write failed (%s); reopening", self.spec, exc)
            self.close()
            self.retry_at = time.monotonic() + 1.0

    def receive(self, limit: int = 200) -> list[Any]:
        out: list[Any] = []
        if self.conn is None:
            return out
        for _ in range(limit):
            try:
                msg = self.conn.recv_msg()
            except (OSError, EOFError) as exc:
                log.warning("%s: read failed (%s); reopening", self.spec, exc)
                self.close()
                self.retry_at = time.monotonic() + 1.0
                break
            if msg is None:
                break
            if msg.get_type() != "BAD_DATA":
                out.append(msg)
        return out

    def fileno(self) -> int | None:
        return getattr(self.conn, "fd", None) if self.conn is not None else None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


class VehicleSimulator:
    """Runs synthetic vehicles or a log replay in real time (see the module notes).

    ``outputs``: MAVLink URLs; one shared by every vehicle, or one per vehicle (synthetic) /
    per transform (replay). ``truth_path``: JSON truth written every ``truth_period_s``.
    ``position_sink(sysid, lat, lon, height_m)``: called at the same period with the height
    above home (e.g. the radio medium, whose nodes stand on the ground at height 0), for every
    vehicle whose position is known: a replayed vehicle without a fix (lat/lon None in the
    truth) is not moved, which is logged once per vehicle and counted
    (``positions_unknown_not_sent``). ``on_close`` runs once in :meth:`close` (e.g. closing
    the sink's socket).
    """

    def __init__(
        self,
        outputs: Sequence[str],
        *,
        autopilots: Sequence[SimulatedAutopilot] = (),
        replayer: LogReplayer | None = None,
        speed: float = 1.0,
        truth_path: str | os.PathLike[str] | None = None,
        truth_period_s: float = 0.5,
        position_sink: Callable[[int, float, float, float], None] | None = None,
        on_close: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bool(autopilots) == (replayer is not None):
            raise ConfigError("give either synthetic vehicles or a log replayer")
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"speed must be a positive number, got {speed!r}")
        n = len(autopilots) if autopilots else len(replayer.transforms)  # type: ignore[union-attr]
        if not outputs or len(outputs) not in (1, n):
            raise ConfigError(f"give one --out for all vehicles or one per vehicle ({n}), "
                              f"not {len(outputs)}")  # fmt: skip
        self._outputs: dict[str, _Output] = {}
        self._route: list[_Output] = []
        self._on_close = on_close
        try:
            for i in range(n):
                url = outputs[i if len(outputs) == n else 0]
                if url not in self._outputs:
                    self._outputs[url] = _Output(url)
                self._route.append(self._outputs[url])
        except LoraTelemetryError:
            self.close()
            raise
        self.autopilots = list(autopilots)
        self.replayer = replayer
        self.speed = float(speed)
        self.truth_path = truth_path
        self.truth_period_s = truth_period_s
        self.position_sink = position_sink
        self._clock = clock
        self.counters: Counter[str] = Counter()
        self._unplaced_reported: set[int] = set()
        self.sim_time_s = 0.0
        if truth_path is not None:
            try:  # an unwritable truth file fails now, not half a second into the run
                self._write_truth(self._clock())
            except ConfigError:
                self.close()
                raise

    @property
    def sysids(self) -> list[int]:
        """The system id of every simulated vehicle."""
        if self.replayer is not None:
            return [tr.out_sysid for tr in self.replayer.transforms]
        return [ap.sysid for ap in self.autopilots]

    def truth(self, t: float | None = None) -> list[dict[str, Any]]:
        """Every vehicle's true state (synthetic) or last replayed position (replay)."""
        if self.replayer is not None:
            return [tr.last_position for tr in self.replayer.transforms if tr.last_position]
        t = self.sim_time_s if t is None else t
        return [ap.vehicle.state_at(t).to_json() for ap in self.autopilots]

    def _write_truth(self, wall: float, vehicles: list[dict[str, Any]] | None = None) -> None:
        data = {"time_unix_s": wall, "sim_time_s": self.sim_time_s,
                "vehicles": self.truth() if vehicles is None else vehicles}  # fmt: skip
        try:
            atomic_write_json(self.truth_path, data, mode=0o644, durable=False)  # type: ignore[arg-type]
        except OSError as exc:
            self.counters["truth_write_errors"] += 1
            raise ConfigError(f"cannot write the truth file {self.truth_path}: {exc}") from None

    def _publish(self, wall: float) -> None:
        vehicles = self.truth()
        if self.truth_path is not None:
            self._write_truth(wall, vehicles)
        if self.position_sink is not None:
            for v in vehicles:
                if v["lat_deg"] is None or v["lon_deg"] is None:
                    self._report_unplaced(v["sysid"])
                    continue
                try:
                    self.position_sink(v["sysid"], v["lat_deg"], v["lon_deg"], v["alt_rel_m"])
                except (OSError, LoraTelemetryError) as exc:
                    self.counters["position_sink_errors"] += 1
                    log.debug("position sink: %s", exc)

    def _report_unplaced(self, sysid: int) -> None:
        self.counters["positions_unknown_not_sent"] += 1
        if sysid not in self._unplaced_reported:
            self._unplaced_reported.add(sysid)
            log.warning("vehicle %d reports no position (lat/lon 0, 0: no fix): its radio stays "
                        "where it registered in the medium until it reports one", sysid)

    def _serve_inputs(self, t: float) -> None:
        for output in self._outputs.values():
            for msg in output.receive():
                self.counters[f"received_{msg.get_type()}"] += 1
                for ap, route in zip(self.autopilots, self._route):
                    if route is output:
                        for buf in ap.handle(msg, t):
                            output.write(buf)

    def _wait(self, seconds: float) -> None:
        fds = [fd for fd in (o.fileno() for o in self._outputs.values()) if fd is not None]
        seconds = max(0.0, seconds)
        if fds:
            try:
                select.select(fds, [], [], seconds)
                return
            except (OSError, ValueError):
                pass
        time.sleep(seconds)

    def run(self, duration_s: float | None = None, stop: threading.Event | None = None) -> None:
        """Run until ``duration_s`` wall-clock seconds pass, ``stop`` is set, or a replay that
        does not loop ends."""
        start = time.monotonic()
        wall0 = self._clock()
        next_publish = 0.0
        frames = self.replayer.frames() if self.replayer is not None else None
        pending: tuple[float, list[bytes | None], Any] | None = None
        while True:
            elapsed = time.monotonic() - start
            if (duration_s is not None and elapsed >= duration_s) or (stop and stop.is_set()):
                self._publish(wall0 + elapsed)  # the final state, for whoever reads the truth
                return
            self.sim_time_s = t = elapsed * self.speed
            wait = 0.01
            if frames is None:
                for ap, output in zip(self.autopilots, self._route):
                    for buf in ap.due(t):
                        output.write(buf)
            else:
                for _ in range(2000):  # a burst at high speed still lets stop/truth through
                    if pending is None:
                        pending = next(frames, None)
                        if pending is None:
                            self._publish(self._clock())
                            return
                    due, packets, _ = pending
                    if due > elapsed:
                        wait = min(wait, due - elapsed)
                        break
                    for buf, output in zip(packets, self._route):
                        if buf is not None:
                            output.write(buf)
                    self.counters["records_sent"] += 1
                    pending = None
                else:
                    wait = 0.0  # still behind: go on right after serving the rest
            self._serve_inputs(t)
            if elapsed >= next_publish:
                next_publish = elapsed + self.truth_period_s
                self._publish(wall0 + elapsed)
            self._wait(wait)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sim_time_s": self.sim_time_s, **dict(self.counters)}
        out["outputs"] = {url: dict(o.counters) for url, o in self._outputs.items()}
        if self.replayer is not None:
            out["replay"] = dict(self.replayer.counters)
            out["transforms"] = [dict(t.counters) for t in self.replayer.transforms]
        else:
            out["vehicles"] = {ap.sysid: dict(ap.counters) for ap in self.autopilots}
        return out

    def close(self) -> None:
        for output in self._outputs.values():
            output.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> "VehicleSimulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
