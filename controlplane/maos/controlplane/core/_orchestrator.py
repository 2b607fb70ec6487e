"""The control plane's pure core: task state machine, dependencies, leases, dispatch.

No I/O and no clock: every method takes `now` and records what must happen in
`Decisions`, which the edge drains with `take()` and carries out (persist the
changed rows and events first, then tell hosts and clients). One orchestrator
is driven from one event loop; it is not thread-safe.

Leases: a dispatch of a task to a host is the lease (task id, attempt). The
attempt number grows with every dispatch, so a result that names an older
attempt, or arrives from a host that no longer holds the lease, is dropped:
execution is at-least-once, recording exactly-once.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from maos.errors import FailedPrecondition

from ._model import (
    AttemptRecord,
    AttemptResult,
    DependencyPolicy,
    Outcome,
    Priority,
    TaskEventRecord,
    TaskRecord,
    TaskStatus,
)
from ._ready_queue import ReadyQueue


@dataclass(slots=True)
class HostState:
    """What the core knows of one agent host."""

    id: str
    slots: int
    agent_types: frozenset[str]
    prefetch: int
    last_heartbeat: float
    connected: bool = True
    draining: bool = False
    awaiting_reconnect: bool = False  # a placeholder rebuilt from the store after a restart
    in_flight: dict[str, int] = field(default_factory=dict)  # task id -> attempt
    completed: int = 0
    avg_task_seconds: float = 0.0  # moving average of attempts' run time; 0 = not known yet
    # Leases whose agent is blocked waiting on other tasks: their slots are lent out
    # (task id -> number of concurrent waits).
    lent: dict[str, int] = field(default_factory=dict)

    @property
    def credit(self) -> int:
        return self.slots + len(self.lent) + self.prefetch - len(self.in_flight)

    @property
    def free_slots(self) -> int:
        return self.slots + len(self.lent) - len(self.in_flight)


@dataclass(slots=True)
class Decisions:
    """What the edge must carry out, in order: persist, then send and notify."""

    inserted: list[TaskRecord] = field(default_factory=list)
    changed: dict[str, TaskRecord] = field(default_factory=dict)
    events: list[TaskEventRecord] = field(default_factory=list)
    assignments: list[tuple[str, TaskRecord]] = field(default_factory=list)
    cancels: list[tuple[str, str, int, str]] = field(default_factory=list)  # host, task, attempt, why
    acks: list[tuple[str, str, int]] = field(default_factory=list)  # host, task, attempt
    finished: list[TaskRecord] = field(default_factory=list)
    lost_hosts: list[str] = field(default_factory=list)
    attempts: dict[tuple[str, int], AttemptRecord] = field(default_factory=dict)
    slots_lent: list[tuple[str, str, int, bool]] = field(default_factory=list)  # host, task, attempt, lent

    def __bool__(self) -> bool:
        return bool(
            self.attempts
            or self.slots_lent
            or self.inserted
            or self.changed
            or self.events
            or self.assignments
            or self.cancels
            or self.acks
            or self.finished
            or self.lost_hosts
        )


@dataclass(frozen=True, slots=True)
class CoreLimits:
    """Tunables of the core.

    Prefetch (assignments a host holds beyond its free slots) adapts to how long
    tasks take on that host: enough to cover `prefetch_window_seconds` of work per
    slot, between `prefetch_min` and `prefetch_max`. Short tasks get a deep
    pipeline (throughput); long tasks get almost none, so work is never parked on
    a busy host while another host idles.
    """

    heartbeat_interval_seconds: float = 1.0
    missed_heartbeats: int = 3
    prefetch_min: int = 2
    prefetch_max: int = 64
    prefetch_window_seconds: float = 0.05
    finished_cache_size: int = 100_000
    max_queue_time_seconds: float = 300.0  # aging: queued this long, a task moves up one level


class Orchestrator:
    """Task state machine, dependency tracking, lease bookkeeping and dispatch."""

    def __init__(self, limits: CoreLimits | None = None, rng: random.Random | None = None) -> None:
        self.limits = limits or CoreLimits()
        self.tasks: dict[str, TaskRecord] = {}
        self.hosts: dict[str, HostState] = {}
        self.queue = ReadyQueue()
        self._leases: dict[str, tuple[str, int]] = {}  # task id -> (host id, attempt)
        self._delayed: list[tuple[float, str, int]] = []  # (due, task id, queue token)
        self._queue_deadlines: list[tuple[float, str, float]] = []  # (deadline, task id, queued_at)
        self._finished_order: OrderedDict[str, None] = OrderedDict()
        self._cancelling: set[str] = set()
        self._rng = rng or random.Random()
        self._d = Decisions()

    # ------------------------------------------------------------------ output

    def take(self) -> Decisions:
        """Hand over what has been decided since the last call."""
        d, self._d = self._d, Decisions()
        return d

    # ----------------------------------------------------------------- queries

    def lease_of(self, task_id: str) -> tuple[str, int] | None:
        return self._leases.get(task_id)

    def known_agent_types(self) -> set[str]:
        types: set[str] = set()
        for host in self.hosts.values():
            types |= host.agent_types
        return types

    def next_wakeup(self) -> float | None:
        """When `tick` next has something to do for delayed retries and queue timeouts
        (heartbeats and aging are checked on the regular tick)."""
        times = [h[0][0] for h in (self._delayed, self._queue_deadlines) if h]
        return min(times) if times else None

    def counts_by_status(self) -> dict[TaskStatus, int]:
        counts = dict.fromkeys(TaskStatus, 0)
        for rec in self.tasks.values():
            counts[rec.status] += 1
        return counts

    # -------------------------------------------------------------- submission

    def submit(self, records: Iterable[TaskRecord], now: float) -> None:
        """Accept new tasks. Dependencies and parents must already be known to the core
        (the edge loads finished ones from the store) and listed before their dependents."""
        for rec in records:
            self.tasks[rec.id] = rec
            self._d.inserted.append(rec)
            parent = self.tasks.get(rec.parent_id) if rec.parent_id else None
            if parent is not None:
                parent.children.append(rec.id)
                if parent.group:
                    parent.open_children += 1
                rec.spawned = not parent.group
            if rec.group:
                rec.status = TaskStatus.RUNNING
                rec.started_at = now
                self._event(rec, now, "workflow started")
                continue
            self._link_dependencies(rec, now)

    def _link_dependencies(self, rec: TaskRecord, now: float) -> None:
        failed_dep: TaskRecord | None = None
        for dep_id in rec.depends_on:
            dep = self.tasks[dep_id]
            if not dep.final:
                rec.deps_remaining.add(dep_id)
                dep.dependents.append(rec.id)
            elif dep.status != TaskStatus.COMPLETED and failed_dep is None:
                failed_dep = dep
        rec.status = TaskStatus.PENDING
        if failed_dep is not None and rec.dependency_policy != DependencyPolicy.CONTINUE:
            self._event(rec, now, "submitted")
            self._fail_for_dependency(rec, failed_dep, now)
        elif rec.deps_remaining:
            self._event(rec, now, f"waiting on {len(rec.deps_remaining)} dependencies")
        else:
            self._enqueue(rec, now, "queued")

    # ---------------------------------------------------------------- dispatch

    def dispatch(self, now: float) -> None:
        """Hand queued tasks to hosts with credit: first fill free slots everywhere,
        then the prefetch allowance, so idle slots on other hosts are not starved."""
        if not len(self.queue):
            return
        hosts = [h for h in self.hosts.values() if h.connected and not h.draining and h.credit > 0]
        for prefetching in (False, True):
            for host in hosts:
                while (host.credit if prefetching else host.free_slots) > 0:
                    task_id = self.queue.pop(host.agent_types, self._is_dispatchable)
                    if task_id is None:
                        break
                    self._assign(host, self.tasks[task_id], now)
                if not len(self.queue):
                    return

    def _is_dispatchable(self, task_id: str, token: int) -> bool:
        rec = self.tasks.get(task_id)
        return rec is not None and rec.status == TaskStatus.QUEUED and rec.queue_token == token

    def _assign(self, host: HostState, rec: TaskRecord, now: float) -> None:
        """Lease the task to the host. It stays QUEUED (now placed) until the host
        reports an agent started it: RUNNING means an agent is executing it."""
        rec.attempt += 1
        rec.host_id = host.id
        rec.agent_id = ""
        rec.queue_token += 1
        rec.dispatched_at = now
        rec.started_at = 0.0
        self._record_attempt(rec, TaskStatus.QUEUED)
        host.in_flight[rec.id] = rec.attempt
        self._leases[rec.id] = (host.id, rec.attempt)
        self._d.changed[rec.id] = rec
        self._d.assignments.append((host.id, rec))

    # ------------------------------------------------------------ host reports

    def on_started(self, host_id: str, task_id: str, attempt: int, agent_id: str, now: float) -> None:
        rec = self.tasks.get(task_id)
        if rec is None or self._leases.get(task_id) != (host_id, attempt) or rec.final:
            return
        rec.agent_id = agent_id
        if rec.status == TaskStatus.RUNNING:
            # Started again on another worker after a worker crash on the host.
            self._d.changed[rec.id] = rec
            self._record_attempt(rec, TaskStatus.RUNNING)
            return
        rec.status = TaskStatus.RUNNING
        rec.started_at = now
        self._record_attempt(rec, TaskStatus.RUNNING)
        self._event(rec, now, f"running on agent {agent_id or host_id}")

    def task_on_agent(self, agent_id: str) -> str | None:
        """The task the agent (worker) `agent_id` is running now, if any (running tasks only)."""
        for task_id in self._leases:
            rec = self.tasks.get(task_id)
            if rec is not None and rec.agent_id == agent_id and rec.status == TaskStatus.RUNNING:
                return task_id
        return None

    def on_progress(self, host_id: str, task_id: str, attempt: int, fraction: float, message: str, now: float) -> None:
        rec = self.tasks.get(task_id)
        if rec is None or self._leases.get(task_id) != (host_id, attempt) or rec.final:
            return
        rec.progress = min(max(fraction, 0.0), 1.0)
        rec.progress_message = message
        self._event(rec, now, "progress")

    def on_result(self, host_id: str, result: AttemptResult, now: float) -> None:
        """Record an attempt's end. Always acknowledged, so the host forgets it; only
        the current lease's result changes the task."""
        self._d.acks.append((host_id, result.task_id, result.attempt))
        host = self.hosts.get(host_id)
        if host is not None and host.in_flight.get(result.task_id) == result.attempt:
            del host.in_flight[result.task_id]
            host.lent.pop(result.task_id, None)
            host.completed += 1
            if result.duration_seconds > 0:
                self._learn_task_time(host, result.duration_seconds)
        if self._leases.get(result.task_id) != (host_id, result.attempt):
            return
        del self._leases[result.task_id]
        rec = self.tasks.get(result.task_id)
        if rec is None or rec.final or rec.attempt != result.attempt:
            return
        if result.agent_id:
            rec.agent_id = result.agent_id
        rec.log = result.log
        ended = {
            Outcome.SUCCEEDED: TaskStatus.COMPLETED,
            Outcome.TIMED_OUT: TaskStatus.TIMED_OUT,
            Outcome.CANCELLED: TaskStatus.CANCELLED,
        }.get(result.outcome, TaskStatus.FAILED)
        self._record_attempt(rec, ended, now, result.error_kind, result.error_message)
        if result.outcome == Outcome.SUCCEEDED:
            rec.result, rec.result_type = result.result, result.result_type
            rec.progress = 1.0
            self._finish(rec, TaskStatus.COMPLETED, now, "", "", "completed")
        elif result.outcome == Outcome.CANCELLED:
            # The host gave the task up on its own (shutdown, drain): not the task's fault.
            self._requeue(rec, now, f"given back by host {host_id}: {result.error_message or 'cancelled'}")
        else:
            status = TaskStatus.TIMED_OUT if result.outcome == Outcome.TIMED_OUT else TaskStatus.FAILED
            self._attempt_failed(rec, status, result.error_kind, result.error_message, now)

    def _learn_task_time(self, host: HostState, seconds: float) -> None:
        avg = seconds if host.avg_task_seconds == 0 else 0.9 * host.avg_task_seconds + 0.1 * seconds
        host.avg_task_seconds = avg
        limits = self.limits
        wanted = int(host.slots * limits.prefetch_window_seconds / max(avg, 1e-6))
        host.prefetch = min(max(wanted, limits.prefetch_min), limits.prefetch_max)

    def _attempt_failed(self, rec: TaskRecord, status: TaskStatus, kind: str, message: str, now: float) -> None:
        rec.failures += 1
        if rec.failures <= rec.max_retries and kind not in rec.non_retryable:
            delay = min(rec.retry_initial_seconds * rec.retry_coefficient ** (rec.failures - 1), rec.retry_max_seconds)
            delay *= 0.5 + self._rng.random() / 2  # jitter: retries of many tasks do not stampede
            rec.error_kind, rec.error_message = kind, message
            note = f"attempt {rec.attempt} failed ({kind}: {message}); retry {rec.failures}/{rec.max_retries}"
            if delay > 0:
                rec.status = TaskStatus.QUEUED
                rec.queued_at = now  # also retires queue-timeout deadlines of the earlier queueing
                rec.queue_token += 1
                rec.retry_at = now + delay
                heapq.heappush(self._delayed, (rec.retry_at, rec.id, rec.queue_token))
                self._event(rec, now, f"{note} in {delay:.2f}s")
            else:
                self._enqueue(rec, now, note)
            return
        self._finish(rec, status, now, kind, message, f"{kind}: {message}")

    # ------------------------------------------------------------ cancellation

    def cancel(self, task_id: str, reason: str, now: float) -> TaskRecord:
        """Cancel a task and its whole subtree; running attempts are told to stop.
        Idempotent: final tasks are left as they are."""
        root = self.tasks[task_id]
        why = reason or "cancelled by request"
        subtree: list[TaskRecord] = []
        stack = [root]
        while stack:
            rec = stack.pop()
            subtree.append(rec)
            stack.extend(self.tasks[c] for c in reversed(rec.children) if c in self.tasks)
        # Dependents inside the subtree are cancelled too, not failed by the policy
        # for a cancelled dependency, whatever order they are reached in.
        self._cancelling = {rec.id for rec in subtree if not rec.final}
        try:
            for rec in subtree:
                if rec.final:
                    continue
                lease = self._leases.get(rec.id)
                if lease is not None:
                    # The lease stays until the host reports back, so the slot stays counted.
                    self._d.cancels.append((lease[0], rec.id, lease[1], why))
                    self._record_attempt(rec, TaskStatus.CANCELLED, now, "cancelled", why)
                self._finish(rec, TaskStatus.CANCELLED, now, "cancelled", why, f"cancelled: {why}")
        finally:
            self._cancelling = set()
        return root

    # ------------------------------------------------------------------ purge

    def forget_trees(self, root_ids: Iterable[str]) -> list[TaskRecord]:
        """Forget every task of these trees held in memory, for a purge (the store deletes
        their rows). All or none: FailedPrecondition names a task that is not finished, or a
        cancelled one whose agent is still being stopped. Returns the records forgotten.

        Scans the table: every unfinished task is in memory, but a finished parent may be
        evicted before its children, so walking `children` from the root could miss some."""
        roots = set(root_ids)
        members = [rec for rec in self.tasks.values() if rec.root_id in roots]
        for rec in members:
            if not rec.final:
                raise FailedPrecondition(
                    f"task tree {rec.root_id} is not finished: task {rec.id} is {rec.status.name.lower()}; "
                    f"cancel the tree or wait for it to end, then purge it"
                )
            if rec.id in self._leases:
                raise FailedPrecondition(
                    f"task tree {rec.root_id}: the agent of cancelled task {rec.id} is still being stopped; "
                    "retry the purge in a few seconds"
                )
        for rec in members:
            del self.tasks[rec.id]
            self._finished_order.pop(rec.id, None)
        return members

    # ------------------------------------------------------------------ hosts

    def host_connected(
        self,
        host_id: str,
        slots: int,
        agent_types: Iterable[str],
        running: Iterable[tuple[str, int]],
        now: float,
    ) -> HostState:
        """Register (or re-register) a host and reconcile the leases it reports."""
        host = self.hosts.get(host_id)
        if host is None:
            host = HostState(host_id, slots, frozenset(agent_types), self.limits.prefetch_min, now)
            self.hosts[host_id] = host
        host.slots = slots
        host.agent_types = frozenset(agent_types)
        # A placeholder rebuilt after a restart has no prefetch yet; settings may have changed.
        host.prefetch = min(max(host.prefetch, self.limits.prefetch_min), self.limits.prefetch_max)
        host.connected = True
        host.draining = False
        host.awaiting_reconnect = False
        host.last_heartbeat = now
        reported = dict(running)
        for task_id, attempt in list(host.in_flight.items()):
            if reported.get(task_id) != attempt:
                self._lease_lost(host, task_id, attempt, now, f"host {host_id} no longer holds it")
        for task_id, attempt in reported.items():
            if host.in_flight.get(task_id) == attempt:
                continue
            rec = self.tasks.get(task_id)
            if (
                rec is not None
                and rec.status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
                and task_id not in self._leases
                and attempt >= rec.attempt
            ):
                # Dispatched before a restart whose store never saw the dispatch: adopt it.
                rec.attempt = attempt
                rec.host_id = host_id
                rec.queue_token += 1
                host.in_flight[task_id] = attempt
                self._leases[task_id] = (host_id, attempt)
                self._d.changed[rec.id] = rec
            else:
                self._d.cancels.append((host_id, task_id, attempt, "stale lease: reassigned or finished"))
        return host

    def host_heartbeat(self, host_id: str, now: float) -> None:
        host = self.hosts.get(host_id)
        if host is not None:
            host.last_heartbeat = now

    def host_disconnected(self, host_id: str, now: float, reason: str) -> None:
        """The host is gone: its leases expire and their tasks re-queue (attempt + 1 at dispatch)."""
        host = self.hosts.get(host_id)
        if host is None or not host.connected:
            return
        host.connected = False
        host.awaiting_reconnect = False
        for task_id, attempt in list(host.in_flight.items()):
            self._lease_lost(host, task_id, attempt, now, f"host {host_id} lost ({reason})")
        self._d.lost_hosts.append(host_id)

    def drain_host(self, host_id: str) -> HostState:
        host = self.hosts[host_id]
        host.draining = True
        return host

    def _lease_lost(self, host: HostState, task_id: str, attempt: int, now: float, why: str) -> None:
        host.in_flight.pop(task_id, None)
        host.lent.pop(task_id, None)
        if self._leases.get(task_id) == (host.id, attempt):
            del self._leases[task_id]
            rec = self.tasks.get(task_id)
            if rec is not None and not rec.final and rec.attempt == attempt and rec.host_id == host.id:
                self._record_attempt(rec, TaskStatus.FAILED, now, "host_lost", why)
                self._requeue(rec, now, why)

    # ------------------------------------------------------------- lent slots

    def lend_slot(self, task_id: str, attempt: int, lent: bool) -> bool:
        """A running agent starts (lent=True) or stops waiting on other tasks. While it
        waits its slot counts as free, so the tasks it waits on can run: a parent never
        deadlocks a full pool. Returns whether the lease was known."""
        lease = self._leases.get(task_id)
        if lease is None or lease[1] != attempt:
            return False
        host = self.hosts.get(lease[0])
        if host is None:
            return False
        before = task_id in host.lent
        if lent:
            host.lent[task_id] = host.lent.get(task_id, 0) + 1
        elif before:
            host.lent[task_id] -= 1
            if host.lent[task_id] <= 0:
                del host.lent[task_id]
        if before != (task_id in host.lent):
            self._d.slots_lent.append((host.id, task_id, attempt, task_id in host.lent))
        return True

    # -------------------------------------------------------------- priorities

    def set_priority(self, task_id: str, priority: Priority, now: float) -> TaskRecord:
        """Change an unfinished task's priority; a queued task moves to the new level's tail."""
        rec = self.tasks[task_id]
        if rec.priority == priority:
            return rec
        rec.priority = priority
        rec.aging_since = now
        if rec.status == TaskStatus.QUEUED and rec.id not in self._leases and not rec.retry_at > now:
            rec.queue_token += 1
            self.queue.push(rec.agent_type, rec.priority, rec.id, rec.queue_token, spawned=rec.spawned)
        self._event(rec, now, f"priority set to {priority.name.lower()}")
        return rec

    def _age(self, now: float) -> None:
        """Promote tasks queued longer than max_queue_time by one level, so nothing starves.
        Only the heads of each level are looked at: levels are FIFO, so the rest is younger."""
        max_age = self.limits.max_queue_time_seconds
        if max_age <= 0 or not len(self.queue):
            return
        cutoff = now - max_age

        def is_aged(task_id: str, token: int) -> bool | None:
            if not self._is_dispatchable(task_id, token):
                return None
            return self.tasks[task_id].aging_since <= cutoff

        for level in (Priority.HIGH, Priority.MEDIUM, Priority.LOW):
            for task_id in self.queue.pop_aged(level, is_aged):
                rec = self.tasks[task_id]
                rec.priority = Priority(level - 1)
                rec.aging_since = now
                rec.queue_token += 1
                self.queue.push(rec.agent_type, rec.priority, rec.id, rec.queue_token, spawned=rec.spawned)
                self._event(rec, now, f"aged: queued over {max_age:.0f}s, promoted to {rec.priority.name.lower()}")

    # ------------------------------------------------------------------- time

    def tick(self, now: float) -> None:
        """Expire silent hosts and release due retries."""
        deadline = now - self.limits.heartbeat_interval_seconds * self.limits.missed_heartbeats
        for host in list(self.hosts.values()):
            if host.connected and host.last_heartbeat < deadline:
                self.host_disconnected(host.id, now, f"no heartbeat for {now - host.last_heartbeat:.1f}s")
        while self._delayed and self._delayed[0][0] <= now:
            _, task_id, token = heapq.heappop(self._delayed)
            rec = self.tasks.get(task_id)
            if rec is not None and rec.status == TaskStatus.QUEUED and rec.queue_token == token:
                rec.retry_at = 0.0
                self._enqueue(rec, now, "retry due")
        while self._queue_deadlines and self._queue_deadlines[0][0] <= now:
            _, task_id, queued_at = heapq.heappop(self._queue_deadlines)
            rec = self.tasks.get(task_id)
            # Same queueing (not re-queued since) and no agent started it, even if prefetched.
            if rec is not None and rec.status == TaskStatus.QUEUED and rec.queued_at == queued_at:
                why = f"not started within its queue timeout of {rec.queue_timeout_seconds:g}s"
                lease = self._leases.get(rec.id)
                if lease is not None:
                    self._d.cancels.append((lease[0], rec.id, lease[1], why))
                    self._record_attempt(rec, TaskStatus.CANCELLED, now, "queue_timeout", why)
                self._finish(rec, TaskStatus.TIMED_OUT, now, "queue_timeout", why, why)
        self._age(now)

    # -------------------------------------------------------------- recovery

    def restore(self, records: Iterable[TaskRecord], now: float) -> None:
        """Rebuild in-memory state from stored tasks after a restart.

        Unfinished tasks and the finished tasks they depend on or descend from must
        all be passed, parents before children. Placed tasks (RUNNING, or QUEUED with
        a host) keep their lease on a placeholder host that must reconnect within the
        heartbeat grace, or they re-queue."""
        restored = list(records)
        for rec in restored:
            self.tasks[rec.id] = rec
        for rec in restored:
            parent = self.tasks.get(rec.parent_id) if rec.parent_id else None
            if parent is not None:
                parent.children.append(rec.id)
                rec.spawned = not parent.group
                if parent.group and not rec.final:
                    parent.open_children += 1
            if rec.final:
                self._finished_order[rec.id] = None
        for rec in restored:
            if rec.status == TaskStatus.PENDING:
                for dep_id in rec.depends_on:
                    dep = self.tasks.get(dep_id)
                    if dep is not None and not dep.final:
                        rec.deps_remaining.add(dep_id)
                        dep.dependents.append(rec.id)
        for rec in restored:
            if rec.final or rec.group:
                continue
            placed = rec.host_id and rec.attempt > 0
            if rec.status == TaskStatus.RUNNING or (rec.status == TaskStatus.QUEUED and placed):
                host = self.hosts.get(rec.host_id)
                if host is None:
                    host = HostState(rec.host_id, 0, frozenset(), 0, now, awaiting_reconnect=True)
                    self.hosts[rec.host_id] = host
                host.in_flight[rec.id] = rec.attempt
                self._leases[rec.id] = (rec.host_id, rec.attempt)
            elif rec.status == TaskStatus.QUEUED:
                rec.queue_token += 1
                rec.aging_since = rec.queued_at or now
                self.queue.push(rec.agent_type, rec.priority, rec.id, rec.queue_token, spawned=rec.spawned)
                if rec.queue_timeout_seconds > 0:
                    deadline = rec.aging_since + rec.queue_timeout_seconds
                    heapq.heappush(self._queue_deadlines, (deadline, rec.id, rec.queued_at))
            elif rec.status == TaskStatus.PENDING:
                self._settle_pending(rec, now)
        for rec in restored:
            if rec.group and not rec.final and rec.open_children == 0:
                self._complete_group(rec, now)

    def _settle_pending(self, rec: TaskRecord, now: float) -> None:
        """A PENDING task whose dependencies all ended while the control plane was down."""
        if rec.deps_remaining:
            return
        failed = next(
            (self.tasks[d] for d in rec.depends_on if d in self.tasks and self.tasks[d].status != TaskStatus.COMPLETED),
            None,
        )
        if failed is not None and rec.dependency_policy != DependencyPolicy.CONTINUE:
            self._fail_for_dependency(rec, failed, now)
        else:
            self._enqueue(rec, now, "dependencies complete")

    # ----------------------------------------------------------- transitions

    def _event(self, rec: TaskRecord, now: float, message: str) -> None:
        rec.seq += 1
        self._d.changed[rec.id] = rec
        self._d.events.append(
            TaskEventRecord(
                rec.id,
                rec.seq,
                rec.status,
                rec.attempt,
                now,
                rec.host_id,
                message,
                rec.progress,
                rec.progress_message,
            )
        )

    def _enqueue(self, rec: TaskRecord, now: float, message: str) -> None:
        rec.status = TaskStatus.QUEUED
        rec.queued_at = now
        rec.aging_since = now
        rec.queue_token += 1
        self.queue.push(rec.agent_type, rec.priority, rec.id, rec.queue_token, spawned=rec.spawned)
        if rec.queue_timeout_seconds > 0:
            heapq.heappush(self._queue_deadlines, (now + rec.queue_timeout_seconds, rec.id, now))
        self._event(rec, now, message)

    def _record_attempt(
        self, rec: TaskRecord, status: TaskStatus, finished_at: float = 0.0, kind: str = "", message: str = ""
    ) -> None:
        self._d.attempts[(rec.id, rec.attempt)] = AttemptRecord(
            rec.id,
            rec.attempt,
            rec.host_id,
            rec.agent_id,
            rec.dispatched_at,
            rec.started_at,
            finished_at,
            status,
            kind,
            message,
        )

    def _requeue(self, rec: TaskRecord, now: float, message: str) -> None:
        rec.host_id = ""
        rec.agent_id = ""
        self._enqueue(rec, now, message)

    def _finish(self, first: TaskRecord, status: TaskStatus, now: float, kind: str, message: str, note: str) -> None:
        """Make a task final and settle what waits on it: dependents and a group parent.
        A worklist, not recursion: a long dependency chain must not blow the stack."""
        work: list[tuple[TaskRecord, TaskStatus, str, str, str]] = [(first, status, kind, message, note)]
        while work:
            rec, status, kind, message, note = work.pop()
            if rec.final:
                continue
            rec.status = status
            rec.finished_at = now
            rec.error_kind, rec.error_message = kind, message
            if status == TaskStatus.COMPLETED:
                rec.error_kind = rec.error_message = ""
            self._event(rec, now, note)
            self._d.finished.append(rec)
            self._finished_order[rec.id] = None
            for dep_id in rec.dependents:
                dependent = self.tasks.get(dep_id)
                if dependent is None or dependent.status != TaskStatus.PENDING or dep_id in self._cancelling:
                    continue
                dependent.deps_remaining.discard(rec.id)
                if status == TaskStatus.COMPLETED or dependent.dependency_policy == DependencyPolicy.CONTINUE:
                    if not dependent.deps_remaining:
                        self._enqueue(dependent, now, "dependencies complete")
                    continue
                name = rec.workflow_key or rec.id
                why = f"dependency {name!r} {status.name.lower()}"
                if rec.error_message:
                    why += f": {rec.error_message}"
                if dependent.dependency_policy == DependencyPolicy.SKIP:
                    work.append((dependent, TaskStatus.CANCELLED, "skipped", why, f"skipped: {why}"))
                else:
                    work.append((dependent, TaskStatus.FAILED, "dependency_failed", why, why))
            parent = self.tasks.get(rec.parent_id) if rec.parent_id else None
            if parent is not None and parent.group and not parent.final:
                parent.open_children -= 1
                if parent.open_children <= 0:
                    self._complete_group(parent, now)
        self._evict_finished()

    def _fail_for_dependency(self, rec: TaskRecord, dep: TaskRecord, now: float) -> None:
        name = dep.workflow_key or dep.id
        why = f"dependency {name!r} {dep.status.name.lower()}"
        if dep.error_message:
            why += f": {dep.error_message}"
        if rec.dependency_policy == DependencyPolicy.SKIP:
            self._finish(rec, TaskStatus.CANCELLED, now, "skipped", why, f"skipped: {why}")
        else:
            self._finish(rec, TaskStatus.FAILED, now, "dependency_failed", why, why)

    def _complete_group(self, group: TaskRecord, now: float) -> None:
        children = [self.tasks[c] for c in group.children if c in self.tasks]
        bad = [c for c in children if c.status != TaskStatus.COMPLETED]
        sinks = [c for c in children if not c.dependents]
        if len(sinks) == 1:
            group.result, group.result_type = sinks[0].result, sinks[0].result_type
        else:
            group.result = orjson.dumps(
                {c.workflow_key or c.id: orjson.loads(c.result) if c.result else None for c in sinks}
            )
            group.result_type = "application/json"
        if not bad:
            group.progress = 1.0
            self._finish(group, TaskStatus.COMPLETED, now, "", "", f"all {len(children)} subtasks completed")
            return
        names = ", ".join(f"{c.workflow_key or c.id} ({c.status.name.lower()})" for c in bad[:5])
        message = f"{len(bad)} of {len(children)} subtasks did not complete: {names}"
        self._finish(group, TaskStatus.FAILED, now, "subtasks_failed", message, message)

    def _evict_finished(self) -> None:
        """Bound memory: forget the oldest finished tasks nothing live still needs
        (the store keeps them)."""
        excess = len(self._finished_order) - self.limits.finished_cache_size
        while excess > 0 and self._finished_order:
            task_id, _ = self._finished_order.popitem(last=False)
            excess -= 1
            rec = self.tasks.get(task_id)
            if rec is None:
                continue
            if any(d in self.tasks and not self.tasks[d].final for d in rec.dependents) or (
                rec.parent_id in self.tasks and not self.tasks[rec.parent_id].final
            ):
                self._finished_order[task_id] = None  # still needed; look again later
                continue
            if task_id not in self._leases:
                del self.tasks[task_id]
