"""The one place where exceptions become gRPC statuses.

A server interceptor wraps every handler: MaosError subclasses map to their
status with their message; an undecodable request (e.g. invalid UTF-8 in a
string field) is INVALID_ARGUMENT, not the library's INTERNAL; anything else
is logged with its traceback and answered INTERNAL without leaking it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from maos.errors import MaosError

Ctx = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger(__name__)

_CODES: dict[str, grpc.StatusCode] = {code.name: code for code in grpc.StatusCode}


def status_code(error: MaosError) -> grpc.StatusCode:
    return _CODES.get(error.code, grpc.StatusCode.UNKNOWN)


class _Malformed:
    """Stands in for a request that could not be decoded."""

    def __init__(self, method: str, error: Exception) -> None:
        self.message = f"{method}: the request is not a valid protobuf message ({error}); check string fields are UTF-8"


def _safe_deserializer(method: str, deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    def run(data: bytes) -> Any:
        try:
            return deserialize(data) if deserialize else data
        except (DecodeError, ValueError, UnicodeDecodeError) as exc:
            return _Malformed(method, exc)

    return run


async def _fail(context: Ctx, method: str, exc: BaseException) -> None:
    if isinstance(exc, MaosError):
        await context.abort(status_code(exc), exc.message)
    log.error("unexpected error in %s", method, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        f"internal error in {method}: {type(exc).__name__}; see the control plane log",
    )


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Maps MaosError to statuses and malformed requests to INVALID_ARGUMENT."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler  # streaming requests (host Connect) handle their own errors
        method = handler_call_details.method
        deserializer = _safe_deserializer(method, handler.request_deserializer)
        if handler.response_streaming and not inspect.isasyncgenfunction(handler.unary_stream):
            # A handler that answers with context.write() (grpc's own Health.Watch): a coroutine.
            writer: Any = handler.unary_stream

            async def written(request: Any, context: Ctx) -> None:
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                try:
                    await writer(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await _fail(context, method, exc)

            return grpc.unary_stream_rpc_method_handler(
                written, request_deserializer=deserializer, response_serializer=handler.response_serializer
            )
        if handler.response_streaming:
            inner_stream: Any = handler.unary_stream

            async def stream(request: Any, context: Ctx) -> AsyncIterator[Any]:
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                try:
                    async for response in inner_stream(request, context):
                        yield response
                except (MaosError, Exception) as exc:
                    if isinstance(exc, grpc.aio.AbortError):
                        raise
                    await _fail(context, method, exc)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=deserializer, response_serializer=handler.response_serializer
            )
        inner: Any = handler.unary_unary

        async def unary(request: Any, context: Ctx) -> Any:
            if isinstance(request, _Malformed):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            try:
                return await inner(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(context, method, exc)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=deserializer, response_serializer=handler.response_serializer
        )
