"""PostgreSQL schema: versioned migrations and the monthly partitions of `tasks`.

Migrations are ordered SQL steps in code; `schema_version` records each one
applied. They run at start-up under a transaction-level advisory lock, so two
control planes starting together apply each step once. A schema newer than
this binary knows is refused, naming both versions.

`tasks` is range-partitioned by `created_at` (epoch seconds) into calendar
months (UTC). A partitioned table's primary key must contain the partition
key, so it is (id, created_at); its leading `id` column serves look-ups by id,
which probe each partition's index (a retention period keeps a few dozen
partitions at most; a global id table would cost a second write per task on
the hot path). Idempotency keys must be unique across partitions, which a
partitioned index cannot enforce, so they live in `task_keys` (key primary key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
from maos.errors import Unavailable

# A plain connection or one lent by the pool: both run statements alike.
Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"

# Statuses as stored (maos.controlplane.core.TaskStatus): 1 PENDING, 2 QUEUED, 3 RUNNING.
_TASK_COLUMNS = """
    id TEXT COLLATE "C" NOT NULL,
    root_id TEXT COLLATE "C" NOT NULL,
    parent_id TEXT COLLATE "C" NOT NULL,
    spec BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    idempotency_key TEXT,
    workflow_key TEXT NOT NULL,
    grp INTEGER NOT NULL,
    agent_type TEXT NOT NULL,
    plan BYTEA NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    host_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    queued_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NOT NULL,
    progress DOUBLE PRECISION NOT NULL,
    progress_message TEXT NOT NULL,
    result BYTEA NOT NULL,
    result_type TEXT NOT NULL,
    error_kind TEXT NOT NULL,
    error_message TEXT NOT NULL,
    log TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (id, created_at)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tasks (partitioned by month), events, attempts, idempotency keys, templates, settings, batches",
        (
            f"CREATE TABLE tasks ({_TASK_COLUMNS}) PARTITION BY RANGE (created_at)",
            # The guide's index for the queue views: queued/running tasks by status, priority, age.
            "CREATE INDEX idx_tasks_status_priority_created ON tasks (status, priority DESC, created_at DESC) "
            "WHERE status IN (2, 3)",
            # Recovery also reads tasks waiting on dependencies; keep that index as small.
            "CREATE INDEX idx_tasks_pending ON tasks (created_at) WHERE status = 1",
            "CREATE INDEX idx_tasks_root ON tasks (root_id)",
            "CREATE INDEX idx_tasks_parent ON tasks (parent_id) WHERE parent_id <> ''",
            """CREATE TABLE task_keys (
                idempotency_key TEXT PRIMARY KEY,
                task_id TEXT COLLATE "C" NOT NULL,
                root_id TEXT COLLATE "C" NOT NULL
            )""",
            "CREATE INDEX idx_task_keys_root ON task_keys (root_id)",
            """CREATE TABLE task_events (
                task_id TEXT COLLATE "C" NOT NULL,
                seq BIGINT NOT NULL,
                status INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                time DOUBLE PRECISION NOT NULL,
                host_id TEXT NOT NULL,
                message TEXT NOT NULL,
                progress DOUBLE PRECISION NOT NULL,
                progress_message TEXT NOT NULL,
                PRIMARY KEY (task_id, seq)
            )""",
            """CREATE TABLE task_attempts (
                task_id TEXT COLLATE "C" NOT NULL,
                number INTEGER NOT NULL,
                host_id TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                dispatched_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                finished_at DOUBLE PRECISION NOT NULL,
                status INTEGER NOT NULL,
                error_kind TEXT NOT NULL,
                error_message TEXT NOT NULL,
                PRIMARY KEY (task_id, number)
            )""",
            """CREATE TABLE templates (
                name TEXT COLLATE "C" PRIMARY KEY,
                data BYTEA NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE batches (
                name TEXT COLLATE "C" PRIMARY KEY,
                data BYTEA NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "leadership: the active control plane's epoch and endpoint (active/standby fencing)",
        (
            """CREATE TABLE leadership (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                epoch BIGINT NOT NULL,
                leader TEXT NOT NULL,
                since DOUBLE PRECISION NOT NULL
            )""",
            "INSERT INTO leadership (id, epoch, leader, since) VALUES (1, 0, '', 0)",
        ),
    ),
    Migration(
        3,
        "maos_fence(epoch): the leadership check every write runs, in the same statement",
        (
            # FOR SHARE: a new leader's epoch bump waits for the writes that passed this check, and
            # a write after the bump sees the new epoch and fails with SQLSTATE MA001.
            """CREATE FUNCTION maos_fence(mine BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
            DECLARE
                current BIGINT;
                holder TEXT;
            BEGIN
                SELECT epoch, leader INTO current, holder FROM leadership WHERE id = 1 FOR SHARE;
                IF current IS DISTINCT FROM mine THEN
                    RAISE EXCEPTION USING ERRCODE = 'MA001', MESSAGE = format(
                        'leadership epoch %s is stale: the leader is now %s (epoch %s)',
                        mine, COALESCE(NULLIF(holder, ''), 'unknown'), current);
                END IF;
                RETURN TRUE;
            END $$""",
        ),
    ),
    Migration(
        4,
        "messages and topic subscriptions; shared state (entries, namespace revisions, change log)",
        (
            # seq is assigned by the service, increasing: the delivery order within a priority.
            """CREATE TABLE messages (
                seq BIGINT PRIMARY KEY,
                mailbox TEXT COLLATE "C" NOT NULL,
                id TEXT COLLATE "C" NOT NULL,
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                topic TEXT NOT NULL,
                priority INTEGER NOT NULL,
                data BYTEA NOT NULL,
                content_type TEXT NOT NULL,
                sent_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                processed BOOLEAN NOT NULL DEFAULT false,
                processed_at DOUBLE PRECISION NOT NULL DEFAULT 0,
                UNIQUE (mailbox, id)
            )""",
            # The guide's index: unprocessed messages by recipient (a message's mailbox is the
            # recipient it waits in; `recipient` records what the sender addressed: task, topic, tree).
            "CREATE INDEX idx_messages_recipient_unprocessed ON messages (mailbox, sent_at DESC) WHERE NOT processed",
            "CREATE INDEX idx_messages_processed ON messages (processed_at) WHERE processed",
            """CREATE TABLE message_subscriptions (
                mailbox TEXT COLLATE "C" PRIMARY KEY,
                topic TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
            # Keys are UTF-8 bytes: BYTEA compares by bytes, the order SQLite and Redis list them in.
            """CREATE TABLE state_entries (
                namespace TEXT COLLATE "C" NOT NULL,
                key BYTEA NOT NULL,
                value BYTEA NOT NULL,
                version BIGINT NOT NULL,
                revision BIGINT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (namespace, key)
            )""",
            """CREATE TABLE state_namespaces (
                namespace TEXT COLLATE "C" PRIMARY KEY,
                revision BIGINT NOT NULL
            )""",
            """CREATE TABLE state_changes (
                namespace TEXT COLLATE "C" NOT NULL,
                revision BIGINT NOT NULL,
                key BYTEA NOT NULL,
                version BIGINT NOT NULL,
                value BYTEA NOT NULL,
                deleted BOOLEAN NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (namespace, revision)
            )""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


async def schema_version(conn: Conn) -> int:
    """The version recorded in the current schema, 0 for an empty one."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


async def migrate(conn: Conn, *, lock_key: int, where: str, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply the missing steps in order, each in its own transaction; returns the version reached."""
    known = migrations[-1].version
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = await schema_version(conn)
        if current > known:
            raise Unavailable(
                f"{where} has schema version {current}, newer than this control plane's {known}: "
                f"run a MAOS release that knows version {current}"
            )
        for step in migrations:
            if step.version <= current:
                continue
            for sql in step.statements:
                await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) "
                "VALUES ($1, $2, EXTRACT(EPOCH FROM clock_timestamp()))",
                step.version,
                step.description,
            )
            current = step.version
    return current


# ---------------------------------------------------------------- partitions

Month = tuple[int, int]  # (year, month)

_MIN_YEAR, _MAX_YEAR = 1970, 9998


def month_of(timestamp: float) -> Month:
    """The UTC calendar month a creation time falls in (clamped to a range PostgreSQL can name)."""
    try:
        when = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    except (OverflowError, OSError, ValueError):
        when = dt.datetime(_MAX_YEAR if timestamp > 0 else _MIN_YEAR, 1, 1, tzinfo=dt.UTC)
    if when.year < _MIN_YEAR:
        return (_MIN_YEAR, 1)
    if when.year > _MAX_YEAR:
        return (_MAX_YEAR, 12)
    return (when.year, when.month)


def next_month(month: Month) -> Month:
    year, m = month
    return (year + 1, 1) if m == 12 else (year, m + 1)


def month_bounds(month: Month) -> tuple[float, float]:
    """[start, end) in epoch seconds; the first month also takes anything earlier."""
    start = dt.datetime(month[0], month[1], 1, tzinfo=dt.UTC).timestamp()
    end_month = next_month(month)
    end = dt.datetime(end_month[0], end_month[1], 1, tzinfo=dt.UTC).timestamp()
    return start, end


def partition_name(month: Month) -> str:
    return f"tasks_p{month[0]:04d}{month[1]:02d}"


def months_ahead(now: float, ahead: int) -> list[Month]:
    """The current month and the `ahead` months after it."""
    months = [month_of(now)]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    return months


async def existing_partitions(conn: Conn) -> set[Month]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'tasks'::regclass"
    )
    months: set[Month] = set()
    for row in rows:
        name: str = row["relname"]
        if name.startswith("tasks_p") and len(name) == 13 and name[7:].isdigit():
            months.add((int(name[7:11]), int(name[11:13])))
    return months


async def create_partitions(conn: Conn, months: list[Month]) -> None:
    """Create the monthly partitions that do not exist yet (idempotent, safe to race)."""
    for month in months:
        start, end = month_bounds(month)
        if month[0] == _MIN_YEAR and month[1] == 1:
            start_sql = "MINVALUE"
        else:
            start_sql = repr(start)
        end_sql = "MAXVALUE" if month == (_MAX_YEAR, 12) else repr(end)
        sql = (
            f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF tasks "
            f"FOR VALUES FROM ({start_sql}) TO ({end_sql})"
        )
        try:
            await conn.execute(sql)
        except (asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
            pass  # another control plane created it between our check and the statement
