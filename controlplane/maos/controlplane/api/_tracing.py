"""A SERVER span for every RPC, child of the caller's span named by the W3C
traceparent/tracestate in the call's metadata (a new trace when there is none).

Registered first (outermost) only when tracing is on, so its span covers the
error mapping and records the status the call ended with. For unary calls the
span is current while the handler runs: what the handler starts (a task's span
in the runtime) becomes its child. Streaming calls (watches, subscriptions, a
host's Connect) get a span for their whole life but do not make it current
across their yields, since a generator may be finished from another context.

Imported only when tracing is on (it imports OpenTelemetry).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from maos import tracing
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Ctx = grpc.aio.ServicerContext[Any, Any]

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_KEYS = ("traceparent", "tracestate")


def _carrier(details: grpc.HandlerCallDetails) -> dict[str, str]:
    metadata = details.invocation_metadata or ()
    return {key: value for key, value in metadata if key in _TRACE_KEYS and isinstance(value, str)}


def _end(span: Span, context: Ctx, exc: BaseException | None = None) -> None:
    code: grpc.StatusCode | None
    if isinstance(exc, asyncio.CancelledError):
        code = grpc.StatusCode.CANCELLED
    else:
        try:
            code = context.code()
        except Exception:  # older grpc.aio without ServicerContext.code()
            code = None
        if code is None:
            code = grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        details = None
        try:
            details = context.details()
        except Exception:
            pass
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details}" if details else code.name))
    span.end()


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every handler in a SERVER span (see the module docstring)."""

    def __init__(self, tracer: Tracer | None = None) -> None:
        t = tracer or tracing.tracer()
        if t is None:
            raise RuntimeError("TracingInterceptor needs tracing configured (maos.tracing.configure)")
        self._tracer = t

    def _start(self, details: grpc.HandlerCallDetails) -> Span:
        method = details.method.lstrip("/")
        service, _, name = method.rpartition("/")
        carrier = _carrier(details)
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        return self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None:
            return None
        start = self._start
        details = handler_call_details
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: Ctx) -> Any:
                span = start(details)
                with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                    try:
                        response = await inner_unary(request, context)
                    except BaseException as exc:
                        _end(span, context, exc)
                        raise
                _end(span, context)
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            inner_stream_unary = handler.stream_unary

            async def stream_unary(requests: Any, context: Ctx) -> Any:
                span = start(details)
                try:
                    response = await inner_stream_unary(requests, context)
                except BaseException as exc:
                    _end(span, context, exc)
                    raise
                _end(span, context)
                return response

            return grpc.stream_unary_rpc_method_handler(
                stream_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        streaming = handler.unary_stream or handler.stream_stream
        wrapped: Callable[[Any, Ctx], Any]
        if inspect.isasyncgenfunction(streaming):

            async def stream(request: Any, context: Ctx) -> AsyncIterator[Any]:
                span = start(details)
                try:
                    async for response in streaming(request, context):
                        yield response
                except BaseException as exc:
                    _end(span, context, exc)
                    raise
                _end(span, context)

            wrapped = stream
        else:  # a handler that answers with context.write() and returns None

            async def write_stream(request: Any, context: Ctx) -> None:
                span = start(details)
                try:
                    await streaming(request, context)
                except BaseException as exc:
                    _end(span, context, exc)
                    raise
                _end(span, context)

            wrapped = write_stream
        make = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
