"""The relay's framed fast path (agenthost/_relay_frames.py) with the SDK's client of it, on a real
Unix socket: same answers and errors as the relay's gRPC server, which still serves the rest."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from maos.agenthost._relay_server import RelayServer
from maos.client._frames_client import RECEIVE, FrameConnection, FramedMessagesClient, frames_path
from maos.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from maos.v1 import messages_pb2

from tests.support.messaging import host_relay


@pytest.fixture
async def server() -> AsyncIterator[RelayServer]:
    async with host_relay(max_queued=3) as relay_server:
        yield relay_server


@contextlib.contextmanager
def _client(endpoint: str, task_id: str) -> Iterator[FramedMessagesClient]:
    path = frames_path(endpoint)
    assert path is not None, "the relay serves no frame socket beside its gRPC one"
    with grpc.insecure_channel(endpoint) as channel:
        client = FramedMessagesClient(channel, endpoint, FrameConnection(path), caller=(task_id, 1))
        try:
            yield client
        finally:
            client.close()


async def test_send_receive_and_ack_over_frames_in_priority_order(server: RelayServer) -> None:
    def run() -> None:
        with _client(server.endpoint, "A") as a, _client(server.endpoint, "B") as b:
            exchange(a, b)

    def exchange(a: FramedMessagesClient, b: FramedMessagesClient) -> None:
        a.send("B", "low", priority="low")
        ids = a.send_many([{"to_task_id": "B", "payload": "critical", "priority": "critical"}])
        got = b.receive(max=10, wait=0)
        assert [m.payload.data for m in got] == [b'"critical"', b'"low"']
        assert got[0].id == ids[0] and got[0].sender_task_id == "A"
        assert b.ack(None, [m.id for m in got]) == 2
        assert b.receive(max=10, wait=0) == []
        (row,) = b.host_stats()  # not a framed call: the relay's gRPC server answers it
        assert row.host_id == "host-1" and row.stats.sent_local == 2 and row.stats.acknowledged == 2

    await asyncio.to_thread(run)


async def test_a_waiting_receive_is_answered_when_a_message_arrives(server: RelayServer) -> None:
    def receive() -> tuple[list[bytes], float]:
        start = time.monotonic()
        with _client(server.endpoint, "B") as b:
            got = b.receive(max=10, wait=10)
        return [m.payload.data for m in got], time.monotonic() - start

    waiting = asyncio.ensure_future(asyncio.to_thread(receive))
    await asyncio.sleep(0.2)

    def send() -> None:
        with _client(server.endpoint, "A") as a:
            a.send("B", {"n": 1})

    await asyncio.to_thread(send)
    data, waited = await waiting
    assert data == [b'{"n":1}']
    assert waited < 5


async def test_errors_come_back_as_the_grpc_server_would_raise_them(server: RelayServer) -> None:
    def run() -> None:
        with _client(server.endpoint, "A") as a:
            refusals(a)

    def refusals(a: FramedMessagesClient) -> None:
        with pytest.raises(PermissionDenied, match="only its own mailbox"):
            a.receive("task:B", max=1)
        with pytest.raises(InvalidArgument, match="at most 1000"):
            a.receive(max=5000)
        for i in range(3):
            a.send("B", i)
        with pytest.raises(ResourceExhausted, match="full"):
            a.send("B", 3)
        # A full mailbox refuses a batch before its payloads are checked (a retrying sender is cheap).
        with pytest.raises(ResourceExhausted, match="full"):
            a.send_many([{"to_task_id": "B", "payload": b"not json", "content_type": "application/json"}])

    await asyncio.to_thread(run)


async def test_a_malformed_frame_closes_that_connection_only(server: RelayServer) -> None:
    path = frames_path(server.endpoint)
    assert path is not None

    def run() -> None:
        with socket.socket(socket.AF_UNIX) as bad:
            bad.connect(str(path))
            bad.sendall(struct.pack(">IBH", 1 << 30, 1, 0))
            bad.settimeout(5)
            assert bad.recv(10) == b""  # closed by the relay
        with _client(server.endpoint, "A") as a:
            assert a.send("B", "still served").message_ids

    await asyncio.to_thread(run)


async def test_a_receive_given_up_by_its_worker_takes_no_message(server: RelayServer) -> None:
    """A worker that closes its connection while its Receive waits (the call was cancelled or
    timed out) must not have the next message leased to it: the next reader gets it at once."""
    path = frames_path(server.endpoint)
    assert path is not None

    def run() -> None:
        request = messages_pb2.ReceiveRequest(max_messages=10, wait_seconds=30).SerializeToString()
        with socket.socket(socket.AF_UNIX) as gone:
            gone.connect(str(path))
            gone.sendall(struct.pack(">IBH", 3 + 1 + len(request), RECEIVE, 1) + b"B" + request)
            time.sleep(0.2)  # the relay now waits on B's behalf
        time.sleep(0.2)  # ... and sees the connection close
        with _client(server.endpoint, "A") as a, _client(server.endpoint, "B") as b:
            a.send("B", "for whoever reads next")
            assert [m.payload.data for m in b.receive(max=10, wait=2)] == [b'"for whoever reads next"']

    await asyncio.to_thread(run)


def test_an_endpoint_without_a_frame_socket_has_no_fast_path() -> None:
    assert frames_path("127.0.0.1:7700") is None
    assert frames_path("unix:/nonexistent/messages.sock") is None
