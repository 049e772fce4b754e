"""What a fuzz target is: seeds, a dictionary, and one function from bytes to an outcome.

``run(data)`` returns a short outcome label (the result kind or the documented error class)
and raises for a defect: :class:`InvariantViolation` when a result breaks a promise (a forged
MIC that verifies, a sample that does not re-encode), any other exception when the code under
test let one escape. Targets with state across inputs (the gateway) check it in
``check_state`` and rebuild it in ``reset`` (after a defect or a hang cut an input short).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from bench.common import REPO, testdata_dir


class InvariantViolation(AssertionError):
    """A result that breaks one of the harness's invariants."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)


def lorawan_vectors() -> list[dict]:
    return json.loads((testdata_dir() / "lorawan_vectors.json").read_text())["vectors"]


class Target:
    """Base class: subclasses set ``name`` and implement ``seeds`` and ``run``."""

    name = ""
    #: Longest input the mutators produce (libFuzzer -max_len).
    max_len = 512
    #: Per-input time bound; longer counts as a hang.
    timeout_s = 1.0
    #: Byte strings the mutators insert (also written as a libFuzzer dictionary).
    tokens: Sequence[bytes] = ()
    #: True when inputs change state that later inputs see (memory is then watched).
    stateful = False

    def seeds(self) -> list[bytes]:
        raise NotImplementedError

    def run(self, data: bytes) -> str:
        raise NotImplementedError

    def check_state(self) -> None:
        """Invariants on state kept across inputs; raise InvariantViolation."""

    def reset(self) -> None:
        """Rebuild state after an input was cut short."""

    def close(self) -> None:
        """Release temporary files."""


def fixture_key(label: str) -> bytes:
    """A 128-bit key for a harness fixture: derived from ``label`` (SHA-256), so inputs
    replay the same everywhere, and not a secret of anything (no key is written in code)."""
    return hashlib.sha256(f"lora_telemetry fuzz fixture, not a secret: {label}".encode()).digest()[:16]
