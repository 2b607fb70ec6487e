"""Spans of messages on the control plane.

    maos.message.send        PRODUCER: a send, broadcast, publish or send batch, from its
                             acceptance to its commit. Parent: the current span (the RPC's)
                             when it is of the sender's trace, else the sender's context
                             carried on the request (trace_context, filled by the SDK: it
                             survives host relays and streams). Every copy it makes carries
                             this span's context (Message.trace_context).
    maos.message.receive     CONSUMER, one per message handed to a reader (Receive, a
                             Subscribe stream, or a host relay's subscription). Child of
                             the message's send span, linked to the reader's current span.

The context rides on the in-memory copies only: messages reloaded from the
store after a restart carry none (their receive spans start new traces).

Imported only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer

from ._spans import extract, inject_span, set_error


class _Message(Protocol):
    id: str
    delivery_count: int
    trace_context: dict[str, str] | None


class MessageSpans:
    """Send and receive spans; every method is cheap and never raises."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def start_send(
        self, trace_context: Mapping[str, str] | None, *, recipient: str, message_id: str, copies: int
    ) -> tuple[Span, dict[str, str]]:
        """Start the send span; returns it and the context each copy is to carry."""
        carried = extract(trace_context)
        current = trace.get_current_span().get_span_context()
        if carried is not None and current.is_valid:
            if trace.get_current_span(carried).get_span_context().trace_id == current.trace_id:
                carried = None  # the RPC that carried the message is the closer parent
        span = self._tracer.start_span(
            "maos.message.send",
            context=carried,  # None: under the current span
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "maos",
                "messaging.destination.name": recipient,
                "messaging.message.id": message_id,
                "messaging.batch.message_count": copies,
            },
        )
        carrier: dict[str, str] = {}
        inject_span(carrier, span)
        return span, carrier

    def end_send(self, span: Span, error: BaseException | None = None) -> None:
        if error is not None:
            set_error(span, type(error).__name__, str(error))
        span.end()

    def received(self, messages: Iterable[_Message], mailbox: str) -> None:
        """A span per message handed to a reader of `mailbox`."""
        reader = trace.get_current_span().get_span_context()
        links = [Link(reader)] if reader.is_valid else []
        for msg in messages:
            self._tracer.start_span(
                "maos.message.receive",
                context=extract(msg.trace_context),
                kind=SpanKind.CONSUMER,
                links=links,
                attributes={
                    "messaging.system": "maos",
                    "messaging.destination.name": mailbox,
                    "messaging.message.id": msg.id,
                    "maos.message.delivery_count": msg.delivery_count,
                },
            ).end()
