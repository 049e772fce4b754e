"""Numbers that come from outside (YAML, JSON, parameters, arguments), checked one way.

Two traps this avoids: ``bool`` is an ``int``, and ``math.isfinite``/``float`` raise
OverflowError for an int beyond float range (``10**400`` parses fine from YAML or JSON).
"""

from __future__ import annotations

import math


def finite_float(value: object) -> float | None:
    """``value`` as a float when it is a real number (not a bool) with a finite float value;
    None for NaN, infinities, ints beyond float range and anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
