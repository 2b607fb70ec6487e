"""The control plane's edge: drives the pure core and carries out its decisions.

Order of effects for every decision batch: snapshot rows and hand them to the
store (group commit, in order); send assignments and cancels to hosts at once
(a crash before the commit only means an attempt runs again, and results for
unknown leases are dropped); after the commit, acknowledge results to hosts,
publish events to watchers and wake waiters. Clients are answered only after
the commit that records what they asked for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from maos import tracing
from maos.controlplane.core import (
    AttemptRecord,
    AttemptResult,
    CoreLimits,
    Decisions,
    Orchestrator,
    Outcome,
    Priority,
    TaskEventRecord,
    TaskRecord,
    TaskStatus,
    topological_order,
)
from maos.controlplane.store import (
    NamedBlob,
    Store,
    TaskQuery,
    WriteBatch,
    attempt_row,
    event_row,
    full_row,
    mutable_row,
    record_from_spec,
)
from maos.errors import FailedPrecondition, InvalidArgument, MaosError, NotFound, ResourceExhausted
from maos.v1 import common_pb2, hosts_pb2

from ._convert import assignment_for
from ._events import EventHub
from ._host_session import HostSession
from ._ids import UlidGenerator
from ._settings import LiveSettings
from ._validation import InputLimits, validate_spec

if TYPE_CHECKING:
    from maos.tracing._tasks import TaskSpans

log = logging.getLogger(__name__)

MAX_PURGE_ROOTS = 1000
_PURGE_PAGE = 1000


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    core: CoreLimits = field(default_factory=CoreLimits)  # heartbeats, prefetch, aging, cache
    store_backlog_limit: int = 200_000
    max_workflow_nodes: int = 10_000
    max_workflow_depth: int = 1_000
    max_batch_tasks: int = 10_000
    default_agent_type: str = "echo"


class Runtime:
    """Owns the orchestrator, the store handle, host sessions and the event hub."""

    def __init__(
        self,
        store: Store,
        settings: RuntimeSettings,
        limits: InputLimits,
        profile_types: Callable[[], Collection[str]],
    ) -> None:
        self.store = store
        self.settings = settings
        self.limits = limits
        self._profile_types = profile_types
        self.orch = Orchestrator(settings.core)
        self.hub = EventHub(self._parent_of)
        self.live_settings = LiveSettings(self.orch)
        # Called with every durable batch of decisions, after watchers (the metrics recorder).
        self.commit_listeners: list[Callable[[Decisions], None]] = []
        self.sessions: dict[str, HostSession] = {}
        self._ids = UlidGenerator()
        self._extra = WriteBatch()  # template/batch writes riding on the next commit
        # Recent idempotency keys -> task id; older ones are found in the store.
        self._idempotency: _BoundedMap = _BoundedMap(200_000)
        self._ticker: asyncio.Task[None] | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self.started_at = time.time()
        # Spans of each task's life (queued -> dispatched -> running -> result recorded), in memory
        # only; None when tracing is off, and every hook below is skipped.
        self.traces: TaskSpans | None = tracing.task_spans()

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self.reload()
        self._ticker = asyncio.create_task(self._tick_loop(), name="maos-tick")

    async def reload(self) -> int:
        """Load settings and unfinished work from the store into the core: at start-up, and after a
        checkpoint was restored into the store of a running control plane (tasks the core already
        knows stay as they are). Returns how many unfinished tasks were loaded."""
        for key, value in (await self.store.load_settings()).items():
            try:
                self.live_settings.apply(key, value)
            except MaosError as exc:
                log.warning("ignoring stored setting %s=%r: %s", key, value, exc)
        records = [r for r in await self.store.load_recovery_set() if r.id not in self.orch.tasks]
        now = time.time()
        self.orch.restore(records, now)
        for rec in records:
            if rec.idempotency_key:
                self._idempotency[rec.idempotency_key] = rec.id
        unfinished = sum(1 for r in records if not r.final)
        if unfinished:
            log.info("recovered %d unfinished tasks from %s", unfinished, self.store.description)
        self.orch.dispatch(now)  # hosts may be connected already (a restore into a running control plane)
        self.apply()
        return unfinished

    async def shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        for session in list(self.sessions.values()):
            session.close()

    async def _tick_loop(self) -> None:
        interval = self.settings.core.heartbeat_interval_seconds / 2
        while True:
            await asyncio.sleep(interval)
            self.orch.tick(time.time())
            self.orch.dispatch(time.time())
            self.apply()

    def _on_retry_timer(self) -> None:
        self._retry_timer = None
        now = time.time()
        self.orch.tick(now)
        self.orch.dispatch(now)
        self.apply()

    def _parent_of(self, task_id: str) -> str | None:
        rec = self.orch.tasks.get(task_id)
        return rec.parent_id if rec is not None and rec.parent_id else None

    # ----------------------------------------------------------- apply effects

    def apply(self) -> asyncio.Future[None] | None:
        """Carry out everything the core decided; the future resolves when it is durable."""
        d = self.orch.take()
        if not d and not self._extra:
            return None
        inserted = {rec.id for rec in d.inserted}
        batch, self._extra = self._extra, WriteBatch()
        batch.inserts = [full_row(rec) for rec in d.inserted]
        batch.updates = [mutable_row(rec) for rec in d.changed.values() if rec.id not in inserted]
        batch.events = [event_row(ev) for ev in d.events]
        batch.attempts = [attempt_row(a) for a in d.attempts.values()]
        durable = self.store.write(batch) if batch else _done_future()
        if self.traces is not None:
            _trace_transitions(self.traces, d.events)
        self._send_to_hosts(d)
        durable.add_done_callback(lambda fut: self._after_commit(fut, d))
        wake = self.orch.next_wakeup()
        if wake is not None and self._retry_timer is None:
            loop = asyncio.get_running_loop()
            self._retry_timer = loop.call_at(loop.time() + max(0.0, wake - time.time()), self._on_retry_timer)
        for host_id in d.lost_hosts:
            session = self.sessions.pop(host_id, None)
            if session is not None:
                session.close()
        return durable

    def _send_to_hosts(self, d: Decisions) -> None:
        for host_id, rec in d.assignments:
            session = self.sessions.get(host_id)
            if session is None:
                continue  # the lease expires with the host's heartbeats
            deps = [self.orch.tasks[dep] for dep in rec.depends_on if dep in self.orch.tasks]
            assignment = assignment_for(rec, deps)
            if self.traces is not None:
                self.traces.dispatched(rec.id, rec.attempt, host_id, rec.agent_type, assignment.trace_context)
            session.send(hosts_pb2.ControlItem(assignment=assignment))
        for host_id, task_id, attempt, lent in d.slots_lent:
            session = self.sessions.get(host_id)
            if session is not None:
                item = hosts_pb2.SlotLent(task_id=task_id, attempt=attempt, lent=lent)
                session.send(hosts_pb2.ControlItem(slot_lent=item))
        for host_id, task_id, attempt, why in d.cancels:
            session = self.sessions.get(host_id)
            if session is not None:
                session.send(
                    hosts_pb2.ControlItem(
                        cancel=hosts_pb2.CancelAssignment(task_id=task_id, attempt=attempt, reason=why)
                    )
                )

    def _after_commit(self, fut: asyncio.Future[None], d: Decisions) -> None:
        if fut.cancelled() or fut.exception() is not None:
            # Not durable: do not acknowledge results, so hosts resend them.
            log.error("a commit failed; %d results stay unacknowledged", len(d.acks))
            return
        if d.acks:
            by_host: dict[str, list[hosts_pb2.Lease]] = {}
            for host_id, task_id, attempt in d.acks:
                by_host.setdefault(host_id, []).append(hosts_pb2.Lease(task_id=task_id, attempt=attempt))
            for host_id, leases in by_host.items():
                session = self.sessions.get(host_id)
                if session is not None:
                    session.send(hosts_pb2.ControlItem(result_ack=hosts_pb2.ResultAck(leases=leases)))
        if self.traces is not None:
            for _, task_id, attempt in d.acks:
                self.traces.result_committed(task_id, attempt)
            for rec in d.finished:
                self.traces.finished(rec.id, rec.status.name.lower(), rec.error_kind, rec.error_message)
        self.hub.publish(d.events)
        self.hub.finished(d.finished)
        for listener in self.commit_listeners:
            try:
                listener(d)
            except Exception:  # an observer must never break recording
                log.exception("a commit listener failed")

    # --------------------------------------------------------------- lookups

    def agent_types(self) -> set[str]:
        return set(self._profile_types()) | self.orch.known_agent_types()

    async def get(self, task_id: str) -> TaskRecord:
        rec = self.orch.tasks.get(task_id)
        if rec is not None:
            return rec
        found = await self.store.get_tasks([task_id])
        if not found:
            raise NotFound(f"task {task_id!r} not found")
        return found[0]

    async def _ensure_known(self, ids: Iterable[str], what: str) -> None:
        """Make finished tasks that new tasks refer to known to the core again."""
        missing = [i for i in dict.fromkeys(ids) if i and i not in self.orch.tasks]
        if not missing:
            return
        found = {rec.id: rec for rec in await self.store.get_tasks(missing)}
        for task_id in missing:
            if task_id not in found:
                raise InvalidArgument(f"{what} names unknown task {task_id!r}")
            if task_id not in self.orch.tasks:  # may have arrived while we awaited
                self.orch.tasks[task_id] = found[task_id]

    def _check_backlog(self) -> None:
        if self.store.backlog > self.settings.store_backlog_limit:
            raise ResourceExhausted(f"the control plane's store is {self.store.backlog} rows behind; retry shortly")

    # ------------------------------------------------------------- submission

    async def submit(self, specs: Sequence[common_pb2.TaskSpec]) -> list[tuple[TaskRecord, bool]]:
        """Validate and store independent tasks, all or none. Returns each task and
        whether it was deduplicated by its idempotency key."""
        if len(specs) > self.settings.max_batch_tasks:
            raise InvalidArgument(f"{len(specs)} tasks in one request; the limit is {self.settings.max_batch_tasks}")
        self._check_backlog()
        known = self.agent_types()
        agent_types = []
        for i, spec in enumerate(specs):
            where = f"task {i}: " if len(specs) > 1 else ""
            agent_types.append(
                validate_spec(
                    spec,
                    where=where,
                    known_agent_types=known,
                    default_agent_type=self.settings.default_agent_type,
                    limits=self.limits,
                )
            )
        await self._ensure_known((d for s in specs for d in s.depends_on), "depends_on")
        await self._ensure_known((s.parent_id for s in specs), "parent_id")
        keys = [s.idempotency_key for s in specs if s.idempotency_key]
        if len(set(keys)) != len(keys):
            raise InvalidArgument("two tasks in one request share an idempotency key")
        for key in keys:
            if key not in self._idempotency:
                existing = await self.store.find_idempotency_key(key)
                if existing is not None:
                    self._idempotency.setdefault(key, existing)
        now = time.time()
        out: list[tuple[TaskRecord, bool]] = []
        new: list[TaskRecord] = []
        for spec, agent_type in zip(specs, agent_types, strict=True):
            if spec.idempotency_key and spec.idempotency_key in self._idempotency:
                out.append((await self.get(self._idempotency[spec.idempotency_key]), True))
                continue
            task_id = self._ids.new()
            parent = self.orch.tasks.get(spec.parent_id) if spec.parent_id else None
            rec = record_from_spec(
                task_id,
                spec,
                root_id=parent.root_id if parent is not None else task_id,
                agent_type=agent_type,
                created_at=now,
            )
            if spec.idempotency_key:
                self._idempotency[spec.idempotency_key] = task_id
            new.append(rec)
            out.append((rec, False))
        if new:
            if self.traces is not None:
                for rec in new:  # children of the submit RPC's span, current here
                    self.traces.submitted(
                        rec.id, agent_type=rec.agent_type, root_id=rec.root_id, parent_task_id=rec.parent_id
                    )
            self.orch.submit(new, now)
            self.orch.dispatch(now)
            durable = self.apply()
            if durable is not None:
                await asyncio.shield(durable)
        return out

    def check_workflow(
        self, root_spec: common_pb2.TaskSpec, nodes: Sequence[tuple[str, common_pb2.TaskSpec]]
    ) -> tuple[dict[str, common_pb2.TaskSpec], dict[str, str], list[str]]:
        """Validate a workflow without storing it: the specs by key, their agent types,
        and a dependency order. Raises InvalidArgument naming the offending node."""
        if not nodes:
            raise InvalidArgument("a workflow needs at least one node")
        if not root_spec.description.strip():
            raise InvalidArgument("the workflow's root description is empty: say what the workflow does")
        known = self.agent_types()
        by_key: dict[str, common_pb2.TaskSpec] = {}
        agent_types: dict[str, str] = {}
        for key, spec in nodes:
            if not key:
                raise InvalidArgument("a workflow node has an empty key")
            if key in by_key:
                raise InvalidArgument(f"node key {key!r} is used twice")
            if spec.parent_id:
                raise InvalidArgument(f"node {key!r}: parent_id is set by the workflow; leave it empty")
            by_key[key] = spec
            agent_types[key] = validate_spec(
                spec,
                where=f"node {key!r}: ",
                known_agent_types=known,
                default_agent_type=self.settings.default_agent_type,
                limits=self.limits,
            )
        order = topological_order(
            {key: list(spec.depends_on) for key, spec in by_key.items()},
            max_nodes=self.settings.max_workflow_nodes,
            max_depth=self.settings.max_workflow_depth,
        )
        return by_key, agent_types, order

    async def submit_workflow(
        self,
        root_spec: common_pb2.TaskSpec,
        nodes: Sequence[tuple[str, common_pb2.TaskSpec]],
        plan: bytes = b"",
    ) -> tuple[TaskRecord, dict[str, str]]:
        """A group root and its nodes, stored together; node depends_on names node keys."""
        self._check_backlog()
        by_key, agent_types, order = self.check_workflow(root_spec, nodes)
        if root_spec.idempotency_key:
            existing = self._idempotency.get(root_spec.idempotency_key) or await self.store.find_idempotency_key(
                root_spec.idempotency_key
            )
            if existing is not None:
                root = await self.get(existing)
                children = await self._children_of(root.id)
                return root, {c.workflow_key: c.id for c in children}
        now = time.time()
        root_id = self._ids.new()
        root = record_from_spec(root_id, root_spec, root_id=root_id, agent_type="", created_at=now, group=True)
        root.plan = plan
        ids = {key: self._ids.new() for key in order}
        records = [root]
        for key in order:
            spec = common_pb2.TaskSpec()
            spec.CopyFrom(by_key[key])
            spec.parent_id = root_id
            deps = tuple(ids[d] for d in dict.fromkeys(spec.depends_on))
            del spec.depends_on[:]
            spec.depends_on.extend(deps)
            records.append(
                record_from_spec(
                    ids[key],
                    spec,
                    root_id=root_id,
                    agent_type=agent_types[key],
                    created_at=now,
                    workflow_key=key,
                )
            )
        if root_spec.idempotency_key:
            self._idempotency[root_spec.idempotency_key] = root_id
        if self.traces is not None:
            for rec in records:  # the root under the submit RPC's span, the nodes under the root's
                self.traces.submitted(
                    rec.id,
                    agent_type=rec.agent_type,
                    root_id=root_id,
                    parent_task_id=rec.parent_id,
                    under_parent_task=True,
                )
        self.orch.submit(records, now)
        self.orch.dispatch(now)
        durable = self.apply()
        if durable is not None:
            await asyncio.shield(durable)
        return root, ids

    async def _children_of(self, task_id: str) -> list[TaskRecord]:
        rec = self.orch.tasks.get(task_id)
        if rec is not None and rec.children:
            return [self.orch.tasks[c] for c in rec.children if c in self.orch.tasks]

        return await self.store.list_tasks(TaskQuery(parent_id=task_id, limit=self.settings.max_workflow_nodes))

    # ------------------------------------------------------------ cancel/wait

    async def cancel(self, task_id: str, reason: str) -> TaskRecord:
        rec = self.orch.tasks.get(task_id)
        if rec is None:
            rec = await self.get(task_id)  # NotFound, or a finished task: nothing to do
            if not rec.final:
                raise FailedPrecondition(f"task {task_id} is not loaded; retry")
            return rec
        self.orch.cancel(task_id, reason, time.time())
        durable = self.apply()
        if durable is not None:
            await asyncio.shield(durable)
        return rec

    async def purge(self, root_ids: Sequence[str]) -> tuple[int, int]:
        """Delete finished task trees (tasks, events, attempts), all or none; (trees, tasks) deleted."""
        roots = list(dict.fromkeys(root_ids))
        if not roots:
            raise InvalidArgument("root_ids is empty: pass the root task ids of finished trees")
        if len(roots) > MAX_PURGE_ROOTS:
            raise InvalidArgument(f"{len(roots)} roots in one purge; the limit is {MAX_PURGE_ROOTS}")
        stored: dict[str, TaskRecord] = {}
        for root_id in roots:
            rec = await self.get(root_id)
            if rec.root_id != rec.id:
                raise InvalidArgument(f"task {root_id} is not the root of its tree: purge its root {rec.root_id}")
            stored.update((r.id, r) for r in await self._stored_tree(root_id))
        # No await from here on: the check and the forgetting see the same table.
        forgotten = self.orch.forget_trees(roots)
        purged = stored | {rec.id: rec for rec in forgotten}
        for rec in purged.values():
            if rec.idempotency_key and self._idempotency.get(rec.idempotency_key) == rec.id:
                del self._idempotency[rec.idempotency_key]
        self._extra.purged_roots.extend(roots)
        await self.commit()
        return len(roots), len(purged)

    async def _stored_tree(self, root_id: str) -> list[TaskRecord]:
        """Every stored task of one tree, a page at a time."""
        out: list[TaskRecord] = []
        before = ""
        while True:
            page = await self.store.list_tasks(TaskQuery(root_id=root_id, limit=_PURGE_PAGE, before_id=before))
            out.extend(page)
            if len(page) < _PURGE_PAGE:
                return out
            before = page[-1].id

    async def wait(
        self, ids: Sequence[str], timeout_seconds: float | None, caller: tuple[str, int] | None = None
    ) -> tuple[list[TaskRecord], bool]:
        """Wait until every task is final (or the timeout); returns the tasks and whether it timed out.

        `caller` is the (task id, attempt) of an agent waiting from inside a task: its
        slot is lent out while it waits, so the tasks it waits on can use it."""
        lent = caller is not None and self.orch.lend_slot(caller[0], caller[1], True)
        if lent:
            self.orch.dispatch(time.time())
            self.apply()
        try:
            return await self._wait(ids, timeout_seconds)
        finally:
            if lent and caller is not None:
                self.orch.lend_slot(caller[0], caller[1], False)
                self.apply()

    async def _wait(self, ids: Sequence[str], timeout_seconds: float | None) -> tuple[list[TaskRecord], bool]:
        records: dict[str, TaskRecord] = {}
        futures: list[tuple[str, asyncio.Future[None]]] = []
        missing = [i for i in ids if i not in self.orch.tasks]
        if missing:
            found = {r.id: r for r in await self.store.get_tasks(missing)}
            for task_id in missing:
                if task_id not in found and task_id not in self.orch.tasks:
                    raise NotFound(f"task {task_id!r} not found")
                records[task_id] = self.orch.tasks.get(task_id) or found[task_id]
        for task_id in ids:
            rec = self.orch.tasks.get(task_id) or records[task_id]
            records[task_id] = rec
            if not rec.final:
                futures.append((task_id, self.hub.wait_for(task_id)))
        timed_out = False
        if futures:
            try:
                _, pending = await asyncio.wait([f for _, f in futures], timeout=timeout_seconds)
                timed_out = bool(pending)
            finally:
                for task_id, fut in futures:
                    if not fut.done():
                        fut.cancel()
                    self.hub.drop_waiter(task_id, fut)
        return [self.orch.tasks.get(i) or records[i] for i in ids], timed_out

    async def set_priority(self, task_id: str, priority: Priority) -> TaskRecord:
        rec = await self.get(task_id)
        if rec.final:
            raise FailedPrecondition(
                f"task {task_id} is already {rec.status.name.lower()}; its priority no longer matters"
            )
        if rec.group:
            raise FailedPrecondition(f"task {task_id} is a workflow root; set the priority of its subtasks")
        self.orch.set_priority(task_id, priority, time.time())
        self.orch.dispatch(time.time())
        durable = self.apply()
        if durable is not None:
            await asyncio.shield(durable)
        return rec

    async def attempts(self, rec: TaskRecord) -> list[AttemptRecord]:
        return await self.store.attempts(rec.id) if rec.attempt else []

    def queue_named(
        self,
        *,
        templates: Iterable[NamedBlob] = (),
        deleted_templates: Iterable[str] = (),
        batches: Iterable[NamedBlob] = (),
        settings: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Template/batch writes for the next commit (with whatever tasks it carries)."""
        self._extra.templates.extend(templates)
        self._extra.deleted_templates.extend(deleted_templates)
        self._extra.batches.extend(batches)
        self._extra.settings.extend(settings)

    async def set_setting(self, key: str, value: str) -> str:
        normalised = self.live_settings.apply(key, value)
        self.queue_named(settings=[(key, normalised)])
        await self.commit()
        self.orch.dispatch(time.time())  # e.g. a larger prefetch takes effect now
        self.apply()
        return normalised

    async def commit(self) -> None:
        durable = self.apply()
        if durable is not None:
            await asyncio.shield(durable)

    # ------------------------------------------------------------------ hosts

    def host_attached(self, session: HostSession) -> None:
        reg = session.register
        old = self.sessions.get(reg.host_id)
        if old is not None and old is not session:
            old.close()
        self.sessions[reg.host_id] = session
        now = time.time()
        self.orch.host_connected(
            reg.host_id,
            reg.slots,
            [t.name for t in reg.agent_types],
            [(lease.task_id, lease.attempt) for lease in reg.running],
            now,
        )
        self.orch.dispatch(now)
        self.apply()

    def host_detached(self, session: HostSession, reason: str) -> None:
        if self.sessions.get(session.host_id) is not session:
            return  # replaced by a newer connection of the same host
        del self.sessions[session.host_id]
        self.orch.host_disconnected(session.host_id, time.time(), reason)
        self.orch.dispatch(time.time())
        self.apply()

    def host_items(self, session: HostSession, items: hosts_pb2.HostItems) -> None:
        """Everything in one batch from a host, then one dispatch and one commit."""
        now = time.time()
        host_id = session.host_id
        orch = self.orch
        traces = self.traces
        for item in items.items:
            kind = item.WhichOneof("item")
            if kind == "result":
                r = item.result
                if traces is not None:
                    traces.result_received(r.task_id, r.attempt, host_id, _OUTCOME_NAMES.get(r.outcome, "failed"))
                orch.on_result(
                    host_id,
                    AttemptResult(
                        task_id=r.task_id,
                        attempt=r.attempt,
                        outcome=Outcome(r.outcome) if r.outcome in Outcome._value2member_map_ else Outcome.FAILED,
                        result=r.result.data,
                        result_type=r.result.content_type,
                        error_kind=r.error.kind,
                        error_message=r.error.message,
                        log=r.log,
                        agent_id=r.agent_id,
                        duration_seconds=r.duration_seconds,
                    ),
                    now,
                )
            elif kind == "started":
                s = item.started
                orch.on_started(host_id, s.task_id, s.attempt, s.agent_id, now)
                if traces is not None:
                    traces.started(s.task_id, s.attempt, s.agent_id)
            elif kind == "heartbeat":
                session.last_heartbeat = item.heartbeat
                orch.host_heartbeat(host_id, now)
            elif kind == "progress":
                p = item.progress
                orch.on_progress(host_id, p.task_id, p.attempt, p.progress.fraction, p.progress.message, now)
            elif kind == "register":
                log.warning("host %s sent a second register; ignored", host_id)
        orch.host_heartbeat(host_id, now)  # any traffic shows the host is alive
        orch.dispatch(now)
        self.apply()

    def drain(self, host_id: str) -> None:
        if host_id not in self.orch.hosts:
            raise NotFound(f"host {host_id!r} not found")
        self.orch.drain_host(host_id)
        session = self.sessions.get(host_id)
        if session is not None:
            session.send(hosts_pb2.ControlItem(drain=hosts_pb2.Drain(reason="drained by request")))

    def status_counts(self) -> dict[TaskStatus, int]:
        return self.orch.counts_by_status()


class _BoundedMap(OrderedDict[str, str]):
    """A dict that forgets its oldest entries beyond `limit` (memory stays bounded)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        if len(self) > self._limit:
            self.popitem(last=False)


_OUTCOME_NAMES = {int(o): o.name.lower() for o in Outcome}


def _trace_transitions(traces: TaskSpans, events: Sequence[TaskEventRecord]) -> None:
    for ev in events:
        if ev.message != "progress":  # progress reports would flood the task span
            traces.transition(ev.task_id, ev.status.name.lower(), ev.message, ev.attempt)


def _done_future() -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut
