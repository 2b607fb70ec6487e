"""Sortable task ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).

Sorting ids sorts tasks by creation time, which the store's paging and
recovery rely on. Within one millisecond the random part is incremented, so
ids from this process stay strictly increasing.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UlidGenerator:
    """Monotonic ULIDs for one process."""

    def __init__(self) -> None:
        self._last_ms = 0
        self._last_rand = 0

    def new(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms <= self._last_ms:
            ms = self._last_ms
            rand = self._last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        self._last_ms, self._last_rand = ms, rand
        value = (ms << 80) | rand
        chars = []
        for _ in range(26):
            chars.append(_ALPHABET[value & 31])
            value >>= 5
        return "".join(reversed(chars))


def is_task_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
