"""Building requests from Python values and reading values back out of replies.

Shared by the sync and async clients so that both send exactly the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeAlias, TypedDict

from maos.errors import InvalidArgument
from maos.v1 import common_pb2, tasks_pb2
from maos.wire import PayloadError, json_payload, payload_value

from ._enums import parse_dependency_failure, parse_priority, parse_status, parse_task_type

SUBMIT_BATCH_LIMIT = 1000
"""Most specs one SubmitTasks request carries (the server's page/batch bound)."""

SpecLike: TypeAlias = common_pb2.TaskSpec | Mapping[str, Any]
"""A TaskSpec message, or the keyword arguments of `task_spec` as a mapping."""


class SpecOptions(TypedDict, total=False):
    """The keyword arguments of `task_spec` after the description.

    Client methods that build a spec (`submit_task`, `plan_task`, ...) take
    them as `**options`, so one list of fields serves every call.
    """

    type: str | int | None
    agent_type: str | None
    priority: str | int | None
    input: Any
    depends_on: Iterable[str]
    on_dependency_failure: str | int | None
    timeout: float | None
    queue_timeout: float | None
    max_retries: int | None
    retry_initial_seconds: float | None
    retry_backoff: float | None
    retry_max_seconds: float | None
    non_retryable: Iterable[str]
    required_capabilities: Iterable[str]
    labels: Mapping[str, str] | None
    parent_id: str | None
    idempotency_key: str | None


def _strings(values: Iterable[str], what: str) -> list[str]:
    # A lone string is one value, not its characters.
    items = [values] if isinstance(values, str) else list(values)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidArgument(f"{what}: every entry must be a non-empty string, got {item!r}")
    return items


def _positive(value: float, what: str) -> float:
    if not value > 0:
        raise InvalidArgument(f"{what} must be above 0 seconds, got {value}")
    return float(value)


def retry_policy(
    *,
    max_retries: int | None = None,
    initial_seconds: float | None = None,
    backoff: float | None = None,
    max_seconds: float | None = None,
    non_retryable: Iterable[str] = (),
) -> common_pb2.RetryPolicy | None:
    """A RetryPolicy, or None when every argument is unset (the server's defaults apply).

    Retry n waits min(initial x backoff^(n-1), max) seconds, jittered by the
    server; errors whose kind is in `non_retryable` are never retried.
    """
    kinds = _strings(non_retryable, "non_retryable")
    if max_retries is None and initial_seconds is None and backoff is None and max_seconds is None and not kinds:
        return None
    policy = common_pb2.RetryPolicy(non_retryable_errors=kinds)
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgument(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        policy.max_retries = max_retries
    if initial_seconds is not None:
        if initial_seconds < 0:
            raise InvalidArgument(f"retry initial interval must be >= 0 seconds, got {initial_seconds}")
        policy.initial_interval_seconds = initial_seconds
    if backoff is not None:
        if backoff < 1:
            raise InvalidArgument(f"retry backoff coefficient must be at least 1, got {backoff}")
        policy.backoff_coefficient = backoff
    if max_seconds is not None:
        if max_seconds < 0:
            raise InvalidArgument(f"retry maximum interval must be >= 0 seconds, got {max_seconds}")
        if initial_seconds is not None and max_seconds and max_seconds < initial_seconds:
            raise InvalidArgument(
                f"retry maximum interval ({max_seconds}s) is below the initial interval ({initial_seconds}s)"
            )
        policy.max_interval_seconds = max_seconds
    return policy


def task_spec(
    description: str,
    *,
    type: str | int | None = None,
    agent_type: str | None = None,
    priority: str | int | None = None,
    input: Any = None,
    depends_on: Iterable[str] = (),
    on_dependency_failure: str | int | None = None,
    timeout: float | None = None,
    queue_timeout: float | None = None,
    max_retries: int | None = None,
    retry_initial_seconds: float | None = None,
    retry_backoff: float | None = None,
    retry_max_seconds: float | None = None,
    non_retryable: Iterable[str] = (),
    required_capabilities: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    parent_id: str | None = None,
    idempotency_key: str | None = None,
) -> common_pb2.TaskSpec:
    """Build a TaskSpec; enum fields take names ("analysis", "high", "skip") or enum values.

    `input` is any JSON-serialisable value (or a ready Payload). `timeout` is
    the task's start-to-close limit and `queue_timeout` its schedule-to-start
    limit, both in seconds. `on_dependency_failure` is "fail" (default),
    "skip" or "continue". The retry arguments make the RetryPolicy (see
    `retry_policy`); left unset, the server's defaults apply.
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
    spec.depends_on.extend(_strings(depends_on, "depends_on"))
    if on_dependency_failure is not None:
        spec.on_dependency_failure = parse_dependency_failure(on_dependency_failure)
    if timeout is not None:
        spec.timeout_seconds = _positive(timeout, "timeout")
    if queue_timeout is not None:
        spec.queue_timeout_seconds = _positive(queue_timeout, "queue_timeout")
    retry = retry_policy(
        max_retries=max_retries,
        initial_seconds=retry_initial_seconds,
        backoff=retry_backoff,
        max_seconds=retry_max_seconds,
        non_retryable=non_retryable,
    )
    if retry is not None:
        spec.retry.CopyFrom(retry)
    spec.required_capabilities.extend(_strings(required_capabilities, "required_capabilities"))
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


def payload_value_or_bytes(payload: common_pb2.Payload) -> Any:
    """A payload decoded (JSON -> Python value); its raw bytes for other content types or broken JSON."""
    try:
        return payload_value(payload)
    except PayloadError:
        # A payload that claims JSON but is not: show the bytes rather than fail the caller.
        return payload.data


def task_result(task: common_pb2.Task) -> Any:
    """The task's result decoded (JSON -> Python value, other content types -> bytes); None if unset."""
    if not task.HasField("result"):
        return None
    return payload_value_or_bytes(task.result)


def task_input(task: common_pb2.Task) -> Any:
    """The task's input decoded like `task_result`; None if unset."""
    if not task.spec.HasField("input"):
        return None
    return payload_value_or_bytes(task.spec.input)
