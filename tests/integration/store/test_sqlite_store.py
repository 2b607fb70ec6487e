"""The SQLite store against a real database file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from maos.controlplane.core import Orchestrator, TaskStatus
from maos.controlplane.store import (
    SqliteStore,
    TaskQuery,
    WriteBatch,
    event_row,
    full_row,
    mutable_row,
    record_from_spec,
)
from maos.v1 import common_pb2


def spec(description: str, **kw: object) -> common_pb2.TaskSpec:
    return common_pb2.TaskSpec(description=description, agent_type="echo", **kw)  # type: ignore[arg-type]


async def persist(store: SqliteStore, orch: Orchestrator) -> None:
    d = orch.take()
    inserted = {r.id for r in d.inserted}
    await store.write(
        WriteBatch(
            inserts=[full_row(r) for r in d.inserted],
            updates=[mutable_row(r) for r in d.changed.values() if r.id not in inserted],
            events=[event_row(e) for e in d.events],
        )
    )


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SqliteStore(tmp_path / "maos.db")
    await s.open()
    yield s
    await s.close()


async def test_tasks_round_trip_and_recovery_set(store: SqliteStore) -> None:
    orch = Orchestrator()
    a = record_from_spec("01A", spec("a"), root_id="01A", agent_type="echo", created_at=1.0)
    b = record_from_spec("01B", spec("b", depends_on=["01A"]), root_id="01B", agent_type="echo", created_at=2.0)
    orch.submit([a, b], 1.0)
    await persist(store, orch)
    orch.host_connected("h", 1, ["echo"], [], 1.0)
    orch.dispatch(1.0)
    await persist(store, orch)
    [loaded] = await store.get_tasks(["01A"])
    assert loaded.status == TaskStatus.QUEUED and loaded.attempt == 1 and loaded.host_id == "h"
    assert loaded.spec.description == "a"
    recovered = await store.load_recovery_set()
    assert [r.id for r in recovered] == ["01A", "01B"]
    orch.on_started("h", "01A", 1, "h-w0", 1.5)
    await persist(store, orch)
    events = await store.task_events("01A", 0, 100)
    assert [(e.seq, e.status) for e in events] == [(1, TaskStatus.QUEUED), (2, TaskStatus.RUNNING)]


async def test_many_concurrent_batches_commit_in_order(store: SqliteStore) -> None:
    orch = Orchestrator()
    recs = [
        record_from_spec(f"01T{i:05d}", spec(f"t{i}"), root_id=f"01T{i:05d}", agent_type="echo", created_at=float(i))
        for i in range(2000)
    ]
    futures = []
    for chunk in range(0, 2000, 100):
        orch.submit(recs[chunk : chunk + 100], 0.0)
        d = orch.take()
        futures.append(
            store.write(WriteBatch(inserts=[full_row(r) for r in d.inserted], events=[event_row(e) for e in d.events]))
        )
    await asyncio.gather(*futures)
    assert store.backlog == 0
    counts = await store.counts_by_status()
    assert counts[TaskStatus.QUEUED] == 2000
    page1 = await store.list_tasks(TaskQuery(limit=10))
    page2 = await store.list_tasks(TaskQuery(limit=10, before_id=page1[-1].id))
    assert [r.id for r in page1] == [f"01T{i:05d}" for i in range(1999, 1989, -1)]
    assert page2[0].id == "01T01989"


async def test_idempotency_key_lookup(store: SqliteStore) -> None:
    orch = Orchestrator()
    rec = record_from_spec("01K", spec("k", idempotency_key="key-1"), root_id="01K", agent_type="echo", created_at=1.0)
    orch.submit([rec], 1.0)
    await persist(store, orch)
    assert await store.find_idempotency_key("key-1") == "01K"
    assert await store.find_idempotency_key("other") is None


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from maos.errors import Unavailable

    first = SqliteStore(tmp_path / "maos.db")
    await first.open()
    await first.close()
    with sqlite3.connect(tmp_path / "maos.db") as db:
        db.execute("UPDATE schema_version SET version = 999")
    second = SqliteStore(tmp_path / "maos.db")
    with pytest.raises(Unavailable, match="schema version 999"):
        await second.open()
    await second.close()
