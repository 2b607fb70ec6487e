"""Durable messages: SQLite tables beside the task store's, written by a writer thread of their own.

The same database file as the task store (WAL lets both writers take turns;
each waits on the other through SQLite's busy timeout), with its own
connections. Writes are queued to one thread that puts everything waiting
into one transaction (group commit) and resolves each caller's future on the
event loop once it is durable. The event loop never touches SQLite; the
initial load runs in a thread.

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
from typing import Any

from maos.controlplane._group_commit import GroupCommitWriter, connect
from maos.errors import Unavailable

from ._mailbox import StoredMessage

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messaging_schema (version INTEGER NOT NULL);
-- seq is the rowid: the service assigns it, increasing, so it is also the delivery order within a priority.
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    mailbox TEXT NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    topic TEXT NOT NULL,
    priority INTEGER NOT NULL,
    data BLOB NOT NULL,
    content_type TEXT NOT NULL,
    sent_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_mailbox_id ON messages (mailbox, id);
CREATE TABLE IF NOT EXISTS message_subscriptions (
    mailbox TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""
_COLUMNS = (
    "seq",
    "mailbox",
    "id",
    "sender",
    "recipient",
    "topic",
    "priority",
    "data",
    "content_type",
    "sent_at",
    "expires_at",
)
_INSERT = f"INSERT OR IGNORE INTO messages ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_DELETE = "DELETE FROM messages WHERE seq = ?"
_DELETE_RANGE = "DELETE FROM messages WHERE seq BETWEEN ? AND ?"
# A run of at least this many consecutive seqs is deleted with one range statement (an acked
# batch usually is one run: its copies were numbered together), about twice as fast per row.
_MIN_RANGE = 4
_SUBSCRIBE = "INSERT OR IGNORE INTO message_subscriptions (mailbox, topic, created_at) VALUES (?, ?, ?)"
_UNSUBSCRIBE = "DELETE FROM message_subscriptions WHERE mailbox = ?"


@dataclass(slots=True)
class _Write:
    """One caller's writes; the writer runs them in order inside a group's transaction."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
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


class MessageStore:
    """Messages and topic subscriptions in SQLite; group commits off the event loop."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self._path = path
        self._synchronous = synchronous.upper()
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
        """Create the tables if needed, load what they hold, start the writer."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        loaded = await asyncio.to_thread(self._load)
        self._writer.start(asyncio.get_running_loop())
        return loaded

    def _load(self) -> Loaded:
        conn = connect(self._path, self._synchronous)
        try:
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT version FROM messaging_schema").fetchone()
            if row is None:
                conn.execute("INSERT INTO messaging_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise Unavailable(
                    f"{self._path} has messaging schema version {row[0]}, newer than this control plane's "
                    f"{SCHEMA_VERSION}: run a newer MAOS against it"
                )
            return _read_all(conn)
        finally:
            conn.close()

    async def read_all(self) -> Loaded:
        """Every stored message and subscription, as committed now (checkpoints copy them)."""

        def read() -> Loaded:
            conn = connect(self._path, self._synchronous)
            try:
                conn.execute("BEGIN")  # one snapshot for the three reads
                return _read_all(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(read)

    async def close(self) -> None:
        """Commit what is queued, then stop the writer. Idempotent."""
        await self._writer.close()

    # ------------------------------------------------------------------ writes

    def insert(self, messages: Sequence[StoredMessage]) -> asyncio.Future[None]:
        """Store messages; the future resolves once they are durable."""
        return self._submit(_Write(inserts=[_row(m) for m in messages]))

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

    @staticmethod
    def _commit(conn: sqlite3.Connection, writes: list[_Write]) -> None:
        # IMMEDIATE takes the write lock up front, so waiting on the task store's writer
        # goes through the busy timeout instead of failing a read-to-write upgrade.
        conn.execute("BEGIN IMMEDIATE")
        try:
            inserts: list[tuple[Any, ...]] = []
            deletes: list[int] = []
            for write in writes:
                # A write's own order (subscribe before inserts, deletes before unsubscribe)
                # is kept; deletes never name a seq inserted later in the same group.
                if write.subscribe:
                    conn.executemany(_SUBSCRIBE, write.subscribe)
                inserts.extend(write.inserts)
                deletes.extend(write.deletes)
                if write.unsubscribe:
                    if inserts:
                        conn.executemany(_INSERT, inserts)
                        inserts = []
                    _delete(conn, deletes)
                    deletes = []
                    conn.executemany(_UNSUBSCRIBE, write.unsubscribe)
            if inserts:
                conn.executemany(_INSERT, inserts)
            if deletes:
                _delete(conn, deletes)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _delete(conn: sqlite3.Connection, seqs: list[int]) -> None:
    """Delete exactly these seqs: runs of consecutive ones by range, the others one by one."""
    ranges: list[tuple[int, int]] = []
    singles: list[tuple[int]] = []
    ordered = sorted(set(seqs))
    start = 0
    for i in range(1, len(ordered) + 1):
        if i < len(ordered) and ordered[i] == ordered[i - 1] + 1:
            continue
        if i - start >= _MIN_RANGE:
            ranges.append((ordered[start], ordered[i - 1]))
        else:
            singles.extend((seq,) for seq in ordered[start:i])
        start = i
    if ranges:
        conn.executemany(_DELETE_RANGE, ranges)
    if singles:
        conn.executemany(_DELETE, singles)


_SELECT_SUBSCRIPTIONS = "SELECT mailbox, topic FROM message_subscriptions ORDER BY mailbox"


def _read_all(conn: sqlite3.Connection) -> Loaded:
    messages = [StoredMessage(*r) for r in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM messages ORDER BY seq")]
    for msg in messages:
        msg.data = bytes(msg.data)
    subscriptions = [(str(r[0]), str(r[1])) for r in conn.execute(_SELECT_SUBSCRIPTIONS)]
    max_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
    return Loaded(messages, subscriptions, int(max_seq))
