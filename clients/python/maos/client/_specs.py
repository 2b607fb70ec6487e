"""Building requests from Python values and reading values back out of replies.

Shared by the sync and async clients so that both send exactly the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeAlias

from maos.errors import InvalidArgument
from maos.v1 import common_pb2, tasks_pb2
from maos.wire import PayloadError, json_payload, payload_value

from ._enums import parse_priority, parse_status, parse_task_type

SUBMIT_BATCH_LIMIT = 1000
"""Most specs one SubmitTasks request carries (the server's page/batch bound)."""

SpecLike: TypeAlias = common_pb2.TaskSpec | Mapping[str, Any]
"""A TaskSpec message, or the keyword arguments of `task_spec` as a mapping."""


def task_spec(
    description: str,
    *,
    type: str | int | None = None,
    agent_type: str | None = None,
    priority: str | int | None = None,
    input: Any = None,
    depends_on: Iterable[str] = (),
    timeout: float | None = None,
    max_retries: int | None = None,
    labels: Mapping[str, str] | None = None,
    parent_id: str | None = None,
    idempotency_key: str | None = None,
) -> common_pb2.TaskSpec:
    """Build a TaskSpec; `type`/`priority` take names ("analysis", "high") or enum values.

    `input` is any JSON-serialisable value (or a ready Payload); `timeout` is the
    task's start-to-close limit in seconds.
    """
    spec = common_pb2.TaskSpec(description=description)
    if type is not None:
        spec.type = parse_task_type(type)
    if agent_type:
        spec.agent_type = agent_type
    if priority is not None:
        spec.priority = parse_priority(priority)
    if input is not None:
        if isinstance(input, common_pb2.Payload):
            spec.input.CopyFrom(input)
        else:
            try:
                spec.input.CopyFrom(json_payload(input))
            except PayloadError as exc:
                raise InvalidArgument(f"input: {exc}") from None
    if depends_on:
        spec.depends_on.extend(depends_on)
    if timeout is not None:
        if timeout < 0:
            raise InvalidArgument(f"timeout must be >= 0 seconds, got {timeout}")
        spec.timeout_seconds = timeout
    if max_retries is not None:
        if max_retries < 0:
            raise InvalidArgument(f"max_retries must be >= 0, got {max_retries}")
        spec.retry.max_retries = max_retries
    if labels:
        spec.labels.update(labels)
    if parent_id:
        spec.parent_id = parent_id
    if idempotency_key:
        spec.idempotency_key = idempotency_key
    return spec


def as_spec(spec: SpecLike) -> common_pb2.TaskSpec:
    """A TaskSpec from a TaskSpec or a mapping of `task_spec` keyword arguments."""
    if isinstance(spec, common_pb2.TaskSpec):
        return spec
    if isinstance(spec, Mapping):
        try:
            return task_spec(**spec)
        except TypeError as exc:
            raise InvalidArgument(f"bad task spec {dict(spec)!r}: {exc}") from None
    raise InvalidArgument(f"a task spec must be a TaskSpec or a mapping, got {type(spec).__name__}")


def submit_batches(specs: Iterable[SpecLike]) -> Iterator[tasks_pb2.SubmitTasksRequest]:
    """SubmitTasks requests of at most SUBMIT_BATCH_LIMIT specs each."""
    request = tasks_pb2.SubmitTasksRequest()
    for spec in specs:
        request.specs.append(as_spec(spec))
        if len(request.specs) == SUBMIT_BATCH_LIMIT:
            yield request
            request = tasks_pb2.SubmitTasksRequest()
    if request.specs:
        yield request


def workflow_request(
    nodes: Mapping[str, SpecLike] | Iterable[tasks_pb2.WorkflowNode],
    root_description: str,
    *,
    priority: str | int | None = None,
    labels: Mapping[str, str] | None = None,
    parent_id: str | None = None,
    idempotency_key: str | None = None,
) -> tasks_pb2.SubmitWorkflowRequest:
    """A SubmitWorkflow request; each node's `depends_on` names other nodes' keys."""
    root = task_spec(
        root_description,
        priority=priority,
        labels=labels,
        parent_id=parent_id,
        idempotency_key=idempotency_key,
    )
    request = tasks_pb2.SubmitWorkflowRequest(root=root)
    if isinstance(nodes, Mapping):
        for key, spec in nodes.items():
            request.nodes.add(key=key, spec=as_spec(spec))
    else:
        request.nodes.extend(nodes)
    if not request.nodes:
        raise InvalidArgument("a workflow needs at least one node")
    return request


def list_request(
    *,
    statuses: Iterable[str | int] = (),
    root_id: str | None = None,
    parent_id: str | None = None,
    page_size: int = 100,
    include_result: bool = False,
) -> tasks_pb2.ListTasksRequest:
    """The first ListTasks request; the caller sets page_token for the next pages."""
    return tasks_pb2.ListTasksRequest(
        statuses=[parse_status(s) for s in statuses],
        root_id=root_id or "",
        parent_id=parent_id or "",
        page_size=max(1, min(page_size, SUBMIT_BATCH_LIMIT)),
        include_result=include_result,
    )


def task_result(task: common_pb2.Task) -> Any:
    """The task's result decoded (JSON -> Python value, other content types -> bytes); None if unset."""
    if not task.HasField("result"):
        return None
    try:
        return payload_value(task.result)
    except PayloadError:
        # A result that claims JSON but is not: show the bytes rather than fail the caller.
        return task.result.data


def task_input(task: common_pb2.Task) -> Any:
    """The task's input decoded like `task_result`; None if unset."""
    if not task.spec.HasField("input"):
        return None
    try:
        return payload_value(task.spec.input)
    except PayloadError:
        return task.spec.input.data
