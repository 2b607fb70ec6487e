"""RedisFanout on the real Redis: events reach the other processes' handlers, not the publisher's
own; every (re)subscription asks for a resync; a full outbox drops and asks for one too."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from maos.controlplane.fanout import RedisFanout, _redis
from maos.errors import Unavailable

REDIS_URL = os.environ.get("MAOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _until(condition: object, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_events_reach_the_others_in_order_and_not_the_publisher() -> None:
    prefix = f"maos-test:{uuid.uuid4().hex}:"
    a, b = RedisFanout(REDIS_URL, channel_prefix=prefix), RedisFanout(REDIS_URL, channel_prefix=prefix)
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    resyncs_b: list[int] = []
    a.on("state", got_a.append)
    b.on("state", got_b.append)
    b.on_resync(lambda: resyncs_b.append(1))
    await a.open()
    await b.open()
    try:
        await _until(lambda: a.stats.connected and b.stats.connected)
        assert resyncs_b == [1]  # subscribing: whatever came before is in the log
        for i in range(500):
            a.publish("state", b"%d" % i)
        a.publish("other-kind", b"nobody handles this")
        await _until(lambda: len(got_b) == 500)
        assert got_b == [b"%d" % i for i in range(500)]
        assert got_a == []  # its own events are skipped
        await _until(lambda: a.stats.published == 501)
        assert b.stats.received == 500
    finally:
        await a.close()
        await b.close()


async def test_a_full_outbox_drops_and_the_others_resync(monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"maos-test:{uuid.uuid4().hex}:"
    monkeypatch.setattr(_redis, "MAX_OUTBOX", 10)
    a, b = RedisFanout(REDIS_URL, channel_prefix=prefix), RedisFanout(REDIS_URL, channel_prefix=prefix)
    got_b: list[bytes] = []
    b.on("state", got_b.append)
    await a.open()
    await b.open()
    try:
        await _until(lambda: b.stats.connected)
        before = b.stats.resyncs
        for i in range(15):  # no await: the outbox fills before the publisher runs
            a.publish("state", b"%d" % i)
        assert a.stats.dropped == 5
        await _until(lambda: len(got_b) == 10 and b.stats.resyncs == before + 1)
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_redis_is_named() -> None:
    fanout = RedisFanout("redis://127.0.0.1:1/0")
    with pytest.raises(Unavailable, match=r"cannot reach Redis"):
        await fanout.open()
