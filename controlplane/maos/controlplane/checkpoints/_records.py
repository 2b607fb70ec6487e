"""Records <-> checkpoint rows: tasks, events, attempts, state entries, messages.

Rows are lists under named columns, independent of any store's table layout, so a
checkpoint reads back into SQLite, PostgreSQL or Redis alike. Enums are written by
name; bytes as UTF-8 text when they are text (results, JSON values, payloads) and as
base64 otherwise (the protobuf spec and plan).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from maos.controlplane.core import AttemptRecord, Priority, TaskEventRecord, TaskRecord, TaskStatus
from maos.controlplane.messaging import StoredMessage
from maos.controlplane.state import StateEntry
from maos.controlplane.store import record_from_spec
from maos.errors import FailedPrecondition
from maos.v1 import common_pb2

TASK_COLUMNS = (
    "id",
    "root_id",
    "parent_id",
    "spec",
    "created_at",
    "idempotency_key",
    "workflow_key",
    "group",
    "agent_type",
    "plan",
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
    "result_base64",
    "result_type",
    "error_kind",
    "error_message",
    "log",
    "seq",
)
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
STATE_COLUMNS = ("namespace", "key", "value", "version", "revision", "updated_at")
MESSAGE_COLUMNS = (
    "seq",
    "mailbox",
    "id",
    "sender",
    "recipient",
    "topic",
    "priority",
    "data",
    "data_base64",
    "content_type",
    "sent_at",
    "expires_at",
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FailedPrecondition(f"{what} is not valid base64; the checkpoint is corrupt") from None


def _text_or_b64(data: bytes) -> tuple[str | None, str | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, b64(data)


def _bytes(text: str | None, encoded: str | None, what: str) -> bytes:
    if encoded:
        return unb64(encoded, what)
    return (text or "").encode("utf-8")


# ---------------------------------------------------------------------- tasks


def task_row(rec: TaskRecord) -> list[Any]:
    result, result_b64 = _text_or_b64(rec.result)
    return [
        rec.id,
        rec.root_id,
        rec.parent_id,
        b64(rec.spec.SerializeToString()),
        rec.created_at,
        rec.idempotency_key,
        rec.workflow_key,
        rec.group,
        rec.agent_type,
        b64(rec.plan),
        rec.status.name,
        rec.priority.name,
        rec.attempt,
        rec.failures,
        rec.host_id,
        rec.agent_id,
        rec.queued_at,
        rec.started_at,
        rec.finished_at,
        rec.progress,
        rec.progress_message,
        result,
        result_b64,
        rec.result_type,
        rec.error_kind,
        rec.error_message,
        rec.log,
        rec.seq,
    ]


def task_from_row(row: Sequence[Any]) -> TaskRecord:
    """A task from its row (values in TASK_COLUMNS order)."""
    (
        task_id,
        root_id,
        _parent_id,  # the spec carries it
        spec,
        created_at,
        idempotency_key,
        workflow_key,
        group,
        agent_type,
        plan,
        status,
        priority,
        attempt,
        failures,
        host_id,
        agent_id,
        queued_at,
        started_at,
        finished_at,
        progress,
        progress_message,
        result,
        result_b64,
        result_type,
        error_kind,
        error_message,
        log,
        seq,
    ) = row
    where = f"task {task_id}"
    rec = record_from_spec(
        str(task_id),
        common_pb2.TaskSpec.FromString(unb64(spec, f"{where}'s spec")),
        root_id=root_id,
        agent_type=agent_type,
        created_at=float(created_at),
        workflow_key=workflow_key or "",
        group=bool(group),
    )
    rec.idempotency_key = idempotency_key or ""
    rec.plan = unb64(plan or "", f"{where}'s plan")
    rec.status = _status(status, where)
    rec.priority = _priority(priority, where)
    rec.attempt = int(attempt)
    rec.failures = int(failures)
    rec.host_id = host_id or ""
    rec.agent_id = agent_id or ""
    rec.queued_at = float(queued_at)
    rec.started_at = float(started_at)
    rec.finished_at = float(finished_at)
    rec.progress = float(progress)
    rec.progress_message = progress_message or ""
    rec.result = _bytes(result, result_b64, f"{where}'s result")
    rec.result_type = result_type or ""
    rec.error_kind = error_kind or ""
    rec.error_message = error_message or ""
    rec.log = log or ""
    rec.seq = int(seq)
    return rec


def event_row(ev: TaskEventRecord) -> list[Any]:
    return [
        ev.task_id,
        ev.seq,
        ev.status.name,
        ev.attempt,
        ev.time,
        ev.host_id,
        ev.message,
        ev.progress,
        ev.progress_message,
    ]


def event_from_row(row: Sequence[Any]) -> TaskEventRecord:
    task_id, seq, status, attempt, time, host_id, message, progress, progress_message = row
    return TaskEventRecord(
        task_id=task_id,
        seq=int(seq),
        status=_status(status, f"an event of task {task_id}"),
        attempt=int(attempt),
        time=float(time),
        host_id=host_id or "",
        message=message or "",
        progress=float(progress),
        progress_message=progress_message or "",
    )


def attempt_row(a: AttemptRecord) -> list[Any]:
    return [
        a.task_id,
        a.number,
        a.host_id,
        a.agent_id,
        a.dispatched_at,
        a.started_at,
        a.finished_at,
        a.status.name,
        a.error_kind,
        a.error_message,
    ]


def attempt_from_row(row: Sequence[Any]) -> AttemptRecord:
    task_id, number, host_id, agent_id, dispatched_at, started_at, finished_at, status, kind, message = row
    return AttemptRecord(
        task_id=task_id,
        number=int(number),
        host_id=host_id or "",
        agent_id=agent_id or "",
        dispatched_at=float(dispatched_at),
        started_at=float(started_at),
        finished_at=float(finished_at),
        status=_status(status, f"an attempt of task {task_id}"),
        error_kind=kind or "",
        error_message=message or "",
    )


# ------------------------------------------------------------ state, messages


def state_row(e: StateEntry) -> list[Any]:
    return [e.namespace, e.key, e.value.decode("utf-8"), e.version, e.revision, e.updated_at]


def state_from_row(row: Sequence[Any]) -> StateEntry:
    namespace, key, value, version, revision, updated_at = row
    return StateEntry(
        namespace=namespace,
        key=key,
        value=str(value).encode("utf-8"),
        version=int(version),
        revision=int(revision),
        updated_at=float(updated_at),
    )


def message_row(m: StoredMessage) -> list[Any]:
    data, data_b64 = _text_or_b64(m.data)
    return [
        m.seq,
        m.mailbox,
        m.id,
        m.sender,
        m.recipient,
        m.topic,
        m.priority,
        data,
        data_b64,
        m.content_type,
        m.sent_at,
        m.expires_at,
    ]


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    seq, mailbox, message_id, sender, recipient, topic, priority, data, data_b64, content_type, sent, expires = row
    return StoredMessage(
        seq=int(seq),
        mailbox=mailbox,
        id=message_id,
        sender=sender,
        recipient=recipient,
        topic=topic,
        priority=int(priority),
        data=_bytes(data, data_b64, f"message {message_id}"),
        content_type=content_type,
        sent_at=float(sent),
        expires_at=float(expires),
    )


_STATUSES = {s.name: s for s in TaskStatus}
_PRIORITIES = {p.name: p for p in Priority}


def _status(name: Any, where: str) -> TaskStatus:
    found = _STATUSES.get(name)
    if found is None:
        raise FailedPrecondition(f"{where} has an unknown status {name!r}; the checkpoint is corrupt")
    return found


def _priority(name: Any, where: str) -> Priority:
    found = _PRIORITIES.get(name)
    if found is None:
        raise FailedPrecondition(f"{where} has an unknown priority {name!r}; the checkpoint is corrupt")
    return found
