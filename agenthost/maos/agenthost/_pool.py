"""The worker pool: a local task queue, N warm worker processes, timeouts, cancels and crash recovery.

Everything runs on the host's event loop and nothing in it blocks: the pool
reacts to frames from workers and to timers, and reports through a
PoolListener (started / progress / finished), synchronously and in order.

Dispatch: a worker gets work only when idle. If several tasks are queued, it
gets up to the profile's batch_size of them in one frame (split fairly over
the idle workers); it runs them in order and returns results in batches. The
head of a worker's in-flight batch is the task it runs now: it becomes head
when the result of the one before it arrives (the worker flushes results
within ~2 ms, so start times and timeouts are accurate to that).

Crashes: each worker writes the seq of the running task into shared memory,
so when a worker dies the pool knows which task killed it (worker_died),
and puts the tasks of the batch that it had not run (or whose results died
with it) back at the front of the local queue.

Lent slots: while a running task waits on other tasks (its children), the
control plane lends its slot (`set_lent(..., True)`) and counts it as free.
Capacity is then `size + lent`: the pool runs that many tasks at once, and
starts an extra worker process when work is queued, no worker is idle and
fewer than `capacity` workers exist. When a slot is taken back nothing is
preempted: no task starts until fewer than `capacity` workers are busy, and
extra workers above capacity are stopped once they have been idle for
`extra_linger_seconds` (a parent that re-enters its wait right away, as the
SDK does every 30 s, does not churn processes). The warm pool stays at `size`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import math
import os
import signal
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import maos
import psutil
from maos import tracing
from maos.profiles import AgentProfile, PythonRunner
from maos.tracing import TRACING_ENV

from ._frames import encode_frame
from ._worker_proc import WorkerProcess

logger = logging.getLogger(__name__)

# A task whose worker died without it being the one running is requeued at most this often.
MAX_REQUEUES = 3
_MONITOR_INTERVAL_SECONDS = 1.0
_WORKER_START_TIMEOUT_SECONDS = 60.0
# Between its deadline and the kill, a stuck head is re-checked this often (its result may be in flight).
_DEADLINE_RECHECK_SECONDS = 0.01
_DEADLINE_RECHECKS = 100
# An extra worker above capacity is stopped after being idle this long.
EXTRA_LINGER_SECONDS = 1.0


class Outcome(enum.IntEnum):
    """How an attempt ended; the numbers are maos.v1.Outcome's."""

    SUCCEEDED = 1
    FAILED = 2
    TIMED_OUT = 3
    CANCELLED = 4


class WorkerStatus(enum.Enum):
    """Lifecycle of a worker process; the names are maos.v1.AgentStatus's without the prefix."""

    IDLE = "IDLE"
    BUSY = "BUSY"
    WARMING = "WARMING"
    DRAINING = "DRAINING"
    DEAD = "DEAD"


_QUEUED, _SENT, _DONE = 0, 1, 2


@dataclass(slots=True, eq=False)
class PoolTask:
    """One task attempt (a lease) as the pool runs it.

    `input_json` is the input as JSON text; each dependency is a dict with
    task_id, key, status (e.g. "COMPLETED"), result (JSON text) and
    description. `timeout_seconds` <= 0 means the profile's timeout. `tag` is
    the submitter's own (the pool never reads it).
    """

    task_id: str
    attempt: int
    agent_type: str
    description: str = ""
    input_json: str = "null"
    timeout_seconds: float = 0.0
    root_id: str = ""
    parent_id: str = ""
    dependencies: list[dict[str, Any]] | None = None
    labels: dict[str, str] | None = None
    tag: Any = None
    # W3C traceparent/tracestate of the host's span: the worker's span becomes its child.
    trace_context: dict[str, str] | None = None
    # ---- pool bookkeeping ----
    seq: int = 0
    state: int = _QUEUED
    started_at: float = 0.0
    stop: tuple[Outcome, str, str] | None = None
    requeues: int = 0
    profile: AgentProfile | None = field(default=None, repr=False)


@dataclass(slots=True)
class TaskOutcome:
    """The end of one attempt. `result_json` is set when the outcome is SUCCEEDED."""

    task: PoolTask
    outcome: Outcome
    result_json: str | None = None
    error_kind: str = ""
    error_message: str = ""
    log: str = ""
    agent_id: str = ""
    duration_seconds: float = 0.0


class PoolListener(Protocol):
    """Receives what happens to submitted tasks; called on the event loop, must not block."""

    def task_started(self, task: PoolTask, agent_id: str) -> None:
        """A worker began `task` (may repeat if the task is requeued after a worker death)."""

    def task_progress(self, task: PoolTask, fraction: float, message: str) -> None:
        """The agent reported progress."""

    def task_finished(self, outcome: TaskOutcome) -> None:
        """The attempt is over; exactly once per accepted task."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A snapshot of one worker for heartbeats and admin views."""

    id: str
    index: int
    pid: int
    status: WorkerStatus
    agent_type: str
    task_id: str
    tasks_completed: int
    tasks_failed: int
    started_at: float  # wall-clock seconds since the epoch
    rss_bytes: int


class _Slot:
    """One worker position in the pool; its process is replaced when it dies."""

    __slots__ = (
        "completed",
        "deadline",
        "deadline_checks",
        "extra",
        "failed",
        "id",
        "index",
        "inflight",
        "kill_timer",
        "killed_for",
        "proc",
        "psutil_proc",
        "quick_deaths",
        "ready",
        "rss",
        "started_at",
        "status",
    )

    def __init__(self, index: int, worker_id: str, *, extra: bool = False) -> None:
        self.index = index
        self.id = worker_id
        # Started for a lent slot; stopped again when the pool is above capacity and it is idle.
        self.extra = extra
        self.proc: WorkerProcess | None = None
        self.status = WorkerStatus.WARMING
        self.inflight: collections.deque[PoolTask] = collections.deque()
        self.deadline: asyncio.TimerHandle | None = None
        self.deadline_checks = 0
        self.kill_timer: asyncio.TimerHandle | None = None
        self.killed_for: PoolTask | None = None
        self.completed = 0
        self.failed = 0
        self.started_at = 0.0
        self.rss = 0
        self.psutil_proc: psutil.Process | None = None
        self.quick_deaths = 0
        self.ready: asyncio.Future[None] | None = None


class WorkerPool:
    """N worker processes fed from one local queue.

        async with WorkerPool(profiles, size=4, listener=listener) as pool:
            pool.submit([PoolTask("t1", 1, "echo", input_json='{"x": 1}')])

    `submit`, `cancel` and the views are synchronous and cheap; `start` warms
    the workers; `shutdown(grace)` lets held tasks finish for up to `grace`
    seconds, cancels the rest, and stops the workers.
    """

    def __init__(
        self,
        profiles: Mapping[str, AgentProfile],
        *,
        size: int,
        listener: PoolListener,
        host_id: str = "local",
        kill_grace_seconds: float = 2.0,
        python_path: Sequence[str | Path] = (),
        endpoint: str = "",
        env: Mapping[str, str] | None = None,
        extra_linger_seconds: float = EXTRA_LINGER_SECONDS,
    ) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one worker, got size={size}")
        self._profiles = dict(profiles)
        self._listener = listener
        self.host_id = host_id
        self.size = size
        self._kill_grace = kill_grace_seconds
        self._python_path = [str(Path(p).resolve()) for p in python_path]
        self._endpoint = endpoint
        self._env = dict(env) if env is not None else None
        self._slots = [_Slot(i, f"{host_id}-w{i}") for i in range(size)]
        self._idle: list[_Slot] = []
        # Leases whose slot the control plane lent out; capacity = size + len(_lent).
        self._lent: set[tuple[str, int]] = set()
        self._capacity = size
        self._extra_linger = extra_linger_seconds
        self._next_extra = size
        self._retiring: set[_Slot] = set()
        self._retire_timer: asyncio.TimerHandle | None = None
        self._queue: collections.deque[PoolTask] = collections.deque()
        self._held: dict[tuple[str, int], PoolTask] = {}
        self._next_seq = 1
        self._all_done = asyncio.Event()
        self._all_done.set()
        self._background: set[asyncio.Task[None]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._closing = False
        self._closed = False
        self._init_frame = b""

    # ---- lifecycle ----

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Start every worker and wait until all of them are ready (warm)."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._init_frame = encode_frame({"init": self._init_message()})
        await asyncio.gather(*(self._spawn(slot) for slot in self._slots))
        waits = [slot.ready for slot in self._slots if slot.ready is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), _WORKER_START_TIMEOUT_SECONDS)
        except BaseException:
            await self.shutdown(grace=0.1)
            raise
        self._monitor = asyncio.create_task(self._monitor_loop(), name="maos-pool-monitor")
        logger.info("worker pool ready: %d workers, agent types %s", self.size, ", ".join(sorted(self._profiles)))

    async def shutdown(self, grace: float = 10.0) -> None:
        """Finish held tasks within `grace` seconds, cancel the rest (kind "host_shutdown"), stop workers.

        Idempotent. Bounded by roughly grace + kill grace + 2 s.
        """
        if self._closed:
            return
        self._closing = True
        if self._started and self._held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_done.wait(), grace)
        if self._held:
            message = "the agent host shut down before the task finished"
            for task in list(self._held.values()):
                self._stop(task, Outcome.CANCELLED, "host_shutdown", message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_done.wait(), self._kill_grace + 1.0)
        self._closed = True
        if self._retire_timer is not None:
            self._retire_timer.cancel()
            self._retire_timer = None
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for bg in list(self._background):
            bg.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        procs = [slot.proc for slot in (*self._slots, *self._retiring) if slot.proc is not None]
        for slot in self._slots:
            if slot.proc is not None and slot.proc.alive:
                slot.status = WorkerStatus.DRAINING
                slot.proc.send(encode_frame({"stop": True}))
                slot.proc.close_input()
        for proc in procs:
            if not await proc.wait_exited(2.0):
                proc.kill()
                await proc.wait_exited(5.0)
        # Anything still held (a worker that would not die) is reported rather than lost.
        for task in list(self._held.values()):
            self._finish(None, task, Outcome.CANCELLED, None, "host_shutdown", "the agent host shut down", "", 0.0)

    # ---- work ----

    def submit(self, tasks: Iterable[PoolTask]) -> None:
        """Queue tasks and hand them to idle workers. Duplicate leases are ignored.

        A task of an unknown agent type, or submitted while shutting down,
        is finished at once (FAILED "unknown_agent_type" / CANCELLED "host_shutdown").
        """
        held = self._held
        queue = self._queue
        for task in tasks:
            key = (task.task_id, task.attempt)
            if key in held:
                logger.debug("ignoring duplicate assignment %s attempt %d", task.task_id, task.attempt)
                continue
            profile = self._profiles.get(task.agent_type)
            held[key] = task
            self._all_done.clear()
            if profile is None:
                known = ", ".join(sorted(self._profiles)) or "none"
                self._finish(
                    None,
                    task,
                    Outcome.FAILED,
                    None,
                    "unknown_agent_type",
                    f"this host has no agent type {task.agent_type!r} (it has: {known})",
                    "",
                    0.0,
                )
                continue
            if self._closing:
                self._finish(
                    None, task, Outcome.CANCELLED, None, "host_shutdown", "the agent host is shutting down", "", 0.0
                )
                continue
            task.profile = profile
            if task.timeout_seconds <= 0 or not math.isfinite(task.timeout_seconds):
                task.timeout_seconds = profile.timeout_seconds
            task.state = _QUEUED
            queue.append(task)
        self._dispatch()

    def cancel(
        self,
        task_id: str,
        attempt: int,
        *,
        outcome: Outcome = Outcome.CANCELLED,
        kind: str = "cancelled",
        message: str = "cancelled",
    ) -> bool:
        """Stop a held task: dropped at once if queued here, else cooperative cancel then SIGKILL after
        the kill grace. It finishes with `outcome`. False if the lease is unknown or already finished."""
        task = self._held.get((task_id, attempt))
        if task is None:
            return False
        self._stop(task, outcome, kind, message)
        return True

    # ---- views ----

    def leases(self) -> list[tuple[str, int]]:
        """Every (task_id, attempt) held: queued here or sent to a worker."""
        return list(self._held)

    @property
    def held_count(self) -> int:
        """Tasks held (queued or running)."""
        return len(self._held)

    @property
    def queued_count(self) -> int:
        """Tasks waiting in the local queue (not sent to a worker)."""
        return sum(1 for t in self._queue if t.state == _QUEUED)

    @property
    def free_slots(self) -> int:
        """How many more tasks the pool can start right away (lent slots included)."""
        return max(0, self._capacity - len(self._held))

    @property
    def capacity(self) -> int:
        """How many tasks may run at once: `size` plus the slots lent out now."""
        return self._capacity

    @property
    def lent_count(self) -> int:
        """Slots lent out now (held tasks blocked waiting on other tasks)."""
        return len(self._lent)

    def set_lent(self, task_id: str, attempt: int, lent: bool) -> bool:
        """The control plane lent (True) or took back (False) the slot of a held task.

        Lending raises capacity by one and starts an extra worker if queued
        work needs it; taking back lowers it without preempting anything.
        Idempotent; False (and nothing changes) if the lease is not held here.
        """
        key = (task_id, attempt)
        if key not in self._held:
            logger.debug("ignoring slot_lent for %s attempt %d: not held here", task_id, attempt)
            return False
        if lent:
            if key in self._lent:
                return True
            self._lent.add(key)
            self._capacity += 1
            self._dispatch()  # may start an extra worker for queued work
        elif key in self._lent:
            self._lent.discard(key)
            self._capacity -= 1
            self._after_capacity_drop()
        return True

    @property
    def profiles(self) -> Mapping[str, AgentProfile]:
        """The agent types this pool runs."""
        return self._profiles

    def workers(self) -> list[WorkerInfo]:
        """A snapshot of every worker."""
        infos = []
        for slot in self._slots:
            head = slot.inflight[0] if slot.inflight else None
            infos.append(
                WorkerInfo(
                    id=slot.id,
                    index=slot.index,
                    pid=slot.proc.pid if slot.proc is not None else 0,
                    status=slot.status,
                    agent_type=head.agent_type if head is not None else "",
                    task_id=head.task_id if head is not None else "",
                    tasks_completed=slot.completed,
                    tasks_failed=slot.failed,
                    started_at=slot.started_at,
                    rss_bytes=slot.rss,
                )
            )
        return infos

    async def wait_idle(self, within: float | None = None) -> bool:
        """Wait until no task is held (at most `within` seconds); False on timeout."""
        try:
            await asyncio.wait_for(self._all_done.wait(), within)
        except TimeoutError:
            return False
        return True

    # ---- dispatch ----

    def _dispatch(self) -> None:
        queue = self._queue
        idle = self._idle
        budget = len(idle)
        if len(self._slots) > self._capacity and queue and idle:
            # More workers than capacity (a lent slot was taken back): start only what capacity
            # allows, on warm workers first so the extras go idle and retire.
            budget = self._capacity - sum(1 for s in self._slots if s.inflight)
            idle.sort(key=_warm_last)
        while queue and idle and budget > 0:
            first = queue.popleft()
            if first.state != _QUEUED:
                continue  # cancelled while queued
            budget -= 1
            slot = idle.pop()
            assert first.profile is not None
            batch = [first]
            limit = first.profile.batch_size
            if limit > 1 and queue:
                # Share the queue fairly among the idle workers rather than give one worker everything.
                limit = min(limit, -(-(len(queue) + 1) // (len(idle) + 1)))
                while len(batch) < limit and queue:
                    nxt = queue[0]
                    if nxt.state != _QUEUED:
                        queue.popleft()
                        continue
                    assert nxt.profile is not None
                    if nxt.profile.batch_size < 2:
                        break
                    limit = min(limit, nxt.profile.batch_size)
                    batch.append(queue.popleft())
            self._send(slot, batch)
        if queue and not idle and self._capacity > len(self._slots):
            self._grow()

    def _grow(self) -> None:
        """Start extra workers for queued work, up to capacity (only ever with lent slots)."""
        if self._closing or self._loop is None:
            return
        room = self._capacity - len(self._slots)
        warming = sum(1 for s in self._slots if s.status is WorkerStatus.WARMING)
        wanted = sum(1 for t in self._queue if t.state == _QUEUED) - warming - len(self._idle)
        for _ in range(min(room, wanted)):
            index = self._next_extra
            self._next_extra += 1
            slot = _Slot(index, f"{self.host_id}-x{index}", extra=True)
            self._slots.append(slot)
            logger.info("starting extra worker %s: %d slot(s) lent", slot.id, len(self._lent))
            self._background_task(self._spawn(slot), f"maos-spawn-{slot.id}")

    def _after_capacity_drop(self) -> None:
        if len(self._slots) > self._capacity:
            self._arm_retire()

    def _arm_retire(self) -> None:
        if self._retire_timer is None and not self._closed and self._loop is not None:
            self._retire_timer = self._loop.call_later(self._extra_linger, self._retire_surplus)

    def _retire_surplus(self) -> None:
        """Stop idle extra workers while there are more workers than capacity."""
        self._retire_timer = None
        surplus = len(self._slots) - self._capacity
        if surplus <= 0 or self._closed:
            return
        for slot in [s for s in self._idle if s.extra][:surplus]:
            self._idle.remove(slot)
            self._slots.remove(slot)
            self._retiring.add(slot)
            slot.status = WorkerStatus.DRAINING
            logger.info("stopping extra worker %s: capacity is back to %d", slot.id, self._capacity)
            if slot.proc is not None:
                slot.proc.send(encode_frame({"stop": True}))
                slot.proc.close_input()
        # Extras still busy above capacity are retired when they go idle (see _on_message).

    def _send(self, slot: _Slot, batch: list[PoolTask]) -> None:
        wire = []
        seq = self._next_seq
        for task in batch:
            task.seq = seq
            seq += 1
            task.state = _SENT
            item: dict[str, Any] = {
                "s": task.seq,
                "id": task.task_id,
                "a": task.attempt,
                "ty": task.agent_type,
                "d": task.description,
                "in": task.input_json,
            }
            if task.root_id:
                item["root"] = task.root_id
            if task.parent_id:
                item["par"] = task.parent_id
            if task.dependencies:
                item["deps"] = task.dependencies
            if task.labels:
                item["lab"] = task.labels
            if task.trace_context:
                item["tc"] = task.trace_context
            wire.append(item)
        self._next_seq = seq
        slot.inflight.extend(batch)
        slot.status = WorkerStatus.BUSY
        assert slot.proc is not None
        slot.proc.send(encode_frame({"run": wire}))
        self._on_head(slot, time.monotonic())

    def _on_head(self, slot: _Slot, now: float) -> None:
        """slot.inflight[0] has just started running."""
        task = slot.inflight[0]
        task.started_at = now
        self._listener.task_started(task, slot.id)
        if slot.deadline is not None:
            slot.deadline.cancel()
            slot.deadline = None
        assert self._loop is not None
        if task.stop is not None:
            # Cancelled while it waited in the worker's batch: the worker skips it, or we kill.
            self._arm_kill(slot, task)
        elif task.timeout_seconds > 0:
            slot.deadline_checks = 0
            slot.deadline = self._loop.call_at(now + task.timeout_seconds, self._on_deadline, slot, task)

    def _on_deadline(self, slot: _Slot, task: PoolTask) -> None:
        slot.deadline = None
        if task.state != _SENT or not slot.inflight or slot.inflight[0] is not task or slot.proc is None:
            return
        running = slot.proc.running_seq()
        if running != task.seq and slot.deadline_checks < _DEADLINE_RECHECKS:
            # The worker is past this task; its result is on the way (flushed within ~2 ms).
            slot.deadline_checks += 1
            assert self._loop is not None
            slot.deadline = self._loop.call_later(_DEADLINE_RECHECK_SECONDS, self._on_deadline, slot, task)
            return
        self._stop(task, Outcome.TIMED_OUT, "timeout", f"exceeded timeout of {task.timeout_seconds:g}s")

    def _stop(self, task: PoolTask, outcome: Outcome, kind: str, message: str) -> None:
        if task.state == _DONE:
            return
        if task.state == _QUEUED:
            self._finish(None, task, outcome, None, kind, message, "", 0.0)
            return
        if task.stop is not None:
            return
        task.stop = (outcome, kind, message)
        slot = self._slot_of(task)
        if slot is None or slot.proc is None:
            return
        slot.proc.send(encode_frame({"cancel": [task.seq]}))
        if slot.inflight and slot.inflight[0] is task:
            self._arm_kill(slot, task)

    def _arm_kill(self, slot: _Slot, task: PoolTask) -> None:
        if slot.kill_timer is not None:
            slot.kill_timer.cancel()
        assert self._loop is not None
        slot.kill_timer = self._loop.call_later(self._kill_grace, self._on_kill_grace, slot, task)

    def _on_kill_grace(self, slot: _Slot, task: PoolTask) -> None:
        slot.kill_timer = None
        if task.state == _SENT and slot.inflight and slot.inflight[0] is task and slot.proc is not None:
            logger.warning(
                "task %s attempt %d did not stop within %gs; killing worker %s (pid %d)",
                task.task_id,
                task.attempt,
                self._kill_grace,
                slot.id,
                slot.proc.pid,
                extra={"task_id": task.task_id},
            )
            slot.killed_for = task
            slot.proc.kill()

    def _slot_of(self, task: PoolTask) -> _Slot | None:
        for slot in self._slots:
            if task in slot.inflight:
                return slot
        return None

    # ---- worker events ----

    def _on_message(self, slot: _Slot, proc: WorkerProcess, message: dict[str, Any]) -> None:
        if slot.proc is not proc:
            return
        events = message.get("ev")
        if events is None:
            if "hello" in message:
                self._on_hello(slot)
            return
        inflight = slot.inflight
        listener = self._listener
        finished = False
        for ev in events:
            seq = ev["s"]
            if "p" in ev:
                for task in inflight:
                    if task.seq == seq:
                        listener.task_progress(task, ev["p"], ev.get("m", ""))
                        break
                continue
            if not inflight or inflight[0].seq != seq:
                logger.error("worker %s sent a result for unknown seq %s; ignoring it", slot.id, seq)
                continue
            task = inflight.popleft()
            if not task.started_at:
                # It ran behind the head of a batch whose results came back together:
                # it was never the head, so report its start now, before its result.
                task.started_at = time.monotonic()
                listener.task_started(task, slot.id)
            st = ev["st"]
            if task.stop is not None:
                outcome, kind, msg = task.stop
                self._finish(slot, task, outcome, None, kind, msg, ev.get("log", ""), ev["t"])
            elif st == "ok":
                self._finish(slot, task, Outcome.SUCCEEDED, ev["r"], "", "", ev.get("log", ""), ev["t"])
            elif st == "cancel":
                self._finish(slot, task, Outcome.CANCELLED, None, "cancelled", "cancelled", ev.get("log", ""), ev["t"])
            else:
                self._finish(slot, task, Outcome.FAILED, None, ev["ek"], ev["em"], ev.get("log", ""), ev["t"])
            finished = True
        if not finished:
            return
        if slot.kill_timer is not None:
            slot.kill_timer.cancel()
            slot.kill_timer = None
        if inflight:
            self._on_head(slot, time.monotonic())
        else:
            if slot.deadline is not None:
                slot.deadline.cancel()
                slot.deadline = None
            slot.status = WorkerStatus.IDLE
            self._idle.append(slot)
            self._dispatch()
            if slot.extra and slot.status is WorkerStatus.IDLE and len(self._slots) > self._capacity:
                self._arm_retire()

    def _on_hello(self, slot: _Slot) -> None:
        slot.status = WorkerStatus.IDLE
        slot.started_at = time.time()
        if slot.ready is not None and not slot.ready.done():
            slot.ready.set_result(None)
        if self._closed:
            return
        self._idle.append(slot)
        self._dispatch()
        if slot.extra and slot.status is WorkerStatus.IDLE and len(self._slots) > self._capacity:
            self._arm_retire()

    def _finish(
        self,
        slot: _Slot | None,
        task: PoolTask,
        outcome: Outcome,
        result_json: str | None,
        kind: str,
        message: str,
        log: str,
        duration: float,
    ) -> None:
        task.state = _DONE
        key = (task.task_id, task.attempt)
        self._held.pop(key, None)
        if self._lent and key in self._lent:
            # A finished lease's lent slot is forgotten with it.
            self._lent.discard(key)
            self._capacity -= 1
            self._after_capacity_drop()
        if slot is not None:
            if outcome is Outcome.SUCCEEDED:
                slot.completed += 1
            else:
                slot.failed += 1
        if not self._held:
            self._all_done.set()
        self._listener.task_finished(
            TaskOutcome(task, outcome, result_json, kind, message, log, slot.id if slot is not None else "", duration)
        )

    def _on_exit(self, slot: _Slot, proc: WorkerProcess, code: int) -> None:
        if slot.proc is not proc:
            return
        if slot in self._retiring:
            self._retiring.discard(slot)
            slot.status = WorkerStatus.DEAD
            if code != 0:
                logger.warning("extra worker %s exited with code %d while stopping", slot.id, code)
            return
        slot.status = WorkerStatus.DEAD
        for handle in (slot.deadline, slot.kill_timer):
            if handle is not None:
                handle.cancel()
        slot.deadline = slot.kill_timer = None
        if slot in self._idle:
            self._idle.remove(slot)
        if slot.ready is not None and not slot.ready.done():
            slot.ready.set_exception(
                RuntimeError(f"worker {slot.id} exited with code {code} while starting: {proc.diag_tail()}")
            )
        was_ready = slot.started_at > 0
        inflight = list(slot.inflight)
        slot.inflight.clear()
        running = proc.running_seq()
        culprit = slot.killed_for if slot.killed_for in inflight else None
        if culprit is None and running:
            culprit = next((t for t in inflight if t.seq == running), None)
        slot.killed_for = None
        how = f"died with signal {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
        if inflight and not self._closed:
            logger.warning("worker %s (pid %d) %s with %d task(s) in hand", slot.id, proc.pid, how, len(inflight))
        requeue: list[PoolTask] = []
        now = time.monotonic()
        for task in inflight:
            duration = now - task.started_at if task.started_at else 0.0
            if task is culprit and task.stop is None:
                message = f"worker {proc.pid} {how} while running the task"
                self._finish(slot, task, Outcome.FAILED, None, "worker_died", message, proc.diag_tail(), duration)
            elif task.stop is not None:
                outcome, kind, message = task.stop
                self._finish(slot, task, outcome, None, kind, message, "", duration)
            elif task.requeues >= MAX_REQUEUES or self._closed:
                message = f"worker {proc.pid} {how}; the task was in its batch {task.requeues + 1} times"
                self._finish(slot, task, Outcome.FAILED, None, "worker_died", message, proc.diag_tail(), 0.0)
            else:
                task.requeues += 1
                task.state = _QUEUED
                requeue.append(task)
        self._queue.extendleft(reversed(requeue))
        if self._closed or (self._closing and not self._held):
            # Shutting down with nothing left to run: no replacement needed.
            return
        if slot.extra and len(self._slots) > self._capacity:
            # Not needed any more: no replacement.
            self._slots.remove(slot)
            self._dispatch()
            return
        slot.quick_deaths = 0 if was_ready else slot.quick_deaths + 1
        delay = 0.0 if slot.quick_deaths == 0 else min(5.0, 0.1 * 2**slot.quick_deaths)
        if not was_ready:
            logger.error("worker %s %s before it was ready: %s", slot.id, how, proc.diag_tail() or "(no output)")
        self._background_task(self._respawn(slot, delay), f"maos-respawn-{slot.id}")
        self._dispatch()

    def _background_task(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        bg = asyncio.create_task(coro, name=name)
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    async def _respawn(self, slot: _Slot, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not self._closed:
            await self._spawn(slot)

    async def _spawn(self, slot: _Slot) -> None:
        assert self._loop is not None
        slot.status = WorkerStatus.WARMING
        slot.started_at = 0.0
        slot.rss = 0
        slot.psutil_proc = None
        slot.ready = self._loop.create_future()
        # Only start() awaits readiness; a replacement's failure must not warn "never retrieved".
        slot.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        proc = WorkerProcess(
            slot.id,
            lambda p, message: self._on_message(slot, p, message),
            lambda p, code: self._on_exit(slot, p, code),
        )
        slot.proc = proc
        try:
            await proc.spawn(self._init_frame, self._worker_env())
        except OSError as exc:
            logger.error("cannot start worker %s: %s", slot.id, exc)
            slot.status = WorkerStatus.DEAD
            if not slot.ready.done():
                slot.ready.set_exception(RuntimeError(f"cannot start worker {slot.id}: {exc}"))
            if slot.extra and slot in self._slots:
                self._slots.remove(slot)  # the next dispatch that needs it tries again
            return
        with contextlib.suppress(psutil.Error):
            slot.psutil_proc = psutil.Process(proc.pid)

    def _init_message(self) -> dict[str, Any]:
        runners: dict[str, dict[str, Any]] = {}
        for name, profile in self._profiles.items():
            if isinstance(profile.runner, PythonRunner):
                runners[name] = {"python": profile.runner.target}
            else:
                runners[name] = {"command": list(profile.runner.argv)}
        return {
            "host_id": self.host_id,
            "endpoint": self._endpoint,
            "runners": runners,
            "sys_path": self._python_path,
            # The worker stops a command child within half the grace, before the host's SIGKILL lands.
            "child_grace": self._kill_grace / 2,
        }

    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ if self._env is None else self._env)
        # Make `python -m maos.agenthost.worker` importable even when maos is not installed
        # (a source checkout run with PYTHONPATH): put every portion of the namespace package on it.
        roots = [str(Path(p).parent) for p in maos.__path__]
        existing = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(existing + roots))
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Workers trace exactly as this process does (off included, whatever the parent's environment said).
        env[TRACING_ENV] = tracing.active_spec().text
        return env

    # ---- monitoring ----

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(_MONITOR_INTERVAL_SECONDS)
            for slot in self._slots:
                self._sample(slot)

    def _sample(self, slot: _Slot) -> None:
        proc = slot.psutil_proc
        if proc is None or slot.status is WorkerStatus.DEAD:
            return
        head = slot.inflight[0] if slot.inflight else None
        profile = head.profile if head is not None else None
        try:
            rss = proc.memory_info().rss
            if profile is not None and not isinstance(profile.runner, PythonRunner):
                rss += sum(child.memory_info().rss for child in proc.children(recursive=True))
        except psutil.Error:
            return
        slot.rss = rss
        if head is None or profile is None or profile.memory_limit_bytes is None or head.stop is not None:
            return
        if rss > profile.memory_limit_bytes:
            message = (
                f"worker {slot.proc.pid if slot.proc else 0} used {rss} bytes of memory, over the "
                f"{profile.memory_limit_bytes}-byte limit of agent type {profile.name!r}"
            )
            head.stop = (Outcome.FAILED, "memory_limit", message)
            logger.warning("%s; killing it", message, extra={"task_id": head.task_id})
            slot.killed_for = head
            if slot.proc is not None:
                slot.proc.kill()


def _warm_last(slot: _Slot) -> bool:
    """Sort key for the idle list (popped from the end): warm workers last, so they are used first."""
    return not slot.extra


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


__all__ = ["Outcome", "PoolListener", "PoolTask", "TaskOutcome", "WorkerInfo", "WorkerPool", "WorkerStatus"]
