"""W3C trace context in string maps, and a bounded table of open spans.

Imported only when tracing is on (it imports OpenTelemetry).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping, MutableMapping, Sequence
from typing import Generic, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

# Always W3C, whatever OTEL_PROPAGATORS says: assignments and messages carry exactly traceparent/tracestate.
_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_KEYS = ("traceparent", "tracestate")

K = TypeVar("K", bound=Hashable)


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write the context's span (default: the current one) into `carrier` as traceparent/tracestate."""
    _PROPAGATOR.inject(carrier, context=context)


def inject_span(carrier: MutableMapping[str, str], span: Span) -> None:
    """Write `span`'s context into `carrier`."""
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))


def extract(carrier: Mapping[str, str] | None) -> Context | None:
    """The remote parent named by `carrier`, or None when it names none (or a malformed one)."""
    if not carrier or "traceparent" not in carrier:
        return None
    context = _PROPAGATOR.extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def set_error(span: Span, kind: str, message: str) -> None:
    """Mark `span` failed with MAOS's error kind and message."""
    if kind:
        span.set_attribute("maos.error.kind", kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}" if kind else message))


class SpanTable(Generic[K]):
    """Open spans by key. Bounded: past `limit` open spans the oldest is ended
    (attribute maos.trace.evicted), so a span whose end never comes cannot leak."""

    def __init__(self, tracer: Tracer, limit: int) -> None:
        self._tracer = tracer
        self._limit = limit
        self._open: OrderedDict[K, Span] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, key: object) -> bool:
        return key in self._open

    def start(
        self,
        key: K,
        name: str,
        *,
        parent: Context | None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] = (),
    ) -> Span:
        """Start a span under `parent` (None: a new trace) and keep it under `key`; an open span
        already under `key` is ended first (attribute maos.trace.superseded)."""
        old = self._open.pop(key, None)
        if old is not None:
            old.set_attribute("maos.trace.superseded", True)
            old.end()
        span = self._tracer.start_span(name, context=parent, kind=kind, attributes=attributes, links=links)
        self._open[key] = span
        if len(self._open) > self._limit:
            _, oldest = self._open.popitem(last=False)
            oldest.set_attribute("maos.trace.evicted", True)
            oldest.end()
        return span

    def get(self, key: K) -> Span | None:
        return self._open.get(key)

    def event(self, key: K, name: str, attributes: Attributes = None) -> None:
        span = self._open.get(key)
        if span is not None:
            span.add_event(name, attributes)

    def pop(self, key: K) -> Span | None:
        """Forget the span under `key` without ending it (the caller ends it)."""
        return self._open.pop(key, None)

    def end(self, key: K, attributes: Attributes = None) -> Span | None:
        span = self._open.pop(key, None)
        if span is not None:
            if attributes:
                span.set_attributes(attributes)
            span.end()
        return span

    def end_all(self, attribute: str) -> None:
        """End every open span, marked with `attribute` = True (e.g. at shutdown)."""
        while self._open:
            _, span = self._open.popitem(last=False)
            span.set_attribute(attribute, True)
            span.end()
