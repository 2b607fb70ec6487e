"""What servicers read off a call's context: who is calling, and how long they will wait.

An agent calling from inside a task is named by the metadata `maos-task-id` and
`maos-attempt`, which the SDK sends when its host set MAOS_TASK_ID/MAOS_ATTEMPT.
There is no authentication yet, so this identity is the caller's own claim.
"""

from __future__ import annotations

from typing import Any

import grpc

Ctx = grpc.aio.ServicerContext[Any, Any]

TASK_ID_METADATA = "maos-task-id"
ATTEMPT_METADATA = "maos-attempt"
# Answer this long before the client's deadline, so it gets a timed-out answer
# (or an empty long poll) rather than DEADLINE_EXCEEDED.
_DEADLINE_MARGIN_SECONDS = 0.05


def metadata_value(context: Ctx, name: str) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return ""


def caller_task_id(context: Ctx) -> str:
    """The task id of an agent calling from inside a task; "" for operators."""
    return metadata_value(context, TASK_ID_METADATA)


def caller_lease(context: Ctx) -> tuple[str, int] | None:
    """The (task, attempt) of an agent calling from inside a task, when both are given."""
    task_id = caller_task_id(context)
    attempt = metadata_value(context, ATTEMPT_METADATA)
    return (task_id, int(attempt)) if task_id and attempt.isdigit() else None


def before_deadline(seconds: float | None, context: Ctx) -> float | None:
    """How long a server-side wait may last: `seconds` (None = no limit of its own),
    cut short so the answer reaches the client before its own deadline."""
    remaining = context.time_remaining()
    if remaining is None:
        return seconds
    limit = max(remaining - _DEADLINE_MARGIN_SECONDS, 0.0)
    return limit if seconds is None else min(seconds, limit)
