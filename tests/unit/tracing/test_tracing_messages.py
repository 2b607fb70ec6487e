"""Message spans: where a send span hangs, receive spans under it, and the context on requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from maos.controlplane.messaging import MessagingConfig, outgoing
from maos.tracing._grpc_client import _start
from maos.tracing._messages import MessageSpans
from maos.tracing._spans import extract, inject, inject_span
from maos.v1 import common_pb2, messages_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


@dataclass
class _Copy:
    id: str
    delivery_count: int
    trace_context: dict[str, str] | None


def _context_of(tracer: Tracer, name: str) -> tuple[dict[str, str], int]:
    span = tracer.start_span(name)
    span.end()
    carrier: dict[str, str] = {}
    inject_span(carrier, span)
    return carrier, span.get_span_context().span_id


def test_a_relayed_send_hangs_under_the_senders_context(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    spans = MessageSpans(tracer)
    sender, sender_id = _context_of(tracer, "agent's Send call")
    with tracer.start_as_current_span("host Connect stream"):  # another trace is current: not the parent
        span, carrier = spans.start_send(sender, recipient="task:T", message_id="m1", copies=1)
    spans.end_send(span)
    send = exporter.get_finished_spans()[-1]
    assert send.kind is SpanKind.PRODUCER and send.parent is not None
    assert send.parent.span_id == sender_id
    assert extract(carrier) is not None
    assert trace.get_current_span(extract(carrier)).get_span_context().span_id == send.context.span_id


def test_a_direct_send_hangs_under_its_rpc_span(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    spans = MessageSpans(tracer)
    with tracer.start_as_current_span("client Send") as client:
        carrier: dict[str, str] = {}
        inject(carrier)
        with tracer.start_as_current_span("server Send") as server:
            span, _ = spans.start_send(carrier, recipient="task:T", message_id="", copies=1)
            spans.end_send(span, ValueError("mailbox full"))
    send = next(s for s in exporter.get_finished_spans() if s.name == "maos.message.send")
    assert send.parent is not None and send.parent.span_id == server.get_span_context().span_id
    assert send.context.trace_id == client.get_span_context().trace_id
    assert send.status.status_code is StatusCode.ERROR


def test_each_read_is_a_receive_span_under_its_send(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    spans = MessageSpans(tracer)
    first, first_id = _context_of(tracer, "send 1")
    with tracer.start_as_current_span("Receive") as reader:
        spans.received([_Copy("a", 1, first), _Copy("b", 2, None)], "task:T")
    reads = [s for s in exporter.get_finished_spans() if s.name == "maos.message.receive"]
    assert [r.attributes["messaging.message.id"] for r in reads] == ["a", "b"]
    assert reads[0].parent is not None and reads[0].parent.span_id == first_id
    assert reads[1].parent is not None and reads[1].parent.span_id == reader.get_span_context().span_id
    assert all(r.kind is SpanKind.CONSUMER for r in reads)
    assert [link.context.span_id for link in reads[0].links] == [reader.get_span_context().span_id]


def test_the_client_stamps_messages_it_sends_unless_they_carry_a_context(tracer: Tracer) -> None:
    payload = common_pb2.Payload(data=b"1")
    send = messages_pb2.SendRequest(to_task_id="T", payload=payload)
    span, entries = _start(tracer, "/maos.v1.MessageService/Send", send)
    span.end()
    assert dict(send.trace_context) == dict(entries)
    stamped = trace.get_current_span(extract(dict(send.trace_context))).get_span_context()
    assert (stamped.trace_id, stamped.span_id) == (span.get_span_context().trace_id, span.get_span_context().span_id)

    theirs = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    kept = messages_pb2.SendRequest(to_task_id="T", trace_context={"traceparent": theirs})
    batch = messages_pb2.SendBatchRequest(messages=[kept, messages_pb2.SendRequest(to_task_id="U")])
    span, entries = _start(tracer, "/maos.v1.MessageService/SendBatch", batch)
    span.end()
    assert batch.messages[0].trace_context["traceparent"] == theirs
    assert dict(batch.messages[1].trace_context) == dict(entries)

    receive = messages_pb2.ReceiveRequest(mailbox="task:T")
    _start(tracer, "/maos.v1.MessageService/Receive", receive)[0].end()  # nothing to stamp, no error


def test_the_control_plane_keeps_only_bounded_w3c_keys_of_a_message() -> None:
    config = MessagingConfig()
    common = {"priority": 0, "data": b"1", "content_type": "", "ttl_seconds": 0.0, "message_id": "", "config": config}
    assert outgoing(**common).trace_context is None
    message = outgoing(
        **common,
        trace_context={"traceparent": "00-abc", "tracestate": "x" * 600, "baggage": "secret", "other": "y"},
    )
    assert message.trace_context == {"traceparent": "00-abc"}
