"""A small deterministic byte mutator, for when atheris (libFuzzer) is not installed.

The operators are libFuzzer's usual ones, plus two that matter for the text formats here
(YAML, RN2483 lines, CLI arguments): a run of ASCII digits rewritten as an interesting number
("1e999", "-1", a 400-digit integer, a Unicode digit) and a byte repeated up to the length
limit ("[" x 3000 reaches Python's recursion limit in a YAML parser). Every choice comes from
one ``random.Random(seed)``: the same seed and corpus give the same inputs, so a run can be
repeated exactly.
"""

from __future__ import annotations

import random
import re
import struct
from typing import Sequence

INTERESTING_8 = (0x00, 0x01, 0x02, 0x0A, 0x0D, 0x10, 0x20, 0x3F, 0x40, 0x7F, 0x80, 0x81,
                 0xC0, 0xE0, 0xFE, 0xFF)
INTERESTING_16 = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x10000, 0xFFFF0000)
#: Replacements for a number in text.
NUMBER_TEXTS = (
    b"0", b"-0", b"1", b"-1", b"255", b"256", b"65535", b"65536", b"4294967296", b"-2147483649",
    b"0.5", b"1e999", b"-1e999", b"1e-999", b".inf", b"-.inf", b".nan", b"nan", b"inf",
    b"1" + b"0" * 400, b"9" * 30, b"0x34", b"0b1", b"1_000", b"\xc2\xb2", b"\xd9\xa3",
    b"\xef\xbc\x97", b"1.7976931348623157e308", b"1e12", b"999999999999.99",
)
_DIGITS = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?")


class Mutator:
    """Produces mutants of corpus entries; ``tokens`` is the target's dictionary."""

    def __init__(self, rng: random.Random, *, tokens: Sequence[bytes] = (),
                 max_len: int = 512) -> None:
        self.rng = rng
        self.tokens = tuple(tokens) + NUMBER_TEXTS
        self.max_len = max_len
        self._ops = (
            (self._flip_bit, 6), (self._set_byte, 4), (self._interesting_byte, 4),
            (self._interesting_word, 3), (self._add_byte, 3), (self._insert_random, 3),
            (self._delete_range, 4), (self._duplicate_range, 2), (self._repeat_byte, 1),
            (self._insert_token, 4), (self._overwrite_token, 3), (self._rewrite_number, 4),
            (self._truncate, 2), (self._splice, 3), (self._swap_ranges, 1),
        )
        self._weights = [w for _, w in self._ops]

    def mutate(self, data: bytes, corpus: Sequence[bytes] = ()) -> bytes:
        """One mutant of ``data`` (1-4 stacked operations), at most ``max_len`` bytes."""
        buf = bytearray(data)
        for _ in range(1 + min(3, int(self.rng.expovariate(1.0)))):
            op = self.rng.choices(self._ops, self._weights)[0][0]
            buf = op(buf, corpus)
        return bytes(buf[: self.max_len])

    # -- operators ---------------------------------------------------------------------------
    def _pos(self, buf: bytearray, extra: int = 0) -> int:
        return self.rng.randrange(len(buf) + extra) if buf or extra else 0

    def _flip_bit(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if buf:
            buf[self._pos(buf)] ^= 1 << self.rng.randrange(8)
        return buf

    def _set_byte(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if buf:
            buf[self._pos(buf)] = self.rng.randrange(256)
        return buf

    def _interesting_byte(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if buf:
            buf[self._pos(buf)] = self.rng.choice(INTERESTING_8)
        return buf

    def _interesting_word(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if self.rng.random() < 0.5:
            raw = struct.pack(self.rng.choice(("<H", ">H")), self.rng.choice(INTERESTING_16))
        else:
            raw = struct.pack(self.rng.choice(("<I", ">I")), self.rng.choice(INTERESTING_32))
        i = self._pos(buf, 1)
        buf[i:i + len(raw)] = raw
        return buf

    def _add_byte(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if buf:
            i = self._pos(buf)
            buf[i] = (buf[i] + self.rng.choice((-2, -1, 1, 2, 16, -16))) & 0xFF
        return buf

    def _insert_random(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        i = self._pos(buf, 1)
        buf[i:i] = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 8)))
        return buf

    def _delete_range(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if buf:
            i = self._pos(buf)
            del buf[i:i + self.rng.randint(1, 16)]
        return buf

    def _duplicate_range(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if buf:
            i = self._pos(buf)
            chunk = buf[i:i + self.rng.randint(1, 32)]
            j = self._pos(buf, 1)
            buf[j:j] = chunk
        return buf

    def _repeat_byte(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        i = self._pos(buf, 1)
        byte = buf[i:i + 1] or bytes((self.rng.choice(INTERESTING_8),))
        buf[i:i] = byte * self.rng.randint(2, max(2, self.max_len - len(buf)))
        return buf

    def _insert_token(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        i = self._pos(buf, 1)
        buf[i:i] = self.rng.choice(self.tokens)
        return buf

    def _overwrite_token(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        token = self.rng.choice(self.tokens)
        i = self._pos(buf, 1)
        buf[i:i + len(token)] = token
        return buf

    def _rewrite_number(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        numbers = list(_DIGITS.finditer(buf))
        if not numbers:
            return self._interesting_byte(buf, corpus)
        m = self.rng.choice(numbers)
        buf[m.start():m.end()] = self.rng.choice(NUMBER_TEXTS)
        return buf

    def _truncate(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        return buf[: self._pos(buf, 1)]

    def _splice(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if not corpus:
            return buf
        other = self.rng.choice(corpus)
        return buf[: self._pos(buf, 1)] + other[self.rng.randrange(len(other) + 1):]

    def _swap_ranges(self, buf: bytearray, corpus: Sequence[bytes]) -> bytearray:
        if len(buf) < 4:
            return buf
        n = self.rng.randint(1, len(buf) // 2)
        i, j = sorted(self.rng.sample(range(len(buf) - n + 1), 2))
        if j - i < n:
            return buf
        buf[i:i + n], buf[j:j + n] = buf[j:j + n], buf[i:i + n]
        return buf
