"""SQLite store: WAL, one writer thread doing group commits, readers in a thread pool."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from maos.controlplane._group_commit import GroupCommitWriter, connect
from maos.controlplane.core import AttemptRecord, TaskEventRecord, TaskRecord, TaskStatus
from maos.errors import Unavailable

from ._protocol import NamedBlob, TaskQuery, WriteBatch
from ._rows import (
    ALL_COLUMNS,
    ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    MUTABLE_COLUMNS,
    attempt_from_row,
    event_from_row,
    record_from_row,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    root_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    spec BLOB NOT NULL,
    created_at REAL NOT NULL,
    idempotency_key TEXT,
    workflow_key TEXT NOT NULL,
    grp INTEGER NOT NULL,
    agent_type TEXT NOT NULL,
    plan BLOB NOT NULL DEFAULT x'',
    status INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    host_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    progress REAL NOT NULL,
    progress_message TEXT NOT NULL,
    result BLOB NOT NULL,
    result_type TEXT NOT NULL,
    error_kind TEXT NOT NULL,
    error_message TEXT NOT NULL,
    log TEXT NOT NULL,
    seq INTEGER NOT NULL
);
-- Recovery and queue views read only unfinished tasks: keep that index small.
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (status) WHERE status <= 3;
CREATE INDEX IF NOT EXISTS tasks_root ON tasks (root_id);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id) WHERE parent_id != '';
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency ON tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS task_events (
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    host_id TEXT NOT NULL,
    message TEXT NOT NULL,
    progress REAL NOT NULL,
    progress_message TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_attempts (
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    host_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    dispatched_at REAL NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    status INTEGER NOT NULL,
    error_kind TEXT NOT NULL,
    error_message TEXT NOT NULL,
    PRIMARY KEY (task_id, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS templates (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
"""

_INSERT_TASK = f"INSERT INTO tasks ({', '.join(ALL_COLUMNS)}) VALUES ({', '.join('?' * len(ALL_COLUMNS))})"
_UPDATE_TASK = f"UPDATE tasks SET {', '.join(c + ' = ?' for c in MUTABLE_COLUMNS)} WHERE id = ?"
_INSERT_EVENT = (
    f"INSERT OR REPLACE INTO task_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)
_UPSERT_ATTEMPT = (
    f"INSERT OR REPLACE INTO task_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ATTEMPT_COLUMNS))})"
)
# A purged tree's events and attempts first: they are found through its task rows.
_PURGE_TREE = (
    "DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE root_id = ?)",
    "DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM tasks WHERE root_id = ?)",
    "DELETE FROM tasks WHERE root_id = ?",
)
_T = TypeVar("_T")


def _connect(path: Path) -> sqlite3.Connection:
    conn = connect(path, rows=True)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


class SqliteStore:
    """The embedded default store: one file, WAL, group commits off the event loop."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self._path = path
        self._synchronous = synchronous
        self._writer: GroupCommitWriter[WriteBatch] = GroupCommitWriter(
            path, self._commit, synchronous=synchronous, name="maos-sqlite-writer"
        )
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="maos-sqlite-read")
        self._local = threading.local()
        self._closed = False

    @property
    def description(self) -> str:
        return f"sqlite:{self._path}"

    @property
    def backlog(self) -> int:
        return self._writer.backlog

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._read(self._migrate)
        self._writer.start(asyncio.get_running_loop())

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise Unavailable(
                f"{self._path} has schema version {row[0]}, newer than this control plane's "
                f"{SCHEMA_VERSION}: run a newer MAOS against it"
            )
        elif row[0] < SCHEMA_VERSION:
            # Version 2 added tables (created above) and the tasks.plan column.
            conn.execute("ALTER TABLE tasks ADD COLUMN plan BLOB NOT NULL DEFAULT x''")
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._writer.close()
        self._readers.shutdown(wait=True)

    # ------------------------------------------------------------------ writes

    def write(self, batch: WriteBatch) -> asyncio.Future[None]:
        return self._writer.submit(batch)

    @staticmethod
    def _commit(conn: sqlite3.Connection, batches: list[WriteBatch]) -> None:
        inserts: list[tuple[Any, ...]] = []
        updates: dict[str, tuple[Any, ...]] = {}
        events: list[tuple[Any, ...]] = []
        attempts: dict[tuple[Any, Any], tuple[Any, ...]] = {}
        named: list[tuple[str, tuple[Any, ...]]] = []
        purged: list[tuple[str]] = []
        for batch in batches:
            inserts.extend(batch.inserts)
            for row in batch.updates:
                updates[row[-1]] = row  # the newest snapshot of a task wins
            events.extend(batch.events)
            for row in batch.attempts:
                attempts[(row[0], row[1])] = row
            # Templates and batches are rare: keep their statements in order.
            named += [
                (
                    "INSERT OR REPLACE INTO templates (name, data, created_at) VALUES (?, ?, ?)",
                    (t.name, t.data, t.created_at),
                )
                for t in batch.templates
            ]
            named += [("DELETE FROM templates WHERE name = ?", (name,)) for name in batch.deleted_templates]
            named += [("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", kv) for kv in batch.settings]
            named += [
                (
                    "INSERT OR REPLACE INTO batches (name, data, created_at) VALUES (?, ?, ?)",
                    (b.name, b.data, b.created_at),
                )
                for b in batch.batches
            ]
            purged += [(root_id,) for root_id in batch.purged_roots]
        conn.execute("BEGIN")
        try:
            if inserts:
                conn.executemany(_INSERT_TASK, inserts)
            if updates:
                conn.executemany(_UPDATE_TASK, updates.values())
            if events:
                conn.executemany(_INSERT_EVENT, events)
            if attempts:
                conn.executemany(_UPSERT_ATTEMPT, attempts.values())
            for sql, args in named:
                conn.execute(sql, args)
            if purged:
                # Last: whatever this commit wrote for those trees goes with them.
                for sql in _PURGE_TREE:
                    conn.executemany(sql, purged)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------- reads

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path)
            self._local.conn = conn
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._conn()))

    async def load_recovery_set(self) -> list[TaskRecord]:
        def load(conn: sqlite3.Connection) -> list[TaskRecord]:
            rows = conn.execute("SELECT * FROM tasks WHERE status <= 3").fetchall()
            records = {r["id"]: record_from_row(dict(r)) for r in rows}
            # Finished tasks that live ones still need: dependencies and ancestors.
            # A live workflow root needs all its children to settle its result.
            for group_id in [r.id for r in records.values() if r.group]:
                for r in conn.execute("SELECT * FROM tasks WHERE parent_id = ?", (group_id,)):
                    if r["id"] not in records:
                        records[r["id"]] = record_from_row(dict(r))
            wanted: set[str] = set()
            for rec in records.values():
                wanted.update(rec.depends_on)
                if rec.parent_id:
                    wanted.add(rec.parent_id)
            while wanted - records.keys():
                missing = list(wanted - records.keys())
                found = []
                for i in range(0, len(missing), 500):
                    chunk = missing[i : i + 500]
                    found += conn.execute(
                        f"SELECT * FROM tasks WHERE id IN ({','.join('?' * len(chunk))})", chunk
                    ).fetchall()
                wanted = set()
                for r in found:
                    rec = record_from_row(dict(r))
                    records[rec.id] = rec
                    if rec.parent_id and rec.parent_id not in records:
                        wanted.add(rec.parent_id)
                if not found:
                    break
            # Ids are time-ordered, so sorting puts parents (created first) before children.
            return [records[k] for k in sorted(records)]

        return await self._read(load)

    async def get_tasks(self, ids: Sequence[str]) -> list[TaskRecord]:
        def get(conn: sqlite3.Connection) -> list[TaskRecord]:
            out: list[TaskRecord] = []
            for i in range(0, len(ids), 500):
                chunk = list(ids[i : i + 500])
                rows = conn.execute(f"SELECT * FROM tasks WHERE id IN ({','.join('?' * len(chunk))})", chunk)
                out.extend(record_from_row(dict(r)) for r in rows)
            return out

        return await self._read(get)

    async def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        clauses: list[str] = []
        args: list[Any] = []
        if query.statuses:
            clauses.append(f"status IN ({','.join('?' * len(query.statuses))})")
            args.extend(int(s) for s in query.statuses)
        if query.root_id:
            clauses.append("root_id = ?")
            args.append(query.root_id)
        if query.parent_id:
            clauses.append("parent_id = ?")
            args.append(query.parent_id)
        if query.before_id:
            clauses.append("id < ?")
            args.append(query.before_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM tasks {where} ORDER BY id DESC LIMIT ?"
        args.append(query.limit)

        def run(conn: sqlite3.Connection) -> list[TaskRecord]:
            return [record_from_row(dict(r)) for r in conn.execute(sql, args)]

        return await self._read(run)

    async def task_events(self, task_id: str, after_seq: int, limit: int) -> list[TaskEventRecord]:
        def run(conn: sqlite3.Connection) -> list[TaskEventRecord]:
            rows = conn.execute(
                "SELECT * FROM task_events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (task_id, after_seq, limit),
            )
            return [event_from_row(dict(r)) for r in rows]

        return await self._read(run)

    async def find_idempotency_key(self, key: str) -> str | None:
        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT id FROM tasks WHERE idempotency_key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._read(run)

    async def counts_by_status(self) -> dict[TaskStatus, int]:
        def run(conn: sqlite3.Connection) -> dict[TaskStatus, int]:
            counts = dict.fromkeys(TaskStatus, 0)
            for status, n in conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status"):
                counts[TaskStatus(status)] = n
            return counts

        return await self._read(run)

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        def run(conn: sqlite3.Connection) -> list[AttemptRecord]:
            rows = conn.execute("SELECT * FROM task_attempts WHERE task_id = ? ORDER BY number", (task_id,))
            return [attempt_from_row(dict(r)) for r in rows]

        return await self._read(run)

    async def events_of(self, task_ids: Sequence[str]) -> list[TaskEventRecord]:
        def run(conn: sqlite3.Connection) -> list[TaskEventRecord]:
            return [event_from_row(dict(r)) for r in _rows_of(conn, "task_events", "seq", task_ids)]

        return await self._read(run)

    async def attempts_of(self, task_ids: Sequence[str]) -> list[AttemptRecord]:
        def run(conn: sqlite3.Connection) -> list[AttemptRecord]:
            return [attempt_from_row(dict(r)) for r in _rows_of(conn, "task_attempts", "number", task_ids)]

        return await self._read(run)

    async def load_templates(self) -> list[NamedBlob]:
        return await self._read(lambda conn: _named(conn, "templates"))

    async def load_batches(self) -> list[NamedBlob]:
        return await self._read(lambda conn: _named(conn, "batches"))

    async def load_settings(self) -> dict[str, str]:
        return await self._read(lambda conn: {r[0]: r[1] for r in conn.execute("SELECT key, value FROM settings")})


def _rows_of(conn: sqlite3.Connection, table: str, order: str, task_ids: Sequence[str]) -> list[sqlite3.Row]:
    """The rows of `table` for these tasks, by task id then `order`, 500 ids per query."""
    ids = sorted(set(task_ids))
    out: list[sqlite3.Row] = []
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        sql = f"SELECT * FROM {table} WHERE task_id IN ({','.join('?' * len(chunk))}) ORDER BY task_id, {order}"
        out.extend(conn.execute(sql, chunk))
    return out


def _named(conn: sqlite3.Connection, table: str) -> list[NamedBlob]:
    rows = conn.execute(f"SELECT name, data, created_at FROM {table} ORDER BY name")
    return [NamedBlob(r["name"], bytes(r["data"]), r["created_at"]) for r in rows]
