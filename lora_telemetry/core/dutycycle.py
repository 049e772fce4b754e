"""Duty-cycle ledger: when may the next frame go out on a given frequency?

Two rules, selectable by ``policy``:

* ``"toff"`` - LoRaWAN's rule (spec 7.1.2, thesis line ~5164 and thesis eq. 4.2.3, line ~1585):
  after a frame of airtime T on a sub-band with duty cycle dc, that sub-band stays unavailable
  for T_off = T/dc - T. ("A device just transmitted a 0.5 s long frame ... 1% duty-cycle ...
  unavailable for 49.5 s", line ~5179.)
* ``"sliding_window"`` - the regulator's rule: the SRD decision 2006/771/EC defines duty cycle as
  the share of time spent transmitting "within a period of one hour" (thesis line ~3465), so no
  window of ``window_s`` (default 3600 s) may hold more than dc * window_s of airtime.
* ``"both"`` (default) - both at once. T_off alone can overfill an hour window (a long frame
  after many short ones, each paced only by its own length); the window alone allows a whole
  hour's budget in one burst. Together they are safe and evenly paced.

Sub-bands are matched by the channel's centre frequency, as LoRaWAN does ("Each time a frame is
transmitted in a given sub-band ...", line ~5164). Frequencies in no sub-band raise
:class:`ConfigError` unless the ledger has a ``default_limit``; all such frequencies then share
one conservative "default" band.

Time is always passed in (float seconds, non-decreasing across calls). For persistence across
restarts (:meth:`DutyCycleLedger.to_dict`) use a clock that survives restarts, e.g. Unix time.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from lora_telemetry.core.errors import ConfigError

__all__ = [
    "SubBand",
    "EU868_SUBBANDS",
    "EU433_SUBBANDS",
    "ETSI_SUBBANDS",
    "POLICIES",
    "AirtimeTooLongError",
    "DutyCycleLedger",
    "time_off",
]

POLICIES = ("toff", "sliding_window", "both")
_FORMAT = "lora_telemetry.dutycycle/1"
_EPS = 1e-9  # seconds: tolerance for float round-off when comparing times


class AirtimeTooLongError(ConfigError):
    """A single frame longer than the sub-band's whole window budget: it can never be sent."""


@dataclass(frozen=True)
class SubBand:
    """A regulatory sub-band [low_hz, high_hz) with its maximum duty cycle (0 < dc <= 1)."""

    name: str
    low_hz: int
    high_hz: int
    duty_cycle: float
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"sub-band name must be a non-empty string, got {self.name!r}")
        for attr in ("low_hz", "high_hz", "duty_cycle"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"sub-band {self.name}: {attr} {value!r} must be a number")
            if not math.isfinite(value):
                raise ConfigError(f"sub-band {self.name}: {attr} {value!r} must be finite")
        if not self.low_hz < self.high_hz:
            raise ConfigError(f"sub-band {self.name}: low_hz must be below high_hz")
        if not 0 < self.duty_cycle <= 1:
            raise ConfigError(f"sub-band {self.name}: duty cycle {self.duty_cycle!r} not in (0, 1]")

    def contains(self, frequency_hz: float) -> bool:
        return self.low_hz <= frequency_hz < self.high_hz


# EU 863-870 MHz. g1-g4 are the figures of decision 2006/771/EC (thesis lines ~3292-3324) and
# of the Spanish national note UN-39 implementing its 2011/829/EU amendment (lines ~3568-3631).
# 863-868 MHz is not a generic SRD band in those texts (863-865 MHz is listed for wireless audio
# only, line ~3460); LoRaWAN nevertheless puts JoinReq channels at 864.1-864.5 MHz with a duty
# cycle "<0.1%" (spec Table 13, line ~5236). EN 300 220-2 v2.4.1, which the RN2483 reference
# cites for duty-cycle limits (line ~20972), allows 0.1% on 863-870 MHz, raised to 1% when
# limited to 865-868 MHz; later versions (bands K and L) give 863-865 MHz 0.1% and 865-868 MHz 1%.
# The two "g" entries follow that split (not in the thesis: flagged in their ``source``).
EU868_SUBBANDS: tuple[SubBand, ...] = (
    SubBand("g_863_865", 863_000_000, 865_000_000, 0.001,
            "EN 300 220-2 (not in the seeds); LoRaWAN 1.0 Table 13 JoinReq <0.1%"),
    SubBand("g_865_868", 865_000_000, 868_000_000, 0.01,
            "EN 300 220-2 v2.4.1 note: 1% if limited to 865-868 MHz (not in the seeds)"),
    SubBand("g1", 868_000_000, 868_600_000, 0.01,
            "2006/771/EC annex (thesis ~3292); UN-39 (~3568); LoRaWAN 7.1.2 example"),
    SubBand("g2", 868_700_000, 869_200_000, 0.001,
            "2006/771/EC annex (thesis ~3300); UN-39 (~3580)"),
    SubBand("g3", 869_400_000, 869_650_000, 0.10,
            "2006/771/EC annex (thesis ~3308); UN-39 (~3592); thesis ~2682 (869.525 MHz, 10%)"),
    SubBand("g4", 869_700_000, 870_000_000, 0.01,
            "UN-39, 25 mW variant (thesis ~3623)"),
)
# EU 433 MHz: 10% (2006/771/EC, thesis ~3283; UN-30, ~3509-3514; LoRaWAN footnote ~6073).
# LoRaWAN itself asks EU433 devices for 1% (spec 7.4.2): pass ``cap=0.01`` for that.
EU433_SUBBANDS: tuple[SubBand, ...] = (
    SubBand("eu433", 433_050_000, 434_790_000, 0.10,
            "2006/771/EC annex (thesis ~3283); UN-30 (~3509)"),
)
ETSI_SUBBANDS: tuple[SubBand, ...] = EU868_SUBBANDS + EU433_SUBBANDS

_DEFAULT_BAND = "default"


def time_off(airtime_s: float, duty_cycle: float) -> float:
    """LoRaWAN T_off = airtime/dc - airtime: how long the sub-band rests after a frame."""
    _check_time("airtime_s", airtime_s, positive=True)
    if isinstance(duty_cycle, bool) or not isinstance(duty_cycle, (int, float)) or not (
        0 < duty_cycle <= 1
    ):
        raise ConfigError(f"duty cycle {duty_cycle!r} must be a number in (0, 1]")
    return airtime_s / duty_cycle - airtime_s


def _check_time(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} {value!r} must be a finite number of seconds")
    if positive and value <= 0:
        raise ConfigError(f"{name} {value!r} must be > 0 seconds")
    return float(value)


class _BusyTrack:
    """The union of one sub-band's transmissions as sorted, disjoint busy intervals.

    Duty cycle is the share of time "transmitting" (thesis ~3465), so overlapping frames count
    once. Prefix sums make every query O(log n): a 10% sub-band with 70 ms frames holds
    ~5000 frames per hour, and simulations ask after every frame.
    ``cum[j]`` is the busy time of intervals ``head..j-1`` plus a constant; ``idle[j]`` =
    ``starts[j] - cum[j]`` grows with j, which lets the budget query bisect too.
    """

    __slots__ = ("starts", "ends", "cum", "idle", "head")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cum: list[float] = [0.0]
        self.idle: list[float] = []
        self.head = 0

    def _reset(self) -> None:
        self.starts, self.ends, self.cum, self.idle, self.head = [], [], [0.0], [], 0

    def __len__(self) -> int:
        return len(self.starts) - self.head

    def intervals(self) -> list[tuple[float, float]]:
        return list(zip(self.starts[self.head:], self.ends[self.head:]))

    def add(self, start: float, end: float) -> None:
        n = len(self.starts)
        if n == self.head or start > self.ends[-1]:
            self.starts.append(start)
            self.ends.append(end)
            self.idle.append(start - self.cum[-1])
            self.cum.append(self.cum[-1] + (end - start))
        elif start >= self.starts[-1]:  # touches or overlaps only the last interval
            if end > self.ends[-1]:
                self.cum[-1] += end - self.ends[-1]
                self.ends[-1] = end
        else:  # out of order: rare, rebuild the union
            self._rebuild(self.intervals() + [(start, end)])

    def _rebuild(self, intervals: list[tuple[float, float]]) -> None:
        self._reset()
        for start, end in sorted(intervals):
            self.add(start, end)

    def prune(self, horizon: float) -> None:
        """Drop intervals that ended at or before ``horizon``."""
        self.head = max(self.head, bisect_right(self.ends, horizon, self.head))
        if self.head > 256 and 2 * self.head > len(self.starts):
            self._rebuild(self.intervals())

    def after(self, u: float) -> float:
        """Busy time in [u, infinity)."""
        k = bisect_right(self.ends, u, self.head)
        if k == len(self.starts):
            return 0.0
        return self.cum[-1] - self.cum[k] - max(0.0, u - self.starts[k])

    def earliest_window_start(self, u0: float, allowance: float) -> float:
        """Smallest u >= u0 with after(u) <= allowance (allowance >= 0)."""
        if self.after(u0) <= allowance + _EPS:
            return u0
        # after(starts[j]) = cum[-1] - cum[j] falls with j: find the first start that is low
        # enough; the answer lies inside the interval before it, where after() has slope -1.
        k = bisect_right(self.ends, u0, self.head)
        j = bisect_left(self.cum, self.cum[-1] - allowance, k, len(self.starts))
        i = max(j - 1, k)  # j > k in exact arithmetic; guard against round-off
        return self.starts[i] + (self.cum[-1] - self.cum[i] - allowance)

    def longest_frame(self, u0: float, budget: float) -> float:
        """Largest a with a + after(u0 + a) <= budget (0 if none)."""
        # phi(u) = u + after(u) is flat inside intervals and rises with slope 1 in gaps; we
        # want the largest u with phi(u) <= u0 + budget, and a = u - u0.
        target = u0 + budget
        n = len(self.starts)
        k = bisect_right(self.ends, u0, self.head)
        if k == n:
            return budget
        total = self.cum[-1]
        phi_u0 = min(u0, self.starts[k]) - self.cum[k] + total
        if phi_u0 > target + _EPS:
            return 0.0
        j = bisect_right(self.idle, target - total, k, n)  # first interval with phi > target
        if j == k:  # the answer lies in the gap before interval k
            return max(0.0, target - phi_u0)
        phi_end = self.idle[j - 1] + total  # phi at the end of interval j-1
        return max(0.0, self.ends[j - 1] + (target - phi_end) - u0)


class DutyCycleLedger:
    """Per-sub-band record of transmissions, answering "when may I send next?".

    ``cap`` lowers every sub-band's limit to at most ``cap`` (e.g. 0.01 for LoRaWAN EU433, see
    ``Region.lorawan_duty_cycle``). ``default_limit`` admits frequencies outside every sub-band.
    """

    def __init__(
        self,
        subbands: Iterable[SubBand] = ETSI_SUBBANDS,
        *,
        window_s: float = 3600.0,
        policy: str = "both",
        default_limit: float | None = None,
        cap: float | None = None,
    ) -> None:
        self._subbands = tuple(subbands)
        if not all(isinstance(b, SubBand) for b in self._subbands):
            raise ConfigError("subbands must be SubBand objects")
        names = [b.name for b in self._subbands]
        if len(set(names)) != len(names) or _DEFAULT_BAND in names:
            raise ConfigError(f"sub-band names must be unique and not {_DEFAULT_BAND!r}: {names}")
        ordered = sorted(self._subbands, key=lambda b: b.low_hz)
        for a, b in zip(ordered, ordered[1:]):
            if b.low_hz < a.high_hz:
                raise ConfigError(f"sub-bands {a.name} and {b.name} overlap")
        self.window_s = _check_time("window_s", window_s, positive=True)
        if policy not in POLICIES:
            raise ConfigError(f"duty-cycle policy {policy!r} must be one of {', '.join(POLICIES)}")
        self.policy = policy
        for name, value in (("default_limit", default_limit), ("cap", cap)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1
            ):
                raise ConfigError(f"{name} {value!r} must be None or a duty cycle in (0, 1]")
        self.default_limit = default_limit
        self.cap = cap
        self._tracks: dict[str, _BusyTrack] = {}  # band name -> busy intervals
        self._blocked_until: dict[str, float] = {}  # band name -> end of the T_off pause
        self._latest = -math.inf  # latest time seen by record()/prune()

    # -- configuration look-ups -----------------------------------------------------------
    @property
    def subbands(self) -> tuple[SubBand, ...]:
        return self._subbands

    def subband_name(self, frequency_hz: float) -> str:
        """Name of the sub-band holding ``frequency_hz`` ("default" for the fallback band)."""
        if isinstance(frequency_hz, bool) or not isinstance(frequency_hz, (int, float)):
            raise ConfigError(f"frequency {frequency_hz!r} must be a number of Hz")
        for band in self._subbands:
            if band.contains(frequency_hz):
                return band.name
        if self.default_limit is not None:
            return _DEFAULT_BAND
        raise ConfigError(
            f"{frequency_hz / 1e6:g} MHz is in no duty-cycle sub-band ("
            + ", ".join(f"{b.name} {b.low_hz / 1e6:g}-{b.high_hz / 1e6:g} MHz" for b in self._subbands)
            + "); pass default_limit= to allow it"
        )

    def limit(self, frequency_hz: float) -> float:
        """Effective duty cycle (0..1] applying to ``frequency_hz``."""
        return self._limit_of(self.subband_name(frequency_hz))

    def _limit_of(self, band: str) -> float:
        if band == _DEFAULT_BAND:
            assert self.default_limit is not None
            dc = float(self.default_limit)
        else:
            dc = next(b.duty_cycle for b in self._subbands if b.name == band)
        return min(dc, self.cap) if self.cap is not None else dc

    def _track(self, band: str) -> _BusyTrack:
        track = self._tracks.get(band)
        return track if track is not None else _EMPTY_TRACK

    # -- recording --------------------------------------------------------------------------
    def record(self, frequency_hz: float, start_s: float, airtime_s: float) -> None:
        """Note a transmission of ``airtime_s`` seconds that started at ``start_s``."""
        start = _check_time("start_s", start_s)
        airtime = _check_time("airtime_s", airtime_s, positive=True)
        band = self.subband_name(frequency_hz)
        self._tracks.setdefault(band, _BusyTrack()).add(start, start + airtime)
        until = start + airtime / self._limit_of(band)  # end of frame + T_off
        self._blocked_until[band] = max(self._blocked_until.get(band, -math.inf), until)
        self.prune(start)

    def prune(self, now: float) -> None:
        """Forget what can no longer matter at ``now`` or later (bounds memory).

        Called by :meth:`record`; a long-idle owner may call it to free memory.
        """
        self._latest = max(self._latest, _check_time("now", now))
        horizon = self._latest - self.window_s
        for band in list(self._tracks):
            track = self._tracks[band]
            track.prune(horizon)
            if not len(track):
                del self._tracks[band]
        for band in list(self._blocked_until):
            if self._blocked_until[band] < self._latest and band not in self._tracks:
                del self._blocked_until[band]

    def entry_count(self) -> int:
        """Number of busy intervals remembered (all sub-bands; touching frames merge)."""
        return sum(len(t) for t in self._tracks.values())

    # -- queries ----------------------------------------------------------------------------
    def used(self, frequency_hz: float, start_s: float, end_s: float) -> float:
        """Airtime on ``frequency_hz``'s sub-band inside [start_s, end_s)."""
        track = self._track(self.subband_name(frequency_hz))
        lo, hi = _check_time("start_s", start_s), _check_time("end_s", end_s)
        return max(0.0, track.after(lo) - track.after(hi)) if hi > lo else 0.0

    def _window_budget(self, band: str) -> float:
        return self._limit_of(band) * self.window_s

    def next_allowed(self, frequency_hz: float, airtime_s: float, now: float) -> float:
        """Earliest start time >= ``now`` at which ``airtime_s`` may be sent on ``frequency_hz``.

        Raises :class:`AirtimeTooLongError` if the frame exceeds the sub-band's whole window
        budget (sliding-window policies) and so could never be sent.
        """
        airtime = _check_time("airtime_s", airtime_s, positive=True)
        t = _check_time("now", now)
        band = self.subband_name(frequency_hz)
        if self.policy in ("toff", "both"):
            t = max(t, self._blocked_until.get(band, -math.inf))
        if self.policy in ("sliding_window", "both"):
            budget = self._window_budget(band)
            if airtime > budget + _EPS:
                raise AirtimeTooLongError(
                    f"a {airtime:.3f} s frame exceeds the whole {budget:.3f} s budget of "
                    f"sub-band {band} ({self._limit_of(band):.3%} of {self.window_s:g} s): it can"
                    " never be sent; use a faster data rate, a shorter payload or another sub-band"
                )
            # The binding window is the one that ends with the new frame, [t + a - W, t + a):
            # move its start u right until the airtime already inside leaves room for a.
            u0 = t + airtime - self.window_s
            u = self._track(band).earliest_window_start(u0, max(0.0, budget - airtime))
            if u > u0:  # (u0 + W - a may differ from t by round-off: only move when needed)
                t = max(t, u + self.window_s - airtime)
        return t

    def can_send(self, frequency_hz: float, airtime_s: float, now: float) -> bool:
        """Whether ``airtime_s`` may be sent on ``frequency_hz`` starting at ``now``."""
        return self.next_allowed(frequency_hz, airtime_s, now) <= now + _EPS

    def budget_left(self, frequency_hz: float, now: float) -> float:
        """Longest frame (seconds) that could start at ``now`` on ``frequency_hz``'s sub-band.

        0 during a T_off pause (policies with "toff"); ``math.inf`` under "toff" alone when no
        pause is running (T_off does not cap a frame's length). Under the sliding window it is
        exact, counting the older airtime that leaves the window while the frame is sent.
        """
        t = _check_time("now", now)
        band = self.subband_name(frequency_hz)
        if self.policy in ("toff", "both") and self._blocked_until.get(band, -math.inf) > t + _EPS:
            return 0.0
        if self.policy == "toff":
            return math.inf
        return self._track(band).longest_frame(t - self.window_s, self._window_budget(band))

    def status(self, now: float) -> dict[str, dict[str, float]]:
        """Per sub-band: duty cycle, airtime in the last window, budget, T_off pause end."""
        t = _check_time("now", now)
        names = [b.name for b in self._subbands]
        if self.default_limit is not None:
            names.append(_DEFAULT_BAND)
        report: dict[str, dict[str, float]] = {}
        for name in names:
            track = self._track(name)
            report[name] = {
                "duty_cycle": self._limit_of(name),
                "used_s": max(0.0, track.after(t - self.window_s) - track.after(t)),
                "budget_s": self._window_budget(name),
                "blocked_until": self._blocked_until.get(name, -math.inf),
            }
        return report

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready snapshot: configuration, busy intervals [start, end], T_off ends."""
        return {
            "format": _FORMAT,
            "window_s": self.window_s,
            "policy": self.policy,
            "default_limit": self.default_limit,
            "cap": self.cap,
            "subbands": [
                {"name": b.name, "low_hz": b.low_hz, "high_hz": b.high_hz,
                 "duty_cycle": b.duty_cycle, "source": b.source}
                for b in self._subbands
            ],
            "entries": {
                band: [[s, e] for s, e in track.intervals()]
                for band, track in self._tracks.items()
            },
            "blocked_until": {
                band: t for band, t in self._blocked_until.items() if math.isfinite(t)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DutyCycleLedger:
        """Rebuild a ledger from :meth:`to_dict` output; ConfigError if it is malformed."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ConfigError(f"not a duty-cycle ledger snapshot (expected format {_FORMAT!r})")
        try:
            subbands = [
                SubBand(str(b["name"]), b["low_hz"], b["high_hz"], b["duty_cycle"],
                        str(b.get("source", "")))
                for b in data["subbands"]
            ]
            ledger = cls(
                subbands,
                window_s=data["window_s"],
                policy=data["policy"],
                default_limit=data.get("default_limit"),
                cap=data.get("cap"),
            )
            known = {b.name for b in subbands} | (
                {_DEFAULT_BAND} if ledger.default_limit is not None else set()
            )
            entries = data.get("entries", {})
            blocked = data.get("blocked_until", {})
            if not isinstance(entries, Mapping) or not isinstance(blocked, Mapping):
                raise ConfigError("entries and blocked_until must be mappings")
            for band in (*entries, *blocked):
                if band not in known:
                    raise ConfigError(f"snapshot names unknown sub-band {band!r}")
            for band, rows in entries.items():
                for row in rows:
                    start, end = row  # exactly two numbers per interval
                    start, end = _check_time("start", start), _check_time("end", end)
                    if end <= start:
                        raise ConfigError(f"busy interval {row!r} ends before it starts")
                    ledger._tracks.setdefault(band, _BusyTrack()).add(start, end)
                    ledger._latest = max(ledger._latest, start)
            for band, until in blocked.items():
                ledger._blocked_until[band] = _check_time("blocked_until", until)
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed duty-cycle ledger snapshot: {exc!r}") from None
        return ledger


_EMPTY_TRACK = _BusyTrack()
