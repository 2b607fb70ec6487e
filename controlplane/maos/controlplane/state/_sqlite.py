"""Shared state in the control plane's SQLite file: the embedded default backend.

Its own tables in the same database file as the task store, its own
connections: one writer thread applies queued writes in group commits (all
that is waiting goes into one transaction; a compare-and-set is checked and
applied inside it, so it is atomic), readers run in a small thread pool. WAL
lets readers go on while a commit is written. The event loop never blocks:
it only queues writes and awaits futures the writer resolves.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from maos.controlplane._group_commit import connect
from maos.errors import ResourceExhausted, Unavailable

from ._model import DeleteOutcome, StaleVersion, StateChange, StateEntry, StateLimits
from ._validation import check_key, check_prefix, prefix_end
from ._write_ops import QueuedWrites, WriteKind, WriteResult

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state_entries (
    namespace TEXT NOT NULL,
    key BLOB NOT NULL,  -- UTF-8 bytes: BLOB comparison is byte order, the order Redis uses too
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS state_namespaces (
    namespace TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state_changes (
    namespace TEXT NOT NULL,
    revision INTEGER NOT NULL,
    key BLOB NOT NULL,
    version INTEGER NOT NULL,
    value BLOB NOT NULL,
    deleted INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, revision)
);
"""
_UPSERT_ENTRY = (
    "INSERT INTO state_entries (namespace, key, value, version, revision, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version, "
    "revision = excluded.revision, updated_at = excluded.updated_at"
)
_INSERT_CHANGE = (
    "INSERT INTO state_changes (namespace, revision, key, version, value, deleted, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_NAMESPACE = (
    "INSERT INTO state_namespaces (namespace, revision) VALUES (?, ?) "
    "ON CONFLICT (namespace) DO UPDATE SET revision = excluded.revision"
)
_RAISE_NAMESPACE = (
    "INSERT INTO state_namespaces (namespace, revision) VALUES (?, ?) "
    "ON CONFLICT (namespace) DO UPDATE SET revision = MAX(revision, excluded.revision)"
)
# Bounds on one group commit, so a flood of writes still commits (and answers) in slices.
_MAX_WRITES_PER_COMMIT = 2_000
_MAX_BYTES_PER_COMMIT = 32 * 1024 * 1024
_T = TypeVar("_T")

_Result = WriteResult


@dataclass(slots=True)
class _Write:
    kind: WriteKind
    namespace: str
    key: str
    raw_key: bytes
    value: bytes
    expected: int
    future: asyncio.Future[_Result] = field(repr=False)
    at: float = field(default_factory=time.time)


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    return connect(path, synchronous)


class SqliteStateBackend(QueuedWrites):
    """StateBackend on a SQLite file (usually the task store's own, `<data dir>/maos.db`)."""

    def __init__(
        self, path: Path, *, limits: StateLimits | None = None, synchronous: str = "NORMAL", readers: int = 2
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._path = path
        self._limits = limits or StateLimits()
        self._synchronous = synchronous.upper()
        self._writes: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="maos-state-read")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0
        self._closed = False

    @property
    def description(self) -> str:
        return f"sqlite:{self._path}"

    @property
    def limits(self) -> StateLimits:
        return self._limits

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._read(lambda conn: conn.executescript(_SCHEMA))
        self._writer = threading.Thread(target=self._write_loop, name="maos-state-writer", daemon=True)
        self._writer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writes.put(None)
            await asyncio.to_thread(self._writer.join, 30)
        await asyncio.to_thread(self._readers.shutdown, True)
        with self._conns_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    async def __aenter__(self) -> SqliteStateBackend:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ writes

    async def _submit(
        self, kind: WriteKind, namespace: str, key: str, raw: bytes, value: bytes, expected: int
    ) -> _Result:
        if self._loop is None or self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        if self._pending >= self._limits.max_pending_writes:
            raise ResourceExhausted(
                f"{self._pending} shared-state writes are waiting to be committed; retry in a moment"
            )
        future: asyncio.Future[_Result] = self._loop.create_future()
        self._pending += 1
        self._writes.put(_Write(kind, namespace, key, raw, value, expected, future))
        # Queued is committed: a caller that stops waiting (cancelled) does not take the write back.
        return await future

    def _write_loop(self) -> None:
        conn = _connect(self._path, self._synchronous)
        stopping = False
        while not stopping:
            first = self._writes.get()
            if first is None:
                break
            group = [first]
            size = len(first.value)
            # Group commit: everything already waiting goes into this transaction.
            while len(group) < _MAX_WRITES_PER_COMMIT and size < _MAX_BYTES_PER_COMMIT:
                try:
                    nxt = self._writes.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += len(nxt.value)
            results: list[_Result] = []
            error: BaseException | None = None
            try:
                results = self._commit(conn, group)
            except Exception as exc:
                log.exception("shared-state group commit of %d writes failed", len(group))
                error = exc
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._resolve, group, results, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                break
        conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[_Write]) -> list[_Result]:
        revisions: dict[str, int] = {}

        def current(namespace: str) -> int:
            rev = revisions.get(namespace)
            if rev is None:
                row = conn.execute("SELECT revision FROM state_namespaces WHERE namespace = ?", (namespace,)).fetchone()
                rev = revisions[namespace] = row[0] if row else 0
            return rev

        bumped: set[str] = set()

        def bump(namespace: str) -> int:
            rev = revisions[namespace] = current(namespace) + 1
            bumped.add(namespace)
            return rev

        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [self._apply(conn, w, current, bump) for w in group]
            keep = self._limits.change_log_size
            for namespace in bumped:
                rev = revisions[namespace]
                conn.execute(_UPSERT_NAMESPACE, (namespace, rev))
                if rev > keep:
                    conn.execute(
                        "DELETE FROM state_changes WHERE namespace = ? AND revision <= ?", (namespace, rev - keep)
                    )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    @staticmethod
    def _apply(
        conn: sqlite3.Connection, w: _Write, current: Callable[[str], int], bump: Callable[[str], int]
    ) -> _Result:
        row = conn.execute(
            "SELECT version FROM state_entries WHERE namespace = ? AND key = ?", (w.namespace, w.raw_key)
        ).fetchone()
        version = row[0] if row else 0
        if w.kind != "put" and w.expected != version and (w.kind == "cas" or w.expected):
            return StaleVersion(w.namespace, w.key, w.expected, _entry_at(conn, w.namespace, w.key, w.raw_key))
        if w.kind == "delete":
            if not version:
                return DeleteOutcome(None, current(w.namespace))
            rev = bump(w.namespace)
            conn.execute("DELETE FROM state_entries WHERE namespace = ? AND key = ?", (w.namespace, w.raw_key))
            conn.execute(_INSERT_CHANGE, (w.namespace, rev, w.raw_key, 0, b"", 1, w.at))
            gone = StateEntry(w.namespace, w.key, b"", 0, rev, w.at)
            return DeleteOutcome(StateChange(gone, deleted=True), rev)
        rev = bump(w.namespace)
        conn.execute(_UPSERT_ENTRY, (w.namespace, w.raw_key, w.value, version + 1, rev, w.at))
        conn.execute(_INSERT_CHANGE, (w.namespace, rev, w.raw_key, version + 1, w.value, 0, w.at))
        return StateChange(StateEntry(w.namespace, w.key, w.value, version + 1, rev, w.at))

    def _resolve(self, group: list[_Write], results: list[_Result], error: BaseException | None) -> None:
        self._pending -= len(group)
        for i, w in enumerate(group):
            if w.future.done():
                continue
            if error is not None:
                w.future.set_exception(Unavailable(f"shared state could not be committed: {error}"))
            else:
                w.future.set_result(results[i])

    # ------------------------------------------------------------------- reads

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self._path, self._synchronous)
            with self._conns_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._conn()))

    async def get(self, namespace: str, key: str) -> StateEntry | None:
        raw = check_key(key, self._limits)
        return await self._read(lambda conn: _entry_at(conn, namespace, key, raw))

    async def list(
        self, namespace: str, prefix: str = "", *, after_key: str = "", limit: int = 100, keys_only: bool = False
    ) -> Sequence[StateEntry]:
        low = check_prefix(prefix, self._limits)
        high = prefix_end(low)
        after = after_key.encode("utf-8")
        value = "x''" if keys_only else "value"
        sql = (
            f"SELECT key, {value}, version, revision, updated_at FROM state_entries "
            "WHERE namespace = ? AND key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?"
        )

        def run(conn: sqlite3.Connection) -> list[StateEntry]:
            rows = conn.execute(sql, (namespace, low, high, after, limit)).fetchall()
            return [StateEntry(namespace, bytes(r[0]).decode(), bytes(r[1]), r[2], r[3], r[4]) for r in rows]

        return await self._read(run)

    async def changes(self, namespace: str, after_revision: int, limit: int) -> Sequence[StateChange]:
        def run(conn: sqlite3.Connection) -> list[StateChange]:
            rows = conn.execute(
                "SELECT revision, key, version, value, deleted, updated_at FROM state_changes "
                "WHERE namespace = ? AND revision > ? ORDER BY revision LIMIT ?",
                (namespace, after_revision, limit),
            ).fetchall()
            return [
                StateChange(StateEntry(namespace, bytes(r[1]).decode(), bytes(r[3]), r[2], r[0], r[5]), bool(r[4]))
                for r in rows
            ]

        return await self._read(run)

    async def namespaces(self) -> Sequence[str]:
        return await self._read(
            lambda conn: [str(r[0]) for r in conn.execute("SELECT DISTINCT namespace FROM state_entries ORDER BY 1")]
        )

    async def import_entries(self, entries: Sequence[StateEntry]) -> None:
        if self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        rows = [(e.namespace, e.key.encode(), e.value, e.version, e.revision, e.updated_at) for e in entries]
        revisions: dict[str, int] = {}
        for e in entries:
            revisions[e.namespace] = max(revisions.get(e.namespace, 0), e.revision)

        def run() -> None:
            # A connection of its own: the writer thread re-reads revisions in every commit,
            # and SQLite's busy timeout makes the two take turns.
            conn = _connect(self._path, self._synchronous)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_UPSERT_ENTRY, rows)
                    conn.executemany(_RAISE_NAMESPACE, revisions.items())
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            finally:
                conn.close()

        await asyncio.to_thread(run)


def _entry_at(conn: sqlite3.Connection, namespace: str, key: str, raw: bytes) -> StateEntry | None:
    row = conn.execute(
        "SELECT value, version, revision, updated_at FROM state_entries WHERE namespace = ? AND key = ?",
        (namespace, raw),
    ).fetchone()
    return None if row is None else StateEntry(namespace, key, bytes(row[0]), row[1], row[2], row[3])
