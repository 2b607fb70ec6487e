"""Requests of the graph-level calls: UpdateTask, PlanTask, templates and batches.

Shared by the sync and async clients (like _specs.py) so both send the same
bytes, and checked here so that a mistake a client can see costs no RPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from maos.errors import InvalidArgument
from maos.v1 import common_pb2, tasks_pb2, templates_pb2
from maos.wire import PayloadError, json_payload

from ._enums import parse_priority
from ._specs import SpecLike, SpecOptions, as_spec, task_spec

DEFAULT_PLAN_TEMPLATE = "parallel-synthesis"
"""The planner template PlanTask uses unless told otherwise."""


def _name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{what} name is empty")
    return name


def update_request(task_id: str, *, priority: str | int | None) -> tasks_pb2.UpdateTaskRequest:
    """An UpdateTask request; InvalidArgument when it would change nothing."""
    if priority is None:
        raise InvalidArgument("nothing to update: give a priority")
    return tasks_pb2.UpdateTaskRequest(id=task_id, priority=parse_priority(priority))


def plan_request(
    description: str,
    *,
    template: str = DEFAULT_PLAN_TEMPLATE,
    aspects: Iterable[str] = (),
    shards: Iterable[str] = (),
    stream_agent_type: str | None = None,
    synthesis_agent_type: str | None = None,
    max_agents: int = 0,
    dry_run: bool = False,
    options: SpecOptions | None = None,
) -> tasks_pb2.PlanTaskRequest:
    """A PlanTask request for `description`; `options` are task_spec fields of the task to decompose."""
    aspect_list = [aspects] if isinstance(aspects, str) else list(aspects)
    shard_list = [shards] if isinstance(shards, str) else list(shards)
    if aspect_list and shard_list:
        raise InvalidArgument("a plan splits by aspects or by shards, not both")
    if not aspect_list and not shard_list:
        raise InvalidArgument("a plan needs at least one aspect or one shard to split the work by")
    if max_agents < 0:
        raise InvalidArgument(f"max_agents must be >= 0, got {max_agents}")
    return tasks_pb2.PlanTaskRequest(
        spec=task_spec(description, **(options or {})),
        template=_name(template, "planner template"),
        aspects=aspect_list,
        shards=shard_list,
        stream_agent_type=stream_agent_type or "",
        synthesis_agent_type=synthesis_agent_type or "",
        max_agents=max_agents,
        dry_run=dry_run,
    )


def create_template_request(
    name: str,
    *,
    from_task_id: str | None = None,
    spec: SpecLike | None = None,
    description: str = "",
) -> templates_pb2.CreateTemplateRequest:
    """A CreateTemplate request from a task's spec (`from_task_id`) or a spec of its own."""
    if (from_task_id is None) == (spec is None):
        raise InvalidArgument("a template comes from a task (from_task_id) or a spec, exactly one of them")
    request = templates_pb2.CreateTemplateRequest(name=_name(name, "template"), description=description)
    if from_task_id is not None:
        request.from_task_id = from_task_id
    else:
        assert spec is not None
        request.spec.CopyFrom(as_spec(spec))
    return request


def params_payload(params: Mapping[str, Any] | None) -> common_pb2.Payload:
    """Template parameters as the JSON object SubmitFromTemplate expects."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidArgument(f"template parameters must be a mapping of name -> value, got {type(params).__name__}")
    for key in params:
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"template parameter names must be non-empty strings, got {key!r}")
    try:
        return json_payload(dict(params))
    except PayloadError as exc:
        raise InvalidArgument(f"template parameters: {exc}") from None


def submit_from_template_request(
    name: str,
    params: Mapping[str, Any] | None,
    *,
    overrides: SpecOptions | None = None,
    wait: float | None = None,
) -> templates_pb2.SubmitFromTemplateRequest:
    """A SubmitFromTemplate request; `overrides` (task_spec fields) replace the template's where set."""
    request = templates_pb2.SubmitFromTemplateRequest(
        name=_name(name, "template"), params=params_payload(params), wait_seconds=wait or 0.0
    )
    if overrides:
        # An empty description leaves the template's (non-empty fields override).
        request.overrides.CopyFrom(task_spec("", **overrides))
    return request


def add_to_batch_request(name: str, specs: Iterable[SpecLike]) -> templates_pb2.AddToBatchRequest:
    """An AddToBatch request; InvalidArgument for an empty list."""
    request = templates_pb2.AddToBatchRequest(name=_name(name, "batch"))
    request.specs.extend(as_spec(spec) for spec in specs)
    if not request.specs:
        raise InvalidArgument("nothing to add: give at least one task spec")
    return request
