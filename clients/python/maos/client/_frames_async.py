"""The asyncio SDK's end of the host relay's frame socket (agenthost/_relay_frames.py).

`_frames_client` is the blocking end; this one serves `ctx.messages`' async
calls (send_async, send_many_async, receive_async, ...) with the same frames,
checks and errors, so an async agent's hot calls skip gRPC as a sync
agent's do (grpc.aio costs a sender far more per call than the socket).

The relay answers a connection's calls one after another, so concurrent
calls each take a connection of their own: a small pool of idle connections,
one call in flight on each. The connections are plain non-blocking sockets
driven with the running loop's sock_* calls, which hold nothing of the loop
between calls, so one pool serves every event loop (and thread) of a
process.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc.aio
from google.protobuf.message import Message
from maos.errors import DeadlineExceeded, Unavailable
from maos.v1 import messages_pb2

from ._batch_wire import first_message_ids
from ._frames_client import ACK, RECEIVE, SEND, SEND_BATCH, frame_result
from ._messages_client import AsyncMessagesClient

if TYPE_CHECKING:
    from maos.v1.messages_pb2_grpc import MessageServiceAsyncStub

MAX_IDLE = 8  # connections kept open between calls (more only while more calls are in flight)
_READ_SIZE = 1 << 18


class AsyncFrameConnections:
    """Calls on a relay's frame socket from asyncio: one connection per call in flight, reused."""

    def __init__(self, path: Path, *, max_idle: int = MAX_IDLE) -> None:
        self.path = path
        self._max_idle = max_idle
        self._idle: list[socket.socket] = []
        self.opened = 0  # connections opened so far (tests read it)

    async def call(self, method: int, caller: str, request: bytes, timeout: float) -> bytes:  # noqa: ASYNC109 - a deadline for the whole exchange, like the gRPC calls'
        """The response bytes; raises the maos.errors class the relay named."""
        loop = asyncio.get_running_loop()
        who = caller.encode()
        length = 3 + len(who) + len(request)
        # up: u32 length | u8 method | u16 caller length | caller | request (see _relay_frames)
        frame = b"".join((length.to_bytes(4, "big"), method.to_bytes(1, "big"), len(who).to_bytes(2, "big"), who))
        try:
            sock: socket.socket | None = self._idle.pop()  # atomic: threads may share the pool
        except IndexError:
            sock = None
        try:
            async with asyncio.timeout(timeout):
                if sock is None:
                    sock = await self._connect(loop)
                await loop.sock_sendall(sock, frame + request)
                body = await _read_frame(loop, sock)
        except TimeoutError:
            _close(sock)  # its answer may still come: the connection is out of step
            raise DeadlineExceeded(
                f"the host's message relay did not answer within {timeout:g}s; it may or may not have "
                "taken effect: send again with the same message_id to be sure"
            ) from None
        except OSError as exc:
            _close(sock)
            self.close()  # the idle ones likely went with it (the relay stopped)
            raise Unavailable(
                f"the host's message relay at {self.path} is unreachable ({exc}); it may or may not have "
                "taken effect: send again with the same message_id to be sure"
            ) from None
        except BaseException:
            _close(sock)  # cancelled mid-call: the connection is out of step
            raise
        if len(self._idle) < self._max_idle:
            self._idle.append(sock)
        else:
            sock.close()
        return frame_result(body)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, str(self.path))
        except BaseException:
            sock.close()
            raise
        self.opened += 1
        return sock

    def close(self) -> None:
        """Close the idle connections (a call in flight closes its own when it ends)."""
        idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()


async def _read_frame(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """One response frame's body (after its u32 length)."""
    data = b""
    while len(data) < 4:
        data += await _recv(loop, sock)
    need = 4 + int.from_bytes(data[:4], "big")
    if len(data) == need:
        return data[4:]
    chunks = [data]
    have = len(data)
    while have < need:
        chunk = await _recv(loop, sock)
        chunks.append(chunk)
        have += len(chunk)
    if have > need:
        raise ConnectionError("the relay answered more than one frame to one call")
    return b"".join(chunks)[4:]


async def _recv(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    chunk = await loop.sock_recv(sock, _READ_SIZE)
    if not chunk:
        raise ConnectionResetError("the relay closed the connection")
    return chunk


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()


class _FramedStub:
    """The relay's gRPC stub with Send, SendBatch, Receive and Ack answered over its frame
    socket instead; every other method is the gRPC stub's."""

    def __init__(self, stub: MessageServiceAsyncStub, frames: AsyncFrameConnections, task_id: str) -> None:
        self._stub = stub
        self._frames = frames
        self._task_id = task_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    async def _call(self, method: int, request: Message, response: type[Message], timeout: float) -> Any:  # noqa: ASYNC109 - passed on
        data = await self._frames.call(method, self._task_id, request.SerializeToString(), timeout)
        return response.FromString(data)

    def Send(self, request: messages_pb2.SendRequest, *, timeout: float, **_: Any) -> Awaitable[Any]:
        return self._call(SEND, request, messages_pb2.SendResponse, timeout)

    def SendBatch(self, request: messages_pb2.SendBatchRequest, *, timeout: float, **_: Any) -> Awaitable[Any]:
        return self._call(SEND_BATCH, request, messages_pb2.SendBatchResponse, timeout)

    def Receive(self, request: messages_pb2.ReceiveRequest, *, timeout: float, **_: Any) -> Awaitable[Any]:
        return self._call(RECEIVE, request, messages_pb2.ReceiveResponse, timeout)

    def Ack(self, request: messages_pb2.AckRequest, *, timeout: float, **_: Any) -> Awaitable[Any]:
        return self._call(ACK, request, messages_pb2.AckResponse, timeout)


class AsyncFramedMessagesClient(AsyncMessagesClient):
    """An AsyncMessagesClient whose Send, SendBatch, Receive and Ack go over the relay's frame socket."""

    def __init__(
        self, channel: grpc.aio.Channel, endpoint: str, frames: AsyncFrameConnections, *, caller: tuple[str, int]
    ) -> None:
        super().__init__(channel, endpoint, caller=caller)
        self._frames = frames
        self._task_id = caller[0]
        # The client's methods call the stub as they would the gRPC one; the four framed
        # methods answer as the gRPC ones do (a response, or a maos.errors exception).
        self._stub = cast("MessageServiceAsyncStub", _FramedStub(self._stub, frames, caller[0]))

    async def _send_batch(self, data: bytes) -> list[str]:
        """The encoded request as it is, and the ids read from the response's bytes: no protobuf
        objects on the way."""
        return first_message_ids(await self._frames.call(SEND_BATCH, self._task_id, data, self.timeout))
