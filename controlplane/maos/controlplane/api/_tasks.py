"""TaskService: thin — validate the request's shape, call the runtime, map the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from maos.controlplane._convert import attempt_to_proto, event_to_proto, task_to_proto
from maos.controlplane._planning import build_plan
from maos.controlplane._runtime import Runtime
from maos.controlplane.api._context import before_deadline, caller_lease
from maos.controlplane.core import Priority, TaskRecord, TaskStatus
from maos.controlplane.store import TaskQuery
from maos.errors import InvalidArgument, ResourceExhausted
from maos.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_HISTORY_PAGE = 1000


def _require_id(task_id: str, field: str = "id") -> str:
    if not task_id:
        raise InvalidArgument(f"{field} is empty: pass a task id")
    return task_id


class TaskServicer(tasks_pb2_grpc.TaskServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def SubmitTask(self, request: tasks_pb2.SubmitTaskRequest, context: Ctx) -> tasks_pb2.SubmitTaskResponse:
        if request.wait_seconds < 0:
            raise InvalidArgument("wait_seconds must not be negative")
        [(rec, deduplicated)] = await self._rt.submit([request.spec])
        timed_out = False
        if request.wait_seconds > 0 and not rec.final:
            [rec], timed_out = await self._rt.wait([rec.id], before_deadline(request.wait_seconds, context))
        return tasks_pb2.SubmitTaskResponse(
            task=task_to_proto(rec), deduplicated=deduplicated, wait_timed_out=timed_out
        )

    async def SubmitTasks(self, request: tasks_pb2.SubmitTasksRequest, context: Ctx) -> tasks_pb2.SubmitTasksResponse:
        if not request.specs:
            raise InvalidArgument("specs is empty: pass at least one task")
        accepted = await self._rt.submit(request.specs)
        # Ids and states only: echoing thousands of specs back would dominate the call's cost.
        return tasks_pb2.SubmitTasksResponse(tasks=[_brief(rec) for rec, _ in accepted])

    async def SubmitWorkflow(
        self, request: tasks_pb2.SubmitWorkflowRequest, context: Ctx
    ) -> tasks_pb2.SubmitWorkflowResponse:
        root, ids = await self._rt.submit_workflow(request.root, [(n.key, n.spec) for n in request.nodes])
        return tasks_pb2.SubmitWorkflowResponse(root=task_to_proto(root), task_ids=ids)

    async def GetTask(self, request: tasks_pb2.GetTaskRequest, context: Ctx) -> common_pb2.Task:
        rec = await self._rt.get(_require_id(request.id))
        task = task_to_proto(rec)
        task.attempts.extend(attempt_to_proto(a) for a in await self._rt.attempts(rec))
        return task

    async def UpdateTask(self, request: tasks_pb2.UpdateTaskRequest, context: Ctx) -> common_pb2.Task:
        task_id = _require_id(request.id)
        if request.priority == common_pb2.PRIORITY_UNSPECIFIED:
            raise InvalidArgument("nothing to update: set priority (critical, high, medium or low)")
        if request.priority not in Priority._value2member_map_:
            raise InvalidArgument(f"priority {request.priority} is unknown; use one of critical, high, medium, low")
        return task_to_proto(await self._rt.set_priority(task_id, Priority(request.priority)))

    async def PlanTask(self, request: tasks_pb2.PlanTaskRequest, context: Ctx) -> tasks_pb2.PlanTaskResponse:
        root_spec, nodes, plan = build_plan(request, self._rt)
        response = tasks_pb2.PlanTaskResponse(nodes=nodes, plan=plan)
        if request.dry_run:
            self._rt.check_workflow(root_spec, [(n.key, n.spec) for n in nodes])
            return response
        root, ids = await self._rt.submit_workflow(
            root_spec, [(n.key, n.spec) for n in nodes], plan=plan.SerializeToString()
        )
        response.root.CopyFrom(task_to_proto(root))
        response.task_ids.update(ids)
        return response

    async def ListTasks(self, request: tasks_pb2.ListTasksRequest, context: Ctx) -> tasks_pb2.ListTasksResponse:
        statuses = []
        for value in request.statuses:
            if value not in TaskStatus._value2member_map_:
                raise InvalidArgument(
                    f"status {value} is unknown; use one of {', '.join(s.name.lower() for s in TaskStatus)}"
                )
            statuses.append(TaskStatus(value))
        size = request.page_size or DEFAULT_PAGE_SIZE
        if size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size {size} is over the maximum of {MAX_PAGE_SIZE}")
        records = await self._rt.store.list_tasks(
            TaskQuery(
                statuses=tuple(statuses),
                root_id=request.root_id,
                parent_id=request.parent_id,
                limit=size + 1,
                before_id=request.page_token,
            )
        )
        more = len(records) > size
        records = records[:size]
        live = self._rt.orch.tasks
        tasks = [task_to_proto(live.get(r.id, r), include_result=request.include_result) for r in records]
        return tasks_pb2.ListTasksResponse(tasks=tasks, next_page_token=records[-1].id if more else "")

    async def CancelTask(self, request: tasks_pb2.CancelTaskRequest, context: Ctx) -> common_pb2.Task:
        return task_to_proto(await self._rt.cancel(_require_id(request.id), request.reason))

    async def PurgeTasks(self, request: tasks_pb2.PurgeTasksRequest, context: Ctx) -> tasks_pb2.PurgeTasksResponse:
        roots, tasks = await self._rt.purge([_require_id(i, "root_ids[]") for i in request.root_ids])
        return tasks_pb2.PurgeTasksResponse(roots=roots, tasks=tasks)

    async def WatchTask(self, request: tasks_pb2.WatchTaskRequest, context: Ctx) -> AsyncIterator[common_pb2.TaskEvent]:
        """History from the store after `after_seq`, then live events; ends after the
        watched task's final event. Subscribes before reading history so nothing falls
        between the two; duplicates are dropped by sequence number."""
        rec = await self._rt.get(_require_id(request.id))
        hub = self._rt.hub
        watcher = hub.subscribe(rec.id, request.include_subtree)
        last_seq: dict[str, int] = {rec.id: request.after_seq}
        try:
            after = request.after_seq
            while True:
                history = await self._rt.store.task_events(rec.id, after, _HISTORY_PAGE)
                for ev in history:
                    last_seq[rec.id] = ev.seq
                    yield event_to_proto(ev)
                    if ev.status.final and ev.task_id == rec.id and _is_last(self._rt, rec.id, ev.seq):
                        return
                if len(history) < _HISTORY_PAGE:
                    break
                after = history[-1].seq
            if request.include_subtree:
                # Descendants' current state, so a late watcher sees the whole tree.
                for child in await self._rt.store.list_tasks(TaskQuery(root_id=rec.root_id, limit=100_000)):
                    if child.id != rec.id and child.seq and _descends(self._rt, child.id, child.parent_id, rec.id):
                        for ev in await self._rt.store.task_events(child.id, child.seq - 1, 1):
                            last_seq[ev.task_id] = ev.seq
                            yield event_to_proto(ev)
            current = self._rt.orch.tasks.get(rec.id)
            if (current is None or current.final) and (await self._rt.get(rec.id)).seq <= last_seq[rec.id]:
                return
            while True:
                if watcher.overflowed:
                    raise ResourceExhausted(
                        f"watcher fell more than its queue behind; resume with after_seq={last_seq[rec.id]}"
                    )
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=30)
                except TimeoutError:
                    continue
                if ev.seq <= last_seq.get(ev.task_id, 0):
                    continue
                last_seq[ev.task_id] = ev.seq
                yield event_to_proto(ev)
                if ev.task_id == rec.id and ev.status.final:
                    return
        finally:
            hub.unsubscribe(watcher)

    async def WaitTasks(self, request: tasks_pb2.WaitTasksRequest, context: Ctx) -> tasks_pb2.WaitTasksResponse:
        if not request.ids:
            raise InvalidArgument("ids is empty: pass the task ids to wait for")
        if request.timeout_seconds < 0:
            raise InvalidArgument("timeout_seconds must not be negative")
        timeout = before_deadline(request.timeout_seconds or None, context)
        records, timed_out = await self._rt.wait(list(request.ids), timeout, caller_lease(context))
        return tasks_pb2.WaitTasksResponse(
            tasks=[task_to_proto(r, include_result=request.include_result) for r in records],
            timed_out=timed_out,
        )


def _brief(rec: TaskRecord) -> common_pb2.Task:
    task = common_pb2.Task(id=rec.id, root_id=rec.root_id, parent_id=rec.parent_id, last_seq=rec.seq)
    task.status = int(rec.status)  # type: ignore[assignment]
    return task


def _is_last(runtime: Runtime, task_id: str, seq: int) -> bool:
    rec = runtime.orch.tasks.get(task_id)
    return rec is None or rec.seq <= seq


def _descends(runtime: Runtime, task_id: str, parent_id: str, ancestor: str) -> bool:
    seen = 0
    while parent_id and seen < 10_000:
        if parent_id == ancestor:
            return True
        parent = runtime.orch.tasks.get(parent_id)
        if parent is None:
            return False
        parent_id = parent.parent_id
        seen += 1
    return False
