"""MessageService end to end in one process: real gRPC server, real SQLite file, a stub task table."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from maos.client._messages_client import AsyncMessagesClient, message_value
from maos.controlplane.messaging import MessagingConfig
from maos.controlplane.messaging._store_batches import count_live
from maos.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from maos.v1 import common_pb2, messages_pb2, messages_pb2_grpc

from tests.support.messaging import MessageServer

PRIORITIES = ["critical", "high", "medium", "low"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MessageServer]:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(sweep_interval_seconds=0.05))
    for task in ("A", "B", "C"):
        s.tasks.add(task, "A")  # one tree: agents talk within their tree
    await s.start()
    yield s
    await s.stop()


def rows_in_store(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return count_live(conn)


async def test_two_agents_exchange_10000_messages_exactly_once_in_priority_order(server: MessageServer) -> None:
    a, b = server.client("A"), server.client("B")
    per_sender = 5000
    rng = random.Random(42)
    plans = {
        name: [(i, rng.randrange(4)) for i in range(per_sender)]  # (number, priority index)
        for name in ("A", "B")
    }

    async def send_all(client: AsyncMessagesClient, sender: str, to: str) -> None:
        # One lane per priority level, each in order, so FIFO within a level is well defined.
        async def lane(level: int) -> None:
            for n, p in plans[sender]:
                if p == level:
                    payload = {"from": sender, "n": n, "p": p}
                    await client.send(to, payload, priority=PRIORITIES[p], message_id=f"{sender}-{n}")
                    if n % 500 == 0:  # a resend after a lost answer: the same id is a no-op
                        await client.send(to, payload, priority=PRIORITIES[p], message_id=f"{sender}-{n}")

        await asyncio.gather(*(lane(level) for level in range(4)))

    await asyncio.gather(send_all(a, "A", "B"), send_all(b, "B", "A"))
    assert rows_in_store(server.path) == 2 * per_sender

    async def receive_all(client: AsyncMessagesClient) -> list[dict[str, Any]]:
        seen: set[str] = set()
        got: list[dict[str, Any]] = []
        unacked_once = False
        while len(got) < per_sender:
            batch = await client.receive(max=100, wait=2, lease=0.3)
            assert batch, f"only {len(got)} of {per_sender} messages arrived"
            if not unacked_once and len(got) > 1000:
                unacked_once = True  # drop one batch on the floor: it must come back
                await asyncio.sleep(0.35)
                continue
            for msg in batch:
                if msg.id in seen:
                    continue
                seen.add(msg.id)
                got.append(message_value(msg))
            await client.ack(None, [m.id for m in batch])
        assert unacked_once
        assert await client.receive(max=100, wait=0.4, lease=0.3) == []
        return got

    got_b, got_a = await asyncio.gather(receive_all(b), receive_all(a))
    for got, sender in ((got_b, "A"), (got_a, "B")):
        assert sorted(m["n"] for m in got) == list(range(per_sender))  # each exactly once
        assert {m["from"] for m in got} == {sender}
        assert [(m["p"], m["n"]) for m in got] == sorted((m["p"], m["n"]) for m in got)  # priority, then FIFO
    stats = {row.mailbox: row for row in await a.stats()}
    inbox = stats["task:B"]
    assert inbox.sent == per_sender and inbox.redelivered >= 100 and inbox.delivery_errors >= 100  # the dropped batch
    assert inbox.batches >= per_sender // 100 and inbox.bytes > 20 * per_sender
    assert rows_in_store(server.path) == 0


async def test_a_full_mailbox_answers_resource_exhausted_and_the_rest_stays_responsive(tmp_path: Path) -> None:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_queued=50))
    for task in ("A", "B", "C"):
        s.tasks.add(task, "A")
    await s.start()
    try:
        a, b, c = s.client("A"), s.client("B"), s.client("C")
        await asyncio.gather(*(a.send("B", i) for i in range(50)))
        with pytest.raises(ResourceExhausted, match=r"mailbox task:B is full: 50 messages waiting \(limit 50\)"):
            await a.send("B", "one too many")
        started = time.monotonic()
        assert (await a.send("C", "still fine")).recipients == 1
        assert [message_value(m) for m in await c.receive()] == ["still fine"]
        rows = {row.mailbox: row for row in await a.stats()}
        assert rows["task:B"].queued == 50 and rows["task:B"].rejected_full == 1
        assert time.monotonic() - started < 1.0
        # The reader catches up: the sender gets through again.
        batch = await b.receive(max=10)
        assert await b.ack(None, [m.id for m in batch]) == 10
        await a.send("B", "room again")
    finally:
        await s.stop()


async def test_restart_loses_nothing_committed_and_redelivers_unacknowledged(server: MessageServer) -> None:
    a = server.client("A")
    for i in range(10):
        await a.send("B", {"i": i}, priority="low" if i % 2 else "high")
    await server.client("C").receive("topic:events/c")  # a subscription, made durable
    b = server.client("B")
    first = await b.receive(max=3, lease=60)
    await b.ack(None, [first[0].id])  # acknowledged: gone for good
    # first[1:] are leased, not acknowledged, when the service goes down.

    await server.restart()

    b = server.client("B")
    again = await b.receive(max=100)
    values = [message_value(m)["i"] for m in again]
    assert values == [2, 4, 6, 8, 1, 3, 5, 7, 9]  # high first, then low, each FIFO
    assert {m.id for m in first[1:]} <= {m.id for m in again}
    assert (await server.client("A").publish("events", "after restart")).recipients == 1
    assert [message_value(m) for m in await server.client("C").receive("topic:events/c")] == ["after restart"]


async def test_ttl_expiry_at_delivery_and_by_the_sweep(server: MessageServer) -> None:
    a, b = server.client("A"), server.client("B")
    await a.send("B", "short", ttl=0.2)
    await a.send("C", "short too", ttl=0.2)
    await a.send("B", "long")
    await asyncio.sleep(0.3)
    assert [message_value(m) for m in await b.receive(max=10)] == ["long"]
    await asyncio.sleep(0.2)  # four sweep intervals
    assert server.messaging is not None
    await server.messaging.store.delete([])  # the writer is FIFO: the sweep's deletes are committed
    assert rows_in_store(server.path) == 1  # the sweep deleted C's expired message without a reader
    stats = {row.mailbox: row for row in await a.stats()}
    assert stats["task:B"].expired == 1 and stats["task:C"].expired == 1 and stats["task:C"].queued == 0


async def test_topic_fan_out_to_two_subscriptions(server: MessageServer) -> None:
    a = server.client("A")
    assert (await a.publish("news", "nobody listens")).recipients == 0
    x, y = server.client("B"), server.client("C")
    assert await x.receive("topic:news/x") == []
    assert await y.receive("topic:news/y") == []
    reply = await a.publish("news", {"headline": 1}, priority="high")
    assert reply.recipients == 2 and len(set(reply.message_ids)) == 1
    for client, name in ((x, "topic:news/x"), (y, "topic:news/y")):
        [msg] = await client.receive(name)
        assert message_value(msg) == {"headline": 1}
        assert (msg.topic, msg.recipient, msg.sender_task_id) == ("news", "topic:news", "A")
        assert await client.ack(name, [msg.id]) == 1
    stats = {row.mailbox: row for row in await a.stats()}
    assert stats["topic:news"].sent == 1 and stats["topic:news"].delivered == 2
    assert stats["topic:news"].bytes == len(b'{"headline":1}') and stats["topic:news/x"].bytes == len(b'{"headline":1}')


async def test_broadcast_reaches_every_unfinished_task_of_the_tree_but_the_sender(server: MessageServer) -> None:
    for task in ("R", "R1", "R2"):
        server.tasks.add(task, "R")
    server.tasks.add("R3", "R", final=True)
    reply = await server.client("R1").broadcast("R", "hello tree")
    assert reply.recipients == 2
    for task in ("R", "R2"):
        [msg] = await server.client(task).receive()
        assert msg.recipient == "tree:R" and message_value(msg) == "hello tree"
    assert await server.client("R1").receive() == []
    with pytest.raises(InvalidArgument, match="task R1 is not the root of its tree; broadcast to its root R"):
        await server.client().broadcast("R1", "x")
    # A workflow root runs no agent: a broadcast skips it, and a send to it is refused.
    server.tasks.add("W", group=True)
    for task in ("W1", "W2"):
        server.tasks.add(task, "W")
    assert (await server.client("W1").broadcast("W", "hi")).recipients == 1
    with pytest.raises(FailedPrecondition, match="task W is a workflow root: no agent runs it"):
        await server.client("W1").send("W", "hi")


async def test_long_poll_wakes_when_a_message_arrives(server: MessageServer) -> None:
    b = server.client("B")
    started = time.monotonic()
    receiving = asyncio.ensure_future(b.receive(wait=5))
    await asyncio.sleep(0.1)
    await server.client("A").send("B", "wake up")
    [msg] = await receiving
    assert message_value(msg) == "wake up"
    assert time.monotonic() - started < 1.0


async def test_subscribe_pushes_with_flow_control(tmp_path: Path) -> None:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_streams_per_caller=2))
    s.tasks.add("A")
    s.tasks.add("B", "A")
    await s.start()
    try:
        a, b = s.client("A"), s.client("B")
        for i in range(20):
            await a.send("B", i)
        stream = b.subscribe(max_in_flight=5, lease=30)
        got = [await anext(stream) for _ in range(5)]
        assert [message_value(m) for m in got] == [0, 1, 2, 3, 4]
        sixth = asyncio.ensure_future(anext(stream))
        done, _ = await asyncio.wait({sixth}, timeout=0.3)
        assert not done  # five unacknowledged: the server holds the rest back
        await b.ack(None, [got[0].id, got[1].id])
        more = [await asyncio.wait_for(sixth, 2), await asyncio.wait_for(anext(stream), 2)]
        assert [message_value(m) for m in more] == [5, 6]

        with pytest.raises(ResourceExhausted, match="mailbox task:B already has 1 subscriber stream"):
            await anext(b.subscribe())
        # One client opening streams on many mailboxes hits the per-client bound.
        flood = [a.subscribe(f"topic:t/s{i}") for i in range(3)]
        first_two = [asyncio.ensure_future(anext(f)) for f in flood[:2]]
        await asyncio.sleep(0.2)
        with pytest.raises(ResourceExhausted, match="already holds 2 subscriber streams"):
            await anext(flood[2])
        for fut in first_two:
            fut.cancel()
        await a.send("B", "still responsive")
        await stream.aclose()
    finally:
        await s.stop()


async def test_bad_input_gets_precise_statuses(server: MessageServer) -> None:
    server.tasks.add("DONE", final=True)
    a = server.client("A")
    operator = server.client(None)
    with pytest.raises(NotFound, match="task GHOST not found"):
        await a.send("GHOST", 1)
    with pytest.raises(FailedPrecondition, match="task DONE is completed; nobody will read it"):
        await a.send("DONE", 1)
    with pytest.raises(ResourceExhausted, match="payload is 1048577 bytes; the limit is 1048576"):
        await a.send("B", b"x" * (1024 * 1024 + 1))
    with pytest.raises(InvalidArgument, match="topic 'bad topic' may contain only"):
        await a.publish("bad topic", 1)
    with pytest.raises(InvalidArgument, match="mailbox is empty and the caller is not a task"):
        await operator.receive()
    with pytest.raises(InvalidArgument, match="must be task:<task id> or topic"):
        await operator.receive("inbox")
    with pytest.raises(NotFound, match="there is no subscription topic:x/y"):
        await operator.ack("topic:x/y", ["1"])
    with pytest.raises(NotFound, match="task GHOST not found"):
        await operator.receive("task:GHOST")
    # Agents stay inside their tree; topics are how trees talk.
    server.tasks.add("X")
    with pytest.raises(PermissionDenied, match="it may not send to task X of task tree X — publish to a topic"):
        await a.send("X", 1)
    with pytest.raises(PermissionDenied, match="task A belongs to task tree A; it may not broadcast to task tree X"):
        await a.broadcast("X", 1)
    with pytest.raises(PermissionDenied, match="task A may read only its own mailbox task:A, not task:B"):
        await a.receive("task:B")
    with pytest.raises(PermissionDenied, match="task A may read only its own mailbox"):
        await a.ack("task:B", ["1"])
    with pytest.raises(PermissionDenied, match=r"comes from task GHOST .* which this control plane does not know"):
        await server.client("GHOST").send("B", 1)
    assert await server.client("X").receive("topic:shared/x") == []
    assert (await a.publish("shared", "across trees")).recipients == 1

    stub = messages_pb2_grpc.MessageServiceStub(server.channel())
    raw = [
        (messages_pb2.SendRequest(payload=common_pb2.Payload(data=b"1")), "set to_task_id .* or broadcast_root_id"),
        (messages_pb2.SendRequest(to_task_id="B", broadcast_root_id="A"), "set one of"),
        (
            messages_pb2.SendRequest(to_task_id="B", payload=common_pb2.Payload(data=b"{oops")),
            "payload is not valid JSON",
        ),
        (messages_pb2.SendRequest(to_task_id="B", priority=9), "priority 9 is unknown"),  # type: ignore[arg-type]
    ]
    for request, text in raw:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Send(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert re.search(text, info.value.details() or ""), info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Receive(messages_pb2.ReceiveRequest(mailbox="task:B", max_messages=5000), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing above left a trace or broke the service.
    assert (await a.send("B", {"ok": True})).recipients == 1
    assert rows_in_store(server.path) == 2  # that send and the publish across trees


async def test_client_ids_make_sends_idempotent_and_content_types_travel(server: MessageServer) -> None:
    a, b = server.client("A"), server.client("B")
    first = await a.send("B", b"\x00raw", message_id="once")
    second = await a.send("B", b"\x00raw", message_id="once")
    assert first.message_ids == second.message_ids == ["once"]
    [msg] = await b.receive(max=10)
    assert msg.payload.content_type == "application/octet-stream" and message_value(msg) == b"\x00raw"
    assert msg.delivery_count == 1 and msg.expires_at.seconds - msg.sent_at.seconds == 24 * 3600
    await b.ack(None, [msg.id])
    await a.send("B", b"\x00raw", message_id="once")  # acknowledged moments ago: still a no-op
    assert await b.receive(max=10) == []
