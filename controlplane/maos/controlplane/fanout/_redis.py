"""Events from one control plane to the others over Redis pub/sub.

Each event goes to the channel `<prefix><kind>` (e.g. "maos:fanout:state")
as `origin || body`, where origin is this process's 16-byte id, so a process
skips what it published itself. Publishing never blocks its caller: events
queue in an outbox that a background task flushes as one pipeline of PUBLISH
commands per wake-up.

Pub/sub delivers at most once. That is enough because nothing here is the
copy of record: every event was committed to the store first, and a receiver
that may have missed some (its subscription broke, or the publisher could not
reach Redis) is told to resync, which makes each watcher re-read the store's
change log from the last revision it handled. So Redis going away degrades
(cross-process watchers see changes late, never wrongly) and recovers by
itself; the publisher announces a resync once it reaches Redis again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from maos.controlplane._urls import redacted
from maos.errors import InvalidArgument, Unavailable
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_CHANNEL_PREFIX = "maos:fanout:"
RESYNC_KIND = "resync"  # body-less: "you may have missed events; re-read the log"
MAX_OUTBOX = 100_000  # events queued while Redis is slow; beyond it they are dropped (receivers resync)
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 2.0
_ORIGIN_BYTES = 16


@dataclass(slots=True)
class FanoutStats:
    published: int = 0
    received: int = 0
    dropped: int = 0  # could not be published (Redis away or outbox full); receivers resynced
    resyncs: int = 0
    connected: bool = False


class RedisFanout:
    """Publish events to, and receive them from, the other control planes on one Redis."""

    def __init__(self, url: str, *, channel_prefix: str = DEFAULT_CHANNEL_PREFIX, max_connections: int = 8) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidArgument(f"--redis {url!r} is not a Redis URL: use redis://HOST:PORT/DB")
        self.url = url
        self._prefix = channel_prefix
        self.origin = uuid.uuid4().bytes[:_ORIGIN_BYTES]
        try:
            # The guide's client settings: keepalive, health checks on idle connections, bounded waits.
            self._client: aioredis.Redis = aioredis.Redis.from_url(
                url,
                max_connections=max_connections,
                socket_keepalive=True,
                socket_connect_timeout=2.0,
                health_check_interval=15,
            )
        except ValueError as exc:
            raise InvalidArgument(f"--redis {url}: {exc}") from None
        self._handlers: dict[str, Callable[[bytes], None]] = {}
        self._resync_listeners: list[Callable[[], None]] = []
        self._outbox: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publish_failed = False
        self.stats = FanoutStats()

    @property
    def description(self) -> str:
        return redacted(self.url)

    def on(self, kind: str, handler: Callable[[bytes], None]) -> None:
        """Call `handler(body)` for each event of `kind` another control plane publishes."""
        self._handlers[kind] = handler

    def on_resync(self, listener: Callable[[], None]) -> None:
        """Call `listener()` whenever events may have been missed (after a reconnect)."""
        self._resync_listeners.append(listener)

    async def open(self) -> None:
        """Reach Redis (Unavailable, naming it, if it cannot be) and start publishing and receiving."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            await self._client.aclose()
            raise Unavailable(
                f"--redis {self.description}: cannot reach Redis ({exc}); start it or fix the URL"
            ) from None
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="maos-fanout-publish"),
            asyncio.create_task(self._receive_loop(), name="maos-fanout-receive"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._client.aclose()

    def publish(self, kind: str, body: bytes) -> None:
        """Queue one event for the other control planes; never blocks."""
        if len(self._outbox) >= MAX_OUTBOX:
            self.stats.dropped += 1
            self._publish_failed = True  # receivers must re-read once we get through again
            return
        self._outbox.append((kind, body))
        self._wake.set()

    # ---------------------------------------------------------------- internals

    async def _publish_loop(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            if self._publish_failed:
                batch.insert(0, (RESYNC_KIND, b""))
            try:
                pipe = self._client.pipeline(transaction=False)
                for kind, body in batch:
                    pipe.publish(self._prefix + kind, self.origin + body)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                lost = sum(1 for kind, _ in batch if kind != RESYNC_KIND)
                self.stats.dropped += lost
                if not self._publish_failed:
                    log.warning(
                        "fan-out to other control planes paused: Redis %s unreachable (%s); %d events dropped, "
                        "their watchers will re-read the store when it is back",
                        self.description,
                        exc,
                        lost,
                    )
                self._publish_failed = True
                self._wake.set()  # retry with whatever queues meanwhile
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            if self._publish_failed:
                log.info("fan-out to other control planes resumed: Redis %s reachable again", self.description)
            self._publish_failed = False
            self.stats.published += len(batch)
            delay = FIRST_RETRY_SECONDS

    async def _receive_loop(self) -> None:
        channels = [self._prefix + kind for kind in (*self._handlers, RESYNC_KIND)]
        delay = FIRST_RETRY_SECONDS
        failing = False
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                self.stats.connected = True
                if failing:
                    log.info("fan-out from other control planes resumed: Redis %s reachable again", self.description)
                failing = False
                delay = FIRST_RETRY_SECONDS
                self._resync()  # whatever was published before this subscription took effect is in the log
                async for message in pubsub.listen():
                    self._dispatch(message)
            except (RedisError, OSError) as exc:
                self.stats.connected = False
                if not failing:
                    log.warning(
                        "fan-out from other control planes paused: Redis %s unreachable (%s); retrying",
                        self.description,
                        exc,
                    )
                failing = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _dispatch(self, message: dict[str, object]) -> None:
        data = message.get("data")
        channel = message.get("channel")
        if message.get("type") != "message" or not isinstance(data, bytes) or not isinstance(channel, bytes):
            return
        if data[:_ORIGIN_BYTES] == self.origin:
            return
        kind = channel.decode()[len(self._prefix) :]
        if kind == RESYNC_KIND:
            self._resync()
            return
        handler = self._handlers.get(kind)
        if handler is None:
            return
        self.stats.received += 1
        try:
            handler(data[_ORIGIN_BYTES:])
        except Exception:  # a bad event must not stop the others
            log.exception("a fan-out event of kind %s could not be handled", kind)

    def _resync(self) -> None:
        self.stats.resyncs += 1
        for listener in self._resync_listeners:
            try:
                listener()
            except Exception:
                log.exception("a fan-out resync listener failed")
