"""The analytic ALOHA model against its textbook figures and a Monte Carlo check."""

from __future__ import annotations

import math
import random

import pytest

from lora_telemetry.core.aloha import finite_aloha_success, offered_load, pure_aloha_success


def test_pure_aloha_peak_throughput() -> None:
    # Abramson's result: S = G e^(-2G) peaks at G = 0.5 with S = 1/(2e) ~ 0.184.
    s = [g / 100 * pure_aloha_success(g / 100) for g in range(1, 200)]
    assert max(s) == pytest.approx(1 / (2 * math.e), rel=1e-4)
    assert s.index(max(s)) + 1 == 50


def test_finite_population_tends_to_poisson() -> None:
    t, p = 0.066816, 2.0
    for n in (2, 4, 20):
        assert finite_aloha_success(n, t, p) > pure_aloha_success(offered_load(n, t, p))
    n = 2000
    assert finite_aloha_success(n, t, n * 0.5) == pytest.approx(
        pure_aloha_success(offered_load(n, t, n * 0.5)), rel=0.01)


def test_finite_model_matches_monte_carlo() -> None:
    rng = random.Random(7)
    n, t, p, rounds = 4, 0.066816, 2.0, 20000
    ok = 0
    for _ in range(rounds):
        mine = rng.uniform(0, p)
        others = [rng.uniform(0, p) for _ in range(n - 1)]
        # circular distance: each other node has exactly one frame per period
        ok += all(min(abs(o - mine), p - abs(o - mine)) >= t for o in others)
    assert ok / rounds == pytest.approx(finite_aloha_success(n, t, p), abs=0.01)
