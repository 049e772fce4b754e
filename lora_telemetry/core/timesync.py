"""Which time it is: GPS time from the flight controller, else the beacon's, else the host's.

TDMA (core/tdma.py) needs every UAV to know GPS time to a few milliseconds. The drone node's
host clock is not trusted for that: a companion computer without NTP, or a SITL whose clock
ran 6.5 s behind the host, is common. So GPS time is the reference, and a host clock that
disagrees with it is what gets the warning (the reverse of what the telemetry timestamps did
before TDMA). :class:`TimeKeeper` estimates ``offset = GPS time - host time`` from:

1. **SYSTEM_TIME** (``time_unix_usec``, GPS-disciplined UTC in ArduPilot and PX4) paired
   with the host time the message was received. The serial link and the host's scheduling
   only ever *delay* a message, which makes ``gps - host_rx`` too small by that delay, so
   the estimate follows the upper envelope of the samples (the least-delayed one of each
   second, :class:`LeastDelayFilter`) and fits a line through it for the host clock's
   drift. Its uncertainty is the envelope's scatter about the line, plus the drift the
   estimate may have missed since the last sample.
2. **Beacons**, when no GPS time is fresh: the ground's beacon starts one guard after its
   superframe's start (GPS time), so its reception end, minus the module's reporting
   latency, is a time sample of the same kind.
3. **The host clock** as a last resort, with a warning: fine for timestamps, not for slots
   (:attr:`TimeKeeper.usable` is false unless ``trust_host_clock``). A UAV without GPS time
   and without beacons for ``beacon_timeout_s`` therefore stops transmitting rather than
   collide.

Pure: every time is passed in; :meth:`TimeKeeper.update` sets "now" for the properties the
access policy reads.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections import deque
from dataclasses import dataclass

#: SYSTEM_TIME.time_unix_usec is believed between 2015-01-01 and 2100-01-01 (ArduPilot sends
#: 0 before it has a GPS fix).
_PLAUSIBLE_UNIX_S = (1_420_070_400.0, 4_102_444_800.0)
#: Worst host-clock drift assumed between two samples (crystal oscillators: tens of ppm).
_MAX_DRIFT = 100e-6
#: Host and GPS time disagreeing by more than this is worth a warning.
DISAGREEMENT_WARN_S = 0.5


class TimeSource(str, enum.Enum):
    GPS = "gps"
    BEACON = "beacon"
    HOST = "host"


@dataclass(frozen=True)
class TimeEstimate:
    """GPS time = host time + ``offset_s`` (within ``uncertainty_s``), from ``source``."""

    source: TimeSource
    offset_s: float
    uncertainty_s: float
    drift_ppm: float = 0.0
    age_s: float = math.inf  # since the source's last sample


class LeastDelayFilter:
    """The least-delayed (gps - host) samples: an offset and drift estimate that delays
    cannot pull down.

    * **Drift**: a least-squares line through the highest sample of each ``bucket_s`` of host
      time over ``window_s`` (the slope; the delays of the bucket maxima scatter, but over a
      minute the slope is good to a few ppm, and it is clamped to +-100 ppm, a crystal's
      worst); fewer than ``min_buckets`` buckets: no drift.
    * **Offset**: with that slope taken out, the highest sample of the last
      ``recent_s`` (the least delayed), carried to the time asked for along the slope.
    * **Uncertainty**: the delay still in that sample, bounded by four times the spread of the
      recent detrended samples over their number plus one (that many delays spread that wide
      leave more only with a probability of about e^-4; at least ``floor_s``); the spread is
      taken as twice the median delay, so a few samples held up by a busy host do not count;
      plus two standard errors of the slope over the time since that sample, plus the worst
      drift since the newest sample.
    """

    def __init__(self, window_s: float = 60.0, bucket_s: float = 1.0, recent_s: float = 10.0,
                 min_buckets: int = 30, floor_s: float = 1e-4, min_samples: int = 8) -> None:
        self.window_s = window_s
        self.bucket_s = bucket_s
        self.recent_s = recent_s
        self.min_buckets = min_buckets
        self.floor_s = floor_s
        self.min_samples = min_samples
        self._samples: deque[tuple[float, float]] = deque()  # (host time, gps - host)
        self.last_sample_at: float | None = None
        self.samples = 0

    def add(self, host_time_s: float, offset_s: float) -> None:
        self.samples += 1
        self.last_sample_at = host_time_s
        self._samples.append((host_time_s, offset_s))
        while self._samples and self._samples[0][0] < host_time_s - self.window_s:
            self._samples.popleft()

    def _slope(self) -> tuple[float, float]:
        """(slope, the slope error to allow for): from the fit, twice its standard error;
        with too few buckets, no slope and the worst drift."""
        maxima: dict[int, tuple[float, float]] = {}
        for t, o in self._samples:
            b = math.floor(t / self.bucket_s)
            if b not in maxima or o > maxima[b][1]:
                maxima[b] = (t, o)
        if len(maxima) < self.min_buckets:
            return 0.0, _MAX_DRIFT
        points = list(maxima.values())
        n = len(points)
        mx = sum(t for t, _ in points) / n
        my = sum(o for _, o in points) / n
        sxx = sum((t - mx) ** 2 for t, _ in points)
        if sxx <= 0:
            return 0.0, _MAX_DRIFT
        slope = sum((t - mx) * (o - my) for t, o in points) / sxx
        residual = sum((o - my - slope * (t - mx)) ** 2 for t, o in points) / (n - 2)
        slope = max(-_MAX_DRIFT, min(_MAX_DRIFT, slope))
        return slope, min(_MAX_DRIFT, 2 * math.sqrt(residual / sxx))

    def estimate(self, host_now: float) -> tuple[float, float, float] | None:
        """(offset, uncertainty, drift) at ``host_now``, None before the first sample."""
        if not self._samples or self.last_sample_at is None:
            return None
        slope, slope_error = self._slope()
        recent = [(t, o) for t, o in self._samples if t >= self.last_sample_at - self.recent_s]
        detrended = [o - slope * (t - host_now) for t, o in recent]
        best = max(range(len(recent)), key=detrended.__getitem__)
        offset = detrended[best]
        # How widely the delays spread, from their median (twice the median delay is the
        # spread of uniform delays): one sample delayed by a busy host must not make the
        # estimate look poor, as the min would (the envelope itself is not moved by it).
        spread = 2 * (offset - statistics.median(detrended))
        age = max(0.0, host_now - self.last_sample_at)
        # Delay left in the best sample, plus what the slope's error does between that sample
        # and now, plus the worst drift since the newest sample. Too few samples to tell a
        # small delay from luck: not an estimate to trust yet.
        if len(self._samples) < self.min_samples:
            return offset, math.inf, slope * 1e6
        uncertainty = (max(self.floor_s, 4 * spread / (len(detrended) + 1))
                       + slope_error * abs(host_now - recent[best][0]) + age * _MAX_DRIFT)
        return offset, uncertainty, slope * 1e6


class TimeKeeper:
    """See the module docstring. Implements core.tdma.TimeMapping."""

    def __init__(self, *, gps_timeout_s: float = 3.0, beacon_timeout_s: float = 5.0,
                 trust_host_clock: bool = False, max_uncertainty_s: float = 0.002) -> None:
        self.gps = LeastDelayFilter()
        # A beacon's reception report comes with the module's fixed latency, not a serial
        # link's scheduling noise: fewer samples make an estimate (beacons may be seconds apart).
        self.beacon = LeastDelayFilter(min_samples=3)
        self.gps_timeout_s = gps_timeout_s
        self.beacon_timeout_s = beacon_timeout_s
        self.trust_host_clock = trust_host_clock
        self.max_uncertainty_s = max_uncertainty_s
        self.rejected_gps = 0
        self._now = -math.inf
        self._estimate = TimeEstimate(TimeSource.HOST, 0.0, math.inf)

    # -- inputs --------------------------------------------------------------------------------
    def add_gps(self, gps_time_s: float, host_rx_s: float) -> bool:
        """A SYSTEM_TIME sample; False (and counted) when its time is not plausible."""
        if not (_PLAUSIBLE_UNIX_S[0] < gps_time_s < _PLAUSIBLE_UNIX_S[1]) or not math.isfinite(host_rx_s):
            self.rejected_gps += 1
            return False
        self.gps.add(host_rx_s, gps_time_s - host_rx_s)
        return True

    def add_beacon(self, gps_time_at_rx_s: float, host_rx_s: float) -> None:
        """A beacon received: the GPS time its reception ended (as the schedule says)."""
        self.beacon.add(host_rx_s, gps_time_at_rx_s - host_rx_s)

    def update(self, host_now: float) -> TimeEstimate:
        """Re-estimate at ``host_now`` (the drone loop calls this on every pass)."""
        self._now = host_now
        for source, filt, timeout in ((TimeSource.GPS, self.gps, self.gps_timeout_s),
                                      (TimeSource.BEACON, self.beacon, self.beacon_timeout_s)):
            if filt.last_sample_at is None or host_now - filt.last_sample_at > timeout:
                continue
            est = filt.estimate(host_now)
            if est is not None and math.isfinite(est[1]):  # too few samples: the next source
                offset, uncertainty, drift = est
                self._estimate = TimeEstimate(source, offset, uncertainty, drift,
                                              host_now - filt.last_sample_at)
                return self._estimate
        self._estimate = TimeEstimate(TimeSource.HOST, 0.0, math.inf)
        return self._estimate

    # -- what others read ------------------------------------------------------------------------
    @property
    def estimate(self) -> TimeEstimate:
        return self._estimate

    @property
    def usable(self) -> bool:
        """Good enough for a TDMA slot: GPS or beacon time within ``max_uncertainty_s``, or the
        host clock when it is explicitly trusted (e.g. a PTP/NTP-disciplined companion)."""
        est = self._estimate
        if est.source is TimeSource.HOST:
            return self.trust_host_clock
        return est.uncertainty_s <= self.max_uncertainty_s

    def to_gps(self, host_time_s: float) -> float:
        return host_time_s + self._estimate.offset_s

    def to_host(self, gps_time_s: float) -> float:
        return gps_time_s - self._estimate.offset_s

    def warning(self) -> str | None:
        """Why a person should look at the clocks, or None."""
        est = self._estimate
        if est.source is TimeSource.HOST:
            return ("no GPS time from the flight controller and no beacon: using the host clock"
                    + ("" if self.trust_host_clock else "; TDMA frames are held until time returns"))
        if abs(est.offset_s) > DISAGREEMENT_WARN_S:
            side = "behind" if est.offset_s > 0 else "ahead of"
            return f"the host clock is {abs(est.offset_s):.3f} s {side} {est.source.value} time"
        return None

    def stats(self) -> dict[str, float | int | str]:
        est = self._estimate
        return {"time_source": est.source.value, "time_offset_s": est.offset_s,
                "time_uncertainty_ms": 1e3 * est.uncertainty_s, "time_drift_ppm": est.drift_ppm,
                "time_sample_age_s": est.age_s, "gps_time_samples": self.gps.samples,
                "beacon_time_samples": self.beacon.samples, "gps_time_rejected": self.rejected_gps}
