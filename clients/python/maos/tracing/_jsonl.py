"""A span exporter that appends one JSON object per span to a local file.

Every process of a cluster may share one file: it is opened O_APPEND and each
line goes out in a single write(2), so lines from different processes never
interleave (a local file system serialises appends; do not point it at NFS).
A line:

    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex>" | null,
     "name": ..., "kind": "SERVER", "service": "maos-controlplane", "pid": 1234,
     "start_ns": ..., "end_ns": ..., "status": "OK" | "ERROR" | "UNSET", "status_message": ...,
     "attributes": {...}, "events": [{"name", "time_ns", "attributes"}],
     "links": [{"trace_id", "span_id", "attributes"}]}

Written by a BatchSpanProcessor's thread, never on a caller's path; a failed
write is reported to the processor (which drops the batch), never raised.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger(__name__)


class JsonLinesSpanExporter(SpanExporter):
    """Appends spans to `path`, one JSON object per line (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            fd = self._fd
            if fd is None:
                return SpanExportResult.FAILURE
            try:
                for span in spans:
                    os.write(fd, orjson.dumps(span_to_dict(span), default=str) + b"\n")
            except OSError as exc:
                log.warning("cannot write spans to %s: %s", self.path, exc)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every export is already written through


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """One span as the JSON-lines exporter writes it."""
    ctx = span.context
    parent = span.parent
    resource = span.resource.attributes
    return {
        "trace_id": format(ctx.trace_id, "032x") if ctx is not None else None,
        "span_id": format(ctx.span_id, "016x") if ctx is not None else None,
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": resource.get("service.name"),
        "pid": resource.get("process.pid"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description or "",
        "attributes": _attributes(span.attributes),
        "events": [
            {"name": ev.name, "time_ns": ev.timestamp, "attributes": _attributes(ev.attributes)} for ev in span.events
        ],
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": _attributes(link.attributes),
            }
            for link in span.links
        ],
    }


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(attributes) if attributes else {}
