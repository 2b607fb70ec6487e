"""Shared state in PostgreSQL, beside the task store: it follows a failover.

Same tables as the SQLite backend (migration 4 in store/_pg_schema.py), on the
task store's schema and connection pool. Writes are queued to an asyncio
group-commit writer, the only writer: each group reads the revisions and keys
it touches (one query), applies every write in order in memory (a
compare-and-set is decided there, against the group's own earlier writes, so
it is atomic), then writes entries, deletions, log rows and revisions as one
statement whose main query checks the leadership epoch (`fence`): two round
trips per group. Only the leader writes, so the in-process hub of the
servicer sees every committed change (watchers fill any gap from the change
log).

Through a PostgreSQL outage, writes already handed over are kept and committed
in order once it answers again, as the task store's are; new writes are refused
at once (UNAVAILABLE, nothing applied) while the store is known to be down. A
group whose connection dropped during its write statement may have committed:
its replay checks first, by the namespaces' revisions (this writer is the only
one, so the revisions its write set are there exactly when it committed), and
applies it again only if it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import asyncpg
from maos.controlplane._pg_fence import EpochFence
from maos.controlplane.store import CONNECTION_ERRORS, PostgresStore
from maos.controlplane.store._pg_writer import AsyncGroupWriter
from maos.controlplane.store._postgres import StoreUnreachable
from maos.errors import ResourceExhausted, Unavailable

from ._model import DeleteOutcome, StaleVersion, StateChange, StateEntry, StateLimits
from ._validation import check_key, check_prefix, prefix_end
from ._write_ops import QueuedWrites, WriteKind, WriteResult

_Result = WriteResult
# Bounds on one group commit, so a flood of writes still commits (and answers) in slices.
_MAX_WRITES_PER_COMMIT = 2_000

_READ_CURRENT = (
    "SELECT namespace, NULL::bytea AS key, NULL::bytea AS value, 0::int8 AS version, revision, 0::float8 AS updated_at "
    "FROM state_namespaces WHERE namespace = ANY($1::text[]) "
    "UNION ALL SELECT e.namespace, e.key, e.value, e.version, e.revision, e.updated_at FROM state_entries e "
    "JOIN unnest($2::text[], $3::bytea[]) AS k(namespace, key) ON e.namespace = k.namespace AND e.key = k.key"
)
_UPSERT_ENTRIES = (
    "INSERT INTO state_entries (namespace, key, value, version, revision, updated_at) "
    "SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::int8[], $5::int8[], $6::float8[]) "
    "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, "
    "revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at"
)
# A group's effects as ONE statement (one round trip, its own transaction): the CTEs touch
# disjoint rows (a key is either written or deleted; trimmed log rows are older than new ones),
# and the main query runs the epoch check, whose failure takes the whole statement back.
_WRITE_GROUP = f"""
WITH up AS ({_UPSERT_ENTRIES}),
del AS (DELETE FROM state_entries e USING unnest($7::text[], $8::bytea[]) AS k(namespace, key)
        WHERE e.namespace = k.namespace AND e.key = k.key),
ch AS (INSERT INTO state_changes (namespace, revision, key, version, value, deleted, updated_at)
       SELECT * FROM unnest($9::text[], $10::int8[], $11::bytea[], $12::int8[], $13::bytea[], $14::bool[],
                            $15::float8[])),
ns AS (INSERT INTO state_namespaces (namespace, revision) SELECT * FROM unnest($16::text[], $17::int8[])
       ON CONFLICT (namespace) DO UPDATE SET revision = EXCLUDED.revision),
tr AS (DELETE FROM state_changes c USING unnest($18::text[], $19::int8[]) AS t(namespace, below)
       WHERE c.namespace = t.namespace AND c.revision <= t.below)
SELECT CASE WHEN $20::int8 IS NULL THEN true ELSE maos_fence($20::int8) END
"""
_READ_REVISIONS = "SELECT namespace, revision FROM state_namespaces WHERE namespace = ANY($1::text[])"
_RAISE_NAMESPACES = (
    "INSERT INTO state_namespaces (namespace, revision) SELECT * FROM unnest($1::text[], $2::int8[]) "
    "ON CONFLICT (namespace) DO UPDATE SET revision = GREATEST(state_namespaces.revision, EXCLUDED.revision)"
)


@dataclass(slots=True)
class _Write:
    kind: WriteKind
    namespace: str
    key: str
    raw_key: bytes
    value: bytes
    expected: int
    at: float = field(default_factory=time.time)
    result: _Result | None = None

    def __len__(self) -> int:
        return 1


class PostgresStateBackend(QueuedWrites):
    """StateBackend in the task store's PostgreSQL schema (open the PostgresStore first)."""

    def __init__(self, store: PostgresStore, *, limits: StateLimits | None = None) -> None:
        self._store = store
        self._limits = limits or StateLimits()
        self._fence = EpochFence()
        self._writer: AsyncGroupWriter[_Write] = AsyncGroupWriter(
            self._commit,
            name="maos-postgres-state-writer",
            max_rows=_MAX_WRITES_PER_COMMIT,
            transient=(StoreUnreachable,),
            replay=self._replay,
            outage_limit_seconds=store.options.outage_limit_seconds,
        )
        # The namespace revisions the last attempted write statement sets (what `_replay` checks).
        self._attempted: dict[str, int] = {}
        self._opened = False
        self._closed = False

    @property
    def description(self) -> str:
        return self._store.description

    @property
    def limits(self) -> StateLimits:
        return self._limits

    def fence(self, epoch: int, on_deposed: Callable[[str], None]) -> None:
        """Check `epoch` in every later write transaction; call `on_deposed(detail)` once it is stale."""
        self._fence.set(epoch, on_deposed)

    async def open(self) -> None:
        if self._opened:
            return
        async with self._read() as conn:
            await conn.fetchval("SELECT 1 FROM state_namespaces LIMIT 1")  # the tables exist: migrated
        self._opened = True
        self._writer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._writer.close()

    async def __aenter__(self) -> PostgresStateBackend:
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
        if self._closed or not self._opened:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        outage = self._store.outage
        if outage is not None:  # refused before it is queued: nothing applied, safe to retry
            raise StoreUnreachable(f"shared state: {outage}")
        if self._writer.backlog >= self._limits.max_pending_writes:
            raise ResourceExhausted(
                f"{self._writer.backlog} shared-state writes are waiting to be committed; retry in a moment"
            )
        write = _Write(kind, namespace, key, raw, value, expected)
        # Queued is committed: a caller that stops waiting (cancelled) does not take the write back.
        await asyncio.shield(self._writer.submit(write))
        assert write.result is not None
        return write.result

    async def _commit(self, group: list[_Write]) -> None:
        """Read what the group touches, decide every write in order, write it all in one statement.

        No row locks: this writer is the only one (one group at a time in this process; other
        control planes are kept out by the leadership fence, which fails the write statement)."""
        namespaces = sorted({w.namespace for w in group})
        keys = sorted({(w.namespace, w.raw_key) for w in group})
        self._attempted = {}
        try:
            async with self._store.pool.acquire(timeout=self._store.options.acquire_timeout_seconds) as conn:
                rows = await conn.fetch(_READ_CURRENT, namespaces, [k[0] for k in keys], [k[1] for k in keys])
                await conn.execute(_WRITE_GROUP, *self._apply(group, keys, rows), self._fence.epoch)
        except asyncpg.PostgresError as exc:
            stale = self._fence.stale(exc)
            if stale is not None:
                raise stale from None
            if isinstance(exc, CONNECTION_ERRORS):
                raise self._store.unreachable(exc) from None
            raise
        except CONNECTION_ERRORS as exc:
            raise self._store.unreachable(exc) from None

    async def _replay(self, group: list[_Write]) -> None:
        """`_commit` again, unless its last attempt committed before its connection dropped: then
        the results it decided stand."""
        attempted = self._attempted
        if attempted:
            try:
                async with self._store.pool.acquire(timeout=self._store.options.acquire_timeout_seconds) as conn:
                    rows = await conn.fetch(_READ_REVISIONS, list(attempted))
            except CONNECTION_ERRORS as exc:
                raise self._store.unreachable(exc) from None
            if {r["namespace"]: int(r["revision"]) for r in rows} == attempted:
                return
        await self._commit(group)

    def _apply(self, group: list[_Write], keys: list[tuple[str, bytes]], rows: list[asyncpg.Record]) -> list[Any]:
        """Each write's result, in order, on the group's current rows; the statement's arguments."""
        revisions: dict[str, int] = {}
        entries: dict[tuple[str, bytes], StateEntry | None] = dict.fromkeys(keys)
        for r in rows:
            if r["key"] is None:
                revisions[r["namespace"]] = int(r["revision"])
                continue
            raw = bytes(r["key"])
            entries[(r["namespace"], raw)] = StateEntry(
                r["namespace"], raw.decode(), bytes(r["value"]), int(r["version"]), int(r["revision"]), r["updated_at"]
            )
        existed = {k for k, e in entries.items() if e is not None}
        written: set[tuple[str, bytes]] = set()
        changes: list[tuple[Any, ...]] = []
        for w in group:
            at = (w.namespace, w.raw_key)
            entry = entries[at]
            version = entry.version if entry is not None else 0
            if w.kind != "put" and w.expected != version and (w.kind == "cas" or w.expected):
                w.result = StaleVersion(w.namespace, w.key, w.expected, entry)
                continue
            if w.kind == "delete" and not version:
                w.result = DeleteOutcome(None, revisions.get(w.namespace, 0))
                continue
            rev = revisions[w.namespace] = revisions.get(w.namespace, 0) + 1
            if w.kind == "delete":
                entries[at] = None
                changes.append((w.namespace, rev, w.raw_key, 0, b"", True, w.at))
                gone = StateEntry(w.namespace, w.key, b"", 0, rev, w.at)
                w.result = DeleteOutcome(StateChange(gone, deleted=True), rev)
            else:
                written.add(at)
                new = entries[at] = StateEntry(w.namespace, w.key, w.value, version + 1, rev, w.at)
                changes.append((w.namespace, rev, w.raw_key, version + 1, w.value, False, w.at))
                w.result = StateChange(new)
        keep = self._limits.change_log_size
        bumped = sorted({c[0] for c in changes})
        # The log keeps the last `keep` changes per namespace, including those of this group.
        changes = [c for c in changes if c[1] > revisions[c[0]] - keep]
        trim = [(n, revisions[n] - keep) for n in bumped if revisions[n] > keep]
        live = [(k, e) for k in sorted(written) if (e := entries[k]) is not None]
        gone_keys = [k for k in sorted(existed) if entries[k] is None]
        self._attempted = {n: revisions[n] for n in bumped}
        return [
            [k[0] for k, _ in live],
            [k[1] for k, _ in live],
            [e.value for _, e in live],
            [e.version for _, e in live],
            [e.revision for _, e in live],
            [e.updated_at for _, e in live],
            [k[0] for k in gone_keys],
            [k[1] for k in gone_keys],
            *_columns(changes, 7),
            bumped,
            [revisions[n] for n in bumped],
            [t[0] for t in trim],
            [t[1] for t in trim],
        ]

    # ------------------------------------------------------------------- reads

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        if self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        try:
            async with self._store.pool.acquire(timeout=self._store.options.acquire_timeout_seconds) as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            raise Unavailable(
                f"shared state in {self.description} is unreachable: {exc or type(exc).__name__}"
            ) from None

    async def get(self, namespace: str, key: str) -> StateEntry | None:
        raw = check_key(key, self._limits)
        async with self._read() as conn:
            row = await conn.fetchrow(
                "SELECT value, version, revision, updated_at FROM state_entries WHERE namespace = $1 AND key = $2",
                namespace,
                raw,
            )
        if row is None:
            return None
        return StateEntry(namespace, key, bytes(row[0]), int(row[1]), int(row[2]), row[3])

    async def list(
        self, namespace: str, prefix: str = "", *, after_key: str = "", limit: int = 100, keys_only: bool = False
    ) -> Sequence[StateEntry]:
        low = check_prefix(prefix, self._limits)
        value = "''::bytea" if keys_only else "value"
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT key, {value}, version, revision, updated_at FROM state_entries "
                "WHERE namespace = $1 AND key >= $2 AND key < $3 AND key > $4 ORDER BY key LIMIT $5",
                namespace,
                low,
                prefix_end(low),
                after_key.encode("utf-8"),
                limit,
            )
        return [StateEntry(namespace, bytes(r[0]).decode(), bytes(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]

    async def changes(self, namespace: str, after_revision: int, limit: int) -> Sequence[StateChange]:
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT revision, key, version, value, deleted, updated_at FROM state_changes "
                "WHERE namespace = $1 AND revision > $2 ORDER BY revision LIMIT $3",
                namespace,
                after_revision,
                limit,
            )
        return [
            StateChange(StateEntry(namespace, bytes(r[1]).decode(), bytes(r[3]), int(r[2]), int(r[0]), r[5]), r[4])
            for r in rows
        ]

    async def namespaces(self) -> Sequence[str]:
        async with self._read() as conn:
            rows = await conn.fetch("SELECT DISTINCT namespace FROM state_entries ORDER BY 1")
        return [str(r[0]) for r in rows]

    async def import_entries(self, entries: Sequence[StateEntry]) -> None:
        if not entries:
            return
        revisions: dict[str, int] = {}
        for e in entries:
            revisions[e.namespace] = max(revisions.get(e.namespace, 0), e.revision)
        names = sorted(revisions)
        try:
            async with self._read() as conn, conn.transaction():
                await self._fence.check(conn)
                await conn.execute(
                    _UPSERT_ENTRIES,
                    [e.namespace for e in entries],
                    [e.key.encode() for e in entries],
                    [e.value for e in entries],
                    [e.version for e in entries],
                    [e.revision for e in entries],
                    [e.updated_at for e in entries],
                )
                await conn.execute(_RAISE_NAMESPACES, names, [revisions[n] for n in names])
        except asyncpg.PostgresError as exc:
            stale = self._fence.stale(exc)
            if stale is not None:
                raise stale from None
            raise Unavailable(f"shared state could not be imported into {self.description}: {exc}") from None


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
