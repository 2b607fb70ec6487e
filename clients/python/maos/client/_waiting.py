"""Splitting a long wait into bounded WaitTasks calls (shared by both clients)."""

from __future__ import annotations

import time

WAIT_CHUNK_SECONDS = 30.0
"""Longest single WaitTasks call: short enough to notice a dead connection."""

# WaitTasks reads timeout_seconds=0 as "no limit", so an expired deadline still
# asks for a tiny positive wait: the server answers with the current state.
_MIN_CHUNK_SECONDS = 0.001


class WaitClock:
    """The remaining budget of one overall wait (None = unbounded)."""

    __slots__ = ("_deadline",)

    def __init__(self, timeout: float | None) -> None:
        self._deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)

    def next_chunk(self, longest: float) -> float:
        """Seconds the next WaitTasks call may wait."""
        if self._deadline is None:
            return longest
        return max(_MIN_CHUNK_SECONDS, min(longest, self._deadline - time.monotonic()))

    def expired(self) -> bool:
        """True once the overall timeout has passed (never for an unbounded wait)."""
        return self._deadline is not None and time.monotonic() >= self._deadline
