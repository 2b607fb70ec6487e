"""Durable messages: SQLite tables beside the task store's, written by a writer thread of their own.

The same database file as the task store (WAL lets both writers take turns;
each waits on the other through SQLite's busy timeout), with its own
connections. Writes are queued to one thread that puts everything waiting
into one transaction (group commit) and resolves each caller's future on the
event loop once it is durable. The event loop never touches SQLite; the
initial load runs in a thread.

Each insert (a send's copies) is stored as one row holding the whole batch
(`_store_batches`); deletes mark seqs gone and drop a batch's row with its last
message. There is no (mailbox, id) unique index: the service dedupes client ids
in memory (each mailbox's recent ids and the commits under way), and every seq
is new, so the store never had a duplicate to refuse.

Leases are not stored: after a restart every message not acknowledged is
ready again, which is what at-least-once delivery promises.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maos.controlplane._group_commit import GroupCommitWriter, connect
from maos.errors import Unavailable

from ._mailbox import StoredMessage
from ._store_batches import BatchIndex, create_tables, drop_stale, migrate_v1, scan

log = logging.getLogger(__name__)

# 1: one row per message in `messages`. 2: one row per inserted batch (`message_batches`).
SCHEMA_VERSION = 2
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS messaging_schema (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS message_subscriptions (
        mailbox TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
)
_SUBSCRIBE = "INSERT OR IGNORE INTO message_subscriptions (mailbox, topic, created_at) VALUES (?, ?, ?)"
_UNSUBSCRIBE = "DELETE FROM message_subscriptions WHERE mailbox = ?"


@dataclass(slots=True)
class _Write:
    """One caller's writes; the writer runs them in order inside a group's transaction."""

    inserts: Sequence[StoredMessage] = ()  # one batch: one row
    deletes: list[int] = field(default_factory=list)
    subscribe: list[tuple[str, str, float]] = field(default_factory=list)
    unsubscribe: list[tuple[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inserts) + len(self.deletes) + len(self.subscribe) + len(self.unsubscribe)


@dataclass(slots=True)
class Loaded:
    """What the store held at start-up."""

    messages: list[StoredMessage]
    subscriptions: list[tuple[str, str]]  # (mailbox, topic)
    max_seq: int


class MessageStore:
    """Messages and topic subscriptions in SQLite; group commits off the event loop."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self._path = path
        self._synchronous = synchronous.upper()
        # Where each stored seq lives; the writer thread's alone once it runs. None after a
        # failed transaction: rebuilt from the database by the next one.
        self._index: BatchIndex | None = None
        self._writer: GroupCommitWriter[_Write] = GroupCommitWriter(
            path, self._commit, synchronous=self._synchronous, name="maos-messages-writer"
        )

    @property
    def backlog(self) -> int:
        """Rows handed to the writer and not yet committed."""
        return self._writer.backlog

    @property
    def commits(self) -> int:
        """Transactions committed (for tests and benchmarks)."""
        return self._writer.commits

    async def open(self) -> Loaded:
        """Create the tables if needed (converting an older schema), load what they hold, start the writer."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        loaded = await asyncio.to_thread(self._load)
        self._writer.start(asyncio.get_running_loop())
        return loaded

    def _load(self) -> Loaded:
        conn = connect(self._path, self._synchronous)
        try:
            # One transaction: a conversion from schema 1 happens whole or not at all.
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._migrate(conn)
                found = scan(conn)
                if found.stale:
                    drop_stale(conn, found.stale)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._index = found.index
            return Loaded(found.messages, _subscriptions(conn), found.index.max_seq)
        finally:
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        for statement in _SCHEMA:
            conn.execute(statement)
        create_tables(conn)
        row = conn.execute("SELECT version FROM messaging_schema").fetchone()
        if row is None:
            conn.execute("INSERT INTO messaging_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise Unavailable(
                f"{self._path} has messaging schema version {row[0]}, newer than this control plane's "
                f"{SCHEMA_VERSION}: run a newer MAOS against it"
            )
        elif row[0] < SCHEMA_VERSION:
            moved = migrate_v1(conn)
            conn.execute("UPDATE messaging_schema SET version = ?", (SCHEMA_VERSION,))
            log.info("%s: converted %d stored messages to messaging schema %d", self._path, moved, SCHEMA_VERSION)

    async def read_all(self) -> Loaded:
        """Every stored message and subscription, as committed now (checkpoints copy them)."""

        def read() -> Loaded:
            conn = connect(self._path, self._synchronous)
            try:
                conn.execute("BEGIN")  # one snapshot for the reads
                found = scan(conn)
                return Loaded(found.messages, _subscriptions(conn), found.index.max_seq)
            finally:
                conn.close()

        return await asyncio.to_thread(read)

    async def close(self) -> None:
        """Commit what is queued, then stop the writer. Idempotent."""
        await self._writer.close()

    # ------------------------------------------------------------------ writes

    def insert(self, messages: Sequence[StoredMessage]) -> asyncio.Future[None]:
        """Store messages (as one batch row); the future resolves once they are durable.
        The writer thread reads their stored fields, which nobody changes after creation."""
        return self._submit(_Write(inserts=list(messages)))

    def delete(self, seqs: Sequence[int]) -> asyncio.Future[None]:
        """Delete messages by seq (acknowledged or expired)."""
        return self._submit(_Write(deletes=list(seqs)))

    def subscribe(self, mailbox: str, topic: str, created_at: float) -> asyncio.Future[None]:
        """Record a topic subscription so it outlives a restart."""
        return self._submit(_Write(subscribe=[(mailbox, topic, created_at)]))

    def unsubscribe(self, mailbox: str, seqs: Sequence[int]) -> asyncio.Future[None]:
        """Forget a subscription and delete the messages it held, in one transaction."""
        return self._submit(_Write(deletes=list(seqs), unsubscribe=[(mailbox,)]))

    def _submit(self, write: _Write) -> asyncio.Future[None]:
        return self._writer.submit(write)

    def _commit(self, conn: sqlite3.Connection, writes: list[_Write]) -> None:
        # IMMEDIATE takes the write lock up front, so waiting on the task store's writer
        # goes through the busy timeout instead of failing a read-to-write upgrade.
        conn.execute("BEGIN IMMEDIATE")
        try:
            index = self._index if self._index is not None else _rebuild(conn)
            for write in writes:
                # A write's own order (subscribe before inserts, deletes before unsubscribe) is kept.
                if write.subscribe:
                    conn.executemany(_SUBSCRIBE, write.subscribe)
                if write.inserts:
                    index.insert(conn, write.inserts)
                if write.deletes:
                    index.delete(conn, write.deletes)
                if write.unsubscribe:
                    conn.executemany(_UNSUBSCRIBE, write.unsubscribe)
            index.save_max_seq(conn)
            conn.execute("COMMIT")
            self._index = index
        except BaseException:
            # The index may have changed with writes that are now rolled back.
            self._index = None
            conn.execute("ROLLBACK")
            raise


def _rebuild(conn: sqlite3.Connection) -> BatchIndex:
    """The index as the database holds it (after a failed transaction), inside a write transaction."""
    found = scan(conn)
    drop_stale(conn, found.stale)
    return found.index


_SELECT_SUBSCRIPTIONS = "SELECT mailbox, topic FROM message_subscriptions ORDER BY mailbox"


def _subscriptions(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in conn.execute(_SELECT_SUBSCRIPTIONS)]
