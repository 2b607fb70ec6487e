"""SendBatch / send_many: many messages in one call and one commit, all or nothing."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from maos.client._messages_client import MAX_BATCH, batch_requests, message_value
from maos.controlplane.messaging import MessagingConfig
from maos.controlplane.messaging._store_batches import count_live
from maos.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from maos.v1 import common_pb2, messages_pb2, messages_pb2_grpc

from tests.support.messaging import MessageServer

PRIORITIES = ["critical", "high", "medium", "low"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MessageServer]:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_queued=6000))
    for task in ("A", "B", "C"):
        s.tasks.add(task, "A")
    s.tasks.add("X", "X")  # another tree
    await s.start()
    yield s
    await s.stop()


def rows_in_store(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return count_live(conn)


async def drain(server: MessageServer, task: str) -> list[messages_pb2.Message]:
    client = server.client(task)
    got: list[messages_pb2.Message] = []
    while True:
        batch = await client.receive(max=1000)
        if not batch:
            return got
        got.extend(batch)
        await client.ack(None, [m.id for m in batch])


async def test_a_batch_of_5000_is_one_commit_and_received_once_in_priority_then_fifo_order(
    server: MessageServer,
) -> None:
    rng = random.Random(7)
    plan = [(i, rng.randrange(4)) for i in range(5000)]
    messages = [{"to_task_id": "B", "payload": {"n": i}, "priority": PRIORITIES[p]} for i, p in plan]
    assert server.messaging is not None
    commits = server.messaging.store.commits

    ids = await server.client("A").send_many(messages)

    assert server.messaging.store.commits == commits + 1
    assert len(ids) == len(set(ids)) == 5000
    assert rows_in_store(server.path) == 5000
    got = await drain(server, "B")
    expected = [i for i, _ in sorted(plan, key=lambda ip: (ip[1], ip[0]))]
    assert [message_value(m)["n"] for m in got] == expected
    assert {m.id for m in got} == set(ids)
    assert all(m.delivery_count == 1 and m.sender_task_id == "A" and m.recipient == "task:B" for m in got)
    assert await server.client("B").receive(max=10) == []
    assert rows_in_store(server.path) == 0


async def test_a_bad_message_rejects_the_whole_batch_and_names_its_index(server: MessageServer) -> None:
    a = server.client("A")
    good = [{"to_task_id": "B" if i % 2 else "C", "payload": {"n": i}} for i in range(10)]

    bad_json = [*good[:7], {"to_task_id": "B", "payload": b"{not json", "content_type": "application/json"}, *good[8:]]
    with pytest.raises(InvalidArgument, match=r"^message 7: payload is not valid JSON"):
        await a.send_many(bad_json)
    with pytest.raises(NotFound, match=r"^message 3: task nobody not found"):
        await a.send_many([*good[:3], {"to_task_id": "nobody", "payload": 1}, *good[4:]])
    with pytest.raises(PermissionDenied, match=r"^message 5: "):
        await a.send_many([*good[:5], {"to_task_id": "X", "payload": 1}, *good[6:]])
    with pytest.raises(InvalidArgument, match=r"^message 2: ttl_seconds 1e\+09 is above the limit"):
        await a.send_many([*good[:2], {"to_task_id": "B", "payload": 1, "ttl": 1e9}, *good[3:]])
    with pytest.raises(InvalidArgument, match=r"^message 4: unknown priority 9"):  # caught by the client
        await a.send_many([*good[:4], {"to_task_id": "B", "payload": 1, "priority": 9}, *good[5:]])

    assert rows_in_store(server.path) == 0
    assert await drain(server, "B") == [] and await drain(server, "C") == []


async def test_a_full_mailbox_rejects_the_whole_batch(tmp_path: Path) -> None:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_queued=50))
    for task in ("A", "B", "C"):
        s.tasks.add(task, "A")
    await s.start()
    try:
        a = s.client("A")
        await a.send_many([{"to_task_id": "B", "payload": i} for i in range(45)])
        batch = [{"to_task_id": "C", "payload": i} for i in range(5)] + [
            {"to_task_id": "B", "payload": i} for i in range(10)
        ]
        with pytest.raises(ResourceExhausted, match=r"task:B is full: 45 messages waiting and the batch adds 10"):
            await a.send_many(batch)
        with pytest.raises(ResourceExhausted, match=r"task:C is full: 0 messages waiting and the batch adds 51"):
            await a.send_many([{"to_task_id": "C", "payload": i} for i in range(51)])
        assert rows_in_store(s.path) == 45  # the first batch only: nothing of the rejected ones
        assert len(await drain(s, "B")) == 45
        assert await drain(s, "C") == []
        stats = {row.mailbox: row for row in await a.stats()}
        assert stats["task:B"].rejected_full == 1
    finally:
        await s.stop()


async def test_client_ids_inside_a_batch_are_idempotent(server: MessageServer) -> None:
    a = server.client("A")
    batch = [{"to_task_id": "B", "payload": {"n": i}, "message_id": f"m-{i}"} for i in range(5)]
    batch.append({"to_task_id": "B", "payload": {"n": 99}, "message_id": "m-2"})  # repeated inside the batch
    batch.append({"to_task_id": "C", "payload": {"n": 2}, "message_id": "m-2"})  # same id, other mailbox: a copy

    first = await a.send_many(batch)
    again = await a.send_many(batch)  # a retry after a lost answer: a no-op

    assert first == again == [f"m-{i}" for i in range(5)] + ["m-2", "m-2"]
    assert rows_in_store(server.path) == 6
    got = await drain(server, "B")
    assert [(m.id, message_value(m)["n"]) for m in got] == [(f"m-{i}", i) for i in range(5)]
    assert [m.id for m in await drain(server, "C")] == ["m-2"]


async def test_batch_limits_and_shape(server: MessageServer) -> None:
    stub = messages_pb2_grpc.MessageServiceStub(server.channel())
    one = messages_pb2.SendRequest(to_task_id="B", payload=common_pb2.Payload(data=b"1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SendBatch(messages_pb2.SendBatchRequest(messages=[one] * 10_001))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 10000 messages" in (err.value.details() or "")
    broadcast = messages_pb2.SendRequest(broadcast_root_id="A", payload=common_pb2.Payload(data=b"1"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SendBatch(messages_pb2.SendBatchRequest(messages=[one, broadcast]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("message 1: a batch sends to task mailboxes only")
    reply = await stub.SendBatch(messages_pb2.SendBatchRequest())
    assert list(reply.results) == []
    assert rows_in_store(server.path) == 0


def test_send_many_chunks_at_10000_messages_and_checks_its_dicts() -> None:
    requests = batch_requests({"to_task_id": "B", "payload": i} for i in range(MAX_BATCH + 1))
    assert [len(r.messages) for r in requests] == [MAX_BATCH, 1]
    big = b"x" * (3 * 1024 * 1024)
    assert [len(r.messages) for r in batch_requests([{"to_task_id": "B", "payload": big}] * 5)] == [2, 2, 1]
    with pytest.raises(InvalidArgument, match=r"message 1: unknown key\(s\) \['to'\]"):
        batch_requests([{"to_task_id": "B", "payload": 1}, {"to": "B", "payload": 1}])
    with pytest.raises(InvalidArgument, match=r"message 0: needs to_task_id and payload"):
        batch_requests([{"payload": 1}])
