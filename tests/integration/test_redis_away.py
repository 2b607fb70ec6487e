"""Shared state with its Redis cache (`--state redis://...`) cut off by a TCP proxy, then restored.

Redis is only a cache over the durable backend: during the cut, writes keep succeeding and reads
keep answering (from the durable backend, without waiting on Redis call after call); after it,
reads are served from Redis again and are never stale, although Redis still holds what was cached
before the cut.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import orjson
import pytest
import redis.asyncio as aioredis
from maos.controlplane.state import RedisStateBackend, SqliteStateBackend
from maos.testing import Daemon, start_controlplane
from maos.v1 import state_pb2, state_pb2_grpc

from tests.support.tcp_proxy import BackgroundProxy, TcpProxy

REDIS_URL = os.environ.get("MAOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_REDIS = urlsplit(REDIS_URL)
NS = "tree:01TESTROOT"


def _through(port: int) -> str:
    return f"redis://127.0.0.1:{port}{_REDIS.path or '/0'}"


def j(value: object) -> bytes:
    return orjson.dumps(value)


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(_REDIS.hostname or "127.0.0.1", _REDIS.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"maos-test:{uuid.uuid4().hex}:"
    yield prefix
    await _drop(prefix + "*")


@pytest.fixture
async def backend(proxy: TcpProxy, prefix: str, tmp_path: Path) -> AsyncIterator[RedisStateBackend]:
    durable = SqliteStateBackend(tmp_path / "maos.db")
    async with RedisStateBackend(_through(proxy.port), durable, key_prefix=prefix) as backend:
        yield backend


async def _eventually(check: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("blackhole", [False, True], ids=["refused", "blackholed"])
async def test_state_works_during_a_cut_and_is_never_stale_after_it(
    proxy: TcpProxy, backend: RedisStateBackend, prefix: str, blackhole: bool
) -> None:
    acknowledged = {c.entry.key: c.entry for c in [await backend.put(NS, f"k{i}", j(i)) for i in range(20)]}
    before = backend.generation
    assert before is not None and await backend.get(NS, "k1") == acknowledged["k1"]  # cached
    await proxy.cut(blackhole=blackhole)
    # The first write notices (blackholed: after the socket timeout) and succeeds all the same.
    changed = await asyncio.wait_for(backend.put(NS, "k1", j("during")), timeout=30)
    acknowledged["k1"] = changed.entry
    assert changed.entry.version == 2
    assert backend.outage is not None and f"Redis at {_through(proxy.port)}" in backend.outage
    assert backend.generation is None
    # From now on no call waits for Redis.
    started = time.monotonic()
    acknowledged["k2"] = (await backend.put(NS, "k2", j("during"))).entry
    assert await backend.get(NS, "k1") == changed.entry
    assert (await backend.delete(NS, "k3")).deleted
    del acknowledged["k3"]
    assert time.monotonic() - started < 0.5

    await proxy.restore()
    await _eventually(lambda: backend.outage is None)
    after = backend.generation
    assert after is not None and after != before  # what was cached before the cut is never read again
    for key in (f"k{i}" for i in range(20)):
        assert await backend.get(NS, key) == acknowledged.get(key), key
    assert {e.key: e for e in await backend.list(NS, limit=100)} == acknowledged
    # Reads are served from Redis again: mark the cached entry and see it answer.
    direct = aioredis.from_url(REDIS_URL)
    try:
        stale, fresh = f"{prefix}g{before}:{{{NS}}}:k1", f"{prefix}g{after}:{{{NS}}}:k1"
        assert await direct.hmget(stale, ["d", "v"]) == [j(1), b"1"]  # still in Redis, never read
        assert await direct.hmget(fresh, ["d", "v"]) == [j("during"), b"2"]
        await direct.hset(fresh, "d", j("marked in redis"))
        entry = await backend.get(NS, "k1")
        assert entry is not None and entry.value == j("marked in redis")
    finally:
        await direct.aclose()
    assert (await backend.put(NS, "k1", j("after"))).entry.version == 3


def _get(stub: state_pb2_grpc.StateServiceStub, namespace: str) -> tuple[bytes, int]:
    got = stub.Get(state_pb2.GetStateRequest(namespace=namespace, key="kept"), timeout=5)
    return got.value, got.version


def test_a_control_plane_on_redis_keeps_serving_state_through_a_cut(tmp_path: Path) -> None:
    namespace = f"tree:redis-away-{uuid.uuid4().hex}"  # its own keys on the shared server, under the default prefix
    daemons: list[Daemon] = []
    with BackgroundProxy(_REDIS.hostname or "127.0.0.1", _REDIS.port or 6379) as proxy:
        try:
            cp = start_controlplane(tmp_path / "cp", extra=["--state", _through(proxy.port)])
            daemons.append(cp)
            with grpc.insecure_channel(cp.endpoint) as channel:
                stub = state_pb2_grpc.StateServiceStub(channel)
                put = state_pb2.PutStateRequest(namespace=namespace, key="kept", value=b'"before"')
                assert stub.Put(put, timeout=10).version == 1
                assert _get(stub, namespace) == (b'"before"', 1)  # now cached
                proxy.cut()
                put = state_pb2.PutStateRequest(namespace=namespace, key="kept", value=b'"during"')
                assert stub.Put(put, timeout=10).version == 2  # the durable backend took it
                assert [_get(stub, namespace) for _ in range(5)] == [(b'"during"', 2)] * 5
                proxy.restore()
                # Once the cache is back it holds the value written during the cut, never the older one.
                deadline = time.monotonic() + 30
                while (b'"during"', b"2") not in asyncio.run(_cached(namespace)):
                    assert _get(stub, namespace) == (b'"during"', 2)
                    assert time.monotonic() < deadline, cp.log_text()[-2000:]
                    time.sleep(0.05)
                assert _get(stub, namespace) == (b'"during"', 2)
                assert cp.process.poll() is None  # the same process: no restart
        finally:
            for daemon in reversed(daemons):
                daemon.stop()
            asyncio.run(_drop(f"maos:state:g*:{_glob_escape('{' + namespace + '}')}:*"))


async def _cached(namespace: str) -> list[tuple[bytes, bytes]]:
    """(value, version) of `kept` in every cache generation under the default prefix."""
    direct = aioredis.from_url(REDIS_URL)
    try:
        names = [n async for n in direct.scan_iter(match=f"maos:state:g*:{_glob_escape('{' + namespace + '}')}:kept")]
        rows = [await direct.hmget(n, ["d", "v"]) for n in names]
        return [(d, v) for d, v in rows if isinstance(d, bytes) and isinstance(v, bytes)]
    finally:
        await direct.aclose()


def _glob_escape(text: str) -> str:
    return text.replace("{", "\\{").replace("}", "\\}")


async def _drop(pattern: str) -> None:
    direct = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in direct.scan_iter(match=pattern)]
        if keys:
            await direct.delete(*keys)
    finally:
        await direct.aclose()
