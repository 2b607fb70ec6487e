"""The live view of topics: every publication accepted, to whoever watches the topic now.

It does not consume anything (subscriptions and their mailboxes do that,
with acknowledgement): a watch sees publications from the moment it starts,
at most once, and one that falls too far behind is ended with
RESOURCE_EXHAUSTED rather than let memory grow. With `--redis`, the leader's
publications reach the watchers of every control plane (see RedisFanout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from maos.errors import ResourceExhausted
from maos.v1 import messages_pb2

WATCH_QUEUE_SIZE = 10_000


@dataclass(eq=False, slots=True)
class TopicWatcher:
    topic: str
    queue: asyncio.Queue[messages_pb2.Message | None] = field(
        default_factory=lambda: asyncio.Queue(WATCH_QUEUE_SIZE + 1)
    )
    overflowed: bool = False


class TopicFeed:
    """Watchers by topic; `publish` is called with publications already committed."""

    def __init__(self, queue_size: int = WATCH_QUEUE_SIZE) -> None:
        self._by_topic: dict[str, set[TopicWatcher]] = {}
        self._queue_size = queue_size

    def watchers(self, topic: str) -> int:
        return len(self._by_topic.get(topic, ()))

    def publish(self, message: messages_pb2.Message) -> None:
        for watcher in self._by_topic.get(message.topic, ()):
            if watcher.overflowed:
                continue
            if watcher.queue.qsize() >= self._queue_size:
                watcher.overflowed = True
                watcher.queue.put_nowait(None)  # the one slot kept free: wakes it to end
            else:
                watcher.queue.put_nowait(message)

    async def watch(self, topic: str) -> AsyncIterator[messages_pb2.Message]:
        """Publications to `topic` from now on, until the caller stops iterating."""
        watcher = TopicWatcher(topic, asyncio.Queue(self._queue_size + 1))
        self._by_topic.setdefault(topic, set()).add(watcher)
        try:
            while True:
                message = await watcher.queue.get()
                if message is None:
                    raise ResourceExhausted(
                        f"this watch of topic {topic} fell {self._queue_size:,} publications behind and was ended; "
                        "watch again (a subscription, not a watch, is how to receive every message)"
                    )
                yield message
        finally:
            watchers = self._by_topic.get(topic)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._by_topic[topic]
