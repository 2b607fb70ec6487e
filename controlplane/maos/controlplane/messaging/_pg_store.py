"""Durable messages in PostgreSQL, beside the task store: they follow a failover.

Same calls and semantics as the SQLite `MessageStore`, on the task store's
schema and connection pool (tables from migration 4 in store/_pg_schema.py).
Writes go through an asyncio group-commit writer (`AsyncGroupWriter`): all
that is queued while a commit is in flight goes into the next transaction,
with each kind of row as one statement over arrays. With a leadership epoch
set (`fence`), each transaction checks it first, so a deposed leader cannot
write.

An acknowledged or expired message is marked processed rather than deleted at
once: loads read the unprocessed rows through the guide's partial index, and
processed rows are deleted in bulk by a later commit (`PURGE_AFTER_SECONDS`).
Leases are not stored: after a failover every message not acknowledged is
ready again, which is what at-least-once delivery promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from maos.controlplane._pg_fence import EpochFence
from maos.controlplane.store import CONNECTION_ERRORS, PostgresStore
from maos.controlplane.store._pg_schema import Conn
from maos.controlplane.store._pg_statements import Statement
from maos.controlplane.store._pg_writer import AsyncGroupWriter
from maos.controlplane.store._postgres import StoreUnreachable
from maos.errors import Unavailable

from ._mailbox import STORED_FIELDS, StoredMessage
from ._store import Loaded

# Processed rows stay this long before a commit deletes them (in bulk, off the ack's path).
PURGE_AFTER_SECONDS = 60.0
_PURGE_LIMIT = 50_000  # rows one purge deletes at most, so no commit grows unbounded

_COLUMNS = STORED_FIELDS
_TYPES = ("int8", "text", "text", "text", "text", "text", "int4", "bytea", "text", "float8", "float8")
_REPLACED = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c not in ("mailbox", "id"))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM messages WHERE NOT processed ORDER BY seq"
_SUBSCRIBE = (
    "INSERT INTO message_subscriptions (mailbox, topic, created_at) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::float8[]) ON CONFLICT (mailbox) DO NOTHING"
)
_UNSUBSCRIBE = "DELETE FROM message_subscriptions WHERE mailbox = ANY($1::text[])"
_PURGE = (
    "DELETE FROM messages WHERE seq IN "
    f"(SELECT seq FROM messages WHERE processed AND processed_at < $1 LIMIT {_PURGE_LIMIT})"
)


@dataclass(slots=True)
class _Write:
    """One caller's writes; a group's writes apply in order inside one transaction."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    processed: list[int] = field(default_factory=list)
    subscribe: list[tuple[str, str, float]] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inserts) + len(self.processed) + len(self.subscribe) + len(self.unsubscribe)


def _row(msg: StoredMessage) -> tuple[Any, ...]:
    return (
        msg.seq,
        msg.mailbox,
        msg.id,
        msg.sender,
        msg.recipient,
        msg.topic,
        msg.priority,
        msg.data,
        msg.content_type,
        msg.sent_at,
        msg.expires_at,
    )


def _insert(st: Statement, rows: Sequence[tuple[Any, ...]]) -> str:
    # An id already held unprocessed is a no-op (as SQLite's INSERT OR IGNORE); one whose
    # earlier copy was processed but not yet purged is sent afresh, so the row is replaced.
    return (
        f"INSERT INTO messages ({', '.join(_COLUMNS)}) SELECT * FROM {st.unnest(_TYPES, rows)} "
        f"ON CONFLICT (mailbox, id) DO UPDATE SET {_REPLACED}, processed = false, processed_at = 0 "
        "WHERE messages.processed"
    )


def _mark(st: Statement, seqs: Sequence[int], now: float) -> str:
    return (
        f"UPDATE messages SET processed = true, processed_at = {st.param(now, 'float8')} "
        f"WHERE seq = ANY({st.param(list(seqs), 'int8[]')}) AND NOT processed"
    )


class PostgresMessageStore:
    """Messages and topic subscriptions in the task store's PostgreSQL schema."""

    def __init__(self, store: PostgresStore, *, purge_after_seconds: float = PURGE_AFTER_SECONDS) -> None:
        self._store = store
        self._purge_after = purge_after_seconds
        self._next_purge = 0.0  # monotonic time of the next purge
        self._fence = EpochFence()
        # Through a PostgreSQL outage, groups are kept and committed again in order once it is back,
        # like the task store's: a replay is harmless (inserts replace their own row, acks are marks).
        self._writer: AsyncGroupWriter[_Write] = AsyncGroupWriter(
            self._commit,
            name="maos-postgres-messages-writer",
            transient=(StoreUnreachable,),
            outage_limit_seconds=store.options.outage_limit_seconds,
        )
        self._started = False

    @property
    def description(self) -> str:
        return self._store.description

    @property
    def backlog(self) -> int:
        return self._writer.backlog

    @property
    def commits(self) -> int:
        return self._writer.commits

    def fence(self, epoch: int, on_deposed: Callable[[str], None]) -> None:
        """Check `epoch` in every later write transaction; call `on_deposed` once it is stale."""
        self._fence.set(epoch, on_deposed)

    async def open(self) -> Loaded:
        """Load what the tables hold and start the writer (the task store is open: its
        migrations made the tables)."""
        loaded = await self.read_all()
        if not self._started:
            self._started = True
            self._next_purge = time.monotonic() + self._purge_after
            self._writer.start()
        return loaded

    async def read_all(self) -> Loaded:
        """Every unprocessed message and subscription, as committed now, from one snapshot."""
        async with self._read() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(_SELECT)
            subs = await conn.fetch("SELECT mailbox, topic FROM message_subscriptions ORDER BY mailbox")
            max_seq = await conn.fetchval("SELECT COALESCE(MAX(seq), 0) FROM messages")
        messages = [StoredMessage(*r) for r in rows]
        return Loaded(messages, [(str(r[0]), str(r[1])) for r in subs], int(max_seq))

    async def close(self) -> None:
        """Commit what is queued, then stop the writer (the pool is the task store's). Idempotent."""
        await self._writer.close()

    # ------------------------------------------------------------------ writes

    def insert(self, messages: Sequence[StoredMessage]) -> asyncio.Future[None]:
        return self._writer.submit(_Write(inserts=[_row(m) for m in messages]))

    def delete(self, seqs: Sequence[int]) -> asyncio.Future[None]:
        return self._writer.submit(_Write(processed=list(seqs)))

    def subscribe(self, mailbox: str, topic: str, created_at: float) -> asyncio.Future[None]:
        return self._writer.submit(_Write(subscribe=[(mailbox, topic, created_at)]))

    def unsubscribe(self, mailbox: str, seqs: Sequence[int]) -> asyncio.Future[None]:
        return self._writer.submit(_Write(processed=list(seqs), unsubscribe=[mailbox]))

    async def _commit(self, writes: list[_Write]) -> None:
        inserts: dict[tuple[str, str], tuple[Any, ...]] = {}
        processed: list[int] = []
        for write in writes:
            for row in write.inserts:
                inserts.setdefault((row[1], row[2]), row)  # one statement may not touch a row twice
            processed += write.processed
        rare = any(w.subscribe or w.unsubscribe for w in writes)
        purge = time.monotonic() >= self._next_purge
        now = time.time()
        try:
            async with self._store.pool.acquire(timeout=self._store.options.acquire_timeout_seconds) as conn:
                if rare or purge:
                    await self._commit_in_steps(conn, writes, now, purge)
                else:
                    await self._commit_one(conn, list(inserts.values()), processed, now)
        except asyncpg.PostgresError as exc:
            stale = self._fence.stale(exc)
            if stale is not None:
                raise stale from None
            if isinstance(exc, CONNECTION_ERRORS):
                raise self._store.unreachable(exc) from None
            raise
        except CONNECTION_ERRORS as exc:
            raise self._store.unreachable(exc) from None

    async def _commit_one(self, conn: Conn, inserts: list[tuple[Any, ...]], processed: list[int], now: float) -> None:
        """The common group (sends and acks): one statement, one round trip. Inserts and acks
        never touch the same row in a group (a message is acknowledged only once its insert
        committed), so one snapshot for both is right."""
        st = Statement()
        ctes = []
        if inserts:
            ctes.append(f"ins AS ({_insert(st, inserts)})")
        if processed:
            ctes.append(f"ack AS ({_mark(st, processed, now)})")
        epoch = self._fence.epoch
        main = "SELECT true" if epoch is None else f"SELECT maos_fence({st.param(epoch, 'int8')})"
        await conn.execute(f"WITH {', '.join(ctes)} {main}" if ctes else main, *st.args)

    async def _commit_in_steps(self, conn: Conn, writes: list[_Write], now: float, purge: bool) -> None:
        """Subscriptions, unsubscriptions or a purge: statements in the writes' order, one transaction."""
        async with conn.transaction():
            await self._fence.check(conn)
            for write in writes:
                # A write's own order: subscribe before inserts, acks before unsubscribe.
                if write.subscribe:
                    await conn.execute(_SUBSCRIBE, *(list(col) for col in zip(*write.subscribe, strict=True)))
                if write.inserts:
                    st = Statement()
                    rows = list({(r[1], r[2]): r for r in reversed(write.inserts)}.values())
                    await conn.execute(_insert(st, rows), *st.args)
                if write.processed:
                    st = Statement()
                    await conn.execute(_mark(st, write.processed, now), *st.args)
                if write.unsubscribe:
                    await conn.execute(_UNSUBSCRIBE, write.unsubscribe)
            if purge:
                await conn.execute(_PURGE, now - self._purge_after)
        if purge:
            self._next_purge = time.monotonic() + self._purge_after

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        try:
            async with self._store.pool.acquire(timeout=self._store.options.acquire_timeout_seconds) as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            raise Unavailable(
                f"the message store {self.description} is unreachable: {exc or type(exc).__name__}"
            ) from None
