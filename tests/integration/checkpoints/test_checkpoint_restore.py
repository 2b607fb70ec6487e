"""Checkpoints of a running system, restored onto an empty control plane: the same tasks,
shared state and messages, and the unfinished work runs to completion."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from maos.client import Client, task_result
from maos.client.cli._local import StartupError
from maos.errors import FailedPrecondition, InvalidArgument, NotFound
from maos.v1 import common_pb2

from .conftest import Plane

COMPLETED = common_pb2.TASK_STATUS_COMPLETED
RUNNING = common_pb2.TASK_STATUS_RUNNING
FINAL = {COMPLETED, common_pb2.TASK_STATUS_FAILED, common_pb2.TASK_STATUS_CANCELLED, common_pb2.TASK_STATUS_TIMED_OUT}


def all_tasks(client: Client) -> dict[str, common_pb2.Task]:
    return {t.id: t for t in client.list_tasks(include_result=True, page_size=500)}


def wait_until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_create_list_show_delete_round_trip_with_maosctl(planes: Any) -> None:
    plane: Plane = planes("cp")
    plane.client().submit_task("waits for a host", agent_type="echo", input={"n": 1})
    made = plane.maosctl_json("checkpoint", "create", "--label", "round trip")
    assert made["label"] == "round trip" and made["trigger"] == "manual"
    assert made["counts"]["tasks"] == 1 and made["counts"]["unfinished_tasks"] == 1
    assert made["compression_ratio"] > 0 and made["compressed_bytes"] > 0
    assert Path(made["location"], "manifest.json").is_file()

    table = plane.maosctl("checkpoint", "list")
    assert table.returncode == 0 and made["id"] in table.stdout and "round trip" in table.stdout
    assert [c.id for c in plane.checkpoints().list()] == [made["id"]]

    shown = plane.maosctl_json("checkpoint", "show", made["id"])
    assert shown == made
    sections = {s["name"] for s in shown["sections"]}
    assert sections == {"agents", "tasks", "events", "attempts", "shared_state", "message_queues", "library"}
    assert all(len(s["sha256"]) == 64 for s in shown["sections"])

    deleted = plane.maosctl("checkpoint", "delete", made["id"])
    assert deleted.returncode == 0 and f"deleted checkpoint {made['id']}" in deleted.stdout
    assert plane.checkpoints().list() == []
    gone = plane.maosctl("checkpoint", "show", made["id"])
    assert gone.returncode == 1
    assert gone.stderr.startswith("error: no checkpoint ") and len(gone.stderr.strip().splitlines()) == 1
    with pytest.raises(InvalidArgument, match="is not a checkpoint id"):
        plane.checkpoints().get("../etc")


@pytest.mark.slow
def test_restore_onto_an_empty_control_plane_brings_everything_back_and_finishes_the_work(planes: Any) -> None:
    old: Plane = planes("old")
    old.add_host(workers=2)
    client = old.client()
    finished = [client.submit_task(f"echo {i}", agent_type="echo", input={"i": i}).id for i in range(20)]
    client.wait_tasks(finished, timeout=30)
    # Unfinished work of every kind: running, queued behind busy workers, pending on a dependency.
    root, ids = client.submit_workflow(
        {
            "slow": {"description": "slow step", "agent_type": "sleeper", "input": {"seconds": 2.0}},
            "after": {"description": "after it", "agent_type": "echo", "depends_on": ["slow"], "input": {"x": 1}},
        },
        "a workflow cut by the checkpoint",
    )
    sleepers = [client.submit_task(f"sleep {i}", agent_type="sleeper", input={"seconds": 1.0}).id for i in range(3)]
    wait_until(lambda: client.get_task(ids["slow"]).status == RUNNING, "the slow step to run")
    client.state.put("results/a", {"rows": 12}, namespace=f"tree:{root.id}")
    client.state.put("results/a", {"rows": 13}, namespace=f"tree:{root.id}")  # version 2
    client.state.put("config", {"threshold": 0.8}, namespace="global")
    for i in range(2):
        client.messages.send(ids["after"], {"hint": i}, message_id=f"hint-{i}")
    before = all_tasks(client)

    phases: list[str] = []
    made = old.checkpoints().create(label="mid-run", progress=lambda p: phases.append(p.phase))
    assert {"reading", "compressing", "writing"} <= set(phases)
    assert made.counts["tasks"] == len(before) == 26
    assert made.counts["unfinished_tasks"] >= 5
    assert made.counts["state_entries"] == 2 and made.counts["messages"] == 2
    assert made.counts["hosts"] == 1
    old.stop()

    new: Plane = planes("new", "--checkpoints", str(old.data_dir / "checkpoints"))
    assert new.checkpoints().get(made.id).id == made.id
    steps: list[str] = []
    summary = new.checkpoints().restore(made.id, progress=lambda p: steps.append(p.phase))
    assert {"reading", "verifying", "restoring"} <= set(steps)
    assert summary.counts["tasks"] == 26 and summary.counts["requeued"] >= 1
    assert len(summary.hosts) == 1  # the old host: it would reconnect by itself
    restored_client = new.client()
    after = all_tasks(restored_client)
    assert after.keys() == before.keys()
    for task_id in finished:
        assert after[task_id].status == COMPLETED
        assert task_result(after[task_id]) == task_result(before[task_id])
        assert after[task_id].finished_at == before[task_id].finished_at
    assert all(after[i].status not in FINAL for i in [*sleepers, ids["slow"], ids["after"], root.id])
    tree = restored_client.state.get("results/a", namespace=f"tree:{root.id}")
    assert tree is not None and tree.value == {"rows": 13} and tree.version == 2
    setting = restored_client.state.get("config", namespace="global")
    assert setting is not None and setting.value == {"threshold": 0.8}
    hints = restored_client.messages.receive(f"task:{ids['after']}", max=10)
    assert sorted(m.id for m in hints) == ["hint-0", "hint-1"]

    new.add_host(workers=2)
    done = {t.id: t for t in restored_client.wait_tasks([*sleepers, ids["slow"], ids["after"], root.id], timeout=60)}
    assert all(t.status == COMPLETED for t in done.values()), new.logs()
    slow = restored_client.get_task(ids["slow"])
    assert slow.attempt >= 2
    assert any(a.error.kind == "checkpoint_restore" for a in slow.attempts)
    assert task_result(done[ids["after"]]) is not None


def test_restore_at_start_up_and_refusal_when_the_store_is_not_empty(planes: Any, tmp_path: Path) -> None:
    source: Plane = planes("source")
    client = source.client()
    queued = [client.submit_task(f"no host yet {i}", agent_type="echo").id for i in range(5)]
    made = source.checkpoints().create()
    source.stop()
    checkpoints = str(source.data_dir / "checkpoints")

    target: Plane = planes("target", "--checkpoints", checkpoints, "--restore-checkpoint", made.id)
    assert sorted(all_tasks(target.client())) == sorted(queued)
    assert target.cp is not None
    assert f"restored checkpoint {made.id}" in target.cp.log_text()
    refused = target.checkpoints()
    with pytest.raises(FailedPrecondition, match="already holds 5 tasks"):
        refused.restore(made.id)
    target.stop()

    with pytest.raises(StartupError, match="already holds 5 tasks"):
        planes("target", "--checkpoints", checkpoints, "--restore-checkpoint", made.id)
    assert sorted(all_tasks_from_store(tmp_path / "target")) == sorted(queued)  # nothing was overwritten


def all_tasks_from_store(data_dir: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(data_dir / "maos.db") as db:
        return [row[0] for row in db.execute("SELECT id FROM tasks")]


def test_show_of_an_unknown_checkpoint_is_not_found(planes: Any) -> None:
    plane: Plane = planes("cp")
    with pytest.raises(NotFound, match="no checkpoint 20200101T000000000Z-0000"):
        plane.checkpoints().get("20200101T000000000Z-0000")
