"""A standby answers every client RPC with UNAVAILABLE naming the leader.

One server interceptor, not a check in every servicer: while `refusal()`
returns a message, each call (unary or streaming, hosts' Connect included) is
refused with `Unavailable(message)`. Health checks and reflection pass, so
a standby's health (NOT_SERVING) and its API stay visible. The read-only calls
in READ_ONLY_METHODS ask `read_refusal()` instead: with --redis a standby
serves them (reads from the shared store, live events from the leader).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from maos.errors import Unavailable

from ._errors import status_code

Ctx = grpc.aio.ServicerContext[Any, Any]

_ALWAYS_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")
READ_ONLY_METHODS = frozenset(
    {
        "/maos.v1.StateService/Get",
        "/maos.v1.StateService/List",
        "/maos.v1.StateService/Watch",
        "/maos.v1.MessageService/WatchTopic",
    }
)


class LeadershipGate(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Refuses calls while `refusal()` says why (a standby, or a leader that stopped leading)."""

    def __init__(self, refusal: Callable[[], str | None], read_refusal: Callable[[], str | None] | None = None) -> None:
        self._refusal = refusal
        self._read_refusal = read_refusal or refusal

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_ALWAYS_OPEN):
            return handler
        method = handler_call_details.method
        message = self._read_refusal() if method in READ_ONLY_METHODS else self._refusal()
        if message is None:
            return handler
        return _refusing(handler, message)


def _refusing(handler: Any, message: str) -> Any:
    """A handler of the same shape that answers Unavailable(message) without running the servicer."""
    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if not handler.request_streaming:
        # The error-mapping interceptor around us turns the exception into its status.
        if handler.response_streaming:

            async def refuse_stream(request: Any, context: Ctx) -> AsyncIterator[Any]:
                raise Unavailable(message)
                yield  # an async generator, as a streaming handler must be

            return grpc.unary_stream_rpc_method_handler(refuse_stream, **kw)

        async def refuse(request: Any, context: Ctx) -> Any:
            raise Unavailable(message)

        return grpc.unary_unary_rpc_method_handler(refuse, **kw)

    # Request-streaming calls (hosts' Connect) pass the error mapper untouched: abort with its mapping.
    async def abort(request_iterator: Any, context: Ctx) -> Any:
        await context.abort(status_code(Unavailable(message)), message)

    if handler.response_streaming:

        async def abort_stream(request_iterator: Any, context: Ctx) -> AsyncIterator[Any]:
            await context.abort(status_code(Unavailable(message)), message)
            yield

        return grpc.stream_stream_rpc_method_handler(abort_stream, **kw)
    return grpc.stream_unary_rpc_method_handler(abort, **kw)
