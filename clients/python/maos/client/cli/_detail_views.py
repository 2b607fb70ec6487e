"""Views of the task-graph details: retry policies, planner plans and attempts.

Pure functions of protobuf messages (JSON dicts and text), shared by `task show`
and the graph commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from maos.v1 import common_pb2

from .._enums import is_final, status_name
from ._output import duration, iso, render_table, seconds_between, timestamp

_COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def _opt(text: str) -> str | None:
    return text or None


def retry_dict(retry: common_pb2.RetryPolicy) -> dict[str, Any]:
    """The JSON view of a retry policy (0 = the server's default)."""
    return {
        "max_retries": retry.max_retries,
        "initial_interval_seconds": retry.initial_interval_seconds,
        "backoff_coefficient": retry.backoff_coefficient,
        "max_interval_seconds": retry.max_interval_seconds,
        "non_retryable_errors": list(retry.non_retryable_errors),
    }


def retry_text(retry: common_pb2.RetryPolicy) -> str:
    """A retry policy for a person: "3 retries, 1s x2 up to 30s, never on bad_input"."""
    parts = [f"{retry.max_retries} retr{'y' if retry.max_retries == 1 else 'ies'}"]
    if retry.initial_interval_seconds or retry.backoff_coefficient or retry.max_interval_seconds:
        wait = f"{retry.initial_interval_seconds:g}s" if retry.initial_interval_seconds else "default wait"
        if retry.backoff_coefficient:
            wait += f" x{retry.backoff_coefficient:g}"
        if retry.max_interval_seconds:
            wait += f" up to {retry.max_interval_seconds:g}s"
        parts.append(wait)
    if retry.non_retryable_errors:
        parts.append("never on " + ", ".join(retry.non_retryable_errors))
    return ", ".join(parts)


def plan_dict(plan: common_pb2.Plan) -> dict[str, Any]:
    """The JSON view of how the planner decomposed a task."""
    return {
        "template": plan.template,
        "parallel_streams": plan.parallel_streams,
        "estimated_speedup": plan.estimated_speedup,
        "synthesis_key": _opt(plan.synthesis_key),
    }


def plan_text(plan: common_pb2.Plan) -> str:
    """ "parallel-synthesis · 3 parallel streams · estimated speedup 2.55x"."""
    parts = [plan.template or "plan"]
    if plan.parallel_streams:
        parts.append(f"{plan.parallel_streams} parallel stream{'' if plan.parallel_streams == 1 else 's'}")
    if plan.estimated_speedup:
        parts.append(f"estimated speedup {plan.estimated_speedup:.2f}x")
    return " · ".join(parts)


def attempt_dict(attempt: common_pb2.Attempt) -> dict[str, Any]:
    """The JSON view of one dispatch of a task."""
    started = timestamp(attempt.started_at, attempt.HasField("started_at"))
    finished = timestamp(attempt.finished_at, attempt.HasField("finished_at"))
    return {
        "number": attempt.number,
        "status": status_name(attempt.status),
        "host_id": _opt(attempt.host_id),
        "agent_id": _opt(attempt.agent_id),
        "dispatched_at": iso(attempt.dispatched_at, attempt.HasField("dispatched_at")),
        "started_at": iso(attempt.started_at, attempt.HasField("started_at")),
        "finished_at": iso(attempt.finished_at, attempt.HasField("finished_at")),
        "duration_seconds": seconds_between(started, finished),
        "error": (
            {"kind": attempt.error.kind, "message": attempt.error.message}
            if attempt.HasField("error") and (attempt.error.kind or attempt.error.message)
            else None
        ),
    }


def attempts_worth_showing(task: common_pb2.Task) -> bool:
    """True when `task show` should list the attempts: more than one, or the last one did not complete."""
    if len(task.attempts) > 1:
        return True
    return bool(task.attempts) and is_final(task.attempts[-1].status) and task.attempts[-1].status != _COMPLETED


def _clock(ts: Timestamp, present: bool) -> str | None:
    when = timestamp(ts, present)
    return None if when is None else when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def attempts_table(attempts: Sequence[common_pb2.Attempt]) -> str:
    """The attempts of a task, oldest first; times are UTC clock times."""
    rows = []
    for a in attempts:
        started = timestamp(a.started_at, a.HasField("started_at"))
        finished = timestamp(a.finished_at, a.HasField("finished_at"))
        error = None
        if a.HasField("error") and (a.error.kind or a.error.message):
            error = f"{a.error.kind}: {a.error.message}" if a.error.kind else a.error.message
        rows.append(
            (
                a.number,
                status_name(a.status),
                a.host_id or None,
                a.agent_id or None,
                _clock(a.dispatched_at, a.HasField("dispatched_at")),
                _clock(a.started_at, a.HasField("started_at")),
                _clock(a.finished_at, a.HasField("finished_at")),
                duration(seconds_between(started, finished)) if finished else None,
                error,
            )
        )
    headers = ("#", "status", "host", "agent", "dispatched", "started", "finished", "duration", "error")
    return render_table(headers, rows, right=(0, 7), max_widths={2: 20, 3: 28, 8: 60}, empty="no attempts")
