"""Task figures from committed decisions: what finished, busy agent time, the queue.

`on_commit` is called with each durable batch of decisions (O(1) per event,
attempt and finished task); `take` hands over one interval's figures at each
sample. Busy time is exact per interval: an attempt that runs across a
sample boundary is split at it. No I/O, no clock: callers pass the times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from maos.controlplane.core import Decisions, Priority, TaskRecord, TaskStatus

from ._histogram import Histogram
from ._window import TypeCounts

OLDEST_LOOKAHEAD = 64  # queued tasks looked at for the oldest (the dict is in queueing order, roughly)
WAITING_SCAN_LIMIT = 10_000  # queued tasks looked at for the ones on no host
PENDING_TREES = 16  # finished task trees kept for the parallel-efficiency figure
_QUEUED, _RUNNING = TaskStatus.QUEUED, TaskStatus.RUNNING


@dataclass(slots=True)
class TaskInterval:
    """What happened to tasks between two samples."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    completion: Histogram = field(default_factory=Histogram)
    types: dict[str, TypeCounts] = field(default_factory=dict)
    busy_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Waiting:
    """Due queued tasks that no host holds yet."""

    count: int
    types: tuple[str, ...]
    complete: bool  # False when the scan stopped at WAITING_SCAN_LIMIT


@dataclass(frozen=True, slots=True)
class Oldest:
    seconds: float = 0.0
    task_id: str = ""
    agent_type: str = ""


@dataclass(slots=True)
class Totals:
    """Counters since start-up (for Prometheus)."""

    completed: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    busy_seconds: dict[str, float] = field(default_factory=dict)
    completion_count: int = 0
    completion_seconds: float = 0.0


class TaskRecorder:
    """Follows the durable task decisions of one control plane."""

    def __init__(self, tasks: Mapping[str, TaskRecord], now: float) -> None:
        self._tasks = tasks
        self._interval_start = now
        self._current = TaskInterval()
        self._running: dict[tuple[str, int], tuple[str, float]] = {}  # (task, attempt) -> (type, started)
        self._queued: dict[str, Priority] = {}  # QUEUED tasks, in the order they were queued
        self._depth: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.finished_trees: deque[str] = deque(maxlen=PENDING_TREES)
        self.totals = Totals()

    def seed(self) -> None:
        """Pick up what is queued and running already (after a restart, before any event)."""
        for rec in self._tasks.values():
            if rec.status == TaskStatus.QUEUED and not rec.group:
                self._enqueued(rec.id)
            elif rec.status == TaskStatus.RUNNING and not rec.group and rec.started_at:
                self._running.setdefault((rec.id, rec.attempt), (rec.agent_type, rec.started_at))

    # ------------------------------------------------------------------ events

    def on_commit(self, d: Decisions) -> None:
        queued, depth = self._queued, self._depth  # locals: this runs for every event of every task
        for ev in d.events:
            if ev.status is _QUEUED:
                self._enqueued(ev.task_id)
            elif queued:
                priority = queued.pop(ev.task_id, None)
                if priority is not None:
                    depth[priority] -= 1
        running = self._running
        for a in d.attempts.values():
            if a.finished_at:
                known = running.pop((a.task_id, a.number), None)
                started = a.started_at or (known[1] if known else 0.0)
                if started:
                    agent_type = known[0] if known else self._type_of(a.task_id)
                    self._busy(agent_type, a.finished_at - max(started, self._interval_start))
                    totals = self.totals.busy_seconds
                    totals[agent_type] = totals.get(agent_type, 0.0) + max(a.finished_at - started, 0.0)
            elif a.started_at and a.status is _RUNNING:
                running[(a.task_id, a.number)] = (self._type_of(a.task_id), a.started_at)
        for rec in d.finished:
            self._finished(rec)

    def _type_of(self, task_id: str) -> str:
        rec = self._tasks.get(task_id)
        return rec.agent_type if rec is not None else ""

    def _enqueued(self, task_id: str) -> None:
        rec = self._tasks.get(task_id)
        if rec is None:
            return
        before = self._queued.get(task_id)
        if before is not None:
            if before == rec.priority:
                return
            self._depth[before] -= 1  # a priority change or aging: same place in the order
        self._queued[task_id] = rec.priority
        self._depth[rec.priority] += 1

    def _busy(self, agent_type: str, seconds: float) -> None:
        if seconds <= 0:
            return
        self._counts(agent_type).busy_seconds += seconds
        self._current.busy_seconds += seconds

    def _counts(self, agent_type: str) -> TypeCounts:
        counts = self._current.types.get(agent_type)
        if counts is None:
            counts = self._current.types[agent_type] = TypeCounts()
        return counts

    def _finished(self, rec: TaskRecord) -> None:
        if rec.id == rec.root_id and rec.children:
            self.finished_trees.append(rec.id)
        if rec.group:
            return  # a workflow root is a container: its nodes are the tasks
        cur, totals, counts = self._current, self.totals, self._counts(rec.agent_type)
        status = rec.status
        if status == TaskStatus.COMPLETED:
            cur.completed += 1
            counts.completed += 1
            totals.completed[rec.agent_type] = totals.completed.get(rec.agent_type, 0) + 1
            seconds = max(rec.finished_at - rec.created_at, 0.0)
            cur.completion.add(seconds)
            totals.completion_count += 1
            totals.completion_seconds += seconds
        elif status == TaskStatus.CANCELLED:
            cur.cancelled += 1
            counts.cancelled += 1
            totals.cancelled[rec.agent_type] = totals.cancelled.get(rec.agent_type, 0) + 1
            return
        else:
            cur.failed += 1
            counts.failed += 1
            totals.failed[rec.agent_type] = totals.failed.get(rec.agent_type, 0) + 1
        if rec.started_at:
            counts.run_seconds += max(rec.finished_at - rec.started_at, 0.0)
            counts.runs += 1

    # --------------------------------------------------------------- sampling

    def take(self, now: float) -> TaskInterval:
        """The interval since the previous take, with the running attempts' share of it."""
        for agent_type, started in self._running.values():
            self._busy(agent_type, now - max(started, self._interval_start))
        out, self._current = self._current, TaskInterval()
        self._interval_start = now
        return out

    @property
    def running(self) -> int:
        return len(self._running)

    def running_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for agent_type, _ in self._running.values():
            out[agent_type] = out.get(agent_type, 0) + 1
        return out

    def depth(self) -> dict[Priority, int]:
        """QUEUED tasks by (effective) priority: waiting for a host, or held by one and not started."""
        return dict(self._depth)

    def oldest(self, now: float) -> Oldest:
        """The longest-queued task that is due (not waiting out a retry backoff)."""
        best: TaskRecord | None = None
        looked = 0
        for task_id in self._queued:
            rec = self._tasks.get(task_id)
            if rec is None or rec.retry_at > now:
                continue
            if best is None or rec.queued_at < best.queued_at:
                best = rec
            looked += 1
            if looked >= OLDEST_LOOKAHEAD:
                break
        if best is None or not best.queued_at:
            return Oldest()
        return Oldest(max(now - best.queued_at, 0.0), best.id, best.agent_type)

    def waiting(self, now: float, placed: Callable[[str], bool]) -> Waiting:
        """Due queued tasks that no host holds (`placed` says whether one does)."""
        count = 0
        types: set[str] = set()
        for scanned, task_id in enumerate(self._queued):
            if scanned >= WAITING_SCAN_LIMIT:
                return Waiting(count, tuple(sorted(types)), False)
            rec = self._tasks.get(task_id)
            if rec is None or rec.retry_at > now or placed(task_id):
                continue
            count += 1
            types.add(rec.agent_type)
        return Waiting(count, tuple(sorted(types)), True)
