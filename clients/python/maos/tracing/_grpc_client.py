"""Client interceptors: a CLIENT span per RPC whose W3C context rides in the call's metadata
(traceparent/tracestate), so the control plane's server span is its child.

Imported only when tracing is on; the SDK adds these to its channels only then.
"""

from __future__ import annotations

import asyncio
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any, cast

import grpc
import grpc.aio
from maos.v1 import messages_pb2
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from ._spans import inject


def _rpc_name(method: str | bytes) -> tuple[str, dict[str, str]]:
    text = method.decode() if isinstance(method, bytes) else method
    service, _, name = text.lstrip("/").rpartition("/")
    return text.lstrip("/"), {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _start(tracer: Tracer, method: str | bytes, request: Any = None) -> tuple[Span, list[tuple[str, str]]]:
    """A CLIENT span under the current context, and the metadata entries that carry it.
    A message the request sends gets the span's context too (unless it carries one): the
    context travels with the message, through host relays and mailboxes, to its reader."""
    name, attributes = _rpc_name(method)
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    carrier: dict[str, str] = {}
    inject(carrier, trace.set_span_in_context(span))
    if isinstance(request, _SENDS):
        _stamp(request, carrier)
    return span, list(carrier.items())


_SENDS = (messages_pb2.SendRequest, messages_pb2.PublishRequest, messages_pb2.SendBatchRequest)


def _stamp(request: Any, carrier: dict[str, str]) -> None:
    for message in request.messages if isinstance(request, messages_pb2.SendBatchRequest) else (request,):
        if not message.trace_context:
            message.trace_context.update(carrier)


def _end(span: Span, code: grpc.StatusCode | None) -> None:
    code = code or grpc.StatusCode.OK
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


# ---------------------------------------------------------------- blocking channels


class _Details(
    namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class TracingClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """For grpc.intercept_channel: every kind of call on a blocking channel."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    def _call(self, continuation: Callable[[Any, Any], Any], details: Any, request: Any) -> Any:
        span, entries = _start(self._tracer, details.method, request)
        metadata = [*(details.metadata or ()), *entries]
        new = _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        try:
            call = continuation(new, request)
        except BaseException:
            _end(span, grpc.StatusCode.UNKNOWN)
            raise
        # Unary outcomes are done already (the callback runs now); streams end when they end.
        call.add_done_callback(lambda done: _end(span, _code(done)))
        return call

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return self._call(continuation, client_call_details, request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return self._call(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return self._call(continuation, client_call_details, request_iterator)


def _code(call: Any) -> grpc.StatusCode | None:
    try:
        code: grpc.StatusCode | None = call.code()
    except Exception:
        return grpc.StatusCode.UNKNOWN
    return code


# ---------------------------------------------------------------- grpc.aio channels


def _aio_details(details: grpc.aio.ClientCallDetails, entries: list[tuple[str, str]]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *entries)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _AioBase:
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def _unary_response(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        span, entries = _start(self._tracer, details.method, request)
        try:
            call = await continuation(_aio_details(details, entries), request)
            code = await call.code()  # the span covers the whole call
        except asyncio.CancelledError:
            _end(span, grpc.StatusCode.CANCELLED)
            raise
        except BaseException:
            _end(span, grpc.StatusCode.UNKNOWN)
            raise
        _end(span, code)
        return call

    async def _stream_response(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        span, entries = _start(self._tracer, details.method)
        try:
            call = await continuation(_aio_details(details, entries), request)
        except BaseException:
            _end(span, grpc.StatusCode.UNKNOWN)
            raise
        call.add_done_callback(lambda _: _end(span, None))
        return call


class _AioUnaryUnary(_AioBase, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._unary_response(continuation, client_call_details, request)


class _AioUnaryStream(_AioBase, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._stream_response(continuation, client_call_details, request)


class _AioStreamUnary(_AioBase, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self._unary_response(continuation, client_call_details, request_iterator)


class _AioStreamStream(_AioBase, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self._stream_response(continuation, client_call_details, request_iterator)


def aio_interceptors(tracer: Tracer) -> Sequence[grpc.aio.ClientInterceptor]:
    """One of each kind: grpc.aio files an interceptor under the first kind it is an instance of."""
    interceptors = (_AioUnaryUnary(tracer), _AioUnaryStream(tracer), _AioStreamUnary(tracer), _AioStreamStream(tracer))
    return cast(Sequence[grpc.aio.ClientInterceptor], interceptors)
