"""The message stores (SQLite file, real PostgreSQL) against one suite, plus what only
PostgreSQL does: leadership fencing, the processed-row purge, the guide's partial index."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from maos.controlplane.messaging import (
    MessageBackend,
    MessageStore,
    MessagingConfig,
    Outgoing,
    PostgresMessageStore,
    ReadParams,
    StoredMessage,
    open_messaging,
)
from maos.controlplane.store import NotLeader, PostgresOptions, PostgresStore

from tests.integration.store.pg import fresh_schema, schema_url
from tests.support.messaging import TaskTable

KINDS = ["sqlite", "postgresql"]
TEST_POOL = PostgresOptions(pool_size=2, max_overflow=2)


@asynccontextmanager
async def task_store(kind: str, tmp_path: Path) -> AsyncIterator[PostgresStore | None]:
    """The PostgreSQL task store the message store sits beside (None for SQLite)."""
    if kind == "sqlite":
        yield None
        return
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), TEST_POOL)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


def message_store(pg: PostgresStore | None, tmp_path: Path, **kwargs: float) -> MessageBackend:
    return PostgresMessageStore(pg, **kwargs) if pg is not None else MessageStore(tmp_path / "maos.db")


def msg(seq: int, mailbox: str = "task:B", message_id: str = "", priority: int = 2, ttl: float = 3600) -> StoredMessage:
    now = time.time()
    return StoredMessage(
        seq=seq,
        mailbox=mailbox,
        id=message_id or f"m{seq}",
        sender="A",
        recipient=mailbox,
        topic="",
        priority=priority,
        data=f'{{"n": {seq}}}'.encode(),
        content_type="application/json",
        sent_at=now,
        expires_at=now + ttl,
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_what_is_committed_survives_a_reopen(kind: str, tmp_path: Path) -> None:
    async with task_store(kind, tmp_path) as pg:
        store = message_store(pg, tmp_path)
        assert (await store.open()).messages == []
        await store.subscribe("topic:events/c", "events", time.time())
        await asyncio.gather(*(store.insert([msg(i)]) for i in range(1, 201)))
        await store.insert([msg(201, "topic:events/c"), msg(202, "topic:events/d")])
        await store.delete([1, 2, 3])  # acknowledged
        if pg is not None:  # PostgreSQL's rows are unique by (mailbox, id); SQLite leaves dedupe to the service
            await store.insert([msg(300, message_id="m10")])  # an id task:B still holds: a no-op
        await store.close()
        assert store.commits < 200  # concurrent sends shared commits

        again = message_store(pg, tmp_path)
        loaded = await again.open()
        try:
            assert [m.seq for m in loaded.messages] == [*range(4, 203)]
            assert loaded.messages[0].data == b'{"n": 4}' and loaded.messages[0].content_type == "application/json"
            assert loaded.subscriptions == [("topic:events/c", "events")]
            assert loaded.max_seq == 202
            # Unsubscribing forgets the subscription and its messages in one transaction.
            await again.unsubscribe("topic:events/c", [201])
            # An acknowledged id may be sent again (the service's dedupe window is in memory).
            await again.insert([msg(203, message_id="m1")])
            snapshot = await again.read_all()
            assert snapshot.subscriptions == []
            assert [m.seq for m in snapshot.messages] == [*range(4, 201), 202, 203]
            assert snapshot.messages[-1].id == "m1"
        finally:
            await again.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_messaging_restart_redelivers_unacknowledged_in_priority_order(kind: str, tmp_path: Path) -> None:
    tasks = TaskTable()
    for task in ("A", "B"):
        tasks.add(task, "A")
    config = MessagingConfig()
    async with task_store(kind, tmp_path) as pg:
        messaging = await open_messaging(tmp_path / "maos.db", tasks, config, postgres=pg)
        try:
            for i in range(10):
                await messaging.send("A", "B", outgoing(f'{{"i": {i}}}'.encode(), priority=4 if i % 2 else 2))
            first = await messaging.receive("B", "", read_params(max_messages=3))
            assert await messaging.ack("B", "", [first[0].id]) == 1
        finally:
            await messaging.close()
        assert isinstance(messaging.store, PostgresMessageStore if pg is not None else MessageStore)

        reopened = await open_messaging(tmp_path / "maos.db", tasks, config, postgres=pg)
        try:
            again = await reopened.receive("B", "", read_params(max_messages=100))
            values = [orjson.loads(m.data)["i"] for m in again]
            assert values == [2, 4, 6, 8, 1, 3, 5, 7, 9]  # high first, then low, each FIFO
            # New sends continue after the highest seq ever stored: none collides.
            await reopened.send("A", "B", outgoing(b'"later"'))
            assert [m.data for m in await reopened.receive("B", "", read_params(max_messages=100))] == [b'"later"']
        finally:
            await reopened.close()


async def test_a_fenced_store_refuses_writes_once_another_leader_bumps_the_epoch(tmp_path: Path) -> None:
    async with task_store("postgresql", tmp_path) as pg:
        assert pg is not None
        store = PostgresMessageStore(pg)
        await store.open()
        deposed: list[str] = []
        try:
            epoch = await bump_epoch(pg, "cp-1")
            store.fence(epoch, deposed.append)
            await store.insert([msg(1)])
            await store.subscribe("topic:t/x", "t", time.time())  # the transaction path is fenced too
            await bump_epoch(pg, "cp-2:7700")  # a new leader
            with pytest.raises(NotLeader, match=r"no longer the leader: leadership epoch \d+ is stale.*cp-2:7700"):
                await store.insert([msg(2)])
            with pytest.raises(NotLeader):
                await store.unsubscribe("topic:t/x", [])
            assert len(deposed) == 2 and "cp-2:7700" in deposed[0]
            loaded = await store.read_all()
            assert [m.seq for m in loaded.messages] == [1]  # the deposed leader wrote nothing more
            assert loaded.subscriptions == [("topic:t/x", "t")]
        finally:
            await store.close()


async def test_processed_rows_are_purged_in_bulk_and_the_partial_index_is_used(tmp_path: Path) -> None:
    async with task_store("postgresql", tmp_path) as pg:
        assert pg is not None
        store = PostgresMessageStore(pg, purge_after_seconds=0.2)
        await store.open()
        try:
            await store.insert([msg(i, f"task:R{i % 50}") for i in range(1, 2001)])
            await store.delete(list(range(1, 1001)))
            assert await count(pg, "processed") == 1000  # marked, not yet deleted
            await asyncio.sleep(0.3)
            await store.insert([msg(2001)])  # the first commit after the interval purges
            assert await count(pg, "processed") == 0
            assert await count(pg, "NOT processed") == 1001
            async with pg.pool.acquire() as conn:
                await conn.execute("ANALYZE messages")
                plan = "\n".join(
                    r[0]
                    for r in await conn.fetch(
                        "EXPLAIN SELECT seq FROM messages WHERE mailbox = 'task:R7' AND NOT processed "
                        "ORDER BY sent_at DESC"
                    )
                )
            assert "idx_messages_recipient_unprocessed" in plan
        finally:
            await store.close()


# ---------------------------------------------------------------- helpers


def read_params(max_messages: int) -> ReadParams:
    return ReadParams(max_messages=max_messages, wait_seconds=0.0, lease_seconds=30.0)


def outgoing(data: bytes, priority: int = 2) -> Outgoing:
    return Outgoing(priority=priority, data=data, content_type="application/json", ttl_seconds=3600.0)


async def bump_epoch(pg: PostgresStore, leader: str) -> int:
    async with pg.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "UPDATE leadership SET epoch = epoch + 1, leader = $1 WHERE id = 1 RETURNING epoch", leader
            )
        )


async def count(pg: PostgresStore, where: str) -> int:
    async with pg.pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT COUNT(*) FROM messages WHERE {where}"))
