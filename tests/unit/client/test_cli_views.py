"""The JSON documents `--format json` prints: fixed keys, lower-case enums, ISO times, decoded payloads."""

from __future__ import annotations

import datetime as dt
import json

from google.protobuf.timestamp_pb2 import Timestamp
from maos.client.cli._output import to_json
from maos.client.cli._views import (
    host_dict,
    host_table,
    status_counts,
    status_dict,
    status_text,
    task_dict,
    task_fields,
    task_table,
)
from maos.v1 import admin_pb2, common_pb2, hosts_pb2
from maos.wire import json_payload

TASK_KEYS = [
    "id",
    "root_id",
    "parent_id",
    "description",
    "status",
    "type",
    "agent_type",
    "priority",
    "effective_priority",
    "workflow_key",
    "group",
    "attempt",
    "host_id",
    "agent_id",
    "depends_on",
    "labels",
    "timeout_seconds",
    "max_retries",
    "retry",
    "on_dependency_failure",
    "queue_timeout_seconds",
    "required_capabilities",
    "idempotency_key",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "progress",
    "error",
    "last_seq",
    "plan",
    "attempts",
]


def finished_task() -> common_pb2.Task:
    task = common_pb2.Task(
        id="t1",
        root_id="t1",
        status=common_pb2.TASK_STATUS_COMPLETED,
        attempt=1,
        placement=common_pb2.Placement(host_id="h1", agent_id="h1/a2"),
        created_at=Timestamp(seconds=1_735_689_600),
        started_at=Timestamp(seconds=1_735_689_601),
        finished_at=Timestamp(seconds=1_735_689_602, nanos=500_000_000),
        result=json_payload({"answer": 42}),
        last_seq=4,
    )
    task.spec.description = "say hi"
    task.spec.agent_type = "echo"
    task.spec.priority = common_pb2.PRIORITY_HIGH
    task.spec.type = common_pb2.TASK_TYPE_ANALYSIS
    task.spec.input.CopyFrom(json_payload({"x": 1}))
    task.spec.labels.update({"z": "1", "a": "2"})
    return task


def test_task_document_shape() -> None:
    document = json.loads(to_json(task_dict(finished_task())))
    assert list(document) == [*TASK_KEYS, "input", "result", "log"]
    assert document["status"] == "completed"
    assert document["priority"] == "high"
    assert document["type"] == "analysis"
    assert document["created_at"] == "2025-01-01T00:00:00Z"
    assert document["finished_at"] == "2025-01-01T00:00:02.500000Z"
    assert document["duration_seconds"] == 1.5
    assert document["queued_at"] is None
    assert document["parent_id"] is None
    assert document["input"] == {"x": 1}
    assert document["result"] == {"answer": 42}
    assert list(document["labels"]) == ["a", "z"]


def test_list_documents_leave_payloads_out_but_keep_the_same_keys() -> None:
    assert list(task_dict(finished_task(), include_payloads=False)) == TASK_KEYS
    assert list(task_dict(common_pb2.Task(id="x"), include_payloads=False)) == TASK_KEYS


def test_task_table_and_fields() -> None:
    table = task_table([finished_task()])
    header, row = table.splitlines()
    assert header.split() == ["ID", "STATUS", "TYPE", "AGENT", "TYPE", "PRIORITY", "HOST", "DURATION", "DESCRIPTION"]
    assert row.split() == ["t1", "completed", "analysis", "echo", "high", "h1", "1.50s", "say", "hi"]
    fields = task_fields(finished_task())
    assert "status:" in fields
    assert "agent:        h1/a2" in fields
    assert task_table([]) == "no tasks"


def test_host_document_and_table() -> None:
    host = hosts_pb2.Host(
        id="h1",
        hostname="box",
        status=hosts_pb2.HOST_STATUS_CONNECTED,
        slots=4,
        in_flight=1,
        agent_types=[hosts_pb2.AgentTypeInfo(name="echo")],
        last_heartbeat=Timestamp(seconds=100),
    )
    document = host_dict(host)
    assert document["status"] == "connected"
    assert document["agent_types"] == ["echo"]
    assert document["last_heartbeat"] == "1970-01-01T00:01:40Z"
    table = host_table([host], dt.datetime.fromtimestamp(102, dt.UTC))
    assert table.splitlines()[1].split()[:4] == ["h1", "box", "connected", "1/4"]
    assert "2.00s" in table


def test_status_counts_are_normalised_and_ordered() -> None:
    reply = admin_pb2.StatusResponse(tasks_by_status={"COMPLETED": 3, "queued": 1, "TASK_STATUS_RUNNING": 2})
    assert status_counts(reply) == [("queued", 1), ("running", 2), ("completed", 3)]
    document = status_dict(reply, "127.0.0.1:7700")
    assert document["tasks_by_status"] == {"queued": 1, "running": 2, "completed": 3}
    assert document["endpoint"] == "127.0.0.1:7700"
    text = status_text(reply, dt.datetime.now(dt.UTC), "127.0.0.1:7700")
    assert "control plane:  127.0.0.1:7700" in text
    assert "completed      3" in text
