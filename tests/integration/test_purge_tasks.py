"""PurgeTasks against a real control plane: finished trees go, everything else is refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from maos.client import Client
from maos.errors import FailedPrecondition, InvalidArgument, NotFound

from tests.integration.conftest import Cluster

MAOSCTL = Path(sys.executable).with_name("maosctl")


def test_a_finished_workflow_is_purged_with_every_subtask(cluster: Cluster) -> None:
    with Client(cluster.endpoint) as client:
        root, ids = client.submit_workflow(
            {"a": {"description": "a", "agent_type": "echo"}, "b": {"description": "b", "depends_on": ["a"]}},
            "purge me",
        )
        client.wait_task(root.id, timeout=30)
        kept = client.submit_task("kept", agent_type="echo", wait=30)

        reply = client.purge_tasks([root.id])

        assert (reply.roots, reply.tasks) == (1, 3)
        for task_id in (root.id, *ids.values()):
            with pytest.raises(NotFound):
                client.get_task(task_id)
        assert list(client.list_tasks(root_id=root.id)) == []
        assert client.get_task(kept.id).id == kept.id
        with pytest.raises(NotFound):
            client.purge_tasks([root.id])


def test_purge_refuses_unfinished_trees_and_non_roots_and_deletes_nothing(cluster: Cluster) -> None:
    with Client(cluster.endpoint) as client:
        done = client.submit_task("done", agent_type="echo", wait=30)
        root, ids = client.submit_workflow(
            {"s": {"description": "s", "agent_type": "sleeper", "input": {"seconds": 30}}}, "busy"
        )
        try:
            with pytest.raises(FailedPrecondition, match=f"task tree {root.id} is not finished"):
                client.purge_tasks([done.id, root.id])
            with pytest.raises(InvalidArgument, match=f"purge its root {root.id}"):
                client.purge_tasks([ids["s"]])
            with pytest.raises(InvalidArgument, match="root_ids is empty"):
                client.purge_tasks([])
            assert client.get_task(done.id).id == done.id  # all or none
        finally:
            client.cancel_task(root.id)
        client.wait_task(root.id, timeout=30)
        # A cancelled running agent holds its lease until its host reports back.
        assert _purge_when_stopped(client, [done.id, root.id]) == 3


def _purge_when_stopped(client: Client, roots: list[str]) -> int:
    """Purge, retrying while a cancelled agent is still being stopped (and only then)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.purge_tasks(roots).tasks
        except FailedPrecondition as exc:
            if "still being stopped" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_maosctl_task_purge(cluster: Cluster) -> None:
    with Client(cluster.endpoint) as client:
        task = client.submit_task("one", agent_type="echo", wait=30)
    run = subprocess.run(
        [str(MAOSCTL), "--endpoint", cluster.endpoint, "task", "purge", task.id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stdout.strip()) == (0, "purged 1 task tree(s), 1 task(s)"), run.stderr
    again = subprocess.run(
        [str(MAOSCTL), "--endpoint", cluster.endpoint, "task", "purge", task.id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and task.id in again.stderr and "Traceback" not in again.stderr
