"""AsyncClient: the SDK on grpc.aio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

import grpc
import grpc.aio
from maos import tracing
from maos.errors import DeadlineExceeded
from maos.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agents_pb2,
    agents_pb2_grpc,
    common_pb2,
    hosts_pb2,
    hosts_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
)

from ._config import CHANNEL_OPTIONS, DEFAULT_RPC_TIMEOUT_SECONDS, caller_metadata, messages_endpoint, resolve_endpoint
from ._endpoints import EndpointRotation, parse_endpoints
from ._enums import is_final, status_name
from ._errors import from_rpc_error
from ._messages_client import AsyncMessagesClient
from ._requests import (
    DEFAULT_PLAN_TEMPLATE,
    add_to_batch_request,
    create_template_request,
    plan_request,
    submit_from_template_request,
    update_request,
)
from ._specs import SpecLike, SpecOptions, list_request, submit_batches, task_spec, workflow_request
from ._state_client import AsyncStateClient
from ._waiting import WAIT_CHUNK_SECONDS, WaitClock

if TYPE_CHECKING:
    from maos.v1.admin_pb2_grpc import AdminServiceAsyncStub
    from maos.v1.agents_pb2_grpc import AgentServiceAsyncStub
    from maos.v1.hosts_pb2_grpc import HostServiceAsyncStub
    from maos.v1.tasks_pb2_grpc import TaskServiceAsyncStub
    from maos.v1.templates_pb2_grpc import BatchServiceAsyncStub, TemplateServiceAsyncStub

_R = TypeVar("_R")
FAILOVER_FIRST_PAUSE_SECONDS = 0.05
FAILOVER_MAX_PAUSE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Stubs:
    channel: grpc.aio.Channel
    tasks: TaskServiceAsyncStub
    hosts: HostServiceAsyncStub
    agents: AgentServiceAsyncStub
    admin: AdminServiceAsyncStub
    templates: TemplateServiceAsyncStub
    batches: BatchServiceAsyncStub


class AsyncClient:
    """Asynchronous MAOS client; one channel, reused by every call.

    The channel is opened on first use (so the client may be built outside a
    running event loop) and closed by `close()` or `async with`.
    """

    def __init__(self, endpoint: str | None = None, *, timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.timeout = timeout
        # Several comma-separated endpoints: active/standby control planes (see Client).
        self._rotation = EndpointRotation(parse_endpoints(self.endpoint))
        self._open_stubs: _Stubs | None = None
        self._messages: AsyncMessagesClient | None = None
        self._messages_channel: grpc.aio.Channel | None = None
        self._state: AsyncStateClient | None = None

    def _stubs(self) -> _Stubs:
        if self._open_stubs is None:
            # Traced (a span per call, its context in the metadata) only when $MAOS_TRACING says so.
            channel = grpc.aio.insecure_channel(
                self._rotation.current, options=CHANNEL_OPTIONS, interceptors=tracing.aio_client_interceptors()
            )
            self._open_stubs = _Stubs(
                channel,
                tasks_pb2_grpc.TaskServiceStub(channel),
                hosts_pb2_grpc.HostServiceStub(channel),
                agents_pb2_grpc.AgentServiceStub(channel),
                admin_pb2_grpc.AdminServiceStub(channel),
                templates_pb2_grpc.TemplateServiceStub(channel),
                templates_pb2_grpc.BatchServiceStub(channel),
            )
        return self._open_stubs

    async def _call(self, make: Callable[[_Stubs], Awaitable[_R]]) -> _R:
        """Run `make(stubs)`; a call a standby refused or that could not reach its address (so it
        never took effect) is made again on the next endpoint, with backoff, as in Client."""
        deadline = time.monotonic() + self.timeout
        pause = FAILOVER_FIRST_PAUSE_SECONDS
        while True:
            try:
                return await make(self._stubs())
            except grpc.RpcError as exc:
                if not await self._failover(exc) or time.monotonic() + pause >= deadline:
                    raise from_rpc_error(exc, self.endpoint) from exc
                await asyncio.sleep(pause)
                pause = min(pause * 2, FAILOVER_MAX_PAUSE_SECONDS)

    async def _failover(self, exc: grpc.RpcError) -> bool:
        if not isinstance(exc, grpc.aio.AioRpcError) or exc.code() != grpc.StatusCode.UNAVAILABLE:
            return False
        if not self._rotation.move_after(str(exc.details())):
            return False
        self._state = None
        self._messages = None
        stubs, self._open_stubs = self._open_stubs, None
        if stubs is not None:
            await stubs.channel.close(None)
        return True

    @property
    def messages(self) -> AsyncMessagesClient:
        """Messages between agents (send, broadcast, publish, receive, ack, subscribe) on this channel."""
        if self._messages is None:
            target = messages_endpoint(self.endpoint)
            if target == self.endpoint:
                channel = self._stubs().channel
            else:  # inside an agent: its host's relay carries the messages
                channel = self._messages_channel = grpc.aio.insecure_channel(
                    target, options=CHANNEL_OPTIONS, interceptors=tracing.aio_client_interceptors()
                )
            self._messages = AsyncMessagesClient(
                channel, target, timeout=self.timeout, control_plane=self._stubs().channel
            )
        return self._messages

    @property
    def state(self) -> AsyncStateClient:
        """Shared state (get/put/cas/delete/list/watch) over this client's channel."""
        if self._state is None:
            self._state = AsyncStateClient(self._stubs().channel, self.endpoint, timeout=self.timeout)
        return self._state

    async def close(self) -> None:
        """Close the channel; in-flight calls are cancelled. Idempotent."""
        self._state = None
        self._messages = None
        relay, self._messages_channel = self._messages_channel, None
        if relay is not None:
            await relay.close(None)
        stubs, self._open_stubs = self._open_stubs, None
        if stubs is not None:
            await stubs.channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- tasks -------------------------------------------------------------

    async def submit_task(
        self, description: str, *, wait: float | None = None, **options: Unpack[SpecOptions]
    ) -> common_pb2.Task:
        """Submit one task and return it as stored (QUEUED, or PENDING on dependencies).

        `options` are the fields of `task_spec` (agent_type, priority, input,
        depends_on, retries, timeouts, ...). With `wait` (seconds), the same call
        also waits for the task to end and returns it with its result — one round
        trip; check `status`, since it may still be unfinished when the wait runs out.
        """
        spec = task_spec(description, **options)
        request = tasks_pb2.SubmitTaskRequest(spec=spec, wait_seconds=wait or 0.0)
        reply = await self._call(lambda s: s.tasks.SubmitTask(request, timeout=self.timeout + (wait or 0.0)))
        return reply.task

    async def submit_tasks(self, specs: Iterable[SpecLike]) -> list[common_pb2.Task]:
        """Submit many independent tasks, one SubmitTasks call per 1,000.

        Each call is all-or-nothing; when several are needed, an error in a later
        one leaves the earlier ones submitted.
        """
        tasks: list[common_pb2.Task] = []
        for request in submit_batches(specs):
            # _call runs the lambda before the loop moves on: binding the loop variable late is safe.
            reply = await self._call(lambda s: s.tasks.SubmitTasks(request, timeout=self.timeout))  # noqa: B023
            tasks.extend(reply.tasks)
        return tasks

    async def submit_workflow(
        self,
        nodes: Mapping[str, SpecLike] | Iterable[tasks_pb2.WorkflowNode],
        root_description: str,
        *,
        priority: str | int | None = None,
        labels: Mapping[str, str] | None = None,
        parent_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[common_pb2.Task, dict[str, str]]:
        """Submit a graph under one group root; returns (root task, {node key: task id})."""
        request = workflow_request(
            nodes,
            root_description,
            priority=priority,
            labels=labels,
            parent_id=parent_id,
            idempotency_key=idempotency_key,
        )
        reply = await self._call(lambda s: s.tasks.SubmitWorkflow(request, timeout=self.timeout))
        return reply.root, dict(reply.task_ids)

    async def get_task(self, task_id: str) -> common_pb2.Task:
        """The task as the control plane knows it now; NotFound if the id names nothing."""
        return await self._call(lambda s: s.tasks.GetTask(tasks_pb2.GetTaskRequest(id=task_id), timeout=self.timeout))

    async def list_tasks(
        self,
        *,
        statuses: Iterable[str | int] = (),
        root_id: str | None = None,
        parent_id: str | None = None,
        page_size: int = 100,
        include_result: bool = False,
        limit: int | None = None,
    ) -> AsyncGenerator[common_pb2.Task, None]:
        """Every matching task, fetching pages lazily; stops after `limit` tasks if given."""
        if limit is not None:
            page_size = min(page_size, max(limit, 1))
        request = list_request(
            statuses=statuses,
            root_id=root_id,
            parent_id=parent_id,
            page_size=page_size,
            include_result=include_result,
        )
        seen = 0
        while True:
            reply = await self._call(lambda s: s.tasks.ListTasks(request, timeout=self.timeout))
            for task in reply.tasks:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield task
            if not reply.next_page_token:
                return
            request.page_token = reply.next_page_token

    async def cancel_task(self, task_id: str, reason: str = "") -> common_pb2.Task:
        """Cancel a task and its subtree; idempotent. Returns the task after the request."""
        request = tasks_pb2.CancelTaskRequest(id=task_id, reason=reason)
        return await self._call(lambda s: s.tasks.CancelTask(request, timeout=self.timeout))

    async def purge_tasks(self, root_ids: Iterable[str]) -> tasks_pb2.PurgeTasksResponse:
        """Delete finished task trees by root id (tasks, events, attempts), all or none.

        FailedPrecondition if a tree has an unfinished task (cancel it first),
        InvalidArgument for a task that is not a root, NotFound for an unknown id.
        The reply counts the trees and tasks deleted.
        """
        request = tasks_pb2.PurgeTasksRequest(root_ids=list(root_ids))
        return await self._call(lambda s: s.tasks.PurgeTasks(request, timeout=self.timeout))

    async def watch_task(
        self, task_id: str, *, after_seq: int = 0, include_subtree: bool = False
    ) -> AsyncGenerator[common_pb2.TaskEvent, None]:
        """The task's events after `after_seq` (and its descendants' if asked), as they happen.

        The stream has no deadline. To resume after a dropped stream, call again
        with the last `seq` seen for the task.
        """
        stub = self._stubs().tasks
        request = tasks_pb2.WatchTaskRequest(id=task_id, after_seq=after_seq, include_subtree=include_subtree)
        call = stub.WatchTask(request)
        try:
            async for event in call:
                yield event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()

    async def wait_tasks(
        self,
        ids: Iterable[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the server bounds the wait and answers with the state
        include_result: bool = True,
    ) -> list[common_pb2.Task]:
        """Wait until every task is final or `timeout` seconds pass; returns them all either way.

        Long waits are split into bounded WaitTasks calls, so a stalled connection
        is noticed and no proxy idles the call out.
        """
        ids = list(ids)
        clock = WaitClock(timeout)
        while True:
            chunk = clock.next_chunk(WAIT_CHUNK_SECONDS)
            request = tasks_pb2.WaitTasksRequest(ids=ids, timeout_seconds=chunk, include_result=include_result)
            metadata = caller_metadata() or None
            # _call runs the lambda before the loop moves on: binding the loop variables late is safe.
            reply = await self._call(
                lambda s: s.tasks.WaitTasks(request, timeout=chunk + self.timeout, metadata=metadata)  # noqa: B023
            )
            if not reply.timed_out or clock.expired():
                return list(reply.tasks)

    async def wait_task(
        self,
        task_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors wait_tasks (and Client.wait_task)
        include_result: bool = True,
    ) -> common_pb2.Task:
        """Wait for one task to be final; DeadlineExceeded if it is not within `timeout`."""
        started = time.monotonic()
        (task,) = await self.wait_tasks([task_id], timeout=timeout, include_result=include_result)
        if not is_final(task.status):
            raise DeadlineExceeded(
                f"task {task_id} is still {status_name(task.status)} after {time.monotonic() - started:.1f}s of waiting"
            )
        return task

    async def update_task(self, task_id: str, *, priority: str | int | None = None) -> common_pb2.Task:
        """Change a queued or pending task's priority ("critical" .. "low"); returns the task."""
        request = update_request(task_id, priority=priority)
        return await self._call(lambda s: s.tasks.UpdateTask(request, timeout=self.timeout))

    async def plan_task(
        self,
        description: str,
        *,
        template: str = DEFAULT_PLAN_TEMPLATE,
        aspects: Iterable[str] = (),
        shards: Iterable[str] = (),
        stream_agent_type: str | None = None,
        synthesis_agent_type: str | None = None,
        max_agents: int = 0,
        dry_run: bool = False,
        **options: Unpack[SpecOptions],
    ) -> tasks_pb2.PlanTaskResponse:
        """Decompose a task with a planner template and submit the workflow (or, with `dry_run`, only plan it).

        "parallel-synthesis" makes one stream per aspect (or data shard), all in
        parallel, then a synthesis task after them; `max_agents` > 0 groups the
        streams into at most that many. `options` (task_spec fields) describe
        the task being decomposed. The reply has the root, the node -> task id
        map, the nodes as submitted and the plan with its estimated speedup.
        """
        request = plan_request(
            description,
            template=template,
            aspects=aspects,
            shards=shards,
            stream_agent_type=stream_agent_type,
            synthesis_agent_type=synthesis_agent_type,
            max_agents=max_agents,
            dry_run=dry_run,
            options=options,
        )
        return await self._call(lambda s: s.tasks.PlanTask(request, timeout=self.timeout))

    # ---- templates ---------------------------------------------------------

    async def create_template(
        self,
        name: str,
        *,
        from_task_id: str | None = None,
        spec: SpecLike | None = None,
        description: str = "",
    ) -> templates_pb2.Template:
        """Save a task spec under `name`: a task's (`from_task_id`) or the given one.

        `{placeholders}` in its description and in the string values of its
        input become the template's parameters.
        """
        request = create_template_request(name, from_task_id=from_task_id, spec=spec, description=description)
        return await self._call(lambda s: s.templates.CreateTemplate(request, timeout=self.timeout))

    async def get_template(self, name: str) -> templates_pb2.Template:
        """One template; NotFound if no template has that name."""
        request = templates_pb2.GetTemplateRequest(name=name)
        return await self._call(lambda s: s.templates.GetTemplate(request, timeout=self.timeout))

    async def list_templates(self) -> list[templates_pb2.Template]:
        """Every template, by name."""
        request = templates_pb2.ListTemplatesRequest()
        reply = await self._call(lambda s: s.templates.ListTemplates(request, timeout=self.timeout))
        return list(reply.templates)

    async def delete_template(self, name: str) -> templates_pb2.Template:
        """Delete a template; returns it as it was."""
        request = templates_pb2.DeleteTemplateRequest(name=name)
        return await self._call(lambda s: s.templates.DeleteTemplate(request, timeout=self.timeout))

    async def submit_from_template(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        wait: float | None = None,
        **overrides: Unpack[SpecOptions],
    ) -> common_pb2.Task:
        """Fill the template's placeholders from `params` and submit the task.

        `overrides` (task_spec fields: priority, labels, parent_id, ...) replace
        the template's values; `wait` works as in `submit_task`.
        """
        request = submit_from_template_request(name, params, overrides=overrides, wait=wait)
        reply = await self._call(
            lambda s: s.templates.SubmitFromTemplate(request, timeout=self.timeout + (wait or 0.0))
        )
        return reply.task

    # ---- batches -----------------------------------------------------------

    async def create_batch(self, name: str) -> templates_pb2.Batch:
        """Open a named batch: drafts of tasks, submitted together later."""
        request = templates_pb2.CreateBatchRequest(name=name)
        return await self._call(lambda s: s.batches.CreateBatch(request, timeout=self.timeout))

    async def add_to_batch(self, name: str, specs: Iterable[SpecLike]) -> templates_pb2.Batch:
        """Add task specs to an open batch; returns the batch."""
        request = add_to_batch_request(name, specs)
        return await self._call(lambda s: s.batches.AddToBatch(request, timeout=self.timeout))

    async def submit_batch(self, name: str) -> templates_pb2.Batch:
        """Submit every task of the batch (all or none); the batch's task_ids are in spec order."""
        request = templates_pb2.SubmitBatchRequest(name=name)
        return await self._call(lambda s: s.batches.SubmitBatch(request, timeout=self.timeout))

    async def get_batch(self, name: str) -> templates_pb2.Batch:
        """One batch, with its tasks' counts by status once submitted."""
        request = templates_pb2.GetBatchRequest(name=name)
        return await self._call(lambda s: s.batches.GetBatch(request, timeout=self.timeout))

    async def list_batches(self) -> list[templates_pb2.Batch]:
        """Every batch."""
        request = templates_pb2.ListBatchesRequest()
        reply = await self._call(lambda s: s.batches.ListBatches(request, timeout=self.timeout))
        return list(reply.batches)

    # ---- hosts, agents, admin ----------------------------------------------

    async def list_hosts(self, *, include_lost: bool = False) -> list[hosts_pb2.Host]:
        """The agent hosts connected (and, if asked, lost) to the control plane."""
        request = hosts_pb2.ListHostsRequest(include_lost=include_lost)
        reply = await self._call(lambda s: s.hosts.ListHosts(request, timeout=self.timeout))
        return list(reply.hosts)

    async def drain_host(self, host_id: str) -> hosts_pb2.Host:
        """Stop sending work to a host; its running tasks finish. Returns the host."""
        request = hosts_pb2.DrainHostRequest(id=host_id)
        return await self._call(lambda s: s.hosts.DrainHost(request, timeout=self.timeout))

    async def list_agents(self, host_id: str | None = None, *, agent_type: str | None = None) -> list[hosts_pb2.Agent]:
        """Agent worker processes, on every host or on one."""
        request = agents_pb2.ListAgentsRequest(host_id=host_id or "", agent_type=agent_type or "")
        reply = await self._call(lambda s: s.agents.ListAgents(request, timeout=self.timeout))
        return list(reply.agents)

    async def list_agent_types(self) -> list[hosts_pb2.AgentTypeInfo]:
        """The agent types the connected hosts offer."""
        request = agents_pb2.ListAgentTypesRequest()
        reply = await self._call(lambda s: s.agents.ListAgentTypes(request, timeout=self.timeout))
        return list(reply.agent_types)

    async def get_config(self, key: str = "") -> list[admin_pb2.ConfigEntry]:
        """Live settings (all, or the one named) with their defaults and descriptions."""
        reply = await self._call(lambda s: s.admin.GetConfig(admin_pb2.GetConfigRequest(key=key), timeout=self.timeout))
        return list(reply.entries)

    async def set_config(self, key: str, value: str) -> admin_pb2.ConfigEntry:
        """Change a live setting; it applies at once and survives restarts."""
        return await self._call(
            lambda s: s.admin.SetConfig(admin_pb2.SetConfigRequest(key=key, value=value), timeout=self.timeout)
        )

    async def status(self) -> admin_pb2.StatusResponse:
        """The control plane's summary: version, store, task counts, hosts, slots, queues."""
        return await self._call(lambda s: s.admin.Status(admin_pb2.StatusRequest(), timeout=self.timeout))

    async def get_metrics(
        self, timeframe_seconds: float = 300.0, *, max_points: int = 0
    ) -> admin_pb2.GetMetricsResponse:
        """The performance monitor's figures over the last `timeframe_seconds` (at most 7 days)."""
        request = admin_pb2.GetMetricsRequest(timeframe_seconds=timeframe_seconds, max_points=max_points)
        return await self._call(lambda s: s.admin.GetMetrics(request, timeout=self.timeout))

    async def list_alerts(self, *, active_only: bool = False, limit: int = 0) -> list[admin_pb2.Alert]:
        """Alerts the performance monitor raised, newest first."""
        request = admin_pb2.ListAlertsRequest(active_only=active_only, limit=limit)
        reply = await self._call(lambda s: s.admin.ListAlerts(request, timeout=self.timeout))
        return list(reply.alerts)
