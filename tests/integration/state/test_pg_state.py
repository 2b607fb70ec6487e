"""What only the PostgreSQL state backend does: it is chosen beside a PostgreSQL task store,
it is durable for the next control plane on the schema, and its writes are fenced (also with a
Redis cache in front, which only the leader uses)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from maos.controlplane.state import PostgresStateBackend, RedisStateBackend, StateHub, open_state_backend, watch_changes
from maos.controlplane.store import NotLeader, PostgresStore

from tests.integration.store.pg import fresh_schema, schema_url

from .conftest import REDIS_URL, TEST_POOL, drop_prefix, redis_prefix

NS = "tree:01TESTROOT"


async def test_chosen_beside_a_postgres_store_unless_redis_is_named(tmp_path: Path) -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), TEST_POOL)
        await store.open()
        try:
            state = await open_state_backend("sqlite", tmp_path / "maos.db", postgres=store)  # the default
            try:
                assert isinstance(state, PostgresStateBackend) and state.description == store.description
                await asyncio.gather(*(state.put(NS, f"k{i}", orjson.dumps(i)) for i in range(300)))
            finally:
                await state.close()
            assert not (tmp_path / "maos.db").exists()  # nothing went to a local file
            prefix = redis_prefix()
            try:
                redis = await open_state_backend(
                    REDIS_URL, tmp_path / "maos.db", postgres=store, redis_key_prefix=prefix
                )
                try:
                    assert isinstance(redis, RedisStateBackend) and isinstance(redis.durable, PostgresStateBackend)
                    assert redis.description == f"{REDIS_URL} (cache) over {store.description}"
                    assert len(await redis.list(NS, limit=1000)) == 300  # the same copy
                finally:
                    await redis.close()
            finally:
                await drop_prefix(prefix)
            assert not (tmp_path / "maos.db").exists()
        finally:
            await store.close()

        # Another control plane on the schema (a new leader) sees every key and continues the revisions.
        other = PostgresStore(schema_url(schema), TEST_POOL)
        await other.open()
        try:
            async with PostgresStateBackend(other) as state:
                entries = await state.list(NS, limit=1000)
                assert sorted(orjson.loads(e.value) for e in entries) == list(range(300))
                assert max(e.revision for e in entries) == 300
                assert (await state.put(NS, "k0", orjson.dumps("again"))).entry.revision == 301
                assert [c.revision for c in await state.changes(NS, 298, 10)] == [299, 300, 301]
                assert await state.namespaces() == [NS]
        finally:
            await other.close()


async def test_a_deposed_leader_cannot_write_state(tmp_path: Path) -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), TEST_POOL)
        await store.open()
        deposed: list[str] = []
        try:
            async with PostgresStateBackend(store) as state:
                epoch = await bump_epoch(store, "cp-1")
                state.fence(epoch, deposed.append)
                hub = StateHub()
                watch = watch_changes(state, hub, NS)
                hub.publish(await state.put(NS, "k", orjson.dumps(1)))
                assert (await anext(watch)).entry.version == 1
                await bump_epoch(store, "cp-2:7700")
                with pytest.raises(NotLeader, match="cp-2:7700"):
                    await state.put(NS, "k", orjson.dumps(2))
                with pytest.raises(NotLeader):
                    await state.import_entries([(await state.get(NS, "k"))])  # type: ignore[list-item]
                assert deposed and "stale" in deposed[0]
                entry = await state.get(NS, "k")
                assert entry is not None and (entry.version, entry.revision) == (1, 1)
                await watch.aclose()
        finally:
            await store.close()


async def bump_epoch(store: PostgresStore, leader: str) -> int:
    async with store.pool.acquire() as conn:
        bump = "UPDATE leadership SET epoch = epoch + 1, leader = $1 WHERE id = 1 RETURNING epoch"
        return int(await conn.fetchval(bump, leader))


async def test_with_a_redis_cache_only_the_leader_caches_and_a_standby_never_reads_stale(tmp_path: Path) -> None:
    """Leader and standby share the schema and the Redis prefix; only the leader writes."""
    prefix = redis_prefix()
    async with fresh_schema() as schema:
        stores = [PostgresStore(schema_url(schema), TEST_POOL) for _ in range(2)]
        for store in stores:
            await store.open()
        deposed: list[str] = []
        try:
            leader, standby = [
                await open_state_backend(REDIS_URL, tmp_path / "unused.db", postgres=s, redis_key_prefix=prefix)
                for s in stores
            ]
            try:
                assert isinstance(leader, RedisStateBackend) and isinstance(standby, RedisStateBackend)
                assert leader.generation is None  # not until it leads
                leader.fence(await bump_epoch(stores[0], "cp-1"), deposed.append)
                assert leader.generation is not None and standby.generation is None
                for i in range(1, 4):
                    await leader.put(NS, "k", orjson.dumps(i))
                    for backend in (leader, standby):
                        entry = await backend.get(NS, "k")
                        assert entry is not None and entry.value == orjson.dumps(i)

                # The standby takes over: the old leader's writes are fenced and it stops caching.
                epoch = await bump_epoch(stores[1], "cp-2:7700")
                standby.fence(epoch, deposed.append)
                with pytest.raises(NotLeader, match="cp-2:7700"):
                    await leader.put(NS, "k", orjson.dumps("deposed"))
                assert deposed and leader.generation is None
                assert standby.generation is not None and standby.generation != leader.generation
                assert (await standby.put(NS, "k", orjson.dumps(4))).entry.version == 4
                entry = await leader.get(NS, "k")  # from PostgreSQL, not from what it cached as leader
                assert entry is not None and entry.value == orjson.dumps(4)
            finally:
                await leader.close()
                await standby.close()
        finally:
            for store in stores:
                await store.close()
            await drop_prefix(prefix)
