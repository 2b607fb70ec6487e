"""Sortable ids for tasks and messages: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).

Sorting ids sorts tasks by creation time, which the store's paging and
recovery rely on. Within one millisecond (or if the clock steps back) the
random part counts up by one, so ids from one generator stay strictly
increasing.

A busy control plane names tens of thousands of messages a second, so the
encoding is cached: consecutive ids of one millisecond differ only in the
counter at the end, so the first 22 characters (time and the high 60 random
bits) are encoded once and the last 20 bits come from a table, two
characters per 10 bits.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two base32 characters.
_PAIRS = tuple(_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024))
_LOW_BITS = 20  # the last 4 characters
_LOW_MASK = (1 << _LOW_BITS) - 1


class UlidGenerator:
    """Monotonic ULIDs for one process."""

    __slots__ = ("_high", "_last_ms", "_last_rand", "_prefix")

    def __init__(self) -> None:
        self._last_ms = 0
        self._last_rand = 0
        self._high = -1  # the rand >> 20 that the prefix encodes
        self._prefix = ""

    def new(self) -> str:
        """The next id."""
        ms = time.time_ns() // 1_000_000
        if ms <= self._last_ms:
            rand = self._last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to count up
            self._last_ms = ms
            self._high = -1
        self._last_rand = rand
        high = rand >> _LOW_BITS
        if high != self._high:
            self._high = high
            self._prefix = _encode(self._last_ms, 10) + _encode(high, 12)
        low = rand & _LOW_MASK
        return self._prefix + _PAIRS[low >> 10] + _PAIRS[low & 1023]

    def new_many(self, n: int) -> list[str]:
        """The next `n` ids, as `n` calls of `new` in one millisecond would give them (a batch
        is named at once: the clock is read once, and each run of ids that shares a prefix is
        made by one comprehension)."""
        if n <= 0:
            return []
        out = [self.new()]  # reads the clock, starts or continues this millisecond's count
        rand = self._last_rand
        end = rand + n - 1
        while rand < end:
            high = (rand + 1) >> _LOW_BITS
            if high != self._high:
                self._high = high
                self._prefix = _encode(self._last_ms, 10) + _encode(high, 12)
            prefix = self._prefix
            stop = min(end, ((high + 1) << _LOW_BITS) - 1)  # the last rand under this prefix
            out += [
                prefix + _PAIRS[low >> 10] + _PAIRS[low & 1023]
                for low in range((rand + 1) & _LOW_MASK, (stop & _LOW_MASK) + 1)
            ]
            rand = stop
        self._last_rand = rand
        return out


def _encode(value: int, chars: int) -> str:
    out = []
    for _ in range(chars):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def is_task_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
