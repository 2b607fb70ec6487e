"""Spans on the agent host and in its worker processes.

    maos.host.assignment      on the host: an assignment's arrival -> its result handed to the link.
                              Child of the control plane's attempt span (the Assignment's
                              trace_context). Event "started" when a worker begins it.
    maos.agent.run            in the worker process: the agent's execution. Child of the host's
                              span, whose context the pool passes in the task's frame; current
                              while the agent runs, so the SDK calls it makes (spawn, wait, ...) and
                              spans it makes with the OpenTelemetry API are its children.

Imported only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.trace import Span, SpanKind, Tracer

from ._spans import SpanTable, extract, inject_span, set_error

DEFAULT_LIMIT = 100_000


class AssignmentSpans:
    """The host's span per lease (task id, attempt)."""

    def __init__(self, tracer: Tracer, host_id: str, limit: int = DEFAULT_LIMIT) -> None:
        self._host_id = host_id
        self._spans: SpanTable[tuple[str, int]] = SpanTable(tracer, limit)

    @property
    def open_count(self) -> int:
        return len(self._spans)

    def received(
        self, task_id: str, attempt: int, agent_type: str, trace_context: Mapping[str, str]
    ) -> dict[str, str] | None:
        """Start the lease's span (unless it is open already: a resent assignment); the carrier
        the worker's span is to be a child of."""
        key = (task_id, attempt)
        span = self._spans.get(key)
        if span is None:
            span = self._spans.start(
                key,
                f"maos.host.assignment {agent_type}",
                parent=extract(trace_context),
                kind=SpanKind.CONSUMER,
                attributes={
                    "maos.task.id": task_id,
                    "maos.task.attempt": attempt,
                    "maos.agent_type": agent_type,
                    "maos.host.id": self._host_id,
                },
            )
        carrier: dict[str, str] = {}
        inject_span(carrier, span)
        return carrier

    def started(self, task_id: str, attempt: int, agent_id: str) -> None:
        self._spans.event((task_id, attempt), "started", {"maos.agent.id": agent_id})

    def finished(self, task_id: str, attempt: int, outcome: str, error_kind: str = "", error_message: str = "") -> None:
        span = self._spans.pop((task_id, attempt))
        if span is None:
            return
        span.set_attribute("maos.outcome", outcome)
        if outcome != "succeeded":
            set_error(span, error_kind or outcome, error_message or outcome)
        span.end()

    def end_all(self) -> None:
        self._spans.end_all("maos.trace.unfinished")


@contextmanager
def agent_run_span(
    tracer: Tracer, trace_context: Mapping[str, str], task_id: str, attempt: int, agent_type: str
) -> Iterator[Span]:
    """The worker's span around one agent execution, current for its duration."""
    with tracer.start_as_current_span(
        f"maos.agent.run {agent_type}",
        context=extract(trace_context),
        attributes={"maos.task.id": task_id, "maos.task.attempt": attempt, "maos.agent_type": agent_type},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_run_outcome(span: Span, status: str, error_kind: str = "", error_message: str = "") -> None:
    """The worker's verdict on its span: status ok, err or cancel (the frame's "st")."""
    span.set_attribute("maos.outcome", {"ok": "succeeded", "cancel": "cancelled"}.get(status, "failed"))
    if status != "ok":
        set_error(span, error_kind or "cancelled", error_message or "cancelled")
