"""TopicFeed: the live topic view is bounded per watch (messages and bytes) and per client."""

from __future__ import annotations

import asyncio

import pytest
from maos.controlplane.fanout import TopicFeed
from maos.errors import ResourceExhausted
from maos.v1 import common_pb2, messages_pb2


def _msg(topic: str, n: int, size: int = 1) -> messages_pb2.Message:
    return messages_pb2.Message(id=str(n), topic=topic, payload=common_pb2.Payload(data=b"x" * size))


async def _started(feed: TopicFeed, topic: str, caller: str) -> tuple[asyncio.Task[list[str]], list[str]]:
    got: list[str] = []

    async def run() -> list[str]:
        async for message in feed.watch(topic, caller):
            got.append(message.id)
        return got

    task = asyncio.create_task(run())
    await asyncio.sleep(0)  # registered
    return task, got


async def test_a_watch_sees_its_topic_in_order_and_nothing_else() -> None:
    feed = TopicFeed()
    task, got = await _started(feed, "a", "c1")
    for n in range(3):
        feed.publish(_msg("a", n))
        feed.publish(_msg("b", 100 + n))
    await asyncio.sleep(0)
    assert got == ["0", "1", "2"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert feed.watchers("a") == 0


@pytest.mark.parametrize(("queue_size", "queue_bytes", "size"), [(5, 1 << 20, 1), (1000, 100, 30)])
async def test_a_watch_that_falls_behind_is_ended(queue_size: int, queue_bytes: int, size: int) -> None:
    feed = TopicFeed(queue_size=queue_size, queue_bytes=queue_bytes)
    task, _ = await _started(feed, "a", "c1")
    for n in range(10):  # no await: the watcher cannot drain meanwhile
        feed.publish(_msg("a", n, size))
    with pytest.raises(ResourceExhausted, match=r"fell .* behind"):
        await task


async def test_one_client_holds_a_bounded_number_of_watches() -> None:
    feed = TopicFeed(max_per_caller=2)
    first, _ = await _started(feed, "a", "c1")
    second, _ = await _started(feed, "b", "c1")
    third, _ = await _started(feed, "c", "c1")
    with pytest.raises(ResourceExhausted, match="already holds 2 topic watches"):
        await third
    other, _ = await _started(feed, "c", "c2")  # another client is not affected
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    again, _ = await _started(feed, "c", "c1")  # a slot came free
    assert not again.done()
    for task in (second, other, again):
        task.cancel()
    await asyncio.gather(second, other, again, return_exceptions=True)
