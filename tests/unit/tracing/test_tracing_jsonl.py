"""The JSON-lines span exporter: one whole JSON object per span, shared safely by processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from maos.tracing._jsonl import JsonLinesSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, Status, StatusCode


def _provider(path: Path, service: str = "svc") -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "process.pid": 42}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    return provider


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_span_line_has_ids_parent_service_times_attributes_events_and_links(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "spans.jsonl"  # parent folders are made
    provider = _provider(path)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("parent") as parent:
        linked = parent.get_span_context()
        with tracer.start_as_current_span("child", links=[Link(linked, {"why": "test"})]) as child:
            child.set_attribute("maos.task.id", "T1")
            child.set_attribute("sizes", (1, 2))
            child.add_event("queued", {"maos.message": "submitted"})
            child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()

    child_line, parent_line = _read(path)
    assert parent_line["name"] == "parent" and parent_line["parent_span_id"] is None
    assert child_line["name"] == "child"
    assert child_line["trace_id"] == parent_line["trace_id"] == format(linked.trace_id, "032x")
    assert child_line["parent_span_id"] == parent_line["span_id"] == format(linked.span_id, "016x")
    assert len(child_line["span_id"]) == 16 and len(child_line["trace_id"]) == 32
    assert child_line["service"] == "svc" and child_line["pid"] == 42
    assert child_line["kind"] == "INTERNAL"
    assert 0 < child_line["start_ns"] <= child_line["end_ns"]
    assert child_line["attributes"] == {"maos.task.id": "T1", "sizes": [1, 2]}
    assert child_line["events"][0]["name"] == "queued"
    assert child_line["events"][0]["attributes"] == {"maos.message": "submitted"}
    assert child_line["links"] == [
        {"trace_id": parent_line["trace_id"], "span_id": parent_line["span_id"], "attributes": {"why": "test"}}
    ]
    assert (child_line["status"], child_line["status_message"]) == ("ERROR", "boom")


def test_export_after_shutdown_fails_instead_of_raising(tmp_path: Path) -> None:
    exporter = JsonLinesSpanExporter(tmp_path / "spans.jsonl")
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    from opentelemetry.sdk.trace.export import SpanExportResult

    assert exporter.export([]) is SpanExportResult.FAILURE


_WRITER = """
import sys
from maos import tracing
tracing.configure("jsonl:" + sys.argv[1], "writer-" + sys.argv[2])
tracer = tracing.tracer()
for i in range(300):
    with tracer.start_as_current_span("s") as span:
        span.set_attribute("payload", sys.argv[2] * 6000)  # lines far above PIPE_BUF
        span.set_attribute("i", i)
tracing.shutdown()
"""


def test_processes_appending_to_one_file_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), letter], stderr=subprocess.PIPE) for letter in "abc"
    ]
    for proc in writers:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    lines = _read(path)  # every line is whole JSON
    assert len(lines) == 900
    for letter in "abc":
        mine = [line for line in lines if line["service"] == f"writer-{letter}"]
        assert sorted(line["attributes"]["i"] for line in mine) == list(range(300))
        assert all(line["attributes"]["payload"] == letter * 6000 for line in mine)
