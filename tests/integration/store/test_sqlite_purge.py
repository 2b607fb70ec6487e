"""SqliteStore deletes purged task trees (tasks, events, attempts) and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from maos.controlplane.core import Orchestrator, TaskStatus
from maos.controlplane.store import (
    SqliteStore,
    TaskQuery,
    WriteBatch,
    attempt_row,
    event_row,
    full_row,
    mutable_row,
    record_from_spec,
)
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


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = SqliteStore(tmp_path / "maos.db")
    await s.open()
    yield s
    await s.close()


async def test_purged_roots_delete_their_trees_with_events_and_attempts(store: SqliteStore) -> None:
    orch = Orchestrator()
    orch.host_connected("h", 4, ["echo"], [], 1.0)
    root = record_from_spec("01R", spec("root"), root_id="01R", agent_type="", created_at=1.0, group=True)
    child = record_from_spec("01RA", spec("a", parent_id="01R"), root_id="01R", agent_type="echo", created_at=1.0)
    keep = record_from_spec("01S", spec("kept"), root_id="01S", agent_type="echo", created_at=1.0)
    orch.submit([root, child, keep], 1.0)
    orch.dispatch(1.0)
    await store.write(batch_of(orch))
    assert len(await store.attempts("01RA")) == 1

    # The purge rides in the same commit as the child's last writes: those go too.
    orch.on_started("h", "01RA", 1, "h-w0", 2.0)
    tail = batch_of(orch)
    tail.purged_roots = ["01R"]
    await store.write(tail)

    assert [r.id for r in await store.list_tasks(TaskQuery(limit=10))] == ["01S"]
    assert await store.get_tasks(["01R", "01RA"]) == []
    assert await store.task_events("01RA", 0, 10) == []
    assert await store.task_events("01R", 0, 10) == []
    assert await store.attempts("01RA") == []
    assert [e.seq for e in await store.task_events("01S", 0, 10)] == [1]
    assert len(await store.attempts("01S")) == 1
    counts = await store.counts_by_status()
    assert sum(counts.values()) == 1 and counts[TaskStatus.QUEUED] == 1
