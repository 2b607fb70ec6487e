"""Core records <-> maos.v1 messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from maos.controlplane.core import AttemptRecord, TaskEventRecord, TaskRecord
from maos.v1 import common_pb2, hosts_pb2


def timestamp(seconds: float) -> Timestamp | None:
    if not seconds:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def task_to_proto(rec: TaskRecord, *, include_result: bool = True) -> common_pb2.Task:
    task = common_pb2.Task(
        id=rec.id,
        root_id=rec.root_id,
        parent_id=rec.parent_id,
        spec=rec.spec,
        status=int(rec.status),  # type: ignore[arg-type]
        attempt=rec.attempt,
        placement=common_pb2.Placement(host_id=rec.host_id, agent_id=rec.agent_id),
        created_at=timestamp(rec.created_at),
        queued_at=timestamp(rec.queued_at),
        started_at=timestamp(rec.started_at),
        finished_at=timestamp(rec.finished_at),
        progress=common_pb2.Progress(fraction=rec.progress, message=rec.progress_message),
        group=rec.group,
        last_seq=rec.seq,
        workflow_key=rec.workflow_key,
        effective_priority=int(rec.priority),  # type: ignore[arg-type]
    )
    if rec.plan:
        task.plan.ParseFromString(rec.plan)
    if rec.error_kind or rec.error_message:
        task.error.kind = rec.error_kind
        task.error.message = rec.error_message
    if include_result:
        if rec.result:
            task.result.data = rec.result
            task.result.content_type = rec.result_type
        task.log = rec.log
    return task


def attempt_to_proto(a: AttemptRecord) -> common_pb2.Attempt:
    attempt = common_pb2.Attempt(
        number=a.number,
        host_id=a.host_id,
        agent_id=a.agent_id,
        dispatched_at=timestamp(a.dispatched_at),
        started_at=timestamp(a.started_at),
        finished_at=timestamp(a.finished_at),
        status=int(a.status),  # type: ignore[arg-type]
    )
    if a.error_kind or a.error_message:
        attempt.error.kind, attempt.error.message = a.error_kind, a.error_message
    return attempt


def event_to_proto(ev: TaskEventRecord) -> common_pb2.TaskEvent:
    return common_pb2.TaskEvent(
        task_id=ev.task_id,
        seq=ev.seq,
        status=int(ev.status),  # type: ignore[arg-type]
        attempt=ev.attempt,
        time=timestamp(ev.time),
        host_id=ev.host_id,
        message=ev.message,
        progress=common_pb2.Progress(fraction=ev.progress, message=ev.progress_message),
    )


def assignment_for(rec: TaskRecord, dependencies: list[TaskRecord]) -> hosts_pb2.Assignment:
    spec: common_pb2.TaskSpec = rec.spec
    assignment = hosts_pb2.Assignment(
        task_id=rec.id,
        attempt=rec.attempt,
        agent_type=rec.agent_type,
        description=spec.description,
        input=spec.input,
        timeout_seconds=rec.timeout_seconds,
        root_id=rec.root_id,
        parent_id=rec.parent_id,
        type=spec.type,
        labels=spec.labels,
    )
    for dep in dependencies:
        assignment.dependencies.append(
            hosts_pb2.DependencyResult(
                task_id=dep.id,
                key=dep.workflow_key,
                status=int(dep.status),  # type: ignore[arg-type]
                result=common_pb2.Payload(data=dep.result, content_type=dep.result_type),
                description=dep.spec.description,
            )
        )
    return assignment
