"""What the message service needs from its storage: SQLite (`MessageStore`) or PostgreSQL
(`PostgresMessageStore`) answer the same calls with the same semantics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from ._mailbox import StoredMessage
from ._store import Loaded


class MessageBackend(Protocol):
    """Durable messages and topic subscriptions; every write's future resolves once it is durable."""

    @property
    def backlog(self) -> int:
        """Rows handed to the writer and not yet committed."""

    @property
    def commits(self) -> int:
        """Transactions committed (for tests and benchmarks)."""

    async def open(self) -> Loaded:
        """Start writing; return every undelivered message and subscription."""

    async def read_all(self) -> Loaded:
        """Every undelivered message and subscription, as committed now."""

    async def close(self) -> None:
        """Commit what is queued, then stop. Idempotent."""

    def insert(self, messages: Sequence[StoredMessage]) -> asyncio.Future[None]: ...

    def delete(self, seqs: Sequence[int]) -> asyncio.Future[None]:
        """Messages acknowledged or expired: never loaded again."""

    def subscribe(self, mailbox: str, topic: str, created_at: float) -> asyncio.Future[None]: ...

    def unsubscribe(self, mailbox: str, seqs: Sequence[int]) -> asyncio.Future[None]:
        """Forget a subscription and the messages it held, in one transaction."""
