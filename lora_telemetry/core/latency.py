"""A device's processing delay with its jitter: one small value object.

A serial module does not put a frame on the air the instant the last byte of its transmit
command arrives, nor report a received frame the instant it leaves the air: its firmware
parses, programs the transceiver, waits for the PLL, reads the FIFO. Each family states those
delays once as :class:`Latency` values (``radios/<family>/timing.py``, with where the figures
come from); the family's emulator logic draws from them (seeded) and the registry's timing
model (radios/registry.py ``FamilyTiming``) predicts with them, so the emulation and the
prediction a drone node schedules with cannot disagree.

A delay is uniform in ``[nominal_s - jitter_s, nominal_s + jitter_s]``: ``nominal_s`` is what a
caller leads by, ``jitter_s`` the half-width it must tolerate.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["INSTANT", "Latency"]


@dataclass(frozen=True)
class Latency:
    """A delay of ``nominal_s`` +/- ``jitter_s`` seconds, uniformly distributed."""

    nominal_s: float
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("nominal_s", "jitter_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Latency.{name} must be a finite number >= 0, got {value!r}")
        if self.jitter_s > self.nominal_s:
            raise ValueError(f"Latency jitter {self.jitter_s} s exceeds its nominal "
                             f"{self.nominal_s} s: a delay cannot be negative")

    @property
    def low_s(self) -> float:
        return self.nominal_s - self.jitter_s

    @property
    def high_s(self) -> float:
        return self.nominal_s + self.jitter_s

    def draw(self, rng: random.Random) -> float:
        """One delay (no draw at all for a delay without jitter, so a seeded sequence of other
        decisions is not shifted by a fixed delay)."""
        if self.jitter_s == 0.0:
            return self.nominal_s
        return rng.uniform(self.low_s, self.high_s)


#: No delay at all (logic unit tests about something else).
INSTANT = Latency(0.0, 0.0)
