"""Validation of client input: every rejection names the field and what is allowed.

Runs before anything is stored, so a rejected request leaves no trace.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import orjson
from maos.errors import InvalidArgument
from maos.v1 import common_pb2

_TYPE_DEFAULT_AGENT = {
    common_pb2.TASK_TYPE_ANALYSIS: "analyst",
    common_pb2.TASK_TYPE_COORDINATION: "coordinator",
}


@dataclass(frozen=True, slots=True)
class InputLimits:
    max_description_bytes: int = 64 * 1024
    max_input_bytes: int = 4 * 1024 * 1024
    max_labels: int = 64
    max_label_bytes: int = 1024
    max_retries: int = 100
    max_timeout_seconds: float = 7 * 24 * 3600.0
    max_depends_on: int = 10_000


_ENUM_VALUES: dict[int, frozenset[int]] = {}


def _enum_ok(enum_type: object, value: int) -> bool:
    # proto3 enums are open: any int parses, so check it names a declared value.
    values = _ENUM_VALUES.get(id(enum_type))
    if values is None:
        values = _ENUM_VALUES[id(enum_type)] = frozenset(enum_type.values())  # type: ignore[attr-defined]
    return value in values


def _names(enum_type: object, prefix: str) -> str:
    names = [n.removeprefix(prefix).lower() for n in enum_type.keys()]  # type: ignore[attr-defined]
    return ", ".join(n for n in names if n != "unspecified")


def validate_spec(
    spec: common_pb2.TaskSpec,
    *,
    where: str,
    known_agent_types: Collection[str],
    default_agent_type: str,
    limits: InputLimits,
    check_depends_on: bool = True,
) -> str:
    """Check a spec; return the agent type it will run on. `where` prefixes messages
    (e.g. "node 'shard-1': ") so a person can find the bad part of a big request."""
    description = spec.description.strip()
    if not description:
        raise InvalidArgument(f"{where}description is empty: say what the task should do")
    if len(spec.description.encode()) > limits.max_description_bytes:
        raise InvalidArgument(f"{where}description is over {limits.max_description_bytes} bytes")
    if not _enum_ok(common_pb2.TaskType, spec.type):
        raise InvalidArgument(
            f"{where}type {spec.type} is unknown; use one of {_names(common_pb2.TaskType, 'TASK_TYPE_')}"
        )
    if not _enum_ok(common_pb2.Priority, spec.priority):
        raise InvalidArgument(
            f"{where}priority {spec.priority} is unknown; use one of {_names(common_pb2.Priority, 'PRIORITY_')}"
        )
    if not _enum_ok(common_pb2.DependencyFailurePolicy, spec.on_dependency_failure):
        raise InvalidArgument(
            f"{where}on_dependency_failure {spec.on_dependency_failure} is unknown; use one of "
            f"{_names(common_pb2.DependencyFailurePolicy, 'DEPENDENCY_FAILURE_POLICY_')}"
        )
    agent_type = spec.agent_type or _TYPE_DEFAULT_AGENT.get(spec.type, default_agent_type)
    if agent_type not in known_agent_types:
        known = ", ".join(sorted(known_agent_types)) or "none yet: start an agent host"
        raise InvalidArgument(f"{where}agent type {agent_type!r} is unknown; known agent types: {known}")
    if spec.HasField("input") and spec.input.data:
        if len(spec.input.data) > limits.max_input_bytes:
            raise InvalidArgument(
                f"{where}input is {len(spec.input.data)} bytes; the limit is {limits.max_input_bytes}"
            )
        if spec.input.content_type in ("", "application/json"):
            try:
                orjson.loads(spec.input.data)
            except orjson.JSONDecodeError as exc:
                raise InvalidArgument(f"{where}input is not valid JSON: {exc}") from None
    for field in ("timeout_seconds", "queue_timeout_seconds"):
        if spec.HasField(field):
            value = getattr(spec, field)
            if not value > 0:
                raise InvalidArgument(f"{where}{field} must be above 0 seconds, got {value}")
            if value > limits.max_timeout_seconds:
                raise InvalidArgument(f"{where}{field} must be at most {limits.max_timeout_seconds:.0f} seconds")
    retry = spec.retry
    if retry.max_retries > limits.max_retries:
        raise InvalidArgument(f"{where}max_retries is {retry.max_retries}; the limit is {limits.max_retries}")
    for name in ("initial_interval_seconds", "max_interval_seconds"):
        if getattr(retry, name) < 0:
            raise InvalidArgument(f"{where}retry.{name} must not be negative")
    if retry.backoff_coefficient and retry.backoff_coefficient < 1:
        raise InvalidArgument(f"{where}retry.backoff_coefficient must be at least 1")
    if len(spec.labels) > limits.max_labels:
        raise InvalidArgument(f"{where}{len(spec.labels)} labels; the limit is {limits.max_labels}")
    for key, value in spec.labels.items():
        if not key or len(key) + len(value) > limits.max_label_bytes:
            raise InvalidArgument(f"{where}label {key[:40]!r} is empty or longer than {limits.max_label_bytes} bytes")
    if len(spec.depends_on) > limits.max_depends_on:
        raise InvalidArgument(f"{where}{len(spec.depends_on)} dependencies; the limit is {limits.max_depends_on}")
    if check_depends_on and len(set(spec.depends_on)) != len(spec.depends_on):
        raise InvalidArgument(f"{where}depends_on lists a task more than once")
    return agent_type
