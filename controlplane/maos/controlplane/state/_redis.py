"""Shared state with Redis as a cache (`--state redis://...`) in front of the durable backend.

Redis is never the only copy of anything acknowledged. The authority is the backend `--state sqlite`
would use (the SQLite file beside the tasks, or the PostgreSQL schema of a PostgreSQL task store): a
write (put, cas, delete, import) commits there first (versions checked, version and revision assigned,
change logged); only then is the resulting entry, or a tombstone for a deletion, written to Redis, and
the call answers. Redis may evict anything (`allkeys-lru`) or restart empty: nothing acknowledged is
lost. A get asks Redis first, on a miss the durable backend, then fills Redis; list, changes and
namespaces read the durable backend (under eviction Redis cannot know it holds a whole prefix).

Entries carry their change's revision and a Lua script writes one only over an older one, so two
operations on one key finishing in either order leave the newer; should the newer be evicted before
the older lands, this process (the only writer) sees the overlap and takes the older back. Entries
expire after `ttl_seconds`. Commands issued in one event-loop turn share a pipeline (_autopipeline).

Generations: keys are `<prefix>g<N>:{<namespace>}:<key>` (hash: d value, v version (0: absent),
r revision, t updated), N from `INCR <prefix>generation` (never below the Redis clock in ms, so a
counter lost to eviction cannot hand out an old number). A fresh generation is taken at open, after
any failed cache call (Redis may now hold an older entry than the durable one; calls go to the
durable backend until Redis answers again, logged once each way), after an import, and when a
former leader leads again. So a stale entry is never read; old generations age out by TTL. Over
PostgreSQL only the leader (from `fence`) uses the cache: a standby reads the durable backend and
never serves an entry the leader has since changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis
from maos.controlplane._urls import redacted
from maos.errors import Unavailable
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ._autopipeline import AutoPipeline
from ._model import DeleteOutcome, StateBackend, StateChange, StateEntry, StateLimits
from ._postgres import PostgresStateBackend
from ._validation import check_key

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "maos:state:"
DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_TTL_SECONDS = 3600.0
DEFAULT_SOCKET_TIMEOUT_SECONDS = 2.0  # a cache that does not answer soon is bypassed, not waited for
HEALTH_CHECK_SECONDS = 30  # PING a connection idle this long before using it (the guide's setting)
FIRST_PROBE_SECONDS = 0.1  # after a failure, try Redis again this soon,
MAX_PROBE_SECONDS = 1.0  # backing off to this
PROBE_TIMEOUT_SECONDS = 2.0
WRITE_CLOSE_SECONDS = 30.0  # close() waits this long for writes still being cached
# Keys whose last write is remembered for racing fills (see _fill); past this the memory starts over.
MAX_TRACKED_KEYS = 4096
# Anything that means "Redis cannot serve this now": every such failure sends calls to the durable backend.
_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
_FIELDS = (b"d", b"v", b"r", b"t")
_T = TypeVar("_T")

# KEYS: the counter. The next generation: INCR, but never below the server clock in ms.
_NEXT_GENERATION = """
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local n = redis.call('INCR', KEYS[1])
if n < floor then
  n = floor
  redis.call('SET', KEYS[1], string.format('%.0f', floor))
end
return n
"""
# KEYS: the entry. ARGV: revision, version (0: absent), value, updated, TTL in ms. Returns 1 if written.
_STORE = """
local cur = redis.call('HGET', KEYS[1], 'r')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'v', ARGV[2], 'd', ARGV[3], 't', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""
# KEYS: the entry. ARGV: a revision. Deletes the entry only while it is at that revision.
_UNDO = """
if redis.call('HGET', KEYS[1], 'r') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStateBackend:
    """StateBackend whose authority is `durable`, with Redis (6.2+) as a write-through, read-through cache.

    It opens and closes `durable` itself; `limits` are the durable backend's.
    """

    def __init__(
        self,
        url: str,
        durable: StateBackend,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        socket_timeout_seconds: float = DEFAULT_SOCKET_TIMEOUT_SECONDS,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if ttl_seconds < 0.001:
            raise ValueError("ttl_seconds must be at least 0.001")
        self._url = url
        self._durable = durable
        self._prefix = key_prefix.encode()
        self._ttl_ms = str(round(ttl_seconds * 1000)).encode()
        # No retries: a failing cache is bypassed, and a probe finds out when it is back.
        self._pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout_seconds,
            socket_timeout=socket_timeout_seconds,
            socket_connect_timeout=socket_timeout_seconds,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis(connection_pool=self._pool)
        self._pipe = AutoPipeline(self._redis)
        self._store_sha = self._undo_sha = ""
        # Over PostgreSQL a standby must not cache what the leader changes: wait for `fence`.
        self._leading = not isinstance(durable, PostgresStateBackend)
        self._gen: bytes | None = None  # "<prefix>g<N>:" while the cache may be used
        self._renewal: asyncio.Task[None] | None = None
        self._down: tuple[float, str] | None = None  # (monotonic since, why) while Redis fails
        # By (namespace, raw key): writes in flight, the highest revision they cached, and when the
        # last write ended (in writes done), for cache writes racing each other (see _write_through).
        self._inflight: dict[tuple[str, bytes], int] = {}
        self._top: dict[tuple[str, bytes], int] = {}
        self._done: dict[tuple[str, bytes], int] = {}
        self._seq = 0  # writes done
        self._floor = 0  # fills that started before this write count as raced by every key
        self._writes: set[asyncio.Task[Any]] = set()
        self._opened = False
        self._closed = False

    @property
    def description(self) -> str:
        return f"{redacted(self._url)} (cache) over {self._durable.description}"

    @property
    def limits(self) -> StateLimits:
        return self._durable.limits

    @property
    def durable(self) -> StateBackend:
        """The backend that holds the authoritative copy."""
        return self._durable

    @property
    def generation(self) -> int | None:
        """The cache generation in use; None while reads and writes bypass Redis."""
        if self._gen is None or not self._leading:
            return None
        return int(self._gen[len(self._prefix) + 1 : -1])

    @property
    def outage(self) -> str | None:
        """Why the cache is bypassed right now (one line), None while Redis answers."""
        if self._down is None:
            return None
        since, why = self._down
        return (
            f"the shared-state cache Redis at {redacted(self._url)} has failed ({why}) for "
            f"{time.monotonic() - since:.1f}s; state is served from {self._durable.description} meanwhile"
        )

    async def open(self) -> None:
        """Take a generation (so a wrong URL fails at start, not later), then open the durable backend."""
        if self._opened:
            return
        try:
            await self._start_generation()
        except _FAILURES as exc:
            raise Unavailable(
                f"the shared-state Redis at {redacted(self._url)} cannot be reached: {exc}; "
                "check the --state URL and that Redis runs"
            ) from exc
        await self._durable.open()
        self._opened = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writes:  # writes committed or queued finish, and are cached, first
            await asyncio.wait(set(self._writes), timeout=WRITE_CLOSE_SECONDS)
        await self._durable.close()
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.wait([self._renewal])
        await self._pipe.drain()
        await self._redis.aclose()
        await self._pool.aclose()

    async def __aenter__(self) -> RedisStateBackend:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def fence(self, epoch: int, on_deposed: Callable[[str], None]) -> None:
        """This control plane leads at `epoch`: fence the durable backend's writes, and use the cache
        (until deposed) under a generation nobody has written in: the one taken at open, unused
        until now, or a fresh one if it led before."""
        if isinstance(self._durable, PostgresStateBackend):

            def deposed(detail: str) -> None:
                self._leading = False
                on_deposed(detail)

            self._durable.fence(epoch, deposed)
        if self._leading:
            self._renew()
        self._leading = True

    # ------------------------------------------------------------ generations

    async def _start_generation(self) -> None:
        self._store_sha = str(await self._redis.script_load(_STORE))
        self._undo_sha = str(await self._redis.script_load(_UNDO))
        number = int(await self._redis.eval(_NEXT_GENERATION, 1, self._prefix + b"generation"))
        self._gen = self._prefix + b"g%d:" % number

    def _renew(self) -> None:
        """Stop using the current generation; a fresh one is taken in the background."""
        self._gen = None
        if self._closed or (self._renewal is not None and not self._renewal.done()):
            return
        self._renewal = asyncio.get_running_loop().create_task(self._take_generation(), name="maos-redis-cache")

    async def _take_generation(self) -> None:
        delay = FIRST_PROBE_SECONDS
        while not self._closed:
            try:
                # Scripts again too: a Redis that restarted has forgotten them.
                await asyncio.wait_for(self._start_generation(), PROBE_TIMEOUT_SECONDS)
            except _FAILURES as exc:
                self._degraded(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_PROBE_SECONDS)
                continue
            if self._down is not None:
                since = time.monotonic() - self._down[0]
                log.warning(
                    "shared-state cache Redis at %s answers again after %.1fs; caching under generation %s",
                    redacted(self._url),
                    since,
                    self.generation,
                )
                self._down = None
            return

    def _failed(self, exc: BaseException, gen: bytes) -> None:
        """A cache call under `gen` failed: what Redis holds there may be stale now."""
        if self._gen != gen:
            return  # a generation given up already
        self._degraded(exc)
        self._renew()

    def _degraded(self, exc: BaseException) -> None:
        if self._down is not None or self._closed:
            return
        why = str(exc).strip() or type(exc).__name__
        self._down = (time.monotonic(), why)
        log.warning(
            "shared-state cache Redis at %s failed (%s): serving state from %s until it answers again",
            redacted(self._url),
            why,
            self._durable.description,
        )

    def _cache(self) -> bytes | None:
        """The generation to use now, None to bypass Redis."""
        return self._gen if self._leading else None

    def _name(self, gen: bytes, namespace: str, raw: bytes) -> bytes:
        return gen + b"{" + namespace.encode() + b"}:" + raw

    def _store(self, name: bytes, entry: StateEntry) -> Awaitable[Any]:
        value, version = (entry.value, entry.version) if entry.version else (b"", 0)
        args = (entry.revision, version, value, repr(entry.updated_at), self._ttl_ms)
        return self._pipe.call("EVALSHA", self._store_sha, 1, name, *args)

    # ------------------------------------------------------------------ writes

    async def put(self, namespace: str, key: str, value: bytes) -> StateChange:
        raw = check_key(key, self.limits)
        return await self._write(namespace, raw, lambda: self._durable.put(namespace, key, value), _changed)

    async def cas(self, namespace: str, key: str, value: bytes, expected_version: int) -> StateChange:
        raw = check_key(key, self.limits)
        commit = lambda: self._durable.cas(namespace, key, value, expected_version)  # noqa: E731
        return await self._write(namespace, raw, commit, _changed)

    async def delete(self, namespace: str, key: str, expected_version: int = 0) -> DeleteOutcome:
        raw = check_key(key, self.limits)
        commit = lambda: self._durable.delete(namespace, key, expected_version)  # noqa: E731
        return await self._write(namespace, raw, commit, lambda outcome: outcome.change)

    async def _write(
        self,
        namespace: str,
        raw: bytes,
        commit: Callable[[], Awaitable[_T]],
        change_of: Callable[[_T], StateChange | None],
    ) -> _T:
        if self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        at = (namespace, raw)
        self._inflight[at] = self._inflight.get(at, 0) + 1
        # Its own task, shielded: a caller that stops waiting must not leave a committed write uncached.
        task = asyncio.get_running_loop().create_task(self._commit_and_cache(at, self._seq, commit, change_of))
        self._writes.add(task)
        task.add_done_callback(self._write_done)
        return await asyncio.shield(task)

    def _write_done(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that stopped waiting has no one to tell

    async def _commit_and_cache(
        self,
        at: tuple[str, bytes],
        started: int,
        commit: Callable[[], Awaitable[_T]],
        change_of: Callable[[_T], StateChange | None],
    ) -> _T:
        try:
            result = await commit()
            change = change_of(result)
            gen = self._cache()  # now, not at the start: a generation taken meanwhile must see this write
            if change is not None and gen is not None:
                # On failure Redis may still hold the older entry: its generation is never read again.
                try:
                    await self._write_through(gen, at, change.entry)
                except _FAILURES as exc:
                    self._failed(exc, gen)
                except asyncio.CancelledError as exc:
                    self._failed(exc, gen)
                    raise
            return result
        finally:
            left = self._inflight[at] - 1
            if left:
                self._inflight[at] = left
            else:
                del self._inflight[at]
                self._top.pop(at, None)
            self._seq += 1
            if len(self._done) >= MAX_TRACKED_KEYS and at not in self._done:
                self._done.clear()
                self._floor = self._seq
            self._done[at] = self._seq

    async def import_entries(self, entries: Sequence[StateEntry]) -> None:
        await self._durable.import_entries(entries)
        # Imported revisions may be below tombstones in the cache: start again from an empty one.
        self._renew()

    # ------------------------------------------------------------------- reads

    async def get(self, namespace: str, key: str) -> StateEntry | None:
        raw = check_key(key, self.limits)
        if self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        gen = self._cache()
        if gen is None:
            return await self._durable.get(namespace, key)
        name = self._name(gen, namespace, raw)
        try:
            fields = await self._pipe.call("HMGET", name, *_FIELDS)
        except _FAILURES as exc:
            self._failed(exc, gen)
            return await self._durable.get(namespace, key)
        value, version, revision, updated = fields
        if version is not None:  # a hit; version 0 marks a key known to be absent
            if version == b"0":
                return None
            return StateEntry(namespace, key, value or b"", int(version), int(revision or 0), float(updated or 0))
        started = self._seq
        entry = await self._durable.get(namespace, key)
        await self._fill(gen, (namespace, raw), started, entry)
        return entry

    # The store script alone keeps the newer of two entries for one key, but the newer may land
    # first and be evicted before the older arrives, which then stays. Every write of a generation
    # is made in this process, so such overlaps are seen here, and the older entry is taken back.

    async def _write_through(self, gen: bytes, at: tuple[str, bytes], entry: StateEntry) -> None:
        """Cache a committed write's entry; undone if a newer write on the key was cached meanwhile."""
        self._top[at] = max(self._top.get(at, 0), entry.revision)
        name = self._name(gen, *at)
        if await self._store(name, entry) and self._top[at] > entry.revision:
            await self._undo(name, entry.revision)

    async def _fill(self, gen: bytes, at: tuple[str, bytes], started: int, entry: StateEntry | None) -> None:
        """Cache what the durable backend answered (read from write count `started` on), unless a
        write on the key overlapped the read; undone if one began before the fill landed."""
        if self._gen != gen or self._raced(at, started):
            return
        shown = entry or StateEntry(at[0], "", b"", 0, 0, 0.0)  # absent: revision 0 loses to any write
        name = self._name(gen, *at)
        try:
            if await self._store(name, shown) and self._raced(at, started):
                await self._undo(name, shown.revision)
        except _FAILURES as exc:
            self._failed(exc, gen)

    def _raced(self, at: tuple[str, bytes], started: int) -> bool:
        return started < self._floor or at in self._inflight or self._done.get(at, 0) > started

    def _undo(self, name: bytes, revision: int) -> Awaitable[Any]:
        return self._pipe.call("EVALSHA", self._undo_sha, 1, name, revision)

    async def list(
        self, namespace: str, prefix: str = "", *, after_key: str = "", limit: int = 100, keys_only: bool = False
    ) -> Sequence[StateEntry]:
        return await self._durable.list(namespace, prefix, after_key=after_key, limit=limit, keys_only=keys_only)

    async def changes(self, namespace: str, after_revision: int, limit: int) -> Sequence[StateChange]:
        return await self._durable.changes(namespace, after_revision, limit)

    async def namespaces(self) -> Sequence[str]:
        return await self._durable.namespaces()


def _changed(change: StateChange) -> StateChange:
    return change
