"""The live view of topics: every publication accepted, to whoever watches the topic now.

It does not consume anything (subscriptions and their mailboxes do that,
with acknowledgement): a watch sees publications from the moment it starts,
at most once. Memory is bounded: a watch that falls `queue_size` messages or
`queue_bytes` of payload behind is ended with RESOURCE_EXHAUSTED rather than
let its queue grow, and one client may hold at most `max_per_caller` watches.
With `--redis`, the leader's publications reach the watchers of every control
plane (see RedisFanout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from maos.errors import ResourceExhausted
from maos.v1 import messages_pb2

WATCH_QUEUE_SIZE = 10_000
WATCH_QUEUE_BYTES = 16 * 1024 * 1024
MAX_WATCHES_PER_CALLER = 100


@dataclass(eq=False, slots=True)
class TopicWatcher:
    topic: str
    queue: asyncio.Queue[messages_pb2.Message | None] = field(default_factory=asyncio.Queue)
    queued_bytes: int = 0
    overflowed: bool = False


class TopicFeed:
    """Watchers by topic; `publish` is called with publications already committed."""

    def __init__(
        self,
        queue_size: int = WATCH_QUEUE_SIZE,
        queue_bytes: int = WATCH_QUEUE_BYTES,
        max_per_caller: int = MAX_WATCHES_PER_CALLER,
    ) -> None:
        self._by_topic: dict[str, set[TopicWatcher]] = {}
        self._by_caller: dict[str, int] = {}
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._max_per_caller = max_per_caller

    def watchers(self, topic: str) -> int:
        return len(self._by_topic.get(topic, ()))

    def publish(self, message: messages_pb2.Message) -> None:
        size = len(message.payload.data)
        for watcher in self._by_topic.get(message.topic, ()):
            if watcher.overflowed:
                continue
            if watcher.queue.qsize() >= self._queue_size or watcher.queued_bytes + size > self._queue_bytes:
                watcher.overflowed = True
                watcher.queue.put_nowait(None)  # wakes it to end
            else:
                watcher.queued_bytes += size
                watcher.queue.put_nowait(message)

    async def watch(self, topic: str, caller: str) -> AsyncIterator[messages_pb2.Message]:
        """Publications to `topic` from now on, until the caller stops iterating.
        `caller` names the client (its task id, or its address) for the per-client limit."""
        held = self._by_caller.get(caller, 0)
        if held >= self._max_per_caller:
            raise ResourceExhausted(
                f"this client already holds {held} topic watches, the limit; end one before watching {topic}"
            )
        self._by_caller[caller] = held + 1
        watcher = TopicWatcher(topic)
        self._by_topic.setdefault(topic, set()).add(watcher)
        try:
            while True:
                message = await watcher.queue.get()
                if message is None:
                    raise ResourceExhausted(
                        f"this watch of topic {topic} fell {self._queue_size:,} publications or "
                        f"{self._queue_bytes // (1024 * 1024)} MiB behind and was ended; watch again "
                        "(a subscription, not a watch, is how to receive every message)"
                    )
                watcher.queued_bytes -= len(message.payload.data)
                yield message
        finally:
            watchers = self._by_topic.get(topic)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._by_topic[topic]
            left = self._by_caller.get(caller, 0) - 1
            if left > 0:
                self._by_caller[caller] = left
            else:
                self._by_caller.pop(caller, None)
