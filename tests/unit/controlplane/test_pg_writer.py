"""The asyncio group-commit writer riding out an outage, with a stand-in commit (no database)."""

from __future__ import annotations

import asyncio

import pytest
from maos.controlplane.store._pg_writer import AsyncGroupWriter
from maos.errors import Unavailable


class Down(Unavailable):
    pass


class FakeDatabase:
    """Commits lists of ints; while `down`, every commit raises Down (after `applied_anyway`, once)."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.down = False
        self.applied_anyway = False  # the next failing commit does commit before "losing the connection"
        self.replays = 0

    async def commit(self, groups: list[list[int]]) -> None:
        await asyncio.sleep(0)
        if self.down:
            if self.applied_anyway:
                self.applied_anyway = False
                self._apply(groups)
            raise Down("the database is unreachable: connection reset")
        for g in groups:
            if any(r in self.rows for r in g):
                raise AssertionError(f"row committed twice: {g}")
        self._apply(groups)

    async def replay(self, groups: list[list[int]]) -> None:
        self.replays += 1
        if self.down:
            raise Down("the database is unreachable: connection refused")
        self._apply([[r for r in g if r not in self.rows] for g in groups])

    def _apply(self, groups: list[list[int]]) -> None:
        for g in groups:
            self.rows.extend(g)


def _writer(db: FakeDatabase, limit: float = 60.0, **kw: object) -> AsyncGroupWriter[list[int]]:
    return AsyncGroupWriter(
        db.commit,
        name="test-writer",
        transient=(Down,),
        replay=db.replay,
        outage_limit_seconds=limit,
        **kw,  # type: ignore[arg-type]
    )


async def test_writes_during_an_outage_wait_and_commit_in_order_once_it_ends() -> None:
    db = FakeDatabase()
    outages: list[BaseException | None] = []
    writer = _writer(db, on_outage=outages.append)
    writer.start()
    await writer.submit([1])
    db.down, db.applied_anyway = True, True  # the first failed commit did commit: an ambiguous one
    pending = [writer.submit([i]) for i in range(2, 7)]
    await asyncio.sleep(0.2)
    assert not any(f.done() for f in pending)
    assert writer.failing_since is not None and writer.backlog == 5
    db.down = False
    await asyncio.wait_for(asyncio.gather(*pending), timeout=10)
    assert db.rows == [1, 2, 3, 4, 5, 6]  # in order, each once: the retry replayed
    assert db.replays >= 1 and writer.backlog == 0 and writer.failing_since is None
    assert len(outages) == 2 and isinstance(outages[0], Down) and outages[1] is None
    await writer.close()


async def test_past_the_limit_pending_writes_fail_with_unavailable_and_the_owner_is_told() -> None:
    db = FakeDatabase()
    told: list[str] = []
    writer = _writer(db, limit=0.2, on_give_up=told.append)
    writer.start()
    db.down = True
    pending = [writer.submit([i]) for i in range(3)]
    for fut in pending:
        with pytest.raises(Unavailable, match="not recorded after"):
            await asyncio.wait_for(fut, timeout=10)
    assert len(told) == 1 and "3 rows were not recorded" in told[0]
    assert writer.backlog == 0 and db.rows == []
    db.down = False
    await writer.submit([9])  # the writer carries on (its owner decides whether to stop)
    assert db.rows == [9]
    await writer.close()


async def test_without_transient_errors_a_failure_fails_its_group_at_once() -> None:
    db = FakeDatabase()
    writer: AsyncGroupWriter[list[int]] = AsyncGroupWriter(db.commit, name="plain")
    writer.start()
    db.down = True
    with pytest.raises(Down):
        await asyncio.wait_for(writer.submit([1]), timeout=10)
    await writer.close()
