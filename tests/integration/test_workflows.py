"""Workflows through real processes: big fan-in, dependency policies, retries, cancel, SIGKILL, bad graphs."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import grpc
import orjson
import pytest
from maos.v1 import common_pb2, tasks_pb2

from tests.integration.conftest import Cluster
from tests.support.api import RawApi, result_of

COMPLETED = common_pb2.TASK_STATUS_COMPLETED
FAILED = common_pb2.TASK_STATUS_FAILED
CANCELLED = common_pb2.TASK_STATUS_CANCELLED
RUNNING = common_pb2.TASK_STATUS_RUNNING
QUEUED = common_pb2.TASK_STATUS_QUEUED

POLICIES = {
    "fail": common_pb2.DEPENDENCY_FAILURE_POLICY_FAIL,
    "skip": common_pb2.DEPENDENCY_FAILURE_POLICY_SKIP,
    "continue": common_pb2.DEPENDENCY_FAILURE_POLICY_CONTINUE,
}


def node(
    key: str, agent_type: str = "echo", data: Any = None, depends_on: tuple[str, ...] = (), **spec: Any
) -> tasks_pb2.WorkflowNode:
    payload = common_pb2.Payload(data=orjson.dumps(data), content_type="application/json")
    return tasks_pb2.WorkflowNode(
        key=key,
        spec=common_pb2.TaskSpec(
            description=f"node {key}", agent_type=agent_type, input=payload, depends_on=list(depends_on), **spec
        ),
    )


def submit_workflow(api: RawApi, nodes: list[tasks_pb2.WorkflowNode], description: str = "a workflow"):
    request = tasks_pb2.SubmitWorkflowRequest(root=common_pb2.TaskSpec(description=description), nodes=nodes)
    return api.tasks.SubmitWorkflow(request, timeout=30)


def all_task_ids(api: RawApi) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        page = api.tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=1000, page_token=token), timeout=10)
        ids.update(t.id for t in page.tasks)
        token = page.next_page_token
        if not token:
            return ids


def wait_until(what: str, check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.02)


def test_fan_out_of_a_thousand_then_fan_in(cluster: Cluster) -> None:
    keys = [f"e{i}" for i in range(1000)]
    nodes = [node(key, data={"i": i}) for i, key in enumerate(keys)]
    nodes.append(node("synthesis", "coordinator", {"title": "fan-in"}, depends_on=tuple(keys)))
    response = submit_workflow(cluster.api, nodes, "fan out, fan in")
    root = cluster.api.wait_one(response.root.id, timeout=90)
    assert root.status == COMPLETED, (root.error, cluster.logs())
    assert set(response.task_ids) == {*keys, "synthesis"}
    synthesis = cluster.api.wait_one(response.task_ids["synthesis"])
    report = result_of(synthesis)
    assert result_of(root) == report
    # The coordinator saw every one of the 1,000 results (echo results are not shards: listed as skipped).
    assert report["title"] == "fan-in"
    assert sorted(s["key"] for s in report["skipped"]) == sorted(keys)
    echoes = cluster.api.wait([response.task_ids[k] for k in keys])
    assert [result_of(t) for t in echoes] == [{"i": i} for i in range(1000)]
    last_echo = max(t.finished_at.ToNanoseconds() for t in echoes)
    assert synthesis.started_at.ToNanoseconds() >= last_echo


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("fail", FAILED), ("skip", CANCELLED), ("continue", COMPLETED)],
    ids=["fail", "skip", "continue"],
)
def test_diamond_with_a_failed_branch_follows_the_dependency_policy(
    cluster: Cluster, policy: str, expected: int
) -> None:
    nodes = [
        node("A", data="a"),
        node("B", data="b", depends_on=("A",)),
        node("C", "failer", depends_on=("A",)),
        node("D", data="d", depends_on=("B", "C"), on_dependency_failure=POLICIES[policy]),
    ]
    response = submit_workflow(cluster.api, nodes, f"diamond, D on {policy}")
    root = cluster.api.wait_one(response.root.id)
    a, b, c, d = cluster.api.wait([response.task_ids[k] for k in "ABCD"])
    assert (a.status, b.status, c.status) == (COMPLETED, COMPLETED, FAILED)
    assert d.status == expected, d.error
    if policy == "fail":
        assert d.error.kind == "dependency_failed"
        assert "'C'" in d.error.message and "asked to fail" in d.error.message
    elif policy == "skip":
        assert d.error.kind == "skipped" and "'C'" in d.error.message
        assert d.attempt == 0  # never dispatched
    else:
        assert result_of(d) == "d"
        assert d.started_at.ToNanoseconds() >= c.finished_at.ToNanoseconds()
    assert root.status == FAILED and "C (failed)" in root.error.message


def test_retry_waits_for_its_backoff_then_succeeds(cluster: Cluster) -> None:
    retry = common_pb2.RetryPolicy(max_retries=2, initial_interval_seconds=0.2)
    task = cluster.api.submit("fails once", "flaky", retry=retry)
    done = cluster.api.wait_one(task.id)
    assert done.status == COMPLETED, done.error
    assert done.attempt == 2 and result_of(done) == {"attempt": 2}
    events = list(cluster.api.tasks.WatchTask(tasks_pb2.WatchTaskRequest(id=task.id), timeout=30))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    failed = [e for e in events if e.attempt == 1 and "failed" in e.message]
    started_again = [e for e in events if e.attempt == 2 and e.status == RUNNING]
    assert len(failed) == 1 and len(started_again) == 1, [(e.status, e.attempt, e.message) for e in events]
    assert "retry 1/2" in failed[0].message
    gap = (started_again[0].time.ToNanoseconds() - failed[0].time.ToNanoseconds()) / 1e9
    # initial interval 0.2 s with jitter in [0.5, 1.0): never sooner than 0.1 s.
    assert gap >= 0.099, gap
    assert [e.status for e in events].count(COMPLETED) == 1


def test_cancel_the_root_cancels_the_running_subtree_and_frees_the_slots(cluster: Cluster) -> None:
    long = {"seconds": 60}
    # Two run at once on the host's two workers; the third waits on the first.
    nodes = [node("s0", "sleeper", long), node("s1", "sleeper", long), node("s2", "sleeper", long, ("s0",))]
    response = submit_workflow(cluster.api, nodes, "long sleepers")
    ids = [response.task_ids[k] for k in ("s0", "s1", "s2")]
    wait_until("s0 and s1 run", lambda: all(cluster.api.get(i).status == RUNNING for i in ids[:2]))
    cancelled = cluster.api.tasks.CancelTask(
        tasks_pb2.CancelTaskRequest(id=response.root.id, reason="changed my mind"), timeout=10
    )
    assert cancelled.status == CANCELLED
    tasks = cluster.api.wait([response.root.id, *ids], timeout=10)
    # Both workers were busy for another minute: the echo runs only if the host gave the slots back.
    after = cluster.api.wait_one(cluster.api.submit("after cancel", "echo", 1).id, timeout=20)
    assert after.status == COMPLETED
    statuses = {t.workflow_key or "root": (common_pb2.TaskStatus.Name(t.status), t.error.message) for t in tasks}
    assert all(t.status == CANCELLED for t in tasks), statuses
    assert all("changed my mind" in t.error.message for t in tasks), statuses


def test_sigkill_the_controlplane_mid_workflow_and_it_completes_once(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    cp = c.start_controlplane(extra=["--heartbeat-interval", "0.5"])
    c.add_host(workers=2)
    keys = [f"s{i}" for i in range(200)]
    nodes = [node(k, "sleeper", {"seconds": 0.02}) for k in keys]
    nodes.append(node("synthesis", "coordinator", depends_on=tuple(keys)))
    response = submit_workflow(c.api, nodes, "survives a SIGKILL")
    workflow_ids = {response.root.id, *response.task_ids.values()}

    def completed() -> int:
        page = c.api.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(parent_id=response.root.id, statuses=[COMPLETED], page_size=1000), timeout=10
        )
        return len(page.tasks)

    wait_until("a few nodes completed", lambda: completed() >= 5, timeout=20)
    done_before_kill = completed()
    port = cp.endpoint.rpartition(":")[2]
    cp.kill()
    assert done_before_kill < len(nodes), "the workflow finished before the kill: make its nodes longer"
    c.start_controlplane(listen=f"127.0.0.1:{port}", extra=["--heartbeat-interval", "0.5"])
    root = c.api.wait_one(response.root.id, timeout=120)
    assert root.status == COMPLETED, (root.error, c.logs())
    tasks = c.api.wait(sorted(workflow_ids))
    assert all(t.status == COMPLETED for t in tasks), c.logs()
    assert c.cp is not None
    c.cp.stop()
    with sqlite3.connect(c.root / "cp" / "maos.db") as db:
        completions = dict(
            db.execute("SELECT task_id, COUNT(*) FROM task_events WHERE status = 4 GROUP BY task_id").fetchall()
        )
    assert set(completions) == workflow_ids
    assert {k: v for k, v in completions.items() if v != 1} == {}


@pytest.mark.parametrize(
    ("nodes", "named"),
    [
        ([node("a", depends_on=("c",)), node("b", depends_on=("a",)), node("c", depends_on=("b",)), node("ok")], "abc"),
        ([node("ok"), node("a", depends_on=("ok", "nope"))], "a"),
        ([node("ok"), node("a", depends_on=("a",))], "a"),
        ([node("a"), node("ok"), node("a", data=2)], "a"),
    ],
    ids=["cycle", "unknown-key", "self-dependency", "duplicate-key"],
)
def test_bad_workflow_is_rejected_naming_the_node_and_stores_nothing(
    cluster: Cluster, nodes: list[tasks_pb2.WorkflowNode], named: str
) -> None:
    before = all_task_ids(cluster.api)
    with pytest.raises(grpc.RpcError) as err:
        submit_workflow(cluster.api, nodes, "a bad graph")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    for key in named:
        assert f"'{key}'" in details, details
    assert "'ok'" not in details, details
    assert all_task_ids(cluster.api) == before
