"""Request building shared by Client and AsyncClient."""

from __future__ import annotations

import pytest
from maos.client import SUBMIT_BATCH_LIMIT, SpecLike, task_result, task_spec
from maos.client._specs import as_spec, list_request, submit_batches, workflow_request
from maos.errors import InvalidArgument
from maos.v1 import common_pb2
from maos.wire import json_payload


def test_task_spec_sets_every_field() -> None:
    spec = task_spec(
        "analyse",
        type="analysis",
        agent_type="analyst",
        priority="high",
        input={"path": "/d"},
        depends_on=["a", "b"],
        timeout=30,
        max_retries=0,
        labels={"k": "v"},
        parent_id="p",
        idempotency_key="key-1",
    )
    assert spec.type == common_pb2.TASK_TYPE_ANALYSIS
    assert spec.priority == common_pb2.PRIORITY_HIGH
    assert spec.input.content_type == "application/json"
    assert spec.input.data == b'{"path":"/d"}'
    assert list(spec.depends_on) == ["a", "b"]
    assert spec.timeout_seconds == 30
    # max_retries=0 means "never retry", distinct from "use the default": the message is present.
    assert spec.HasField("retry")
    assert spec.retry.max_retries == 0
    assert dict(spec.labels) == {"k": "v"}
    assert (spec.parent_id, spec.idempotency_key) == ("p", "key-1")


def test_task_spec_defaults_leave_fields_unset() -> None:
    spec = task_spec("x")
    assert not spec.HasField("input")
    assert not spec.HasField("retry")
    assert spec.priority == common_pb2.PRIORITY_UNSPECIFIED


def test_unserialisable_input_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="input"):
        task_spec("x", input={"when": object()})


def test_negative_limits_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="timeout"):
        task_spec("x", timeout=-1)
    with pytest.raises(InvalidArgument, match="max_retries"):
        task_spec("x", max_retries=-1)


def test_as_spec_takes_mappings_and_rejects_unknown_keys() -> None:
    assert as_spec({"description": "x", "priority": "low"}).priority == common_pb2.PRIORITY_LOW
    with pytest.raises(InvalidArgument, match="bad task spec"):
        as_spec({"description": "x", "colour": "red"})


def test_submit_batches_chunk_at_the_limit() -> None:
    batches = list(submit_batches({"description": f"t{i}"} for i in range(2 * SUBMIT_BATCH_LIMIT + 5)))
    assert [len(b.specs) for b in batches] == [SUBMIT_BATCH_LIMIT, SUBMIT_BATCH_LIMIT, 5]
    assert batches[2].specs[4].description == f"t{2 * SUBMIT_BATCH_LIMIT + 4}"
    assert list(submit_batches([])) == []


def test_workflow_request() -> None:
    nodes: dict[str, SpecLike] = {"a": {"description": "A"}, "b": task_spec("B", depends_on=["a"])}
    request = workflow_request(nodes, "root", priority="critical")
    assert request.root.description == "root"
    assert request.root.priority == common_pb2.PRIORITY_CRITICAL
    assert [(n.key, list(n.spec.depends_on)) for n in request.nodes] == [("a", []), ("b", ["a"])]
    with pytest.raises(InvalidArgument, match="at least one node"):
        workflow_request({}, "root")


def test_list_request_clamps_page_size_and_parses_statuses() -> None:
    request = list_request(statuses=["running", "queued"], page_size=5000)
    assert request.page_size == 1000
    assert list(request.statuses) == [common_pb2.TASK_STATUS_RUNNING, common_pb2.TASK_STATUS_QUEUED]


def test_task_result_decodes_json_and_tolerates_garbage() -> None:
    assert task_result(common_pb2.Task()) is None
    assert task_result(common_pb2.Task(result=json_payload([1, 2]))) == [1, 2]
    raw = common_pb2.Task(result=common_pb2.Payload(data=b"\x89PNG", content_type="image/png"))
    assert task_result(raw) == b"\x89PNG"
    broken = common_pb2.Task(result=common_pb2.Payload(data=b"{nope", content_type="application/json"))
    assert task_result(broken) == b"{nope"
