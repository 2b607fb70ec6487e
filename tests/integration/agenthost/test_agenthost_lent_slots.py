"""Lent slots with real worker processes: capacity = workers + lent, extra workers, no preemption, retirement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from maos.agenthost import Outcome, WorkerPool

from tests.integration.agenthost.agenthost_support import Collector, PoolFactory, task


async def eventually(predicate: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def worker_ids(pool: WorkerPool) -> list[str]:
    return [w.id for w in pool.workers()]


async def test_a_lent_slot_runs_queued_work_on_an_extra_worker(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1)
    pool.submit([task("parent", "cooperative")])
    await collector.wait_started("parent")
    # Lending with nothing queued starts nothing.
    assert pool.set_lent("parent", 1, True)
    assert (pool.capacity, pool.lent_count, pool.free_slots) == (2, 1, 1)
    await asyncio.sleep(0.3)
    assert worker_ids(pool) == ["test-w0"]

    pool.submit([task("child", "echo", '"hi"')])
    out = await collector.wait("child")
    assert out.outcome is Outcome.SUCCEEDED
    assert out.agent_id == "test-x1"  # an extra process; the parent still holds test-w0
    assert worker_ids(pool) == ["test-w0", "test-x1"]
    assert "parent" not in collector.outcomes

    # A second level: the child-of-child waits too, and another extra appears only when work is queued.
    pool.submit([task("child2", "cooperative")])
    await collector.wait_started("child2")
    assert pool.set_lent("child2", 1, True)
    pool.submit([task("grandchild", "echo", "1")])
    assert (await collector.wait("grandchild")).agent_id == "test-x2"
    assert pool.capacity == 3
    assert pool.free_slots == 1  # 3 - the two waiting parents


async def test_without_a_lent_slot_queued_work_waits(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1)
    pool.submit([task("parent", "cooperative"), task("child", "echo", "1")])
    await collector.wait_started("parent")
    assert pool.free_slots == 0
    await asyncio.sleep(0.5)
    assert "child" not in collector.outcomes
    assert worker_ids(pool) == ["test-w0"]
    pool.set_lent("parent", 1, True)
    assert (await collector.wait("child")).outcome is Outcome.SUCCEEDED


async def test_taking_a_slot_back_preempts_nothing_and_retires_the_extra(
    make_pool: PoolFactory, collector: Collector
) -> None:
    pool = await make_pool(size=1, extra_linger_seconds=0.2)
    pool.submit([task("parent", "cooperative")])
    await collector.wait_started("parent")
    pool.set_lent("parent", 1, True)
    pool.submit([task("long", "cooperative")])
    await collector.wait_started("long")
    assert worker_ids(pool) == ["test-w0", "test-x1"]

    # The parent resumes: two tasks run on a capacity of one; neither is stopped.
    assert pool.set_lent("parent", 1, False)
    assert (pool.capacity, pool.lent_count, pool.free_slots) == (1, 0, 0)
    pool.submit([task("next", "echo", "2")])
    await asyncio.sleep(0.6)
    assert not collector.outcomes
    assert worker_ids(pool) == ["test-w0", "test-x1"]

    # The extra's task ends: it goes idle, yet still one task runs on a capacity of one, so `next`
    # waits, and the extra (above capacity) is stopped after its linger.
    pool.cancel("long", 1)
    assert (await collector.wait("long")).outcome is Outcome.CANCELLED
    await eventually(lambda: worker_ids(pool) == ["test-w0"], within=10)
    assert "next" not in collector.outcomes

    pool.cancel("parent", 1)
    out = await collector.wait("next")
    assert out.outcome is Outcome.SUCCEEDED
    assert out.agent_id == "test-w0"


async def test_a_finished_lease_forgets_its_lent_slot(make_pool: PoolFactory, collector: Collector) -> None:
    pool = await make_pool(size=1, extra_linger_seconds=0.1)
    assert not pool.set_lent("nobody", 1, True)  # not held here: ignored
    assert pool.capacity == 1
    pool.submit([task("parent", "cooperative")])
    await collector.wait_started("parent")
    assert not pool.set_lent("parent", 2, True)  # another attempt of it: ignored too
    pool.set_lent("parent", 1, True)
    pool.set_lent("parent", 1, True)  # idempotent
    assert pool.capacity == 2
    pool.submit([task("child", "cooperative")])
    await collector.wait_started("child")
    pool.cancel("parent", 1)  # killed while waiting: its result is reported, its lent slot goes with it
    await collector.wait("parent")
    assert (pool.capacity, pool.lent_count) == (1, 0)
    assert not pool.set_lent("parent", 1, False)
    pool.cancel("child", 1)
    await collector.wait("child")
    await eventually(lambda: len(pool.workers()) == 1, within=10)


async def test_a_lent_slot_flapping_keeps_the_extra_worker(make_pool: PoolFactory, collector: Collector) -> None:
    # The SDK re-enters a long wait every 30 s: lent=false then lent=true a moment later.
    pool = await make_pool(size=1, extra_linger_seconds=0.5)
    pool.submit([task("parent", "cooperative")])
    await collector.wait_started("parent")
    pool.set_lent("parent", 1, True)
    pool.submit([task("c1", "echo", "1")])
    await collector.wait("c1")
    (extra,) = [w for w in pool.workers() if w.id == "test-x1"]
    pool.set_lent("parent", 1, False)
    pool.set_lent("parent", 1, True)
    await asyncio.sleep(0.8)
    pool.submit([task("c2", "echo", "2")])
    out = await collector.wait("c2")
    assert out.agent_id == "test-x1"
    assert [w.pid for w in pool.workers() if w.id == "test-x1"] == [extra.pid]  # the same process


async def test_python_agents_see_their_task_in_the_environment(
    make_pool: PoolFactory, collector: Collector, tmp_path: Path
) -> None:
    pool = await make_pool(size=1)
    later = tmp_path / "later.json"
    pool.submit(
        [
            task("e1", "env_view", root_id="r1"),
            task("e2", "env_view", orjson.dumps({"later": str(later)}).decode()),
        ]
    )
    first, second = (await collector.wait("e1")), (await collector.wait("e2"))
    assert first.outcome is Outcome.SUCCEEDED, first.error_message
    expected = {
        "MAOS_ENDPOINT": "127.0.0.1:7700",
        "MAOS_TASK_ID": "e1",
        "MAOS_ATTEMPT": "1",
        "MAOS_ROOT_ID": "r1",
        "MAOS_AGENT_TYPE": "env_view",
    }
    view = orjson.loads(first.result_json or "")
    assert view == {"python": expected, "child": expected}
    view = orjson.loads(second.result_json or "")
    expected |= {"MAOS_TASK_ID": "e2", "MAOS_ROOT_ID": "e2"}  # a task without a root is its own root
    assert view == {"python": expected, "child": expected}
    # A thread the task left behind looks again once the worker is idle: no task is named any more.
    await eventually(later.exists, within=10)
    idle = {k: None for k in expected} | {"MAOS_ENDPOINT": "127.0.0.1:7700"}
    assert orjson.loads(later.read_bytes()) == {"python": idle, "child": idle}
