"""Sortable task ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).

Sorting ids sorts tasks by creation time, which the store's paging and
recovery rely on. Within one millisecond the random part is incremented, so
ids from this process stay strictly increasing.
"""

from __future__ import annotations

import base64
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UlidGenerator:
    """Monotonic ULIDs for one process."""

    def __init__(self) -> None:
        self._last_ms = 0
        self._last_rand = 0
        self._prefix = ""

    def new(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms <= self._last_ms:
            rand = self._last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
            self._last_ms = ms
            self._prefix = _encode_time(ms)  # the 48-bit time is 10 characters, the same all millisecond
        self._last_rand = rand
        # The 80 random bits are exactly 16 base32 characters: the C encoder, mapped to Crockford's alphabet.
        return self._prefix + base64.b32encode(rand.to_bytes(10, "big")).decode().translate(_TO_CROCKFORD)


_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def _encode_time(ms: int) -> str:
    chars = []
    for _ in range(10):
        chars.append(_ALPHABET[ms & 31])
        ms >>= 5
    return "".join(reversed(chars))


def is_task_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
