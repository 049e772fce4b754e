"""Analytic pure-ALOHA delivery: what a swarm of uncoordinated senders should expect.

Each of `n` nodes sends frames of airtime T once per period P at a random phase. A frame is
lost when another node's frame overlaps it, i.e. starts within the 2T "vulnerable period"
around it (unslotted ALOHA, Abramson 1970). With the offered load G = n T / P:

* `pure_aloha_success(G)` = e^(-2G): the classical infinite-population (Poisson) model.
* `finite_aloha_success(n, T, P)` = (1 - 2T/P)^(n-1): the same collision rule with n
  independent periodic senders. A node never collides with itself, so for a handful of UAVs
  this is the honest prediction; it tends to e^(-2G) as n grows.
"""

from __future__ import annotations

import math

from lora_telemetry.core.errors import ConfigError


def offered_load(n: int, airtime_s: float, period_s: float) -> float:
    """G: frames on the air per frame time, summed over the swarm."""
    _check(n, airtime_s, period_s)
    return n * airtime_s / period_s


def pure_aloha_success(load: float) -> float:
    if load < 0:
        raise ConfigError(f"offered load {load} must be >= 0")
    return math.exp(-2.0 * load)


def finite_aloha_success(n: int, airtime_s: float, period_s: float) -> float:
    _check(n, airtime_s, period_s)
    vulnerable = min(1.0, 2.0 * airtime_s / period_s)
    return (1.0 - vulnerable) ** (n - 1)


def _check(n: int, airtime_s: float, period_s: float) -> None:
    if n < 1 or airtime_s <= 0 or period_s <= 0:
        raise ConfigError(f"need n >= 1, airtime > 0 and period > 0 (got {n}, {airtime_s}, {period_s})")
