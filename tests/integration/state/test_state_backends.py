"""Both StateBackends (SQLite file, real Redis) against one suite of behaviour."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest
from maos.controlplane.state import (
    SqliteStateBackend,
    StaleVersion,
    StateBackend,
    StateChange,
    StateHub,
    StateLimits,
    open_state_backend,
    watch_changes,
)
from maos.controlplane.store import SqliteStore, WriteBatch
from maos.errors import FailedPrecondition, InvalidArgument, Unavailable

from .conftest import BACKENDS, open_backend

NS = "tree:01TESTROOT"


def j(value: object) -> bytes:
    return orjson.dumps(value)


async def test_put_get_versions_and_revisions(backend: StateBackend) -> None:
    assert await backend.get(NS, "a") is None
    first = await backend.put(NS, "a", j({"n": 1}))
    assert (first.entry.version, first.entry.revision, first.deleted) == (1, 1, False)
    second = await backend.put(NS, "a", j({"n": 2}))
    assert (second.entry.version, second.entry.revision) == (2, 2)
    other = await backend.put(NS, "b", j("x"))
    assert (other.entry.version, other.entry.revision) == (1, 3)  # revision counts every change in the namespace

    entry = await backend.get(NS, "a")
    assert entry is not None
    assert (orjson.loads(entry.value), entry.version, entry.revision) == ({"n": 2}, 2, 2)
    assert entry.updated_at > 0

    # Namespaces are independent: their own keys, versions and revisions.
    elsewhere = await backend.put("global", "a", j(0))
    assert (elsewhere.entry.version, elsewhere.entry.revision) == (1, 1)
    assert orjson.loads((await backend.get("global", "a")).value) == 0  # type: ignore[union-attr]


async def test_compare_and_set(backend: StateBackend) -> None:
    created = await backend.cas(NS, "k", j(1), 0)  # 0: create only if absent
    assert created.entry.version == 1
    with pytest.raises(StaleVersion) as info:
        await backend.cas(NS, "k", j(99), 0)
    assert info.value.current_version == 1
    assert info.value.current is not None and orjson.loads(info.value.current.value) == 1
    assert "already exists at version 1" in info.value.message

    updated = await backend.cas(NS, "k", j(2), 1)
    assert (updated.entry.version, updated.entry.revision) == (2, 2)
    with pytest.raises(
        StaleVersion, match=r"stale version: key 'k' in namespace tree:01TESTROOT is at version 2, not 1"
    ):
        await backend.cas(NS, "k", j(3), 1)
    with pytest.raises(StaleVersion, match="does not exist"):
        await backend.cas(NS, "missing", j(3), 4)
    # A refused compare changes nothing, not even the revision.
    entry = await backend.get(NS, "k")
    assert entry is not None and (orjson.loads(entry.value), entry.version) == (2, 2)
    assert (await backend.put(NS, "k", j(4))).entry.revision == 3


async def test_delete(backend: StateBackend) -> None:
    nothing = await backend.delete(NS, "gone")
    assert (nothing.deleted, nothing.revision) == (False, 0)
    await backend.put(NS, "k", j(1))
    await backend.put(NS, "k", j(2))
    with pytest.raises(StaleVersion, match="is at version 2, not 1"):
        await backend.delete(NS, "k", expected_version=1)
    outcome = await backend.delete(NS, "k", expected_version=2)
    assert outcome.deleted and outcome.revision == 3
    assert outcome.change is not None and outcome.change.deleted and outcome.change.entry.version == 0
    assert await backend.get(NS, "k") is None
    assert [e.key for e in await backend.list(NS)] == []
    again = await backend.delete(NS, "k")
    assert (again.deleted, again.revision) == (False, 3)
    with pytest.raises(StaleVersion, match="does not exist"):
        await backend.delete(NS, "k", expected_version=2)
    # Re-created, the key starts again at version 1; the revision keeps growing.
    back = await backend.put(NS, "k", j(3))
    assert (back.entry.version, back.entry.revision) == (1, 4)


async def test_list_by_prefix_with_paging(backend: StateBackend) -> None:
    keys = [f"job/{i:02d}" for i in range(25)] + ["job", "jobs/x", "other", "job/é", "job/z"]
    for i, key in enumerate(keys):
        await backend.put(NS, key, j(i))
    expected = sorted((k for k in keys if k.startswith("job/")), key=lambda k: k.encode())
    seen: list[str] = []
    after = ""
    pages = 0
    while True:
        page = await backend.list(NS, "job/", after_key=after, limit=10)
        seen += [e.key for e in page]
        pages += 1
        if len(page) < 10:
            break
        after = page[-1].key
    assert seen == expected
    assert pages == 3
    assert seen[-1] == "job/é"  # UTF-8 byte order: "é" (0xC3...) after "z"

    everything = await backend.list(NS, limit=1000)
    assert [e.key for e in everything] == sorted(keys, key=lambda k: k.encode())
    first = everything[0]
    assert orjson.loads(first.value) == keys.index(first.key) and first.version == 1

    bare = await backend.list(NS, "job/0", keys_only=True, limit=100)
    assert [e.key for e in bare] == [f"job/{i:02d}" for i in range(10)]
    assert all(e.value == b"" and e.version == 1 and e.revision > 0 for e in bare)
    assert await backend.list(NS, "nothing-here") == []
    assert await backend.list(NS, "job/", after_key="zzz") == []


async def test_value_and_key_limits(tmp_path: Path) -> None:
    limits = StateLimits(max_value_bytes=1024, max_key_bytes=16)
    for kind in BACKENDS:
        async with open_backend(kind, tmp_path, limits) as backend:
            ok = j("x" * 1000)
            assert len(ok) <= 1024
            assert (await backend.put(NS, "k", ok)).entry.version == 1
            with pytest.raises(InvalidArgument, match=r"1,027 bytes; the limit is 1,024 bytes \(1 KiB\)"):
                await backend.put(NS, "k", j("x" * 1025))
            with pytest.raises(InvalidArgument, match="not valid JSON"):
                await backend.put(NS, "k", b"{'single': 'quotes'}")
            with pytest.raises(InvalidArgument, match="not valid JSON"):
                await backend.cas(NS, "k", b"", 1)
            with pytest.raises(InvalidArgument, match="key is empty"):
                await backend.put(NS, "", j(1))
            assert (await backend.put(NS, "k" * 16, j(1))).entry.version == 1
            with pytest.raises(InvalidArgument, match="17 bytes; the limit is 16"):
                await backend.put(NS, "k" * 17, j(1))
            with pytest.raises(InvalidArgument, match="18 bytes"):
                await backend.get(NS, "é" * 9)  # 9 characters, 18 bytes
            entry = await backend.get(NS, "k")
            assert entry is not None and entry.version == 1  # refused writes left no trace


async def test_change_log_replays_after_a_revision(backend: StateBackend) -> None:
    await backend.put(NS, "a", j(1))
    await backend.put(NS, "b", j(2))
    await backend.cas(NS, "a", j(3), 1)
    await backend.delete(NS, "b")
    await backend.put("global", "a", j(0))  # another namespace, another log
    changes = await backend.changes(NS, 0, 100)
    assert [(c.revision, c.entry.key, c.entry.version, c.deleted) for c in changes] == [
        (1, "a", 1, False),
        (2, "b", 1, False),
        (3, "a", 2, False),
        (4, "b", 0, True),
    ]
    assert orjson.loads(changes[2].entry.value) == 3 and changes[3].entry.value == b""
    assert [c.revision for c in await backend.changes(NS, 2, 100)] == [3, 4]
    assert [c.revision for c in await backend.changes(NS, 1, 2)] == [2, 3]
    assert await backend.changes(NS, 4, 100) == []


@pytest.mark.parametrize("kind", BACKENDS)
async def test_change_log_is_trimmed_and_a_stale_resume_is_refused(kind: str, tmp_path: Path) -> None:
    async with open_backend(kind, tmp_path, StateLimits(change_log_size=20)) as backend:
        for i in range(50):
            await backend.put(NS, f"k{i % 3}", j(i))
        kept = await backend.changes(NS, 0, 1000)
        assert [c.revision for c in kept] == list(range(31, 51))
        hub = StateHub()
        # 0 means "whatever is still logged"; a resume point older than the log is refused.
        replay = watch_changes(backend, hub, NS, after_revision=0)
        assert (await anext(replay)).revision == 31
        await replay.aclose()
        stale = watch_changes(backend, hub, NS, after_revision=10)
        with pytest.raises(FailedPrecondition, match="after revision 10 are no longer in the change log"):
            await anext(stale)
        resumed = watch_changes(backend, hub, NS, key="k1", after_revision=40)
        first = await anext(resumed)
        assert (first.entry.key, first.revision) == ("k1", 41)  # value 40 was written at revision 41
        await resumed.aclose()
        assert hub.watchers(NS) == 0


async def test_watch_merges_log_and_live_changes_in_revision_order(backend: StateBackend) -> None:
    """Live changes may be published out of revision order (writers finish in any order);
    the watch still yields every revision once, in order."""
    hub = StateHub()
    await backend.put(NS, "w", j(0))
    seen: list[StateChange] = []
    live = asyncio.Event()

    async def collect() -> None:
        async for change in watch_changes(backend, hub, NS, key="w"):
            seen.append(change)
            live.set()  # the log (revision 1 only) is read: what follows must come through the hub
            if len(seen) == 6:
                return

    watcher = asyncio.create_task(collect())
    await asyncio.wait_for(live.wait(), 10)
    writes = [await backend.put(NS, "w", j(i)) for i in range(1, 4)]
    await backend.put(NS, "unwatched", j(None))  # in the namespace, not under the watch
    last = await backend.put(NS, "w", j(4))
    deleted = await backend.delete(NS, "w")
    assert deleted.change is not None
    # Publish the newest first, then the rest shuffled: the watch fills gaps from the log.
    for change in [deleted.change, writes[1], last, writes[0], writes[2]]:
        hub.publish(change)
    await asyncio.wait_for(watcher, 10)
    assert [(c.revision, c.entry.version, c.deleted) for c in seen] == [
        (1, 1, False),
        (2, 2, False),
        (3, 3, False),
        (4, 4, False),
        (6, 5, False),
        (7, 0, True),
    ]
    assert [orjson.loads(c.entry.value) for c in seen[:5]] == [0, 1, 2, 3, 4]


async def test_a_watcher_that_overflows_catches_up_from_the_log(backend: StateBackend) -> None:
    hub = StateHub(queue_size=3)
    await backend.put(NS, "k", j(0))
    watch = watch_changes(backend, hub, NS)
    assert (await anext(watch)).revision == 1  # subscribed, log read; now paused
    for i in range(1, 20):
        hub.publish(await backend.put(NS, "k", j(i)))
    assert [(await anext(watch)).revision for _ in range(19)] == list(range(2, 21))
    hub.publish(await backend.put(NS, "k", j(20)))  # live again after the catch-up
    assert (await anext(watch)).revision == 21
    await watch.aclose()


async def test_eight_agents_race_one_counter(backend: StateBackend) -> None:
    """8 concurrent writers increment one counter 1,000 times each with compare-and-set."""
    agents, increments = 8, 1_000
    attempts = 0

    async def agent() -> None:
        nonlocal attempts
        entry = await backend.get(NS, "counter")
        for _ in range(increments):
            while True:
                attempts += 1
                current = orjson.loads(entry.value) if entry is not None else 0
                version = entry.version if entry is not None else 0
                try:
                    entry = (await backend.cas(NS, "counter", j(current + 1), version)).entry
                    break
                except StaleVersion as stale:
                    entry = stale.current  # the conflict carries the current entry: no extra read

    await asyncio.wait_for(asyncio.gather(*(agent() for _ in range(agents))), 120)
    final = await backend.get(NS, "counter")
    assert final is not None
    assert orjson.loads(final.value) == agents * increments
    assert final.version == agents * increments
    assert final.revision == agents * increments  # only successful writes are changes
    assert attempts > agents * increments  # there really was contention


async def test_backend_urls(tmp_path: Path) -> None:
    sqlite = await open_state_backend("sqlite", tmp_path / "maos.db")
    try:
        assert isinstance(sqlite, SqliteStateBackend) and sqlite.description == f"sqlite:{tmp_path / 'maos.db'}"
        assert (await sqlite.put(NS, "k", j(1))).entry.version == 1
    finally:
        await sqlite.close()
    with pytest.raises(InvalidArgument, match=re.escape("use sqlite (the default) or redis://host:port/db")):
        await open_state_backend("postgres://x", tmp_path / "maos.db")
    with pytest.raises(
        Unavailable, match=re.escape("the shared-state Redis at redis://:***@127.0.0.1:1/0 cannot be reached")
    ):
        await open_state_backend("redis://:secret@127.0.0.1:1/0", tmp_path / "maos.db")


async def test_sqlite_state_shares_the_task_stores_file(tmp_path: Path) -> None:
    path = tmp_path / "maos.db"
    store = SqliteStore(path)
    await store.open()
    try:
        async with SqliteStateBackend(path) as state:
            writes = [state.put(NS, f"k{i}", j(i)) for i in range(200)]
            await asyncio.gather(*writes, *(store.write(WriteBatch(settings=[(f"s{i}", "v")])) for i in range(50)))
            assert len(await state.list(NS, limit=1000)) == 200
        assert len(await store.load_settings()) == 50
    finally:
        await store.close()
    reopened = SqliteStore(path)
    await reopened.open()  # the state tables do not disturb the store's schema check
    await reopened.close()
    async with SqliteStateBackend(path) as state:
        entry = await state.get(NS, "k199")
        assert entry is not None and entry.revision == 200  # durable, and the revision counter too
        assert (await state.put(NS, "k0", j(0))).entry.revision == 201
