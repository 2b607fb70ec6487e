"""What only the PostgreSQL store has: migrations, monthly partitions, the pool's knobs,
fencing by leadership epoch, and one clear error for a store that cannot be opened."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import sys
import uuid

import asyncpg
import pytest
from maos.controlplane.core import Orchestrator
from maos.controlplane.store import NotLeader, PostgresOptions, PostgresStore, WriteBatch, full_row, record_from_spec
from maos.controlplane.store._pg_schema import MIGRATIONS, SCHEMA_VERSION, migrate, partition_name
from maos.errors import InvalidArgument, Unavailable
from maos.v1 import common_pb2

from tests.integration.store.pg import POSTGRES_URL, fresh_schema, schema_url

SMALL = PostgresOptions(pool_size=1, max_overflow=1)


async def _sql(schema: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def _task(task_id: str, created_at: float) -> WriteBatch:
    orch = Orchestrator()
    spec = common_pb2.TaskSpec(description=task_id, agent_type="echo")
    orch.submit([record_from_spec(task_id, spec, root_id=task_id, agent_type="echo", created_at=created_at)], 0.0)
    return WriteBatch(inserts=[full_row(r) for r in orch.take().inserted])


async def test_migrations_are_recorded_and_applied_once() -> None:
    async with fresh_schema() as schema:
        for _ in range(2):  # the second start finds everything applied
            store = PostgresStore(schema_url(schema), SMALL)
            await store.open()
            assert store.schema_version == SCHEMA_VERSION
            await store.close()
        rows = await _sql(schema, "SELECT version, description FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
        assert all(r["description"] for r in rows)


async def test_an_older_schema_is_brought_up_to_date_keeping_its_rows() -> None:
    async with fresh_schema() as schema:
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            assert await migrate(conn, lock_key=1, where="test", migrations=MIGRATIONS[:1]) == 1
            await conn.execute("INSERT INTO settings (key, value) VALUES ('kept', 'yes')")
        finally:
            await conn.close()
        store = PostgresStore(schema_url(schema), SMALL)
        await store.open()
        try:
            assert store.schema_version == SCHEMA_VERSION
            assert await store.load_settings() == {"kept": "yes"}
            [leader] = await _sql(schema, "SELECT epoch FROM leadership")
            assert leader["epoch"] == 0
        finally:
            await store.close()


async def test_a_newer_schema_is_refused_naming_both_versions() -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), SMALL)
        await store.open()
        await store.close()
        await _sql(schema, "INSERT INTO schema_version VALUES (999, 'from the future', 0)")
        newer = PostgresStore(schema_url(schema), SMALL)
        with pytest.raises(Unavailable, match=f"schema version 999, newer than this control plane's {SCHEMA_VERSION}"):
            await newer.open()
        await newer.close()


async def test_partitions_are_made_ahead_and_on_demand() -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), PostgresOptions(pool_size=1, max_overflow=1, partitions_ahead=3))
        await store.open()
        try:
            names = {r["relname"] for r in await _sql(schema, _PARTITIONS)}
            now = dt.datetime.now(dt.UTC)
            month = (now.year, now.month)
            expected = set()
            for _ in range(4):
                expected.add(partition_name(month))
                month = (month[0] + 1, 1) if month[1] == 12 else (month[0], month[1] + 1)
            assert expected <= names and len(names) == 4
            # A task created in a month with no partition yet gets one, and lands in it.
            far = dt.datetime(2031, 5, 17, tzinfo=dt.UTC).timestamp()
            await store.write(_task("01FAR", far))
            [row] = await _sql(schema, "SELECT tableoid::regclass::text AS part FROM tasks WHERE id = '01FAR'")
            assert row["part"] == "tasks_p203105"
            assert [r.id for r in await store.get_tasks(["01FAR"])] == ["01FAR"]
        finally:
            await store.close()


_PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tasks'::regclass"
)


async def test_the_pool_follows_its_knobs() -> None:
    name = f"maos-test-{uuid.uuid4().hex[:8]}"
    options = PostgresOptions(
        pool_size=2, max_overflow=1, acquire_timeout_seconds=0.3, recycle_seconds=0.5, application_name=name
    )
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), options)
        await store.open()
        try:
            assert (store.pool.get_min_size(), store.pool.get_max_size()) == (2, 3)
            [row] = await _sql(schema, "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE application_name = $1", name)
            assert row["n"] == 2
            # Every connection lent out: the next caller waits the acquire timeout, then fails cleanly.
            held = [await store.pool.acquire() for _ in range(3)]
            try:
                with pytest.raises(Unavailable, match="unreachable"):
                    await store.load_settings()
            finally:
                for conn in held:
                    await store.pool.release(conn)
            # Connections older than the recycle period are replaced.
            async with store.pool.acquire() as conn:
                before = conn.get_server_pid()
            await asyncio.sleep(1.2)
            async with store.pool.acquire() as conn:
                after = conn.get_server_pid()
            assert after != before
        finally:
            await store.close()


async def test_a_stale_epoch_cannot_write() -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), SMALL)
        await store.open()
        deposed: list[str] = []
        try:
            await _sql(schema, "UPDATE leadership SET epoch = 7, leader = 'old:1'")
            store.fence(7, deposed.append)
            await store.write(_task("01OK", 1.0))
            await _sql(schema, "UPDATE leadership SET epoch = 8, leader = 'new:2'")
            with pytest.raises(NotLeader, match="new:2"):
                await store.write(_task("01NO", 1.0))
            assert [r.id for r in await store.get_tasks(["01OK", "01NO"])] == ["01OK"]
            assert deposed and "epoch 7" in deposed[0]
        finally:
            await store.close()


async def _open_and_close(url: str) -> None:
    store = PostgresStore(url, SMALL)
    try:
        await store.open()
    finally:
        await store.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "error", "message"),
    [
        (f"postgresql://postgres@127.0.0.1:{_closed_port()}/test", Unavailable, "cannot reach the store"),
        ("postgresql://no_such_role_maos@127.0.0.1:5432/test", Unavailable, "refused the login"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_maos", Unavailable, "does not exist"),
        ("postgresql://postgres@127.0.0.1:notaport/test", InvalidArgument, "not a valid URL"),
        ("postgresql://postgres@127.0.0.1:5432/test?schema=Bad-Name", InvalidArgument, "schema"),
    ],
)
async def test_a_store_that_cannot_be_opened_is_one_clear_error(url: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        await _open_and_close(url)
    assert "\n" not in str(caught.value)


_DAEMON = [sys.executable, "-m", "maos.controlplane", "--listen", "127.0.0.1:0"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://no_such_role_maos:secret@127.0.0.1:5432/test", "refused the login"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_maos", "does not exist"),
        ("mysql://127.0.0.1/test", "is not a store"),
    ],
)
def test_the_daemon_refuses_to_start_with_one_line(tmp_path: object, url: str, message: str) -> None:
    proc = subprocess.run(
        [*_DAEMON, "--data-dir", str(tmp_path), "--store", url, "--store-pool-size", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "secret" not in proc.stderr
