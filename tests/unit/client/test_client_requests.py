"""The requests of the graph calls (UpdateTask, PlanTask, templates, batches) and the new spec fields."""

from __future__ import annotations

import inspect
import json

import pytest
from maos.client import AsyncClient, Client, SpecOptions, task_spec
from maos.client._requests import (
    add_to_batch_request,
    create_template_request,
    params_payload,
    plan_request,
    submit_from_template_request,
    update_request,
)
from maos.errors import InvalidArgument
from maos.v1 import common_pb2


def test_spec_options_lists_exactly_the_task_spec_keywords() -> None:
    keywords = [p.name for p in inspect.signature(task_spec).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert list(SpecOptions.__annotations__) == keywords


def test_sync_and_async_clients_offer_the_same_calls() -> None:
    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(member).parameters)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    assert public(Client) == public(AsyncClient)
    for name in ("update_task", "plan_task", "create_template", "submit_from_template", "add_to_batch"):
        assert name in public(Client)


def test_retry_dependency_and_queue_fields() -> None:
    spec = task_spec(
        "x",
        max_retries=3,
        retry_initial_seconds=0.5,
        retry_backoff=2,
        retry_max_seconds=10,
        non_retryable=["bad_input", "auth"],
        on_dependency_failure="skip",
        queue_timeout=60,
        required_capabilities=["gpu"],
        depends_on="a",  # one id, not three characters
    )
    assert spec.retry == common_pb2.RetryPolicy(
        max_retries=3,
        initial_interval_seconds=0.5,
        backoff_coefficient=2,
        max_interval_seconds=10,
        non_retryable_errors=["bad_input", "auth"],
    )
    assert spec.on_dependency_failure == common_pb2.DEPENDENCY_FAILURE_POLICY_SKIP
    assert spec.queue_timeout_seconds == 60
    assert list(spec.required_capabilities) == ["gpu"]
    assert list(spec.depends_on) == ["a"]
    assert task_spec("x", on_dependency_failure="CONTINUE").on_dependency_failure == 3
    # Only non-retryable kinds still make a policy (the server's default retry count applies).
    assert task_spec("x", non_retryable=["e"]).HasField("retry")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"on_dependency_failure": "ignore"},
            "unknown dependency failure policy 'ignore'; expected one of: fail, skip",
        ),
        ({"queue_timeout": 0}, "queue_timeout must be above 0 seconds, got 0"),
        ({"timeout": 0}, "timeout must be above 0 seconds, got 0"),
        ({"retry_backoff": 0.5}, "retry backoff coefficient must be at least 1, got 0.5"),
        ({"retry_initial_seconds": -1}, "retry initial interval must be >= 0 seconds"),
        ({"retry_initial_seconds": 5, "retry_max_seconds": 1}, "retry maximum interval (1s) is below the initial"),
        ({"max_retries": True}, "max_retries must be a whole number >= 0, got True"),
        ({"non_retryable": [""]}, "non_retryable: every entry must be a non-empty string"),
        ({"depends_on": ["a", 3]}, "depends_on: every entry must be a non-empty string, got 3"),
    ],
)
def test_bad_spec_fields_are_invalid_argument(options: SpecOptions, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        task_spec("x", **options)
    assert str(info.value).startswith(message)


def test_update_request() -> None:
    assert update_request("t1", priority="critical").priority == common_pb2.PRIORITY_CRITICAL
    with pytest.raises(InvalidArgument, match="nothing to update"):
        update_request("t1", priority=None)
    with pytest.raises(InvalidArgument, match="unknown priority 'urgent'"):
        update_request("t1", priority="urgent")


def test_plan_request() -> None:
    request = plan_request(
        "review the design",
        aspects=["security", "performance"],
        stream_agent_type="echo",
        synthesis_agent_type="echo",
        max_agents=1,
        dry_run=True,
        options={"priority": "high", "labels": {"k": "v"}},
    )
    assert request.template == "parallel-synthesis"
    assert request.spec.description == "review the design"
    assert request.spec.priority == common_pb2.PRIORITY_HIGH
    assert list(request.aspects) == ["security", "performance"]
    assert (request.stream_agent_type, request.synthesis_agent_type, request.max_agents, request.dry_run) == (
        "echo",
        "echo",
        1,
        True,
    )
    assert list(plan_request("x", shards="/data/one.csv").shards) == ["/data/one.csv"]
    with pytest.raises(InvalidArgument, match="aspects or by shards, not both"):
        plan_request("x", aspects=["a"], shards=["s"])
    with pytest.raises(InvalidArgument, match="at least one aspect or one shard"):
        plan_request("x")
    with pytest.raises(InvalidArgument, match="planner template name is empty"):
        plan_request("x", aspects=["a"], template=" ")


def test_create_template_request_takes_exactly_one_source() -> None:
    from_task = create_template_request("nightly", from_task_id="t1", description="the nightly run")
    assert (from_task.WhichOneof("source"), from_task.from_task_id, from_task.description) == (
        "from_task_id",
        "t1",
        "the nightly run",
    )
    from_spec = create_template_request("n", spec={"description": "count {n}", "agent_type": "echo"})
    assert from_spec.WhichOneof("source") == "spec"
    assert from_spec.spec.description == "count {n}"
    with pytest.raises(InvalidArgument, match="exactly one of them"):
        create_template_request("n")
    with pytest.raises(InvalidArgument, match="exactly one of them"):
        create_template_request("n", from_task_id="t1", spec={"description": "x"})
    with pytest.raises(InvalidArgument, match="template name is empty"):
        create_template_request("", from_task_id="t1")


def test_template_params_and_overrides() -> None:
    request = submit_from_template_request(
        "nightly", {"n": 3, "who": "ops"}, overrides={"priority": "low", "labels": {"run": "7"}}, wait=5
    )
    assert request.params.content_type == "application/json"
    assert json.loads(request.params.data) == {"n": 3, "who": "ops"}
    assert request.overrides.description == ""  # the template's description stays
    assert request.overrides.priority == common_pb2.PRIORITY_LOW
    assert dict(request.overrides.labels) == {"run": "7"}
    assert request.wait_seconds == 5
    bare = submit_from_template_request("nightly", None)
    assert json.loads(bare.params.data) == {}
    assert not bare.HasField("overrides")
    with pytest.raises(InvalidArgument, match="must be a mapping of name -> value, got list"):
        params_payload([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="names must be non-empty strings, got 1"):
        params_payload({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match="template parameters: "):
        params_payload({"when": object()})


def test_add_to_batch_request() -> None:
    request = add_to_batch_request("b", [{"description": "one"}, task_spec("two", agent_type="echo")])
    assert [s.description for s in request.specs] == ["one", "two"]
    with pytest.raises(InvalidArgument, match="nothing to add"):
        add_to_batch_request("b", [])
