"""A checkpoint is independent of the store it came from: SQLite -> PostgreSQL -> SQLite,
and the work left unfinished completes on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from maos.client import task_result
from maos.v1 import common_pb2

from tests.integration.store.pg import fresh_schema_sync, schema_url

from .conftest import Plane


@pytest.mark.slow
def test_move_a_system_from_sqlite_to_postgresql_and_back_through_checkpoints(planes: Any) -> None:
    source: Plane = planes("sqlite-a")
    source.add_host(workers=2)
    client = source.client()
    finished = [client.submit_task(f"done {i}", agent_type="echo", input={"i": i}).id for i in range(10)]
    client.wait_tasks(finished, timeout=30)
    source.hosts[0].stop()
    source.hosts.clear()
    waiting = [client.submit_task(f"later {i}", agent_type="echo", input={"i": i}).id for i in range(10)]
    client.state.put("phase", "migrating", namespace="global")
    first = source.checkpoints().create(label="from sqlite")
    source.stop()
    checkpoints = ("--checkpoints", str(source.data_dir / "checkpoints"))

    with fresh_schema_sync() as schema:
        on_pg: Plane = planes("postgres", "--store", schema_url(schema), *checkpoints)
        summary = on_pg.checkpoints().restore(first.id)
        assert summary.counts["tasks"] == 20 and summary.counts["unfinished_tasks"] == 10
        on_pg.add_host(workers=2)
        pg_client = on_pg.client()
        done = pg_client.wait_tasks(waiting, timeout=60)
        assert [task_result(t) for t in done] == [{"i": i} for i in range(10)], on_pg.logs()
        assert all(t.status == common_pb2.TASK_STATUS_COMPLETED for t in pg_client.wait_tasks(finished))
        second = on_pg.checkpoints().create(label="from postgresql")
        assert second.counts["tasks"] == 20 and second.counts["unfinished_tasks"] == 0
        on_pg.stop()

    back: Plane = planes("sqlite-b", *checkpoints)
    back.checkpoints().restore(second.id)
    tasks = {t.id: t for t in back.client().list_tasks(include_result=True)}
    assert tasks.keys() == {*finished, *waiting}
    assert all(t.status == common_pb2.TASK_STATUS_COMPLETED for t in tasks.values())
    assert task_result(tasks[waiting[3]]) == {"i": 3}
    phase = back.client().state.get("phase", namespace="global")
    assert phase is not None and phase.value == "migrating"
