"""The recorder follows the decisions of a real (pure) orchestrator: counts, busy time, the queue."""

from __future__ import annotations

import random

import pytest
from maos.controlplane.core import (
    AttemptResult,
    CoreLimits,
    Orchestrator,
    Outcome,
    Priority,
    TaskRecord,
    TaskStatus,
)
from maos.controlplane.metrics._efficiency import snapshot_tree, tree_efficiency
from maos.controlplane.metrics._recorder import TaskRecorder

T0 = 1_000.0


def make(task_id: str, agent_type: str = "echo", **kw: object) -> TaskRecord:
    fields: dict[str, object] = {
        "root_id": task_id,
        "parent_id": "",
        "spec": None,
        "agent_type": agent_type,
        "priority": Priority.MEDIUM,
        "created_at": T0,
    }
    fields.update(kw)
    return TaskRecord(id=task_id, **fields)  # type: ignore[arg-type]


class Rig:
    """An orchestrator whose every decision batch goes to the recorder, as the runtime does after a commit."""

    def __init__(self, slots: int = 2, types: tuple[str, ...] = ("echo", "slow")) -> None:
        self.o = Orchestrator(CoreLimits(prefetch_min=0, prefetch_max=0), rng=random.Random(1))
        self.r = TaskRecorder(self.o.tasks, T0)
        self.o.host_connected("h1", slots, types, [], T0)
        self.flush()

    def flush(self) -> None:
        self.r.on_commit(self.o.take())

    def submit(self, *records: TaskRecord, now: float = T0) -> None:
        self.o.submit(list(records), now)
        self.o.dispatch(now)
        self.flush()

    def start(self, task_id: str, now: float) -> None:
        self.o.on_started("h1", task_id, self.o.tasks[task_id].attempt, f"w-{task_id}", now)
        self.flush()

    def finish(self, task_id: str, now: float, outcome: Outcome = Outcome.SUCCEEDED) -> None:
        attempt = self.o.tasks[task_id].attempt
        self.o.on_result("h1", AttemptResult(task_id, attempt, outcome, agent_id=f"w-{task_id}"), now)
        self.o.dispatch(now)
        self.flush()


def test_completed_failed_and_cancelled_are_counted_by_type() -> None:
    rig = Rig()
    rig.submit(make("a"), make("b"), make("c", "slow"))
    for task_id in ("a", "b"):
        rig.start(task_id, T0 + 1)
    rig.finish("a", T0 + 2)
    rig.finish("b", T0 + 3, Outcome.FAILED)
    rig.o.cancel("c", "not needed", T0 + 4)
    rig.flush()
    interval = rig.r.take(T0 + 5)
    assert (interval.completed, interval.failed, interval.cancelled) == (1, 1, 1)
    echo, slow = interval.types["echo"], interval.types["slow"]
    assert (echo.completed, echo.failed, slow.cancelled) == (1, 1, 1)
    assert echo.run_seconds == pytest.approx(1.0 + 2.0) and echo.runs == 2
    assert interval.completion.count == 1
    assert interval.completion.peak == pytest.approx(2.0)  # created at T0, completed at T0 + 2
    assert rig.r.totals.completed == {"echo": 1} and rig.r.totals.failed == {"echo": 1}
    assert rig.r.take(T0 + 6).completed == 0  # each interval starts empty


def test_busy_time_is_split_at_sample_boundaries() -> None:
    rig = Rig()
    rig.submit(make("long", "slow"))
    rig.start("long", T0 + 1)
    first = rig.r.take(T0 + 4)  # running: 3 s so far
    assert first.types["slow"].busy_seconds == pytest.approx(3.0)
    rig.finish("long", T0 + 10)
    second = rig.r.take(T0 + 12)
    assert second.types["slow"].busy_seconds == pytest.approx(6.0)  # the rest, not counted twice
    assert second.busy_seconds == pytest.approx(6.0)
    assert rig.r.totals.busy_seconds["slow"] == pytest.approx(9.0)
    assert rig.r.running == 0


def test_queue_depth_follows_priority_changes_and_starts() -> None:
    rig = Rig(slots=1)
    rig.submit(make("a"), make("b"), make("c", priority=Priority.HIGH))
    # One slot: the high one is dispatched (still QUEUED until an agent starts it); two wait.
    assert rig.r.depth()[Priority.MEDIUM] == 2 and rig.r.depth()[Priority.HIGH] == 1
    rig.o.set_priority("b", Priority.CRITICAL, T0 + 1)
    rig.flush()
    assert rig.r.depth()[Priority.MEDIUM] == 1 and rig.r.depth()[Priority.CRITICAL] == 1
    rig.start("c", T0 + 2)
    assert rig.r.depth()[Priority.HIGH] == 0
    assert sum(rig.r.depth().values()) == rig.o.counts_by_status()[TaskStatus.QUEUED]


def test_oldest_and_waiting_see_tasks_no_host_takes() -> None:
    rig = Rig(slots=1, types=("echo",))
    rig.submit(make("run"), now=T0)
    rig.submit(make("ghost1", "ghost"), make("ghost2", "ghost"), now=T0 + 1)
    oldest = rig.r.oldest(T0 + 11)
    # "run" is queued longest, placed on the host but not started: it counts for the oldest.
    assert (oldest.task_id, oldest.seconds) == ("run", pytest.approx(11.0))
    waiting = rig.r.waiting(T0 + 11, lambda task_id: rig.o.lease_of(task_id) is not None)
    assert (waiting.count, waiting.types, waiting.complete) == (2, ("ghost",), True)
    rig.start("run", T0 + 12)
    assert rig.r.oldest(T0 + 12).task_id == "ghost1"


def test_seed_picks_up_what_is_queued_and_running_already() -> None:
    o = Orchestrator(CoreLimits(prefetch_min=0, prefetch_max=0))
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a"), make("b")], T0)
    o.dispatch(T0)
    o.on_started("h1", "a", 1, "w", T0 + 1)
    o.take()  # decided before the recorder existed (a restart)
    r = TaskRecorder(o.tasks, T0 + 2)
    r.seed()
    assert r.running == 1 and r.depth()[Priority.MEDIUM] == 1
    assert r.take(T0 + 4).types["echo"].busy_seconds == pytest.approx(2.0)


def test_finished_trees_are_noted_and_their_efficiency_matches_the_analysis() -> None:
    rig = Rig(slots=2)
    root = make("root", "", group=True)
    children = [make(c, parent_id="root", root_id="root") for c in ("x", "y")]
    rig.submit(root, *children)
    rig.start("x", T0 + 1)
    rig.start("y", T0 + 1)
    rig.finish("x", T0 + 3)
    rig.finish("y", T0 + 5)
    assert list(rig.r.finished_trees) == ["root"]
    interval = rig.r.take(T0 + 6)
    assert interval.completed == 2  # the group root is a container, not a task
    # work 2 + 4 = 6 s; wall 5 s (created T0, last finish T0 + 5); 2 agents: 6 / (5 x 2)
    snapshot = snapshot_tree("root", rig.o.tasks)
    assert snapshot is not None and snapshot[0][0] == "root" and len(snapshot) == 3
    assert tree_efficiency(snapshot) == pytest.approx(0.6)
    assert snapshot_tree("missing", rig.o.tasks) is None
    assert tree_efficiency([]) is None
