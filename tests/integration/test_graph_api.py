"""Task-graph features through the real API: planner, priorities, attempts, templates, batches."""

from __future__ import annotations

import grpc
import orjson
import pytest
from maos.v1 import common_pb2, tasks_pb2, templates_pb2, templates_pb2_grpc

from tests.integration.conftest import Cluster
from tests.support.api import result_of

COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def test_plan_parallel_synthesis_runs_streams_then_synthesis(cluster: Cluster) -> None:
    request = tasks_pb2.PlanTaskRequest(
        spec=common_pb2.TaskSpec(description="Research solar storage", agent_type="echo"),
        aspects=["market size", "competitors", "regulation"],
    )
    dry = cluster.api.tasks.PlanTask(tasks_pb2.PlanTaskRequest(dry_run=True, **_fields(request)), timeout=10)
    assert [n.key for n in dry.nodes] == ["stream-1", "stream-2", "stream-3", "synthesis"]
    assert dry.plan.parallel_streams == 3 and dry.plan.estimated_speedup == pytest.approx(2.4)
    assert not dry.root.id
    planned = cluster.api.tasks.PlanTask(request, timeout=10)
    root = cluster.api.wait_one(planned.root.id)
    assert root.status == COMPLETED, root.error
    assert root.plan.template == "parallel-synthesis"
    synthesis = cluster.api.get(planned.task_ids["synthesis"])
    assert synthesis.spec.agent_type == "coordinator"
    assert isinstance(result_of(root), dict)  # the coordinator's report over the streams' results


def _fields(request: tasks_pb2.PlanTaskRequest) -> dict[str, object]:
    return {f.name: v for f, v in request.ListFields()}


def test_plan_with_max_agents_chains_streams(cluster: Cluster) -> None:
    request = tasks_pb2.PlanTaskRequest(
        spec=common_pb2.TaskSpec(description="four parts", agent_type="echo"),
        aspects=["a", "b", "c", "d"],
        max_agents=2,
        dry_run=True,
    )
    plan = cluster.api.tasks.PlanTask(request, timeout=10)
    deps = {n.key: list(n.spec.depends_on) for n in plan.nodes}
    assert deps["stream-3"] == ["stream-1"] and deps["stream-4"] == ["stream-2"]
    assert plan.plan.parallel_streams == 2


def test_bad_plans_are_rejected(cluster: Cluster) -> None:
    for request, fragment in [
        (tasks_pb2.PlanTaskRequest(spec=common_pb2.TaskSpec(description="x")), "at least one aspect or shard"),
        (
            tasks_pb2.PlanTaskRequest(spec=common_pb2.TaskSpec(description="x"), aspects=["a"], template="nope"),
            "unknown planner template",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            cluster.api.tasks.PlanTask(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fragment in (err.value.details() or "")


def test_priority_of_a_queued_task_can_change(cluster: Cluster) -> None:
    blocker = [cluster.api.submit(f"busy {i}", "sleeper", {"seconds": 1.0}) for i in range(2)]
    queued = cluster.api.submit("then me", "echo", 2, priority=common_pb2.PRIORITY_LOW)
    updated = cluster.api.tasks.UpdateTask(
        tasks_pb2.UpdateTaskRequest(id=queued.id, priority=common_pb2.PRIORITY_CRITICAL), timeout=10
    )
    assert updated.effective_priority == common_pb2.PRIORITY_CRITICAL
    assert cluster.api.wait_one(queued.id).status == COMPLETED
    cluster.api.wait([t.id for t in blocker])
    with pytest.raises(grpc.RpcError) as err:
        cluster.api.tasks.UpdateTask(tasks_pb2.UpdateTaskRequest(id=queued.id, priority=1), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_attempts_are_listed_with_their_errors(cluster: Cluster) -> None:
    retry = common_pb2.RetryPolicy(max_retries=1)
    done = cluster.api.wait_one(cluster.api.submit("flaky", "flaky", retry=retry).id)
    task = cluster.api.get(done.id)
    assert [a.number for a in task.attempts] == [1, 2]
    first, second = task.attempts
    assert first.status == common_pb2.TASK_STATUS_FAILED and first.error.kind == "exception"
    assert second.status == COMPLETED and second.agent_id and second.finished_at.seconds


def test_templates_round_trip(cluster: Cluster) -> None:
    stub = templates_pb2_grpc.TemplateServiceStub(cluster.api.channel)
    source = cluster.api.submit("greet {who}", "echo", {"greeting": "hello {who}", "n": "{count}"})
    template = stub.CreateTemplate(
        templates_pb2.CreateTemplateRequest(name="greet", from_task_id=source.id), timeout=10
    )
    assert list(template.parameters) == ["count", "who"]
    params = common_pb2.Payload(data=orjson.dumps({"who": "Ada", "count": 3}))
    reply = stub.SubmitFromTemplate(
        templates_pb2.SubmitFromTemplateRequest(name="greet", params=params, wait_seconds=20), timeout=30
    )
    assert reply.task.spec.description == "greet Ada"
    assert result_of(reply.task) == {"greeting": "hello Ada", "n": 3}
    for request, code, fragment in [
        (templates_pb2.SubmitFromTemplateRequest(name="nope"), grpc.StatusCode.NOT_FOUND, "template 'nope' not found"),
        (
            templates_pb2.SubmitFromTemplateRequest(name="greet", params=common_pb2.Payload(data=b'{"who": "x"}')),
            grpc.StatusCode.INVALID_ARGUMENT,
            "needs parameter 'count'",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.SubmitFromTemplate(request, timeout=10)
        assert err.value.code() == code and fragment in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateTemplate(templates_pb2.CreateTemplateRequest(name="greet", from_task_id=source.id), timeout=10)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_batches_submit_all_their_tasks(cluster: Cluster) -> None:
    stub = templates_pb2_grpc.BatchServiceStub(cluster.api.channel)
    stub.CreateBatch(templates_pb2.CreateBatchRequest(name="nightly"), timeout=10)
    specs = [common_pb2.TaskSpec(description=f"job {i}", agent_type="echo") for i in range(3)]
    stub.AddToBatch(templates_pb2.AddToBatchRequest(name="nightly", specs=specs), timeout=10)
    submitted = stub.SubmitBatch(templates_pb2.SubmitBatchRequest(name="nightly"), timeout=10)
    assert submitted.state == templates_pb2.BATCH_STATE_SUBMITTED and len(submitted.task_ids) == 3
    cluster.api.wait(list(submitted.task_ids))
    status = stub.GetBatch(templates_pb2.GetBatchRequest(name="nightly"), timeout=10)
    assert status.tasks_by_status["completed"] == 3
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitBatch(templates_pb2.SubmitBatchRequest(name="nightly"), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        stub.AddToBatch(
            templates_pb2.AddToBatchRequest(name="nightly", specs=[common_pb2.TaskSpec(description="late")]), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_queue_timeout_fails_a_task_that_never_starts(cluster: Cluster) -> None:
    blockers = [cluster.api.submit(f"hog {i}", "sleeper", {"seconds": 1.5}) for i in range(2)]
    starved = cluster.api.submit("too late", "echo", 1, queue_timeout_seconds=0.3, priority=common_pb2.PRIORITY_LOW)
    done = cluster.api.wait_one(starved.id)
    assert done.status == common_pb2.TASK_STATUS_TIMED_OUT and done.error.kind == "queue_timeout"
    cluster.api.wait([b.id for b in blockers])


def test_live_settings_apply_at_once_and_survive_a_restart(fresh_cluster: Cluster) -> None:
    from maos.v1 import admin_pb2, admin_pb2_grpc

    c = fresh_cluster
    cp = c.start_controlplane()
    admin = admin_pb2_grpc.AdminServiceStub(c.api.channel)
    entry = admin.SetConfig(admin_pb2.SetConfigRequest(key="scheduling.max_queue_time", value="120"), timeout=10)
    assert (entry.value, entry.default_value) == ("120", "300")
    for key, value, fragment in [
        ("scheduling.nope", "1", "unknown setting 'scheduling.nope'"),
        ("scheduling.max_queue_time", "soon", "not a number of seconds"),
        ("dispatch.prefetch_min", "1000", "must not exceed dispatch.prefetch_max"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            admin.SetConfig(admin_pb2.SetConfigRequest(key=key, value=value), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in (err.value.details() or "")
    port = cp.endpoint.rpartition(":")[2]
    cp.stop()
    c.start_controlplane(listen=f"127.0.0.1:{port}")
    admin = admin_pb2_grpc.AdminServiceStub(c.api.channel)
    [after] = admin.GetConfig(admin_pb2.GetConfigRequest(key="scheduling.max_queue_time"), timeout=10).entries
    assert after.value == "120"
