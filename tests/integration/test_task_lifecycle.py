"""Submit → result through a real control plane, host and worker processes."""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path

import grpc
import pytest
from maos.v1 import common_pb2, hosts_pb2, hosts_pb2_grpc, tasks_pb2

from tests.integration.conftest import Cluster
from tests.support.api import result_of

COMPLETED = common_pb2.TASK_STATUS_COMPLETED
FAILED = common_pb2.TASK_STATUS_FAILED


def test_echo_returns_its_input(cluster: Cluster) -> None:
    task = cluster.api.submit("say it back", "echo", {"x": [1, 2, 3]})
    done = cluster.api.wait_one(task.id)
    assert done.status == COMPLETED, done.error
    assert result_of(done) == {"x": [1, 2, 3]}
    assert done.attempt == 1 and done.placement.host_id and done.placement.agent_id


def _shard(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "revenue"])
        for i in range(rows):
            w.writerow([i, 100 + 2 * i + rng.gauss(0, 1)])
    return path


def test_analyst_computes_statistics_of_a_csv_shard(cluster: Cluster, tmp_path: Path) -> None:
    path = _shard(tmp_path / "s.csv", 1000, 1)
    done = cluster.api.wait_one(cluster.api.submit("analyse", "analyst", {"path": str(path)}).id)
    assert done.status == COMPLETED, done.error
    revenue = result_of(done)["columns"]["revenue"]
    assert revenue["count"] == 1000
    assert revenue["mean"] == pytest.approx(100 + 999, abs=1.0)
    assert revenue["trend"]["slope"] == pytest.approx(2.0, abs=0.01)


def test_workflow_of_shards_and_a_coordinator(cluster: Cluster, tmp_path: Path) -> None:
    paths = [_shard(tmp_path / f"s{i}.csv", 500, i) for i in range(3)]
    nodes = [
        tasks_pb2.WorkflowNode(
            key=f"shard-{i}",
            spec=common_pb2.TaskSpec(
                description=f"analyse shard {i}",
                agent_type="analyst",
                input=common_pb2.Payload(data=f'{{"path": "{p}"}}'.encode(), content_type="application/json"),
            ),
        )
        for i, p in enumerate(paths)
    ]
    nodes.append(
        tasks_pb2.WorkflowNode(
            key="synthesis",
            spec=common_pb2.TaskSpec(
                description="combine", agent_type="coordinator", depends_on=[f"shard-{i}" for i in range(3)]
            ),
        )
    )
    response = cluster.api.tasks.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(root=common_pb2.TaskSpec(description="analyse all"), nodes=nodes), timeout=10
    )
    root = cluster.api.wait_one(response.root.id)
    assert root.status == COMPLETED, root.error
    assert set(response.task_ids) == {"shard-0", "shard-1", "shard-2", "synthesis"}
    synthesis = cluster.api.get(response.task_ids["synthesis"])
    assert result_of(root) == result_of(synthesis)
    assert synthesis.started_at.ToNanoseconds() >= max(
        cluster.api.get(response.task_ids[f"shard-{i}"]).finished_at.ToNanoseconds() for i in range(3)
    )


def test_command_profile_runs_argv_without_a_shell(cluster: Cluster) -> None:
    done = cluster.api.wait_one(cluster.api.submit("count words", "words", {"text": "one two; rm -rf /"}).id)
    assert done.status == COMPLETED, done.error


def test_failure_is_reported_with_its_reason(cluster: Cluster) -> None:
    done = cluster.api.wait_one(cluster.api.submit("fail", "failer").id)
    assert done.status == FAILED
    assert done.error.kind == "exception" and "asked to fail" in done.error.message


def test_retry_after_a_failed_attempt(cluster: Cluster) -> None:
    retry = common_pb2.RetryPolicy(max_retries=1)
    done = cluster.api.wait_one(cluster.api.submit("flaky", "flaky", retry=retry).id)
    assert done.status == COMPLETED, done.error
    assert done.attempt == 2 and result_of(done) == {"attempt": 2}


@pytest.mark.parametrize("agent", ["segfaulter", "exiter"])
def test_a_dying_worker_fails_its_task_and_the_host_survives(cluster: Cluster, agent: str) -> None:
    done = cluster.api.wait_one(cluster.api.submit("die", agent).id)
    assert done.status == FAILED
    assert done.error.kind == "worker_died", done.error
    after = cluster.api.wait_one(cluster.api.submit("still there?", "echo", 1).id)
    assert after.status == COMPLETED
    assert all(h.alive() for h in cluster.hosts)


def test_timeout_kills_a_stuck_task(cluster: Cluster) -> None:
    started = time.monotonic()
    task = cluster.api.submit("stuck", "sleeper", {"seconds": 60}, timeout_seconds=1.0)
    done = cluster.api.wait_one(task.id, timeout=30)
    assert done.status == common_pb2.TASK_STATUS_TIMED_OUT
    assert done.error.kind == "timeout"
    assert time.monotonic() - started < 15
    assert cluster.api.wait_one(cluster.api.submit("next", "echo", 2).id).status == COMPLETED


def test_cancel_a_running_task_frees_its_slot(cluster: Cluster) -> None:
    tasks = [cluster.api.submit(f"long {i}", "sleeper", {"seconds": 60}) for i in range(2)]
    deadline = time.monotonic() + 10
    while any(cluster.api.get(t.id).status != common_pb2.TASK_STATUS_RUNNING for t in tasks):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for t in tasks:
        cancelled = cluster.api.tasks.CancelTask(tasks_pb2.CancelTaskRequest(id=t.id, reason="test"), timeout=10)
        assert cancelled.status == common_pb2.TASK_STATUS_CANCELLED
    # Both slots were busy; the next task only runs once the host gave them back.
    assert cluster.api.wait_one(cluster.api.submit("after cancel", "echo", 3).id, timeout=20).status == COMPLETED
    again = cluster.api.tasks.CancelTask(tasks_pb2.CancelTaskRequest(id=tasks[0].id), timeout=10)
    assert again.status == common_pb2.TASK_STATUS_CANCELLED


def test_watch_streams_gapless_events_and_resumes(cluster: Cluster) -> None:
    task = cluster.api.submit("watch me", "sleeper", {"seconds": 0.2})
    events = list(cluster.api.tasks.WatchTask(tasks_pb2.WatchTaskRequest(id=task.id), timeout=30))
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert events[-1].status == COMPLETED
    resumed = list(cluster.api.tasks.WatchTask(tasks_pb2.WatchTaskRequest(id=task.id, after_seq=2), timeout=30))
    assert [e.seq for e in resumed] == seqs[2:]


def test_many_tasks_respect_host_credit(cluster: Cluster) -> None:
    specs = [
        common_pb2.TaskSpec(
            description=f"s{i}", agent_type="sleeper", input=common_pb2.Payload(data=b'{"seconds":0.02}')
        )
        for i in range(60)
    ]
    ids = [t.id for t in cluster.api.submit_many(specs)]
    stub = hosts_pb2_grpc.HostServiceStub(cluster.api.channel)
    peak = 0
    while True:
        hosts = stub.ListHosts(hosts_pb2.ListHostsRequest(), timeout=5).hosts
        peak = max(peak, max(h.in_flight for h in hosts))
        if all(t.status == COMPLETED for t in cluster.api.wait(ids[-1:], timeout=60)):
            break
    assert all(t.status == COMPLETED for t in cluster.api.wait(ids))
    slots = hosts[0].slots
    # Free slots plus the adaptive prefetch: 0.05 s of 0.02 s tasks per slot.
    assert 0 < peak <= slots + int(slots * 0.05 / 0.02)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (common_pb2.TaskSpec(description="  "), "description is empty"),
        (common_pb2.TaskSpec(description="x", agent_type="nope"), "agent type 'nope' is unknown"),
        (common_pb2.TaskSpec(description="x", priority=42), "priority 42 is unknown"),
        (common_pb2.TaskSpec(description="x", type=99), "type 99 is unknown"),
        (common_pb2.TaskSpec(description="x", timeout_seconds=-1), "timeout_seconds must be above 0"),
        (common_pb2.TaskSpec(description="x", input=common_pb2.Payload(data=b"{nope")), "input is not valid JSON"),
        (common_pb2.TaskSpec(description="x", depends_on=["01J00000000000000000000000"]), "unknown task"),
    ],
)
def test_bad_input_is_rejected_precisely_and_stores_nothing(
    cluster: Cluster, spec: common_pb2.TaskSpec, fragment: str
) -> None:
    before = cluster.api.tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=1000), timeout=10).tasks
    with pytest.raises(grpc.RpcError) as err:
        cluster.api.tasks.SubmitTask(tasks_pb2.SubmitTaskRequest(spec=spec), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in (err.value.details() or "")
    after = cluster.api.tasks.ListTasks(tasks_pb2.ListTasksRequest(page_size=1000), timeout=10).tasks
    assert len(after) == len(before)


def test_unknown_ids_and_oversized_requests(cluster: Cluster) -> None:
    with pytest.raises(grpc.RpcError) as err:
        cluster.api.get("01J00000000000000000000000")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        cluster.api.tasks.CancelTask(tasks_pb2.CancelTaskRequest(id="nope"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    stub = hosts_pb2_grpc.HostServiceStub(cluster.api.channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.DrainHost(hosts_pb2.DrainHostRequest(id="no-such-host"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    huge = common_pb2.TaskSpec(description="x" * (17 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as err:
        cluster.api.tasks.SubmitTask(tasks_pb2.SubmitTaskRequest(spec=huge), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_invalid_utf8_is_invalid_argument(cluster: Cluster) -> None:
    raw = cluster.api.channel.unary_unary(
        "/maos.v1.TaskService/GetTask", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\x0a\x02\xff\xfe", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_idempotency_key_deduplicates(cluster: Cluster) -> None:
    first = cluster.api.tasks.SubmitTask(
        tasks_pb2.SubmitTaskRequest(spec=common_pb2.TaskSpec(description="once", idempotency_key="k-1")), timeout=10
    )
    second = cluster.api.tasks.SubmitTask(
        tasks_pb2.SubmitTaskRequest(spec=common_pb2.TaskSpec(description="once", idempotency_key="k-1")), timeout=10
    )
    assert second.deduplicated and second.task.id == first.task.id


def test_every_task_of_a_worker_batch_reports_its_start(cluster: Cluster) -> None:
    # echo runs in batches of up to 64 per worker: each task must still be seen RUNNING.
    specs = [common_pb2.TaskSpec(description=f"b{i}", agent_type="echo") for i in range(300)]
    tasks = cluster.api.wait([t.id for t in cluster.api.submit_many(specs)])
    assert all(t.status == COMPLETED for t in tasks)
    missing = [t.id for t in tasks if not t.started_at.seconds]
    assert not missing, f"{len(missing)} tasks never reported a start"
