"""The control plane's spans of each task's life.

    maos.task                 submission -> final status recorded. Parent: the submit RPC's server
                              span (so the client's submit span above it), or for a workflow's
                              node, the workflow root's task span. Events: every transition
                              (pending, queued, running, completed, ...) with its message.
    maos.task.attempt         one dispatch: assignment sent -> that attempt's result recorded.
                              Child of the task span; its context travels in the Assignment's
                              trace_context, so the host's span (and the worker's below it) are its
                              children. Event "started" when the host reports the worker began.
    maos.task.record_result   a result's arrival from the host -> its commit. Child of the task
                              span, linked to the attempt span whose result it records.

The spans live in memory only, keyed by task id: a control plane restart loses
them (spans still open are never exported), and a task recovered from the store
gets a fresh root task span at its next dispatch. The tables are bounded, so a
task whose end never comes cannot leak its span.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from opentelemetry import trace
from opentelemetry.trace import Link, Span, Tracer
from opentelemetry.util.types import AttributeValue

from ._spans import SpanTable, inject_span, set_error

DEFAULT_LIMIT = 100_000


class TaskSpans:
    """Per-task spans; every method is cheap and never raises for an unknown task."""

    def __init__(self, tracer: Tracer, limit: int = DEFAULT_LIMIT) -> None:
        self._tracer = tracer
        self._tasks: SpanTable[str] = SpanTable(tracer, limit)
        # One open attempt span per task: a new dispatch (after a lost host) supersedes the old one.
        self._attempts: SpanTable[str] = SpanTable(tracer, limit)
        self._attempt_numbers: dict[str, int] = {}
        self._records: SpanTable[tuple[str, int]] = SpanTable(tracer, limit)

    @property
    def open_count(self) -> int:
        """Open spans of all three kinds (for tests and admin views)."""
        return len(self._tasks) + len(self._attempts) + len(self._records)

    def submitted(
        self,
        task_id: str,
        *,
        agent_type: str,
        root_id: str,
        parent_task_id: str = "",
        under_parent_task: bool = False,
        attributes: dict[str, AttributeValue] | None = None,
    ) -> None:
        """A task was accepted. Its span's parent is the current span (the submit RPC), or the
        parent task's span when `under_parent_task` (a workflow's nodes under its root)."""
        parent = None
        if under_parent_task and parent_task_id:
            parent_span = self._tasks.get(parent_task_id)
            if parent_span is not None:
                parent = trace.set_span_in_context(parent_span)
        attrs: dict[str, AttributeValue] = {"maos.task.id": task_id, "maos.task.root_id": root_id}
        if agent_type:
            attrs["maos.agent_type"] = agent_type
        if parent_task_id:
            attrs["maos.task.parent_id"] = parent_task_id
        if attributes:
            attrs.update(attributes)
        self._tasks.start(task_id, f"maos.task {agent_type or 'workflow'}", parent=parent, attributes=attrs)

    def transition(self, task_id: str, status: str, message: str, attempt: int) -> None:
        """A persisted transition of the task (status lower-case, e.g. "queued")."""
        self._tasks.event(task_id, status, {"maos.message": message, "maos.task.attempt": attempt})

    def dispatched(
        self, task_id: str, attempt: int, host_id: str, agent_type: str, carrier: MutableMapping[str, str]
    ) -> None:
        """An assignment goes to a host: start the attempt span and write its context into `carrier`."""
        task_span = self._tasks.get(task_id)
        if task_span is None:  # recovered after a restart: its submission's trace is gone
            task_span = self._tasks.start(
                task_id,
                f"maos.task {agent_type}",
                parent=None,
                attributes={"maos.task.id": task_id, "maos.agent_type": agent_type, "maos.task.recovered": True},
            )
        self._attempt_numbers[task_id] = attempt
        span = self._attempts.start(
            task_id,
            "maos.task.attempt",
            parent=trace.set_span_in_context(task_span),
            attributes={"maos.task.id": task_id, "maos.task.attempt": attempt, "maos.host.id": host_id},
        )
        inject_span(carrier, span)

    def started(self, task_id: str, attempt: int, agent_id: str) -> None:
        """The host reports a worker began the attempt."""
        if self._attempt_numbers.get(task_id) == attempt:
            self._attempts.event(task_id, "started", {"maos.agent.id": agent_id})

    def result_received(self, task_id: str, attempt: int, host_id: str, outcome: str) -> None:
        """A result arrived from a host: start the span that ends when it is committed."""
        task_span = self._tasks.get(task_id)
        attempt_span = self._attempts.get(task_id) if self._attempt_numbers.get(task_id) == attempt else None
        links = [Link(attempt_span.get_span_context())] if attempt_span is not None else []
        self._records.start(
            (task_id, attempt),
            "maos.task.record_result",
            parent=trace.set_span_in_context(task_span) if task_span is not None else None,
            attributes={
                "maos.task.id": task_id,
                "maos.task.attempt": attempt,
                "maos.host.id": host_id,
                "maos.outcome": outcome,
            },
            links=links,
        )

    def result_committed(self, task_id: str, attempt: int) -> None:
        """The result is durable (acknowledged to the host): end its record span and the attempt span."""
        self._records.end((task_id, attempt))
        if self._attempt_numbers.get(task_id) == attempt:
            self._end_attempt(task_id)

    def _end_attempt(self, task_id: str, attributes: dict[str, AttributeValue] | None = None) -> None:
        self._attempt_numbers.pop(task_id, None)
        self._attempts.end(task_id, attributes)

    def finished(self, task_id: str, status: str, error_kind: str = "", error_message: str = "") -> None:
        """The task's final status is recorded: end whatever of it is still open."""
        self._end_attempt(task_id, {"maos.task.status": status})
        span = self._tasks.pop(task_id)
        if span is None:
            return
        span.set_attribute("maos.task.status", status)
        if status != "completed":
            _fail(span, error_kind or status, error_message or status)
        span.end()

    def end_all(self) -> None:
        """At shutdown: end every open span (marked maos.trace.unfinished) so what is known gets exported."""
        self._records.end_all("maos.trace.unfinished")
        self._attempts.end_all("maos.trace.unfinished")
        self._tasks.end_all("maos.trace.unfinished")
        self._attempt_numbers.clear()


def _fail(span: Span, kind: str, message: str) -> None:
    set_error(span, kind, message)
