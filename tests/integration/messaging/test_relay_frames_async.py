"""The asyncio SDK on the relay's frame socket (client/_frames_async.py): the same answers and
errors as the relay's gRPC server, concurrent calls on connections of their own, and
`ctx.messages`' async calls taking this path instead of gRPC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from maos.agenthost._relay_server import RelayServer, RelayServicer
from maos.client import _context_messages
from maos.client._context_messages import TaskMessages
from maos.client._frames_async import AsyncFrameConnections, AsyncFramedMessagesClient
from maos.client._frames_client import SEND, frames_path
from maos.errors import DeadlineExceeded, InvalidArgument, PermissionDenied, ResourceExhausted, Unavailable

from tests.support.messaging import host_relay

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RelayServer]:
    # The framed calls must not reach the relay's gRPC server: there, they fail.
    for name in ("Send", "SendBatch", "Receive", "Ack"):
        monkeypatch.setattr(RelayServicer, name, _refuse(name))
    async with host_relay(max_queued=2000) as relay_server:
        yield relay_server


def _refuse(name: str) -> Any:
    async def refuse(self: RelayServicer, request: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.INTERNAL, f"{name} went over gRPC, not the frame socket")

    return refuse


@contextlib.asynccontextmanager
async def _client(endpoint: str, task_id: str) -> AsyncIterator[AsyncFramedMessagesClient]:
    path = frames_path(endpoint)
    assert path is not None, "the relay serves no frame socket beside its gRPC one"
    frames = AsyncFrameConnections(path)
    async with grpc.aio.insecure_channel(endpoint) as channel:
        try:
            yield AsyncFramedMessagesClient(channel, endpoint, frames, caller=(task_id, 1))
        finally:
            frames.close()


async def test_send_receive_and_ack_over_frames_in_priority_order(server: RelayServer) -> None:
    async with _client(server.endpoint, "A") as a, _client(server.endpoint, "B") as b:
        await a.send("B", "low", priority="low")
        ids = await a.send_many(
            [{"to_task_id": "B", "payload": "critical", "priority": "critical"}]
            + [{"to_task_id": "B", "payload": {"n": i}} for i in range(1500)]
        )
        assert len(ids) == len(set(ids)) == 1501
        got = await b.receive(max=1000, wait=0)
        assert [m.payload.data for m in got[:3]] == [b'"critical"', b'{"n":0}', b'{"n":1}']
        assert [m.id for m in got] == ids[:1000] and got[0].sender_task_id == "A"
        assert await b.ack(None, [m.id for m in got]) == 1000
        rest = await b.receive(max=1000, wait=0)
        assert [m.payload.data for m in rest] == [f'{{"n":{i}}}'.encode() for i in range(999, 1500)] + [b'"low"']
        (row,) = await b.host_stats()  # not a framed call: the relay's gRPC server answers it
        assert row.host_id == "host-1" and row.stats.sent_local == 1502


async def test_errors_come_back_as_the_grpc_server_would_raise_them(server: RelayServer) -> None:
    async with _client(server.endpoint, "A") as a:
        with pytest.raises(PermissionDenied, match="only its own mailbox"):
            await a.receive("task:B", max=1)
        with pytest.raises(InvalidArgument, match="at most 1000"):
            await a.receive(max=5000)
        with pytest.raises(InvalidArgument, match=r"^message 1: payload is not valid JSON"):
            await a.send_many(
                [
                    {"to_task_id": "B", "payload": 1},
                    {"to_task_id": "B", "payload": b"{", "content_type": "application/json"},
                ]
            )
        await a.send_many([{"to_task_id": "B", "payload": i} for i in range(2000)])
        with pytest.raises(ResourceExhausted, match="full"):
            await a.send("B", "one too many")
        assert await a.send("A", "the connection still serves") is not None


async def test_concurrent_calls_each_take_a_connection_and_reuse_it(server: RelayServer) -> None:
    async with _client(server.endpoint, "A") as a, _client(server.endpoint, "B") as b:
        frames = b._frames
        waiting = asyncio.ensure_future(b.receive(max=10, wait=10))
        await asyncio.sleep(0.2)
        # The waiting receive holds one connection; B's own send does not wait behind it.
        await asyncio.wait_for(b.send("A", "meanwhile"), 2)
        await a.send("B", "hello")
        got = await waiting
        assert [m.payload.data for m in got] == [b'"hello"']
        assert frames.opened == 2
        for _ in range(5):
            await asyncio.gather(*(b.send("A", i) for i in range(2)))
        assert frames.opened == 2  # idle connections are reused


async def test_a_cancelled_call_drops_its_connection(server: RelayServer) -> None:
    async with _client(server.endpoint, "B") as b:
        waiting = asyncio.ensure_future(b.receive(max=10, wait=10))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Not the cancelled call's connection: the next answer read there would be the Receive's.
        reply = await b.send("A", "after")
        assert reply.message_ids and reply.recipients == 1
        assert b._frames.opened == 2


async def test_timeouts_and_an_absent_relay_raise_maos_errors(tmp_path: Path) -> None:
    calls: list[bytes] = []
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            calls.append(await reader.read(100))
            await reader.read()  # never answers; returns when the client hangs up
        finally:
            writer.close()
            hung_up.set()

    path = tmp_path / "frames.sock"
    mute = await asyncio.start_unix_server(silent, path=str(path))
    try:
        frames = AsyncFrameConnections(path)
        with pytest.raises(DeadlineExceeded, match=r"did not answer within 0\.2s"):
            await frames.call(SEND, "A", b"", 0.2)
        assert len(calls) == 1 and calls[0][4:] == b"\x01\x00\x01A"
        assert frames._idle == []  # out of step: closed, not reused
        await asyncio.wait_for(hung_up.wait(), 5)
    finally:
        mute.close()
        await mute.wait_closed()
    with pytest.raises(Unavailable, match="unreachable"):
        await AsyncFrameConnections(tmp_path / "nothing.sock").call(SEND, "A", b"", 1)


async def test_task_messages_async_calls_go_over_the_frame_socket(server: RelayServer) -> None:
    a = TaskMessages(task_id="A", root_id="R", endpoint=server.endpoint)
    b = TaskMessages(task_id="B", root_id="R", endpoint=server.endpoint)
    ids = await a.send_many_async([{"to_task_id": "B", "payload": {"n": i}} for i in range(3)])
    ids.append(await a.send_async("B", {"n": 3}))
    got = await b.receive_async(timeout=5, max=10)
    assert [(m.id, m.value, m.sender) for m in got] == [(ids[i], {"n": i}, "A") for i in range(4)]
    assert await b.receive_async(timeout=0) == []  # acknowledged, over frames too
    frames = _context_messages._async_frame_connections.pop(server.endpoint)  # the process's pool
    assert frames is not None and frames.opened == 1  # one call at a time: one connection
    frames.close()
