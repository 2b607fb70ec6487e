"""Shared state on Redis (`--state redis://...`) with the wire to Redis cut by a TCP proxy, then restored.

During the cut, state calls fail with UNAVAILABLE naming Redis, at once (no timeout per call),
never INTERNAL; after it they work again without a restart, and everything acknowledged before
the cut is still there (Redis holds it: run it with appendonly for that to survive a Redis restart).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import grpc
import pytest
import redis.asyncio as aioredis
from maos.controlplane.state import RedisStateBackend
from maos.errors import Unavailable
from maos.testing import Daemon, start_controlplane
from maos.v1 import state_pb2, state_pb2_grpc

from tests.support.tcp_proxy import BackgroundProxy, TcpProxy

REDIS_URL = os.environ.get("MAOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_REDIS = urlsplit(REDIS_URL)
_T = TypeVar("_T")


def _through(port: int) -> str:
    return f"redis://127.0.0.1:{port}{_REDIS.path or '/0'}"


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(_REDIS.hostname or "127.0.0.1", _REDIS.port or 6379)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def backend(proxy: TcpProxy) -> AsyncIterator[RedisStateBackend]:
    prefix = f"maos-test:{uuid.uuid4().hex}:"
    async with RedisStateBackend(_through(proxy.port), key_prefix=prefix) as backend:
        yield backend
    direct = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in direct.scan_iter(match=f"{prefix}*")]
        if keys:
            await direct.delete(*keys)
    finally:
        await direct.aclose()


async def _eventually(call: Callable[[], Awaitable[_T]], within: float = 30.0) -> _T:
    """`call()` once it stops failing with Unavailable (Redis is back and the backend noticed)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except Unavailable:
            assert time.monotonic() < deadline, "never recovered"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("blackhole", [False, True], ids=["refused", "blackholed"])
async def test_state_calls_fail_at_once_during_a_cut_and_work_again_after_it(
    proxy: TcpProxy, backend: RedisStateBackend, blackhole: bool
) -> None:
    acknowledged = [await backend.put("ns", f"k{i}", f'"v{i}"'.encode()) for i in range(20)]
    await proxy.cut(blackhole=blackhole)
    with pytest.raises(Unavailable, match=f"Redis at {_through(proxy.port)}"):
        await asyncio.wait_for(backend.put("ns", "during", b'"x"'), timeout=30)  # notices (blackhole: a timeout)
    # From now on every call fails at once, however the wire is broken.
    for call in (lambda: backend.get("ns", "k1"), lambda: backend.put("ns", "k2", b'"y"')):
        started = time.monotonic()
        with pytest.raises(Unavailable, match="reconnects by itself"):
            await call()
        assert time.monotonic() - started < 0.5
    assert backend.outage is not None
    await proxy.restore()
    entry = await _eventually(lambda: backend.get("ns", "k0"))
    assert backend.outage is None
    assert entry is not None and entry.value == b'"v0"'
    # Nothing acknowledged was lost; writes work again, versions carry on from where they were.
    entries = await backend.list("ns", "k", limit=100)
    assert {(e.key, e.value, e.version) for e in entries} == {
        (c.entry.key, c.entry.value, c.entry.version) for c in acknowledged
    }
    change = await backend.put("ns", "k3", b'"after"')
    assert change.entry.version == 2


def _state_call(stub: state_pb2_grpc.StateServiceStub, namespace: str) -> tuple[grpc.StatusCode, str, float]:
    started = time.monotonic()
    try:
        stub.Get(state_pb2.GetStateRequest(namespace=namespace, key="kept"), timeout=5)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", time.monotonic() - started
    return grpc.StatusCode.OK, "", time.monotonic() - started


def test_a_control_plane_on_redis_degrades_and_recovers_without_a_restart(tmp_path: Path) -> None:
    namespace = f"tree:redis-away-{uuid.uuid4().hex}"  # its own keys on the shared server, under the default prefix
    daemons: list[Daemon] = []
    with BackgroundProxy(_REDIS.hostname or "127.0.0.1", _REDIS.port or 6379) as proxy:
        try:
            cp = start_controlplane(tmp_path / "cp", extra=["--state", _through(proxy.port)])
            daemons.append(cp)
            with grpc.insecure_channel(cp.endpoint) as channel:
                stub = state_pb2_grpc.StateServiceStub(channel)
                put = stub.Put(
                    state_pb2.PutStateRequest(namespace=namespace, key="kept", value=b'"before"'), timeout=10
                )
                proxy.cut()
                during = [_state_call(stub, namespace) for _ in range(5)]
                assert all(code is grpc.StatusCode.UNAVAILABLE for code, _, _ in during), during
                assert all(f"Redis at {_through(proxy.port)}" in message for _, message, _ in during), during
                assert cp.process.poll() is None
                proxy.restore()
                deadline = time.monotonic() + 30
                while (code := _state_call(stub, namespace))[0] is not grpc.StatusCode.OK:
                    assert code[0] is grpc.StatusCode.UNAVAILABLE, code
                    assert time.monotonic() < deadline, cp.log_text()[-2000:]
                    time.sleep(0.05)
                got = stub.Get(state_pb2.GetStateRequest(namespace=namespace, key="kept"), timeout=5)
                assert got.value == b'"before"' and got.version == put.version == 1
                assert cp.process.poll() is None  # the same process: no restart
        finally:
            for daemon in reversed(daemons):
                daemon.stop()
            asyncio.run(_drop(f"maos:state:{{{namespace}}}:"))


async def _drop(prefix: str) -> None:
    direct = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in direct.scan_iter(match=prefix.replace("{", "\\{").replace("}", "\\}") + "*")]
        if keys:
            await direct.delete(*keys)
    finally:
        await direct.aclose()
