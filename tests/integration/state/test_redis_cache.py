"""What only `--state redis://...` does: Redis is a cache in front of the durable backend, never
the only copy, and never serves an entry older than the durable one (real Redis, real SQLite)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import redis.asyncio as aioredis
from maos.controlplane.state import RedisStateBackend, SqliteStateBackend, StateEntry

from .conftest import REDIS_URL, drop_prefix, redis_prefix

NS = "tree:01TESTROOT"


def j(value: object) -> bytes:
    return orjson.dumps(value)


@pytest.fixture
async def direct() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = redis_prefix()
    yield prefix
    await drop_prefix(prefix)


def cache_over(path: Path, prefix: str, *, ttl_seconds: float = 3600.0) -> RedisStateBackend:
    return RedisStateBackend(REDIS_URL, SqliteStateBackend(path), key_prefix=prefix, ttl_seconds=ttl_seconds)


def cache_key(backend: RedisStateBackend, prefix: str, key: str) -> str:
    """Where the backend caches `key` of NS now (the layout in _redis.py's docstring)."""
    assert backend.generation is not None, "the cache is bypassed"
    return f"{prefix}g{backend.generation}:{{{NS}}}:{key}"


async def cached(backend: RedisStateBackend, prefix: str, key: str, direct: aioredis.Redis) -> tuple[bytes, int] | None:
    """(value, version) that Redis holds for `key` under the backend's generation; None if nothing."""
    value, version = await direct.hmget(cache_key(backend, prefix, key), ["d", "v"])
    assert isinstance(value, bytes | None)  # the client decodes nothing
    return None if version is None else (value or b"", int(version))


async def served_from_redis(backend: RedisStateBackend, prefix: str, key: str, direct: aioredis.Redis) -> bool:
    """Whether a get of `key` answers from Redis: mark the cached value, read, put it back."""
    name = cache_key(backend, prefix, key)
    original = await direct.hget(name, "d")
    if original is None:
        return False
    await direct.hset(name, "d", j("marked in redis"))
    try:
        entry = await backend.get(NS, key)
    finally:
        await direct.hset(name, "d", original)
    return entry is not None and entry.value == j("marked in redis")


async def test_losing_every_redis_key_loses_no_acknowledged_write(
    tmp_path: Path, prefix: str, direct: aioredis.Redis
) -> None:
    """Eviction, or a Redis restarted without persistence, after acknowledged writes."""
    async with cache_over(tmp_path / "maos.db", prefix) as backend:
        expected: dict[str, StateEntry | None] = {}
        for i in range(300):
            key = f"k{i:03d}"
            change = await backend.put(NS, key, j(i))
            if i % 3 == 0:
                change = await backend.cas(NS, key, j({"again": i}), 1)
            expected[key] = change.entry
            if i % 10 == 0:
                await backend.delete(NS, key)
                expected[key] = None
        changes = 300 + 100 + 30
        assert await cached(backend, prefix, "k001", direct) == (j(1), 1)  # written through
        assert await drop_prefix(prefix) > 300  # entries, tombstones and the generation counter: all gone

        for key, entry in expected.items():
            got = await backend.get(NS, key)
            if entry is None:
                assert got is None, key
            else:
                assert got is not None and (got.value, got.version, got.revision) == (
                    entry.value,
                    entry.version,
                    entry.revision,
                ), key
        live = {k: e for k, e in expected.items() if e is not None}
        listed = await backend.list(NS, limit=1000)
        assert {e.key: (e.value, e.version) for e in listed} == {k: (e.value, e.version) for k, e in live.items()}
        # The reads filled the cache again, and it answers.
        assert await cached(backend, prefix, "k003", direct) == (j({"again": 3}), 2)
        assert await served_from_redis(backend, prefix, "k003", direct)
        # Writes carry on from the durable versions and revisions.
        after = await backend.put(NS, "k003", j("after"))
        assert (after.entry.version, after.entry.revision) == (3, changes + 1)


async def test_a_generation_lost_to_eviction_is_never_handed_out_again(
    tmp_path: Path, prefix: str, direct: aioredis.Redis
) -> None:
    """Two state stores behind one Redis prefix: if the generation counter is evicted, the second
    must not pick up the generation (and so the cached entries) of the first."""
    async with SqliteStateBackend(tmp_path / "b.db") as other:
        await other.put(NS, "k", j("b's value"))
    async with cache_over(tmp_path / "a.db", prefix) as a:
        await a.put(NS, "k", j("a's value"))
        assert await direct.delete(f"{prefix}generation") == 1
        async with cache_over(tmp_path / "b.db", prefix) as b:
            assert b.generation != a.generation
            entry = await b.get(NS, "k")
            assert entry is not None and entry.value == j("b's value")


class HoldingProxy:
    """Forwards 127.0.0.1:`port` to Redis. After `hold(marker)`, a chunk sent to Redis that contains
    `marker` waits (and its connection with it) until `release()`: the test chooses the order in
    which commands reach Redis."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._marker: bytes | None = None
        self._released = asyncio.Event()
        self.held = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{urlsplit(REDIS_URL).path or '/0'}"

    def hold(self, marker: bytes) -> None:
        self._marker = marker
        self._released.clear()
        self.held.clear()

    def release(self) -> None:
        self._marker = None
        self._released.set()

    async def __aenter__(self) -> HoldingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = urlsplit(REDIS_URL)
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port or 6379)
        for src, dst, upstream in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.create_task(self._pipe(src, dst, upstream))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, upstream: bool) -> None:
        try:
            while data := await src.read(65536):
                if upstream and self._marker is not None and self._marker in data:
                    self.held.set()
                    await self._released.wait()
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()


async def test_an_older_write_through_landing_after_the_newer_was_evicted_is_taken_back(
    tmp_path: Path, prefix: str, direct: aioredis.Redis
) -> None:
    async with (
        HoldingProxy() as proxy,
        RedisStateBackend(proxy.url, SqliteStateBackend(tmp_path / "maos.db"), key_prefix=prefix) as backend,
    ):
        await backend.put(NS, "k", j("v1"))
        proxy.hold(j("v2"))
        older = asyncio.create_task(backend.put(NS, "k", j("v2")))  # committed; its caching held back
        await asyncio.wait_for(proxy.held.wait(), 10)
        newer = await backend.put(NS, "k", j("v3"))
        assert await direct.delete(cache_key(backend, prefix, "k")) == 1  # evicted
        proxy.release()
        assert (await older).entry.version == 2
        assert await cached(backend, prefix, "k", direct) is None  # v2 landed in the gap and was taken back
        entry = await backend.get(NS, "k")
        assert entry is not None and (entry.value, entry.version) == (j("v3"), newer.entry.version)


@pytest.mark.parametrize("evicted", [False, True], ids=["kept", "evicted"])
async def test_a_fill_overtaken_by_a_write_never_stays(
    tmp_path: Path, prefix: str, direct: aioredis.Redis, evicted: bool
) -> None:
    async with (
        HoldingProxy() as proxy,
        RedisStateBackend(proxy.url, SqliteStateBackend(tmp_path / "maos.db"), key_prefix=prefix) as backend,
    ):
        await backend.put(NS, "k", j("v1"))
        await direct.delete(cache_key(backend, prefix, "k"))
        proxy.hold(j("v1"))
        read = asyncio.create_task(backend.get(NS, "k"))  # a miss: reads v1; its fill is held back
        await asyncio.wait_for(proxy.held.wait(), 10)
        await backend.put(NS, "k", j("v2"))
        if evicted:
            await direct.delete(cache_key(backend, prefix, "k"))
        proxy.release()
        first = await read
        assert first is not None and first.value == j("v1")  # what the key held when the get began
        assert await cached(backend, prefix, "k", direct) in (None, (j("v2"), 2))
        entry = await backend.get(NS, "k")
        assert entry is not None and (entry.value, entry.version) == (j("v2"), 2)


async def test_interleaved_puts_and_gets_on_one_key_never_answer_older_than_acknowledged(
    tmp_path: Path, prefix: str, direct: aioredis.Redis
) -> None:
    """100 writes and 100 gets of one key at once, 5 times over, while the cached entry is evicted
    every few ms: no get answers older than a write acknowledged before it began, and the cache
    ends at the durable entry."""
    rng = random.Random(7)
    stop = asyncio.Event()
    acknowledged = 0  # revision of the newest write acknowledged so far
    deletions: list[int] = []
    answers: list[tuple[int, int | None]] = []  # (acknowledged when a get began, revision it answered)

    async def evict(backend: RedisStateBackend) -> None:
        while not stop.is_set():
            await direct.delete(cache_key(backend, prefix, "hot"))
            await asyncio.sleep(rng.uniform(0, 0.003))

    async def write(backend: RedisStateBackend, rnd: int, i: int) -> None:
        nonlocal acknowledged
        await asyncio.sleep(rng.uniform(0, 0.01))
        if i % 25 == 24:
            revision = (await backend.delete(NS, "hot")).revision
            deletions.append(revision)
        else:
            revision = (await backend.put(NS, "hot", j([rnd, i]))).revision
        acknowledged = max(acknowledged, revision)

    async def get(backend: RedisStateBackend) -> None:
        await asyncio.sleep(rng.uniform(0, 0.01))
        floor = acknowledged
        entry = await backend.get(NS, "hot")
        answers.append((floor, entry.revision if entry else None))

    async with cache_over(tmp_path / "maos.db", prefix) as backend:
        for rnd in range(5):
            stop.clear()
            evictor = asyncio.create_task(evict(backend))
            await asyncio.gather(*(op for i in range(100) for op in (write(backend, rnd, i), get(backend))))
            stop.set()
            await evictor
            truth = _pair(await backend.durable.get(NS, "hot"))
            # Evicted, or the newest; then reads (each may fill the cache) find the newest.
            assert await cached(backend, prefix, "hot", direct) in (None, truth or (b"", 0)), rnd
            reads = await asyncio.gather(*(backend.get(NS, "hot") for _ in range(20)))
            assert [_pair(e) for e in reads] == [truth] * 20, rnd
            assert await cached(backend, prefix, "hot", direct) == (truth or (b"", 0)), rnd
    older = [(floor, got) for floor, got in answers if got is not None and got < floor]
    # "No such key" is right only if a deletion at or after the floor may have been seen.
    wrongly_absent = [floor for floor, got in answers if got is None and not any(d >= floor for d in deletions)]
    assert (older, wrongly_absent) == ([], []), "gets answered older than acknowledged writes"
    assert len(answers) == 500


def _pair(entry: StateEntry | None) -> tuple[bytes, int] | None:
    return None if entry is None else (entry.value, entry.version)


async def test_an_import_is_not_hidden_by_what_the_cache_remembers(tmp_path: Path, prefix: str) -> None:
    """A checkpoint restore imports entries with older revisions than the tombstones the cache holds."""
    async with cache_over(tmp_path / "maos.db", prefix) as backend:
        await backend.put(NS, "k", j("first"))
        await backend.delete(NS, "k")
        assert await backend.get(NS, "k") is None  # the tombstone answers
        generation = backend.generation
        await backend.import_entries([StateEntry(NS, "k", j("restored"), 1, 1, 1.0)])
        entry = await backend.get(NS, "k")
        assert entry is not None and (entry.value, entry.version, entry.revision) == (j("restored"), 1, 1)
        assert backend.generation != generation


async def test_cached_entries_expire(tmp_path: Path, prefix: str, direct: aioredis.Redis) -> None:
    async with cache_over(tmp_path / "maos.db", prefix, ttl_seconds=0.5) as backend:
        await backend.put(NS, "k", j(1))
        name = cache_key(backend, prefix, "k")
        assert 0 < await direct.pttl(name) <= 500
        await asyncio.sleep(0.7)
        assert await direct.exists(name) == 0  # aged out of Redis, not out of the state
        entry = await backend.get(NS, "k")
        assert entry is not None and entry.value == j(1)
        assert await direct.exists(name) == 1  # filled again


async def test_describes_both_copies_and_refuses_a_bad_ttl(tmp_path: Path) -> None:
    backend = cache_over(tmp_path / "maos.db", f"maos-test:{uuid.uuid4().hex}:")
    assert backend.description == f"{REDIS_URL} (cache) over sqlite:{tmp_path / 'maos.db'}"
    await backend.close()
    with pytest.raises(ValueError, match="ttl_seconds"):
        cache_over(tmp_path / "maos.db", "x:", ttl_seconds=0)
