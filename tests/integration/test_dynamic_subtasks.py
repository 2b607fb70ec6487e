"""Agents that spawn children and wait for them, on a pool too small to run them all at once."""

from __future__ import annotations

from maos.v1 import common_pb2, tasks_pb2

from tests.integration.conftest import Cluster
from tests.support.api import result_of


def test_recursive_spawn_depth_6_on_two_workers_does_not_deadlock(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.start_controlplane()
    c.add_host(workers=2)
    root = c.api.submit("recursive fan-out", "recursive", {"depth": 6})
    done = c.api.wait_one(root.id, timeout=180)
    assert done.status == common_pb2.TASK_STATUS_COMPLETED, (done.error, c.logs())
    assert result_of(done) == 2**6  # every leaf returned 1 up a binary tree of depth 6
    children = c.api.tasks.ListTasks(tasks_pb2.ListTasksRequest(root_id=root.id, page_size=1000), timeout=10).tasks
    assert len(children) == 2**7 - 1  # the root and all its descendants share its root id
