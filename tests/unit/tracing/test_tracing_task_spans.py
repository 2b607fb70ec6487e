"""The control plane's spans of a task's life, and the host's and worker's spans below them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from maos.tracing._host import AssignmentSpans, agent_run_span, record_run_outcome
from maos.tracing._spans import extract
from maos.tracing._tasks import TaskSpans
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_task_from_submit_rpc_to_worker_is_one_trace(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    tasks = TaskSpans(tracer)
    host = AssignmentSpans(tracer, "host-1")
    with tracer.start_as_current_span("SubmitTask"):  # the server span the interceptor makes current
        tasks.submitted("T1", agent_type="echo", root_id="T1")
    tasks.transition("T1", "queued", "submitted", 0)
    assignment_context: dict[str, str] = {}
    tasks.dispatched("T1", 1, "host-1", "echo", assignment_context)
    assert set(assignment_context) >= {"traceparent"}

    worker_context = host.received("T1", 1, "echo", assignment_context)
    assert worker_context is not None
    host.started("T1", 1, "host-1-w0")
    tasks.started("T1", 1, "host-1-w0")
    with agent_run_span(tracer, worker_context, "T1", 1, "echo") as run:
        assert trace.get_current_span() is run  # agent code's spans and SDK calls nest under it
        record_run_outcome(run, "ok")
    host.finished("T1", 1, "succeeded")
    tasks.transition("T1", "running", "running on agent host-1-w0", 1)
    tasks.result_received("T1", 1, "host-1", "succeeded")
    tasks.transition("T1", "completed", "", 1)
    tasks.result_committed("T1", 1)
    tasks.finished("T1", "completed")

    spans = _by_name(exporter)
    submit, task = spans["SubmitTask"], spans["maos.task echo"]
    attempt, record = spans["maos.task.attempt"], spans["maos.task.record_result"]
    host_span, run_span = spans["maos.host.assignment echo"], spans["maos.agent.run echo"]
    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert _parent_id(task) == submit.context.span_id
    assert _parent_id(attempt) == task.context.span_id
    assert _parent_id(host_span) == attempt.context.span_id
    assert _parent_id(run_span) == host_span.context.span_id
    assert _parent_id(record) == task.context.span_id
    assert [link.context.span_id for link in record.links] == [attempt.context.span_id]
    assert [e.name for e in task.events] == ["queued", "running", "completed"]
    assert [e.name for e in attempt.events] == ["started"]
    assert task.attributes["maos.task.status"] == "completed"
    assert task.status.status_code is StatusCode.UNSET
    assert tasks.open_count == 0 and host.open_count == 0


def test_workflow_nodes_hang_under_their_root_task(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    tasks = TaskSpans(tracer)
    tasks.submitted("R", agent_type="", root_id="R", under_parent_task=True)
    tasks.submitted("A", agent_type="echo", root_id="R", parent_task_id="R", under_parent_task=True)
    tasks.finished("A", "completed")
    tasks.finished("R", "completed")
    spans = _by_name(exporter)
    assert _parent_id(spans["maos.task echo"]) == spans["maos.task workflow"].context.span_id
    assert spans["maos.task echo"].attributes["maos.task.parent_id"] == "R"


def test_a_failed_task_and_attempt_are_marked_failed(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    tasks = TaskSpans(tracer)
    host = AssignmentSpans(tracer, "h")
    tasks.submitted("T", agent_type="echo", root_id="T")
    carrier: dict[str, str] = {}
    tasks.dispatched("T", 1, "h", "echo", carrier)
    worker = host.received("T", 1, "echo", carrier)
    assert worker is not None
    with agent_run_span(tracer, worker, "T", 1, "echo") as run:
        record_run_outcome(run, "err", "exception", "ValueError: no")
    host.finished("T", 1, "failed", "exception", "ValueError: no")
    tasks.finished("T", "failed", "exception", "ValueError: no")  # no result recorded: the attempt ends too
    spans = _by_name(exporter)
    for name in ("maos.task echo", "maos.host.assignment echo", "maos.agent.run echo"):
        assert spans[name].status.status_code is StatusCode.ERROR, name
        assert spans[name].attributes["maos.error.kind"] == "exception"
    assert spans["maos.task.attempt"].attributes["maos.task.status"] == "failed"
    assert tasks.open_count == 0


def test_a_redispatch_supersedes_the_lost_attempt(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    tasks = TaskSpans(tracer)
    tasks.submitted("T", agent_type="echo", root_id="T")
    first: dict[str, str] = {}
    tasks.dispatched("T", 1, "lost-host", "echo", first)
    second: dict[str, str] = {}
    tasks.dispatched("T", 2, "other-host", "echo", second)
    tasks.result_committed("T", 1)  # a late ack of the stale attempt ends nothing of attempt 2
    assert tasks.open_count == 2
    tasks.result_committed("T", 2)
    tasks.finished("T", "completed")
    attempts = [s for s in exporter.get_finished_spans() if s.name == "maos.task.attempt"]
    assert [(s.attributes["maos.task.attempt"], s.attributes.get("maos.trace.superseded")) for s in attempts] == [
        (1, True),
        (2, None),
    ]
    assert first["traceparent"] != second["traceparent"]


def test_a_task_recovered_after_a_restart_gets_a_root_span_at_dispatch(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    tasks = TaskSpans(tracer)
    carrier: dict[str, str] = {}
    tasks.dispatched("OLD", 3, "h", "echo", carrier)
    tasks.finished("OLD", "completed")
    task = _by_name(exporter)["maos.task echo"]
    assert task.parent is None and task.attributes["maos.task.recovered"] is True


def test_open_spans_are_bounded(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    tasks = TaskSpans(tracer, limit=3)
    for i in range(5):
        tasks.submitted(f"T{i}", agent_type="echo", root_id=f"T{i}")
    assert tasks.open_count == 3
    evicted = [s.attributes["maos.task.id"] for s in exporter.get_finished_spans()]
    assert evicted == ["T0", "T1"]
    assert all(s.attributes["maos.trace.evicted"] for s in exporter.get_finished_spans())
    tasks.end_all()
    assert tasks.open_count == 0 and len(exporter.get_finished_spans()) == 5


def test_unknown_tasks_and_missing_context_are_ignored(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    tasks = TaskSpans(tracer)
    tasks.transition("nope", "queued", "", 0)
    tasks.started("nope", 1, "a")
    tasks.result_committed("nope", 1)
    tasks.finished("nope", "completed")
    assert exporter.get_finished_spans() == ()
    assert extract({}) is None
    assert extract({"traceparent": "garbage"}) is None
    host = AssignmentSpans(tracer, "h")
    carrier = host.received("T", 1, "echo", {"traceparent": "garbage"})  # a new trace, not a crash
    assert carrier is not None and extract(carrier) is not None
    host.received("T", 1, "echo", {})  # a resent assignment reuses the open span
    host.finished("T", 1, "succeeded")
    host.finished("T", 1, "succeeded")
    assert len(exporter.get_finished_spans()) == 1
