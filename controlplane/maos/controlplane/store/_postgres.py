"""PostgreSQL store (asyncpg): the Store protocol for production and active/standby.

Writes go through one asyncio writer doing group commits: every batch queued
while a commit is in flight joins the next transaction, where each table gets
one statement over arrays (`unnest`) or a COPY for large inserts. Reads use
the connection pool. With a leadership epoch set (`fence`), every group
commit first checks the epoch under a share lock in the same transaction, so
a deposed leader cannot write.

Losing PostgreSQL (a cut network, a restarting server): connection errors become
`Unavailable` naming the database, never INTERNAL. Writes already handed over
are kept and committed again, in order, once it answers (`AsyncGroupWriter`
retries; a replayed group skips rows its first attempt may have committed), so
their futures resolve late rather than fail. Meanwhile `outage` says what is
wrong (the control plane refuses calls with it) and a probe reconnects with
backoff. If writes cannot be recorded for `outage_limit_seconds`, they fail with
Unavailable and the fence's callback stops the control plane (its supervisor
restarts it, and it reloads from PostgreSQL): what was never recorded was never
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
from maos.controlplane.core import AttemptRecord, TaskEventRecord, TaskRecord, TaskStatus
from maos.errors import InvalidArgument, MaosError, Unavailable

from . import _pg_statements as sql
from ._pg_config import PostgresOptions, PostgresTarget, parse_postgres_url
from ._pg_schema import (
    SCHEMA_VERSION,
    Conn,
    Month,
    create_partitions,
    existing_partitions,
    migrate,
    month_of,
    months_ahead,
)
from ._pg_writer import AsyncGroupWriter
from ._protocol import NamedBlob, TaskQuery, WriteBatch
from ._rows import (
    ALL_COLUMNS,
    attempt_from_row,
    event_from_row,
    record_from_row,
)

log = logging.getLogger(__name__)

# A group inserting at least this many tasks uses COPY (in an explicit transaction);
# smaller ones go as one statement (see _pg_statements).
COPY_THRESHOLD = 1000

# Errors that mean "PostgreSQL cannot be reached right now", not "this request is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
)


_PROBE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, MaosError)


class NotLeader(Unavailable):
    """This control plane's leadership epoch is no longer current: another one leads."""


class StoreUnreachable(Unavailable):
    """PostgreSQL cannot be reached right now (the request may succeed once it is back)."""


FIRST_PROBE_SECONDS = 0.1  # the reconnect probe's backoff while PostgreSQL is unreachable
MAX_PROBE_SECONDS = 1.0


class PostgresStore:
    """The production store: PostgreSQL through an asyncpg pool, group commits on the event loop."""

    def __init__(self, url: str, options: PostgresOptions | None = None) -> None:
        self.target: PostgresTarget = parse_postgres_url(url)
        self.options = options or PostgresOptions()
        self._pool: asyncpg.Pool | None = None
        self._writer: AsyncGroupWriter[WriteBatch] = AsyncGroupWriter(
            self._commit,
            name="maos-postgres-writer",
            transient=(StoreUnreachable,),
            replay=self._replay,
            outage_limit_seconds=self.options.outage_limit_seconds,
            on_outage=self._writer_outage,
            on_give_up=self._give_up,
        )
        self._down: tuple[float, str] | None = None  # (monotonic since, why) while PostgreSQL is unreachable
        self._probe: asyncio.Task[None] | None = None
        self._months: set[Month] = set()
        self._recycler: asyncio.Task[None] | None = None
        self._epoch: int | None = None
        self._on_deposed: Callable[[str], None] | None = None
        self._closed = False
        self.schema_version = 0

    @property
    def description(self) -> str:
        return self.target.display

    @property
    def backlog(self) -> int:
        return self._writer.backlog

    @property
    def commits(self) -> int:
        return self._writer.commits

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable(f"the store {self.description} is not open")
        return self._pool

    def fence(self, epoch: int, on_deposed: Callable[[str], None]) -> None:
        """Check `epoch` in every later write transaction; call `on_deposed` once it is stale
        (or once writes could not be recorded for `outage_limit_seconds`: the control plane
        must stop either way)."""
        self._epoch = epoch
        self._on_deposed = on_deposed

    @property
    def outage(self) -> str | None:
        """Why the store cannot serve right now (one line for clients), None while it can."""
        if self._down is None:
            return None
        since, why = self._down
        return (
            f"the store {self.description} is unreachable ({why}) for {time.monotonic() - since:.1f}s; "
            "the control plane reconnects by itself and keeps changes not yet written: retry shortly"
        )

    def unreachable(self, exc: BaseException) -> StoreUnreachable:
        """Note a connection error (from a read, a write or the leader's lock connection): the store
        counts as down until a probe or a commit gets through. Returns the error to raise."""
        why = _reason(exc)
        if self._down is None and not self._closed:
            self._down = (time.monotonic(), why)
            log.warning("store %s unreachable: %s", self.description, why)
            if self._probe is None or self._probe.done():
                self._probe = asyncio.get_running_loop().create_task(self._reconnect(), name="maos-postgres-probe")
        return StoreUnreachable(f"the store {self.description} is unreachable: {why}")

    def _reachable(self) -> None:
        if self._down is not None:
            log.warning("store %s reachable again after %.1fs", self.description, time.monotonic() - self._down[0])
            self._down = None

    def _writer_outage(self, error: BaseException | None) -> None:
        if error is None:
            self._reachable()
        else:
            self.unreachable(error)

    async def _reconnect(self) -> None:
        """While down: try a round trip with backoff until one gets through (or a commit does)."""
        delay = FIRST_PROBE_SECONDS
        while self._down is not None and not self._closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_PROBE_SECONDS)
            try:
                async with self.pool.acquire(timeout=self.options.connect_timeout_seconds) as conn:
                    await conn.fetchval("SELECT 1", timeout=self.options.connect_timeout_seconds)
            except _PROBE_ERRORS as exc:
                log.debug("store %s still unreachable: %s", self.description, _reason(exc))
                continue
            if self._writer.failing_since is None:  # else the writer says when its backlog got through
                self._reachable()

    def _give_up(self, reason: str) -> None:
        message = f"the store {self.description} stayed unreachable: {reason}"
        if self._on_deposed is not None:
            self._on_deposed(message)

    # ------------------------------------------------------------- lifecycle

    async def connect(
        self, *, application_name: str | None = None, server_settings: dict[str, str] | None = None
    ) -> asyncpg.Connection:
        """A connection outside the pool (migrations, the leader's lock); errors are one clear line."""
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.target.dsn,
                timeout=self.options.connect_timeout_seconds,
                command_timeout=self.options.command_timeout_seconds,
                server_settings={**self._server_settings(application_name), **(server_settings or {})},
            )
        except BaseException as exc:
            raise self._connect_error(exc) from None
        return conn

    async def open(self) -> None:
        conn = await self.connect()
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.target.schema}")
        except asyncpg.UniqueViolationError:
            pass  # another control plane created it at the same moment
        except asyncpg.PostgresError as exc:
            await conn.close()
            raise Unavailable(f"cannot create schema {self.target.schema} in {self.description}: {exc}") from None
        try:
            self.schema_version = await migrate(conn, lock_key=self.target.migration_lock_key, where=self.description)
            self._months = await existing_partitions(conn)
            await self._ensure_partitions(conn, months_ahead(time.time(), self.options.partitions_ahead))
        except MaosError:
            raise
        except BaseException as exc:
            raise self._connect_error(exc) from None
        finally:
            await conn.close()
        opts = self.options
        try:
            self._pool = await asyncpg.create_pool(
                self.target.dsn,
                init_size=opts.pool_size,
                min_size=opts.pool_size,
                max_size=opts.max_size,
                max_inactive_connection_lifetime=opts.recycle_seconds,
                timeout=opts.connect_timeout_seconds,
                command_timeout=opts.command_timeout_seconds,
                server_settings=self._server_settings(None),
                reset=_keep_session,
            )
        except BaseException as exc:
            raise self._connect_error(exc) from None
        self._recycler = asyncio.create_task(self._recycle_loop(), name="maos-postgres-recycle")
        self._writer.start()
        log.info("store %s at schema version %d", self.description, self.schema_version)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._writer.close()
        for task in (self._recycler, self._probe):
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=10)
            except CONNECTION_ERRORS:
                self._pool.terminate()

    def _server_settings(self, application_name: str | None) -> dict[str, str]:
        return {
            "application_name": application_name or self.options.application_name,
            "search_path": self.target.schema,
            # Notice a vanished peer (a cut network) within minutes, as the guide suggests.
            "tcp_keepalives_idle": "600",
            "tcp_keepalives_interval": "30",
            "tcp_keepalives_count": "3",
        }

    def _connect_error(self, exc: BaseException) -> MaosError:
        where = self.description
        if isinstance(exc, MaosError):
            return exc
        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            return Unavailable(f"cannot open the store {where}: {exc} (create it, or fix the database in the URL)")
        if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
            return Unavailable(f"cannot open the store {where}: PostgreSQL refused the login: {exc}")
        if isinstance(exc, TimeoutError):
            return Unavailable(
                f"cannot open the store {where}: no answer within {self.options.connect_timeout_seconds:g}s"
            )
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return Unavailable(f"cannot reach the store {where}: {reason}")
        if isinstance(exc, ValueError):
            return InvalidArgument(f"--store {where}: {exc}")
        if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            return Unavailable(f"cannot open the store {where}: {exc}")
        if isinstance(exc, Exception):
            return Unavailable(f"cannot open the store {where}: {type(exc).__name__}: {exc}")
        raise exc  # CancelledError, KeyboardInterrupt: not ours to translate

    async def _recycle_loop(self) -> None:
        # Every recycle period, mark the pool's connections expired: each is replaced when next
        # returned or handed out, so none lives much beyond the period (the guide's pool_recycle).
        while True:
            await asyncio.sleep(self.options.recycle_seconds)
            if self._pool is not None:
                await self._pool.expire_connections()

    async def _ensure_partitions(self, conn: Conn, months: list[Month]) -> None:
        missing = sorted(set(months) - self._months)
        if missing:
            await create_partitions(conn, missing)
            self._months.update(missing)

    # ---------------------------------------------------------------- writes

    def write(self, batch: WriteBatch) -> asyncio.Future[None]:
        return self._writer.submit(batch)

    async def _replay(self, batches: list[WriteBatch]) -> None:
        await self._commit(batches, replay=True)

    async def _commit(self, batches: list[WriteBatch], replay: bool = False) -> None:
        inserts: list[tuple[Any, ...]] = []
        updates: dict[str, tuple[Any, ...]] = {}
        events: dict[tuple[Any, Any], tuple[Any, ...]] = {}
        attempts: dict[tuple[Any, Any], tuple[Any, ...]] = {}
        named: list[tuple[str, tuple[Any, ...]]] = []
        purged: list[str] = []
        for batch in batches:
            inserts.extend(batch.inserts)
            for row in batch.updates:
                updates[row[-1]] = row  # the newest snapshot of a task wins
            for row in batch.events:
                events[(row[0], row[1])] = row
            for row in batch.attempts:
                attempts[(row[0], row[1])] = row
            named += _named_statements(batch)
            purged.extend(batch.purged_roots)
        inserts = sql.fold_updates(inserts, updates)
        keys = [(row[5], row[0], row[1]) for row in inserts if row[5] is not None]
        try:
            async with self.pool.acquire(timeout=self.options.acquire_timeout_seconds) as conn:
                if inserts:
                    await self._ensure_partitions(conn, [month_of(row[4]) for row in inserts])
                if named or purged or len(inserts) >= COPY_THRESHOLD:
                    await self._commit_in_steps(conn, inserts, keys, updates, events, attempts, named, purged, replay)
                else:
                    statement, args = sql.one_statement(
                        self._epoch,
                        inserts,
                        keys,
                        list(updates.values()),
                        list(events.values()),
                        list(attempts.values()),
                        replay,
                    )
                    await conn.execute(statement, *args)
        except CONNECTION_ERRORS as exc:
            raise self.unreachable(exc) from None
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == sql.STALE_EPOCH:
                raise self._deposed(str(exc)) from None
            raise

    async def _commit_in_steps(
        self,
        conn: Conn,
        inserts: list[tuple[Any, ...]],
        keys: list[tuple[Any, ...]],
        updates: dict[str, tuple[Any, ...]],
        events: dict[tuple[Any, Any], tuple[Any, ...]],
        attempts: dict[tuple[Any, Any], tuple[Any, ...]],
        named: list[tuple[str, tuple[Any, ...]]],
        purged: list[str],
        replay: bool = False,
    ) -> None:
        """The rarer group: many inserts (COPY), templates, settings, purges; one transaction.
        A replay inserts with ON CONFLICT DO NOTHING instead of COPY (rows may be there already)."""
        async with conn.transaction():
            if self._epoch is not None:
                st = sql.Statement()
                await conn.execute(sql.fence(st, self._epoch), *st.args)
            if len(inserts) >= COPY_THRESHOLD and not replay:
                await conn.copy_records_to_table(
                    "tasks", records=inserts, columns=ALL_COLUMNS, schema_name=self.target.schema
                )
                inserts = []
            parts: list[tuple[Callable[[sql.Statement, Sequence[Sequence[Any]]], str], Sequence[Sequence[Any]]]] = [
                (lambda st, rows: sql.insert_tasks(st, rows, replay), inserts),
                (lambda st, rows: sql.insert_keys(st, rows, replay), keys),
                (sql.update_tasks, list(updates.values())),
                (sql.upsert_events, list(events.values())),
                (sql.upsert_attempts, list(attempts.values())),
            ]
            for build, rows in parts:
                if rows:
                    st = sql.Statement()
                    await conn.execute(build(st, rows), *st.args)
            for statement, args in named:
                await conn.execute(statement, *args)
            if purged:
                await conn.execute(sql.PURGE_ROOTS, purged)

    def _deposed(self, detail: str) -> NotLeader:
        if self._on_deposed is not None:
            self._on_deposed(detail)
        return NotLeader(f"this control plane is no longer the leader: {detail}")

    # ----------------------------------------------------------------- reads

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        if self._down is not None:  # fail at once rather than wait out a connect timeout per call
            raise StoreUnreachable(self.outage or f"the store {self.description} is unreachable")
        try:
            async with self.pool.acquire(timeout=self.options.acquire_timeout_seconds) as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            raise self.unreachable(exc) from None

    async def load_recovery_set(self) -> list[TaskRecord]:
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT * FROM tasks WHERE status IN (2, 3) UNION ALL SELECT * FROM tasks WHERE status = 1"
            )
            records = {r["id"]: record_from_row(dict(r)) for r in rows}
            # Finished tasks that live ones still need: dependencies and ancestors.
            # A live workflow root needs all its children to settle its result.
            groups = [r.id for r in records.values() if r.group]
            if groups:
                for r in await conn.fetch("SELECT * FROM tasks WHERE parent_id = ANY($1::text[])", groups):
                    if r["id"] not in records:
                        records[r["id"]] = record_from_row(dict(r))
            wanted: set[str] = set()
            for rec in records.values():
                wanted.update(rec.depends_on)
                if rec.parent_id:
                    wanted.add(rec.parent_id)
            while wanted - records.keys():
                found = await conn.fetch(
                    "SELECT * FROM tasks WHERE id = ANY($1::text[])", list(wanted - records.keys())
                )
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

    async def get_tasks(self, ids: Sequence[str]) -> list[TaskRecord]:
        if not ids:
            return []
        async with self._read() as conn:
            rows = await conn.fetch("SELECT * FROM tasks WHERE id = ANY($1::text[])", list(ids))
        return [record_from_row(dict(r)) for r in rows]

    async def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        clauses: list[str] = []
        args: list[Any] = []
        if query.statuses:
            args.append([int(s) for s in query.statuses])
            clauses.append(f"status = ANY(${len(args)}::int4[])")
        if query.root_id:
            args.append(query.root_id)
            clauses.append(f"root_id = ${len(args)}")
        if query.parent_id:
            args.append(query.parent_id)
            clauses.append(f"parent_id = ${len(args)}")
        if query.before_id:
            args.append(query.before_id)
            clauses.append(f"id < ${len(args)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(query.limit)
        sql = f"SELECT * FROM tasks {where} ORDER BY id DESC LIMIT ${len(args)}"
        async with self._read() as conn:
            rows = await conn.fetch(sql, *args)
        return [record_from_row(dict(r)) for r in rows]

    async def task_events(self, task_id: str, after_seq: int, limit: int) -> list[TaskEventRecord]:
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT * FROM task_events WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                task_id,
                after_seq,
                limit,
            )
        return [event_from_row(dict(r)) for r in rows]

    async def find_idempotency_key(self, key: str) -> str | None:
        async with self._read() as conn:
            value = await conn.fetchval("SELECT task_id FROM task_keys WHERE idempotency_key = $1", key)
        return None if value is None else str(value)

    async def counts_by_status(self) -> dict[TaskStatus, int]:
        counts = dict.fromkeys(TaskStatus, 0)
        async with self._read() as conn:
            for row in await conn.fetch("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status"):
                counts[TaskStatus(row["status"])] = int(row["n"])
        return counts

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        async with self._read() as conn:
            rows = await conn.fetch("SELECT * FROM task_attempts WHERE task_id = $1 ORDER BY number", task_id)
        return [attempt_from_row(dict(r)) for r in rows]

    async def events_of(self, task_ids: Sequence[str]) -> list[TaskEventRecord]:
        if not task_ids:
            return []
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT * FROM task_events WHERE task_id = ANY($1::text[]) ORDER BY task_id, seq", list(set(task_ids))
            )
        return [event_from_row(dict(r)) for r in rows]

    async def attempts_of(self, task_ids: Sequence[str]) -> list[AttemptRecord]:
        if not task_ids:
            return []
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT * FROM task_attempts WHERE task_id = ANY($1::text[]) ORDER BY task_id, number",
                list(set(task_ids)),
            )
        return [attempt_from_row(dict(r)) for r in rows]

    async def load_templates(self) -> list[NamedBlob]:
        return await self._named("templates")

    async def load_batches(self) -> list[NamedBlob]:
        return await self._named("batches")

    async def load_settings(self) -> dict[str, str]:
        async with self._read() as conn:
            rows = await conn.fetch("SELECT key, value FROM settings")
        return {r["key"]: r["value"] for r in rows}

    async def _named(self, table: str) -> list[NamedBlob]:
        async with self._read() as conn:
            rows = await conn.fetch(f"SELECT name, data, created_at FROM {table} ORDER BY name")
        return [NamedBlob(r["name"], bytes(r["data"]), r["created_at"]) for r in rows]


def _named_statements(batch: WriteBatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Templates, settings and batches are rare: their statements, in order."""
    named: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO templates (name, data, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at",
            (t.name, t.data, t.created_at),
        )
        for t in batch.templates
    ]
    named += [("DELETE FROM templates WHERE name = $1", (name,)) for name in batch.deleted_templates]
    named += [
        ("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2", kv)
        for kv in batch.settings
    ]
    named += [
        (
            "INSERT INTO batches (name, data, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at",
            (b.name, b.data, b.created_at),
        )
        for b in batch.batches
    ]
    return named


def _reason(exc: BaseException) -> str:
    """A connection error in a few words: asyncpg's and the OS's messages, or the error's kind."""
    if isinstance(exc, StoreUnreachable):
        return exc.message.rpartition(" is unreachable: ")[2] or exc.message
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text or type(exc).__name__


async def _keep_session(conn: Conn) -> None:
    """Pool reset hook: the store sets no session state, so skip asyncpg's RESET ALL round trip."""


__all__ = ["CONNECTION_ERRORS", "SCHEMA_VERSION", "NotLeader", "PostgresStore", "StoreUnreachable"]
