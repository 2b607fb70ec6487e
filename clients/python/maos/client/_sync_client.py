"""Client: the SDK on a plain (blocking) gRPC channel, same methods as AsyncClient."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc
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
from ._messages_client import MessagesClient
from ._requests import (
    DEFAULT_PLAN_TEMPLATE,
    add_to_batch_request,
    create_template_request,
    plan_request,
    submit_from_template_request,
    update_request,
)
from ._specs import SpecLike, SpecOptions, list_request, submit_batches, task_spec, workflow_request
from ._state_client import StateClient
from ._waiting import WAIT_CHUNK_SECONDS, WaitClock

_Req = TypeVar("_Req")
_R = TypeVar("_R")
# Between tries of another endpoint after a standby's refusal or an unreachable address.
FAILOVER_FIRST_PAUSE_SECONDS = 0.05
FAILOVER_MAX_PAUSE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Stubs:
    channel: grpc.Channel
    tasks: tasks_pb2_grpc.TaskServiceStub
    hosts: hosts_pb2_grpc.HostServiceStub
    agents: agents_pb2_grpc.AgentServiceStub
    admin: admin_pb2_grpc.AdminServiceStub
    templates: templates_pb2_grpc.TemplateServiceStub
    batches: templates_pb2_grpc.BatchServiceStub


class Client:
    """Blocking MAOS client; one channel, reused by every call, opened on first use.

    Thread-safe: gRPC channels may be shared by threads. Close with `close()`
    or use as a context manager.
    """

    def __init__(self, endpoint: str | None = None, *, timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.timeout = timeout
        # Several comma-separated endpoints: active/standby control planes; calls move to the leader.
        self._rotation = EndpointRotation(parse_endpoints(self.endpoint))
        self._open_stubs: _Stubs | None = None
        self._messages: MessagesClient | None = None
        self._messages_channel: grpc.Channel | None = None
        self._state: StateClient | None = None

    def _stubs(self) -> _Stubs:
        if self._open_stubs is None:
            # Traced (a span per call, its context in the metadata) only when $MAOS_TRACING says so.
            channel = tracing.intercept_channel(grpc.insecure_channel(self._rotation.current, options=CHANNEL_OPTIONS))
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

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[_Req, _R],
        request: _Req,
        timeout: float | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> _R:
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        pause = FAILOVER_FIRST_PAUSE_SECONDS
        while True:
            try:
                return method(request, timeout=max(0.001, deadline - time.monotonic()), metadata=metadata or None)
            except grpc.RpcError as exc:
                moved = self._failover(exc, method)
                if moved is None or time.monotonic() + pause >= deadline:
                    raise from_rpc_error(exc, self.endpoint) from exc
                time.sleep(pause)
                pause = min(pause * 2, FAILOVER_MAX_PAUSE_SECONDS)
                method = moved

    def _failover(self, exc: grpc.RpcError, method: Any) -> Any | None:
        """After an UNAVAILABLE that never took effect (a standby, an unreachable address) with
        other endpoints to try: reconnect to the next one and return the method there."""
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            return None
        old = self._open_stubs
        if not self._rotation.move_after(str(exc.details())):
            return None
        self._reset_channel()
        return _same_method(old, self._stubs(), method) if old is not None else None

    def _reset_channel(self) -> None:
        self._state = None
        self._messages = None
        stubs, self._open_stubs = self._open_stubs, None
        if stubs is not None:
            stubs.channel.close()

    @property
    def messages(self) -> MessagesClient:
        """Messages between agents (send, broadcast, publish, receive, ack, subscribe) on this channel."""
        if self._messages is None:
            target = messages_endpoint(self.endpoint)
            if target == self.endpoint:
                channel = self._stubs().channel
            else:  # inside an agent: its host's relay carries the messages
                channel = self._messages_channel = tracing.intercept_channel(
                    grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
                )
            self._messages = MessagesClient(channel, target, timeout=self.timeout, control_plane=self._stubs().channel)
        return self._messages

    @property
    def state(self) -> StateClient:
        """Shared state (get/put/cas/delete/list/watch) over this client's channel."""
        if self._state is None:
            self._state = StateClient(self._stubs().channel, self.endpoint, timeout=self.timeout)
        return self._state

    def close(self) -> None:
        """Close the channel; in-flight calls are cancelled. Idempotent."""
        self._state = None
        self._messages = None
        relay, self._messages_channel = self._messages_channel, None
        if relay is not None:
            relay.close()
        stubs, self._open_stubs = self._open_stubs, None
        if stubs is not None:
            stubs.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- tasks -------------------------------------------------------------

    def submit_task(
        self, description: str, *, wait: float | None = None, **options: Unpack[SpecOptions]
    ) -> common_pb2.Task:
        """Submit one task and return it as stored (QUEUED, or PENDING on dependencies).

        `options` are the fields of `task_spec` (agent_type, priority, input,
        depends_on, retries, timeouts, ...). With `wait` (seconds), the same call
        also waits for the task to end and returns it with its result — one round
        trip; check `status`, since it may still be unfinished when the wait runs out.
        """
        request = tasks_pb2.SubmitTaskRequest(spec=task_spec(description, **options), wait_seconds=wait or 0.0)
        reply: tasks_pb2.SubmitTaskResponse = self._call(
            self._stubs().tasks.SubmitTask, request, self.timeout + (wait or 0.0)
        )
        return reply.task

    def submit_tasks(self, specs: Iterable[SpecLike]) -> list[common_pb2.Task]:
        """Submit many independent tasks, one SubmitTasks call per 1,000.

        Each call is all-or-nothing; when several are needed, an error in a later
        one leaves the earlier ones submitted.
        """
        tasks: list[common_pb2.Task] = []
        for request in submit_batches(specs):
            reply: tasks_pb2.SubmitTasksResponse = self._call(self._stubs().tasks.SubmitTasks, request)
            tasks.extend(reply.tasks)
        return tasks

    def submit_workflow(
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
        reply: tasks_pb2.SubmitWorkflowResponse = self._call(self._stubs().tasks.SubmitWorkflow, request)
        return reply.root, dict(reply.task_ids)

    def get_task(self, task_id: str) -> common_pb2.Task:
        """The task as the control plane knows it now; NotFound if the id names nothing."""
        task: common_pb2.Task = self._call(self._stubs().tasks.GetTask, tasks_pb2.GetTaskRequest(id=task_id))
        return task

    def list_tasks(
        self,
        *,
        statuses: Iterable[str | int] = (),
        root_id: str | None = None,
        parent_id: str | None = None,
        page_size: int = 100,
        include_result: bool = False,
        limit: int | None = None,
    ) -> Generator[common_pb2.Task, None, None]:
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
            reply: tasks_pb2.ListTasksResponse = self._call(self._stubs().tasks.ListTasks, request)
            for task in reply.tasks:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield task
            if not reply.next_page_token:
                return
            request.page_token = reply.next_page_token

    def cancel_task(self, task_id: str, reason: str = "") -> common_pb2.Task:
        """Cancel a task and its subtree; idempotent. Returns the task after the request."""
        request = tasks_pb2.CancelTaskRequest(id=task_id, reason=reason)
        task: common_pb2.Task = self._call(self._stubs().tasks.CancelTask, request)
        return task

    def purge_tasks(self, root_ids: Iterable[str]) -> tasks_pb2.PurgeTasksResponse:
        """Delete finished task trees by root id (tasks, events, attempts), all or none.

        FailedPrecondition if a tree has an unfinished task (cancel it first),
        InvalidArgument for a task that is not a root, NotFound for an unknown id.
        The reply counts the trees and tasks deleted.
        """
        request = tasks_pb2.PurgeTasksRequest(root_ids=list(root_ids))
        reply: tasks_pb2.PurgeTasksResponse = self._call(self._stubs().tasks.PurgeTasks, request)
        return reply

    def watch_task(
        self, task_id: str, *, after_seq: int = 0, include_subtree: bool = False
    ) -> Generator[common_pb2.TaskEvent, None, None]:
        """The task's events after `after_seq` (and its descendants' if asked), as they happen.

        The stream has no deadline; closing the iterator cancels it. To resume
        after a dropped stream, call again with the last `seq` seen for the task.
        """
        request = tasks_pb2.WatchTaskRequest(id=task_id, after_seq=after_seq, include_subtree=include_subtree)
        call = self._stubs().tasks.WatchTask(request)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves CallIterator.cancel untyped

    def wait_tasks(
        self, ids: Iterable[str], *, timeout: float | None = None, include_result: bool = True
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
            reply: tasks_pb2.WaitTasksResponse = self._call(
                self._stubs().tasks.WaitTasks, request, chunk + self.timeout, caller_metadata()
            )
            if not reply.timed_out or clock.expired():
                return list(reply.tasks)

    def wait_task(self, task_id: str, *, timeout: float | None = None, include_result: bool = True) -> common_pb2.Task:
        """Wait for one task to be final; DeadlineExceeded if it is not within `timeout`."""
        started = time.monotonic()
        (task,) = self.wait_tasks([task_id], timeout=timeout, include_result=include_result)
        if not is_final(task.status):
            raise DeadlineExceeded(
                f"task {task_id} is still {status_name(task.status)} after {time.monotonic() - started:.1f}s of waiting"
            )
        return task

    def update_task(self, task_id: str, *, priority: str | int | None = None) -> common_pb2.Task:
        """Change a queued or pending task's priority ("critical" .. "low"); returns the task."""
        task: common_pb2.Task = self._call(self._stubs().tasks.UpdateTask, update_request(task_id, priority=priority))
        return task

    def plan_task(
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
        reply: tasks_pb2.PlanTaskResponse = self._call(self._stubs().tasks.PlanTask, request)
        return reply

    # ---- templates ---------------------------------------------------------

    def create_template(
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
        template: templates_pb2.Template = self._call(self._stubs().templates.CreateTemplate, request)
        return template

    def get_template(self, name: str) -> templates_pb2.Template:
        """One template; NotFound if no template has that name."""
        request = templates_pb2.GetTemplateRequest(name=name)
        template: templates_pb2.Template = self._call(self._stubs().templates.GetTemplate, request)
        return template

    def list_templates(self) -> list[templates_pb2.Template]:
        """Every template, by name."""
        request = templates_pb2.ListTemplatesRequest()
        reply: templates_pb2.ListTemplatesResponse = self._call(self._stubs().templates.ListTemplates, request)
        return list(reply.templates)

    def delete_template(self, name: str) -> templates_pb2.Template:
        """Delete a template; returns it as it was."""
        request = templates_pb2.DeleteTemplateRequest(name=name)
        template: templates_pb2.Template = self._call(self._stubs().templates.DeleteTemplate, request)
        return template

    def submit_from_template(
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
        reply: tasks_pb2.SubmitTaskResponse = self._call(
            self._stubs().templates.SubmitFromTemplate, request, self.timeout + (wait or 0.0)
        )
        return reply.task

    # ---- batches -----------------------------------------------------------

    def create_batch(self, name: str) -> templates_pb2.Batch:
        """Open a named batch: drafts of tasks, submitted together later."""
        batch: templates_pb2.Batch = self._call(
            self._stubs().batches.CreateBatch, templates_pb2.CreateBatchRequest(name=name)
        )
        return batch

    def add_to_batch(self, name: str, specs: Iterable[SpecLike]) -> templates_pb2.Batch:
        """Add task specs to an open batch; returns the batch."""
        batch: templates_pb2.Batch = self._call(self._stubs().batches.AddToBatch, add_to_batch_request(name, specs))
        return batch

    def submit_batch(self, name: str) -> templates_pb2.Batch:
        """Submit every task of the batch (all or none); the batch's task_ids are in spec order."""
        batch: templates_pb2.Batch = self._call(
            self._stubs().batches.SubmitBatch, templates_pb2.SubmitBatchRequest(name=name)
        )
        return batch

    def get_batch(self, name: str) -> templates_pb2.Batch:
        """One batch, with its tasks' counts by status once submitted."""
        batch: templates_pb2.Batch = self._call(
            self._stubs().batches.GetBatch, templates_pb2.GetBatchRequest(name=name)
        )
        return batch

    def list_batches(self) -> list[templates_pb2.Batch]:
        """Every batch."""
        reply: templates_pb2.ListBatchesResponse = self._call(
            self._stubs().batches.ListBatches, templates_pb2.ListBatchesRequest()
        )
        return list(reply.batches)

    # ---- hosts, agents, admin ----------------------------------------------

    def list_hosts(self, *, include_lost: bool = False) -> list[hosts_pb2.Host]:
        """The agent hosts connected (and, if asked, lost) to the control plane."""
        request = hosts_pb2.ListHostsRequest(include_lost=include_lost)
        reply: hosts_pb2.ListHostsResponse = self._call(self._stubs().hosts.ListHosts, request)
        return list(reply.hosts)

    def drain_host(self, host_id: str) -> hosts_pb2.Host:
        """Stop sending work to a host; its running tasks finish. Returns the host."""
        host: hosts_pb2.Host = self._call(self._stubs().hosts.DrainHost, hosts_pb2.DrainHostRequest(id=host_id))
        return host

    def list_agents(self, host_id: str | None = None, *, agent_type: str | None = None) -> list[hosts_pb2.Agent]:
        """Agent worker processes, on every host or on one."""
        request = agents_pb2.ListAgentsRequest(host_id=host_id or "", agent_type=agent_type or "")
        reply: agents_pb2.ListAgentsResponse = self._call(self._stubs().agents.ListAgents, request)
        return list(reply.agents)

    def list_agent_types(self) -> list[hosts_pb2.AgentTypeInfo]:
        """The agent types the connected hosts offer."""
        request = agents_pb2.ListAgentTypesRequest()
        reply: agents_pb2.ListAgentTypesResponse = self._call(self._stubs().agents.ListAgentTypes, request)
        return list(reply.agent_types)

    def get_config(self, key: str = "") -> list[admin_pb2.ConfigEntry]:
        """Live settings (all, or the one named) with their defaults and descriptions."""
        reply: admin_pb2.GetConfigResponse = self._call(
            self._stubs().admin.GetConfig, admin_pb2.GetConfigRequest(key=key)
        )
        return list(reply.entries)

    def set_config(self, key: str, value: str) -> admin_pb2.ConfigEntry:
        """Change a live setting; it applies at once and survives restarts."""
        entry: admin_pb2.ConfigEntry = self._call(
            self._stubs().admin.SetConfig, admin_pb2.SetConfigRequest(key=key, value=value)
        )
        return entry

    def status(self) -> admin_pb2.StatusResponse:
        """The control plane's summary: version, store, task counts, hosts, slots, queues."""
        reply: admin_pb2.StatusResponse = self._call(self._stubs().admin.Status, admin_pb2.StatusRequest())
        return reply

    def get_metrics(self, timeframe_seconds: float = 300.0, *, max_points: int = 0) -> admin_pb2.GetMetricsResponse:
        """The performance monitor's figures over the last `timeframe_seconds` (at most 7 days)."""
        request = admin_pb2.GetMetricsRequest(timeframe_seconds=timeframe_seconds, max_points=max_points)
        reply: admin_pb2.GetMetricsResponse = self._call(self._stubs().admin.GetMetrics, request)
        return reply

    def list_alerts(self, *, active_only: bool = False, limit: int = 0) -> list[admin_pb2.Alert]:
        """Alerts the performance monitor raised, newest first."""
        request = admin_pb2.ListAlertsRequest(active_only=active_only, limit=limit)
        reply: admin_pb2.ListAlertsResponse = self._call(self._stubs().admin.ListAlerts, request)
        return list(reply.alerts)


def _same_method(old: _Stubs, new: _Stubs, method: Any) -> Any | None:
    """`method` (a stub's callable on the old channel) as the same stub's callable on the new one."""
    for field in ("tasks", "hosts", "agents", "admin", "templates", "batches"):
        for name, value in vars(getattr(old, field)).items():
            if value is method:
                return getattr(getattr(new, field), name)
    return None
