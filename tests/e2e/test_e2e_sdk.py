"""The Python SDK against the same real cluster: batching, waiting, watching, errors."""

from __future__ import annotations

from typing import Any

import pytest
from maos.client import SUBMIT_BATCH_LIMIT, AsyncClient, Client, is_final, status_name, task_result
from maos.errors import InvalidArgument, NotFound
from maos.v1 import common_pb2


def test_submit_tasks_in_chunks_and_wait_for_all(cluster: Any) -> None:
    count = SUBMIT_BATCH_LIMIT + 5  # two SubmitTasks calls
    with Client(cluster.endpoint) as client:
        tasks = client.submit_tasks(
            {"description": f"echo {i}", "agent_type": "echo", "input": i} for i in range(count)
        )
        assert len(tasks) == count
        assert len({t.id for t in tasks}) == count
        done = client.wait_tasks([t.id for t in tasks], timeout=60)
    assert [status_name(t.status) for t in done] == ["completed"] * count
    assert [task_result(t) for t in done] == list(range(count))


def test_errors_are_maos_errors(cluster: Any) -> None:
    with Client(cluster.endpoint) as client:
        with pytest.raises(NotFound):
            client.get_task("01NOSUCHTASK0000000000000")
        with pytest.raises(InvalidArgument, match="agent type"):
            client.submit_task("x", agent_type="no-such-agent-type")


async def test_async_client_watch_follows_a_task_to_its_end(cluster: Any) -> None:
    async with AsyncClient(cluster.endpoint) as client:
        task = await client.submit_task("nap", agent_type="nap")
        statuses = [event.status async for event in client.watch_task(task.id)]
        assert statuses[-1] == common_pb2.TASK_STATUS_COMPLETED
        assert common_pb2.TASK_STATUS_RUNNING in statuses
        seqs_final = await client.get_task(task.id)
        assert is_final(seqs_final.status)
        # Resuming after the last sequence number replays nothing and ends at once.
        assert [e async for e in client.watch_task(task.id, after_seq=seqs_final.last_seq)] == []
        waited = await client.wait_task(task.id, timeout=5)
        assert waited.status == common_pb2.TASK_STATUS_COMPLETED
        listed = [t.id async for t in client.list_tasks(statuses=["completed"], limit=3)]
        assert len(listed) == 3


def test_submit_with_wait_returns_the_result_in_one_call(cluster: Any) -> None:
    with Client(cluster.endpoint) as client:
        task = client.submit_task("echo in one call", agent_type="echo", input={"n": 7}, wait=30)
    assert task.status == common_pb2.TASK_STATUS_COMPLETED
    assert task_result(task) == {"n": 7}
