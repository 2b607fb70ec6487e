"""Row shapes shared by the store drivers: TaskRecord <-> column tuples.

Rows are snapshotted on the event loop when a batch is handed to a writer,
so a writer thread never reads a record the loop is changing.
"""

from __future__ import annotations

from typing import Any

from maos.controlplane.core import (
    AttemptRecord,
    DependencyPolicy,
    Priority,
    TaskEventRecord,
    TaskRecord,
    TaskStatus,
)
from maos.v1 import common_pb2

# Columns that change over a task's life, in UPDATE order (id last, for WHERE).
MUTABLE_COLUMNS = (
    "status",
    "priority",
    "attempt",
    "failures",
    "host_id",
    "agent_id",
    "queued_at",
    "started_at",
    "finished_at",
    "progress",
    "progress_message",
    "result",
    "result_type",
    "error_kind",
    "error_message",
    "log",
    "seq",
)
FIXED_COLUMNS = (
    "id",
    "root_id",
    "parent_id",
    "spec",
    "created_at",
    "idempotency_key",
    "workflow_key",
    "grp",
    "agent_type",
    "plan",
)
ALL_COLUMNS = FIXED_COLUMNS + MUTABLE_COLUMNS
EVENT_COLUMNS = (
    "task_id",
    "seq",
    "status",
    "attempt",
    "time",
    "host_id",
    "message",
    "progress",
    "progress_message",
)

MutableRow = tuple[Any, ...]
FullRow = tuple[Any, ...]


def mutable_row(rec: TaskRecord) -> MutableRow:
    """The changing columns followed by the id."""
    return (
        int(rec.status),
        int(rec.priority),
        rec.attempt,
        rec.failures,
        rec.host_id,
        rec.agent_id,
        rec.queued_at,
        rec.started_at,
        rec.finished_at,
        rec.progress,
        rec.progress_message,
        rec.result,
        rec.result_type,
        rec.error_kind,
        rec.error_message,
        rec.log,
        rec.seq,
        rec.id,
    )


def full_row(rec: TaskRecord) -> FullRow:
    return (
        rec.id,
        rec.root_id,
        rec.parent_id,
        rec.spec.SerializeToString(),
        rec.created_at,
        rec.idempotency_key or None,
        rec.workflow_key,
        int(rec.group),
        rec.agent_type,
        rec.plan,
        *mutable_row(rec)[:-1],
    )


def event_row(ev: TaskEventRecord) -> tuple[Any, ...]:
    return (
        ev.task_id,
        ev.seq,
        int(ev.status),
        ev.attempt,
        ev.time,
        ev.host_id,
        ev.message,
        ev.progress,
        ev.progress_message,
    )


def record_from_spec(
    task_id: str,
    spec: common_pb2.TaskSpec,
    *,
    root_id: str,
    agent_type: str,
    created_at: float,
    workflow_key: str = "",
    group: bool = False,
    depends_on: tuple[str, ...] | None = None,
) -> TaskRecord:
    """A new core record for a validated spec."""
    retry = spec.retry
    return TaskRecord(
        id=task_id,
        root_id=root_id,
        parent_id=spec.parent_id,
        spec=spec,
        agent_type=agent_type,
        priority=Priority(spec.priority or Priority.MEDIUM),
        created_at=created_at,
        depends_on=tuple(spec.depends_on) if depends_on is None else depends_on,
        dependency_policy=DependencyPolicy(spec.on_dependency_failure or DependencyPolicy.FAIL),
        timeout_seconds=spec.timeout_seconds,
        queue_timeout_seconds=spec.queue_timeout_seconds,
        max_retries=retry.max_retries,
        retry_initial_seconds=retry.initial_interval_seconds,
        retry_coefficient=retry.backoff_coefficient or 2.0,
        retry_max_seconds=retry.max_interval_seconds or 60.0,
        non_retryable=frozenset(retry.non_retryable_errors),
        idempotency_key=spec.idempotency_key,
        workflow_key=workflow_key,
        group=group,
    )


def record_from_row(row: dict[str, Any]) -> TaskRecord:
    spec = common_pb2.TaskSpec.FromString(row["spec"])
    rec = record_from_spec(
        row["id"],
        spec,
        root_id=row["root_id"],
        agent_type=row["agent_type"],
        created_at=row["created_at"],
        workflow_key=row["workflow_key"] or "",
        group=bool(row["grp"]),
    )
    rec.plan = bytes(row["plan"] or b"")
    rec.status = TaskStatus(row["status"])
    rec.priority = Priority(row["priority"])
    rec.attempt = row["attempt"]
    rec.failures = row["failures"]
    rec.host_id = row["host_id"] or ""
    rec.agent_id = row["agent_id"] or ""
    rec.queued_at = row["queued_at"]
    rec.started_at = row["started_at"]
    rec.finished_at = row["finished_at"]
    rec.progress = row["progress"]
    rec.progress_message = row["progress_message"] or ""
    rec.result = bytes(row["result"] or b"")
    rec.result_type = row["result_type"] or ""
    rec.error_kind = row["error_kind"] or ""
    rec.error_message = row["error_message"] or ""
    rec.log = row["log"] or ""
    rec.seq = row["seq"]
    return rec


def event_from_row(row: dict[str, Any]) -> TaskEventRecord:
    return TaskEventRecord(
        task_id=row["task_id"],
        seq=row["seq"],
        status=TaskStatus(row["status"]),
        attempt=row["attempt"],
        time=row["time"],
        host_id=row["host_id"] or "",
        message=row["message"] or "",
        progress=row["progress"],
        progress_message=row["progress_message"] or "",
    )


ATTEMPT_COLUMNS = (
    "task_id",
    "number",
    "host_id",
    "agent_id",
    "dispatched_at",
    "started_at",
    "finished_at",
    "status",
    "error_kind",
    "error_message",
)


def attempt_row(a: AttemptRecord) -> tuple[Any, ...]:
    return (
        a.task_id,
        a.number,
        a.host_id,
        a.agent_id,
        a.dispatched_at,
        a.started_at,
        a.finished_at,
        int(a.status),
        a.error_kind,
        a.error_message,
    )


def attempt_from_row(row: dict[str, Any]) -> AttemptRecord:
    return AttemptRecord(
        task_id=row["task_id"],
        number=row["number"],
        host_id=row["host_id"],
        agent_id=row["agent_id"],
        dispatched_at=row["dispatched_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=TaskStatus(row["status"]),
        error_kind=row["error_kind"],
        error_message=row["error_message"],
    )
