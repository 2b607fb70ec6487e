"""The Store protocol against both backends: SQLite and PostgreSQL, with the same expectations."""

from __future__ import annotations

import asyncio

import pytest
from maos.controlplane.core import AttemptResult, Orchestrator, Outcome, TaskStatus
from maos.controlplane.store import (
    NamedBlob,
    Store,
    TaskQuery,
    WriteBatch,
    attempt_row,
    event_row,
    full_row,
    mutable_row,
    record_from_spec,
)
from maos.errors import Unavailable
from maos.v1 import common_pb2


def spec(description: str, **kw: object) -> common_pb2.TaskSpec:
    return common_pb2.TaskSpec(description=description, agent_type="echo", **kw)  # type: ignore[arg-type]


def batch_of(orch: Orchestrator) -> WriteBatch:
    d = orch.take()
    inserted = {r.id for r in d.inserted}
    return WriteBatch(
        inserts=[full_row(r) for r in d.inserted],
        updates=[mutable_row(r) for r in d.changed.values() if r.id not in inserted],
        events=[event_row(e) for e in d.events],
        attempts=[attempt_row(a) for a in d.attempts.values()],
    )


async def persist(store: Store, orch: Orchestrator) -> None:
    await store.write(batch_of(orch))


async def test_tasks_round_trip_and_recovery_set(store: Store) -> None:
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
    assert recovered[1].depends_on == ("01A",)
    orch.on_started("h", "01A", 1, "h-w0", 1.5)
    await persist(store, orch)
    events = await store.task_events("01A", 0, 100)
    assert [(e.seq, e.status) for e in events] == [(1, TaskStatus.QUEUED), (2, TaskStatus.RUNNING)]
    assert [(e.seq, e.status) for e in await store.task_events("01A", 1, 100)] == [(2, TaskStatus.RUNNING)]
    [attempt] = await store.attempts("01A")
    assert (attempt.number, attempt.host_id, attempt.agent_id) == (1, "h", "h-w0")


async def test_recovery_brings_back_the_finished_tasks_live_ones_need(store: Store) -> None:
    orch = Orchestrator()
    dep = record_from_spec("01D", spec("dep"), root_id="01D", agent_type="echo", created_at=1.0)
    orch.submit([dep], 1.0)
    orch.host_connected("h", 1, ["echo"], [], 1.0)
    orch.dispatch(1.0)
    orch.on_started("h", "01D", 1, "h-w0", 1.1)
    await persist(store, orch)
    orch.on_result("h", AttemptResult("01D", 1, Outcome.SUCCEEDED, b'{"ok": 1}', "application/json"), 1.2)
    await persist(store, orch)
    later = record_from_spec("01E", spec("later", depends_on=["01D"]), root_id="01E", agent_type="echo", created_at=2.0)
    orch.submit([later], 2.0)
    await persist(store, orch)
    recovered = {r.id: r for r in await store.load_recovery_set()}
    assert set(recovered) == {"01D", "01E"}
    assert recovered["01D"].status == TaskStatus.COMPLETED


async def test_many_concurrent_batches_commit_in_order(store: Store) -> None:
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
    queued = await store.list_tasks(TaskQuery(statuses=(TaskStatus.QUEUED,), root_id="01T00007"))
    assert [r.id for r in queued] == ["01T00007"]


async def test_the_newest_snapshot_of_a_task_wins_within_a_group(store: Store) -> None:
    orch = Orchestrator()
    rec = record_from_spec("01S", spec("s"), root_id="01S", agent_type="echo", created_at=1.0)
    orch.submit([rec], 1.0)
    await persist(store, orch)
    # Two updates of one task queued together: both commit, the later one's values stay.
    rec.progress, rec.progress_message = 0.25, "first"
    first = store.write(WriteBatch(updates=[mutable_row(rec)]))
    rec.progress, rec.progress_message = 0.75, "second"
    second = store.write(WriteBatch(updates=[mutable_row(rec)]))
    await asyncio.gather(first, second)
    [loaded] = await store.get_tasks(["01S"])
    assert (loaded.progress, loaded.progress_message) == (0.75, "second")


async def test_idempotency_key_lookup(store: Store) -> None:
    orch = Orchestrator()
    rec = record_from_spec("01K", spec("k", idempotency_key="key-1"), root_id="01K", agent_type="echo", created_at=1.0)
    orch.submit([rec], 1.0)
    await persist(store, orch)
    assert await store.find_idempotency_key("key-1") == "01K"
    assert await store.find_idempotency_key("other") is None


async def test_templates_batches_and_settings_round_trip(store: Store) -> None:
    await store.write(
        WriteBatch(
            templates=[NamedBlob("b-tpl", b"\x01\x02", 1.0), NamedBlob("a-tpl", b"\x03", 2.0)],
            batches=[NamedBlob("nightly", b"\x04", 3.0)],
            settings=[("scheduler.max_queue_time", "60"), ("pool.target", "0.75")],
        )
    )
    await store.write(
        WriteBatch(
            templates=[NamedBlob("a-tpl", b"\x05", 4.0)],
            deleted_templates=["b-tpl"],
            settings=[("pool.target", "0.8")],
        )
    )
    assert await store.load_templates() == [NamedBlob("a-tpl", b"\x05", 4.0)]
    assert await store.load_batches() == [NamedBlob("nightly", b"\x04", 3.0)]
    assert await store.load_settings() == {"scheduler.max_queue_time": "60", "pool.target": "0.8"}


async def test_purged_roots_leave_with_their_events_and_attempts(store: Store) -> None:
    orch = Orchestrator()
    keep = record_from_spec("01P1", spec("keep"), root_id="01P1", agent_type="echo", created_at=1.0)
    gone = record_from_spec(
        "01P2", spec("gone", idempotency_key="k-gone"), root_id="01P2", agent_type="echo", created_at=2.0
    )
    orch.submit([keep, gone], 1.0)
    orch.host_connected("h", 2, ["echo"], [], 1.0)
    orch.dispatch(1.0)
    await persist(store, orch)
    await store.write(WriteBatch(purged_roots=["01P2"]))
    assert [r.id for r in await store.get_tasks(["01P1", "01P2"])] == ["01P1"]
    assert await store.task_events("01P2", 0, 100) == []
    assert await store.attempts("01P2") == []
    assert await store.find_idempotency_key("k-gone") is None
    assert len(await store.task_events("01P1", 0, 100)) == 1
    assert len(await store.attempts("01P1")) == 1


async def test_a_closed_store_refuses_writes(store: Store) -> None:
    await store.close()
    with pytest.raises(Unavailable, match="closed"):
        await store.write(WriteBatch(settings=[("k", "v")]))
