"""The leadership epoch check for PostgreSQL writers beside the task store (messages, shared state).

Like `PostgresStore.fence`: once set, every write transaction first runs
`maos_fence(epoch)` (migration 3), which holds a share lock on the leadership
row until commit, so a new leader's epoch bump waits for writes that passed
the check, and a write after the bump fails with SQLSTATE MA001.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from .store import NotLeader
from .store._pg_schema import Conn
from .store._pg_statements import STALE_EPOCH


class EpochFence:
    """The epoch to check (None: unfenced, a control plane that never competes for leadership)."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self._on_deposed: Callable[[str], None] | None = None

    def set(self, epoch: int, on_deposed: Callable[[str], None]) -> None:
        self.epoch = epoch
        self._on_deposed = on_deposed

    async def check(self, conn: Conn) -> None:
        """Inside a transaction: raise if another control plane leads now."""
        if self.epoch is not None:
            await conn.execute("SELECT maos_fence($1::int8)", self.epoch)

    def stale(self, exc: asyncpg.PostgresError) -> NotLeader | None:
        """The error to raise for a write that failed the check (None: some other failure)."""
        if exc.sqlstate != STALE_EPOCH:
            return None
        if self._on_deposed is not None:
            self._on_deposed(str(exc))
        return NotLeader(f"this control plane is no longer the leader: {exc}")
