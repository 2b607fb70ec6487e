"""The PostgreSQL state backend through a database outage (a TCP proxy cut, as in
tests/integration/test_store_cut.py): writes already handed over are kept and committed once
the database answers again, new writes are refused at once with nothing applied, and a group
replayed after an ambiguous drop is applied exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from maos.controlplane.state import PostgresStateBackend
from maos.controlplane.state._postgres import _Write
from maos.controlplane.store import PostgresOptions, PostgresStore
from maos.errors import Unavailable

from tests.integration.store.pg import fresh_schema, pg_proxy, proxied_url, schema_url
from tests.support.tcp_proxy import TcpProxy

NS = "tree:01TESTROOT"
OPTIONS = PostgresOptions(pool_size=2, max_overflow=0, connect_timeout_seconds=2, acquire_timeout_seconds=2)


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    async with pg_proxy() as proxy:
        yield proxy


async def test_a_write_in_flight_during_a_cut_commits_once_after_it_and_new_ones_are_refused(
    proxy: TcpProxy,
) -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(proxied_url(proxy.port, schema), OPTIONS)
        await store.open()
        state = PostgresStateBackend(store)
        await state.open()
        try:
            await state.put(NS, "k", orjson.dumps(0))
            await proxy.cut()
            in_flight = asyncio.ensure_future(state.put(NS, "k", orjson.dumps(1)))
            deadline = time.monotonic() + 30
            while store.outage is None:  # the writer's commit finds the wire cut
                assert not in_flight.done(), "a write resolved while PostgreSQL was cut off"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            with pytest.raises(Unavailable, match="unreachable"):
                await state.put(NS, "k", orjson.dumps(2))  # refused before it is queued
            await proxy.restore()
            change = await asyncio.wait_for(in_flight, timeout=30)
            assert change.entry.version == 2
            entry = await state.get(NS, "k")
            assert entry is not None and (orjson.loads(entry.value), entry.version) == (1, 2)
            assert [orjson.loads(c.entry.value) for c in await state.changes(NS, 0, 10)] == [0, 1]
        finally:
            await state.close()
            await store.close()


async def test_a_replayed_group_that_had_committed_is_not_applied_again() -> None:
    async with fresh_schema() as schema:
        store = PostgresStore(schema_url(schema), OPTIONS)
        await store.open()
        state = PostgresStateBackend(store)
        await state.open()
        try:
            group = [_Write("put", NS, "k", b"k", orjson.dumps("once"), 0), _Write("cas", NS, "n", b"n", b"1", 0)]
            await state._commit(group)  # committed, as if its answer were lost on the way back
            decided = [w.result for w in group]
            await state._replay(group)
            assert [w.result for w in group] == decided  # the first attempt's results stand
            entry = await state.get(NS, "k")
            assert entry is not None and entry.version == 1
            assert len(await state.changes(NS, 0, 10)) == 2
            # An attempt that did not commit (its revisions are not there) is applied by the replay.
            again = [_Write("put", NS, "k", b"k", orjson.dumps("twice"), 0)]
            state._attempted = {NS: 99}
            await state._replay(again)
            entry = await state.get(NS, "k")
            assert entry is not None and (orjson.loads(entry.value), entry.version) == ("twice", 2)
        finally:
            await state.close()
            await store.close()
