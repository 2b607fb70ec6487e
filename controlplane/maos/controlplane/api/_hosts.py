"""HostService (the per-host bidirectional stream), AgentService and AdminService."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import grpc
from maos.controlplane._convert import timestamp
from maos.controlplane._host_session import HostSession
from maos.controlplane._runtime import Runtime
from maos.controlplane.core import Priority, TaskStatus
from maos.controlplane.messaging import Messaging
from maos.controlplane.metrics import Monitor
from maos.errors import FailedPrecondition, InvalidArgument
from maos.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agents_pb2,
    agents_pb2_grpc,
    common_pb2,
    hosts_pb2,
    hosts_pb2_grpc,
    messages_pb2,
)
from maos.wire import EnvelopeError, decode_envelope

from ._host_messages import HostMessageBridge
from ._metrics import alerts_response, metrics_response

Ctx = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger(__name__)
VERSION = "0.1.0"


_MESSAGE_KINDS = frozenset({"message_call", "mailbox_subscribe", "mailbox_unsubscribe"})


class HostServicer(hosts_pb2_grpc.HostServiceServicer):
    def __init__(self, runtime: Runtime, messaging: Messaging | None = None) -> None:
        self._rt = runtime
        self._messaging = messaging

    async def Connect(
        self, request_iterator: AsyncIterator[common_pb2.Envelope], context: Ctx
    ) -> AsyncIterator[common_pb2.Envelope]:
        """First item up must be Register; then a reader task feeds host batches to the
        runtime while this generator streams the session's outbound batches."""
        iterator = request_iterator.__aiter__()
        try:
            first = decode_envelope(await anext(iterator), hosts_pb2.HostItems)
        except (StopAsyncIteration, EnvelopeError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"host stream must open with a register item: {exc}")
        if not first.items or first.items[0].WhichOneof("item") != "register":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "host stream must open with a register item")
        register = first.items[0].register
        if not register.host_id or register.slots == 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "register needs a host_id and at least one slot")
        session = HostSession(register=register)
        session.send(
            hosts_pb2.ControlItem(
                registered=hosts_pb2.Registered(
                    host_id=register.host_id,
                    heartbeat_interval_seconds=self._rt.settings.core.heartbeat_interval_seconds,
                    controlplane_version=VERSION,
                )
            )
        )
        self._rt.host_attached(session)
        bridge = (
            HostMessageBridge(register.host_id, self._messaging, session.send, self._rt.orch.task_on_agent)
            if self._messaging is not None
            else None
        )
        log.info("host %s (%s) connected with %d slots", register.host_id, register.hostname, register.slots)
        if len(first.items) > 1:
            rest = hosts_pb2.HostItems(items=first.items[1:])
            self._rt.host_items(session, rest)
        reason = "stream closed"

        async def read() -> None:
            nonlocal reason
            try:
                async for envelope in iterator:
                    session.received.record(envelope)
                    try:
                        items = decode_envelope(envelope, hosts_pb2.HostItems)
                    except EnvelopeError as exc:
                        log.warning("host %s sent an undecodable batch: %s", session.host_id, exc)
                        continue
                    self._rt.host_items(session, _route_messages(items, bridge))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken stream is a lost host, never a crash
                reason = f"stream error: {exc}"
            finally:
                session.close()

        reader = asyncio.create_task(read(), name=f"host-reader-{session.host_id}")
        try:
            async for envelope in session.envelopes():
                yield envelope
        finally:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass
            log.info("host %s disconnected: %s", session.host_id, reason)
            if bridge is not None:
                bridge.close()
            self._rt.host_detached(session, reason)

    async def ListHosts(self, request: hosts_pb2.ListHostsRequest, context: Ctx) -> hosts_pb2.ListHostsResponse:
        hosts = []
        for state in self._rt.orch.hosts.values():
            session = self._rt.sessions.get(state.id)
            if not state.connected and not request.include_lost:
                continue
            status = (
                hosts_pb2.HOST_STATUS_LOST
                if not state.connected
                else hosts_pb2.HOST_STATUS_DRAINING
                if state.draining
                else hosts_pb2.HOST_STATUS_CONNECTED
            )
            host = hosts_pb2.Host(
                id=state.id,
                status=status,
                slots=state.slots,
                in_flight=len(state.in_flight),
                tasks_completed=state.completed,
                last_heartbeat=timestamp(state.last_heartbeat),
            )
            if session is not None:
                reg, hb = session.register, session.last_heartbeat
                host.hostname = reg.hostname
                host.cpu_count = reg.cpu_count
                host.memory_bytes = reg.memory_bytes
                host.agent_types.extend(reg.agent_types)
                host.connected_at.FromNanoseconds(int(session.connected_at * 1e9))
                host.cpu_percent = hb.cpu_percent
                host.memory_used_bytes = hb.memory_used_bytes
            hosts.append(host)
        return hosts_pb2.ListHostsResponse(hosts=hosts)

    async def DrainHost(self, request: hosts_pb2.DrainHostRequest, context: Ctx) -> hosts_pb2.Host:
        if not request.id:
            raise InvalidArgument("id is empty: pass a host id (see `maosctl host list`)")
        self._rt.drain(request.id)
        listed = await self.ListHosts(hosts_pb2.ListHostsRequest(include_lost=True), context)
        return next(h for h in listed.hosts if h.id == request.id)


def _route_messages(items: hosts_pb2.HostItems, bridge: HostMessageBridge | None) -> hosts_pb2.HostItems:
    """Hand the batch's message items to the bridge; the rest (tasks, heartbeats) go to the runtime."""
    rest: hosts_pb2.HostItems | None = None
    for i, item in enumerate(items.items):
        kind = item.WhichOneof("item")
        if kind in _MESSAGE_KINDS:
            if rest is None:
                rest = hosts_pb2.HostItems(items=items.items[:i])
            if bridge is not None:
                bridge.handle(item, kind)
        elif rest is not None:
            rest.items.append(item)
    return items if rest is None else rest


def host_message_stats(runtime: Runtime) -> list[messages_pb2.HostMessageStatsRow]:
    """Each connected host's relay statistics, as of its last heartbeat."""
    rows = []
    for session in runtime.sessions.values():
        stats = messages_pb2.HostMessageStats()
        stats.CopyFrom(session.last_heartbeat.message_stats)
        # The message items' share of the stream as sent: the stream's compression ratio applied to them.
        raw = session.sent.raw_bytes + session.received.raw_bytes
        wire = session.sent.wire_bytes + session.received.wire_bytes
        stats.bytes_compressed = round(stats.bytes_raw * wire / raw) if raw else stats.bytes_raw
        rows.append(messages_pb2.HostMessageStatsRow(host_id=session.host_id, stats=stats))
    return rows


class AgentServicer(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self, runtime: Runtime, profiles: Callable[[], Collection[hosts_pb2.AgentTypeInfo]]) -> None:
        self._rt = runtime
        self._profiles = profiles

    async def ListAgents(self, request: agents_pb2.ListAgentsRequest, context: Ctx) -> agents_pb2.ListAgentsResponse:
        agents = []
        for session in self._rt.sessions.values():
            if request.host_id and session.host_id != request.host_id:
                continue
            for agent in session.last_heartbeat.agents:
                if request.agent_type and agent.agent_type != request.agent_type:
                    continue
                agents.append(agent)
        return agents_pb2.ListAgentsResponse(agents=agents)

    async def ListAgentTypes(
        self, request: agents_pb2.ListAgentTypesRequest, context: Ctx
    ) -> agents_pb2.ListAgentTypesResponse:
        types: dict[str, hosts_pb2.AgentTypeInfo] = {t.name: t for t in self._profiles()}
        for session in self._rt.sessions.values():
            for t in session.register.agent_types:
                types.setdefault(t.name, t)
        return agents_pb2.ListAgentTypesResponse(agent_types=[types[k] for k in sorted(types)])


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        runtime: Runtime,
        endpoint: Callable[[], str],
        monitor: Monitor | None = None,
        metrics_endpoint: Callable[[], str] = str,
    ) -> None:
        self._rt = runtime
        self._endpoint = endpoint  # known only once the server has bound its port
        self._monitor = monitor
        self._metrics_endpoint = metrics_endpoint  # the Prometheus scrape address, "" when off

    def _monitoring(self) -> Monitor:
        if self._monitor is None:
            raise FailedPrecondition("this control plane does not collect metrics")
        return self._monitor

    async def GetMetrics(self, request: admin_pb2.GetMetricsRequest, context: Ctx) -> admin_pb2.GetMetricsResponse:
        return metrics_response(self._monitoring(), request, self._metrics_endpoint())

    async def ListAlerts(self, request: admin_pb2.ListAlertsRequest, context: Ctx) -> admin_pb2.ListAlertsResponse:
        return alerts_response(self._monitoring(), request)

    async def Status(self, request: admin_pb2.StatusRequest, context: Ctx) -> admin_pb2.StatusResponse:
        rt = self._rt
        counts = await rt.store.counts_by_status()
        live = rt.orch.counts_by_status()
        for status in (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.RUNNING):
            counts[status] = live[status]  # fresher than the last commit
        connected = [h for h in rt.orch.hosts.values() if h.connected and not h.awaiting_reconnect]
        depth = rt.orch.queue.depth_by_priority()
        return admin_pb2.StatusResponse(
            version=VERSION,
            started_at=timestamp(rt.started_at),
            store=rt.store.description,
            tasks_by_status={s.name.lower(): n for s, n in counts.items()},
            hosts_connected=len(connected),
            slots_total=sum(h.slots for h in connected),
            slots_busy=sum(min(len(h.in_flight), h.slots) for h in connected),
            queue=[admin_pb2.QueueDepth(priority=p.name.lower(), depth=depth[p]) for p in Priority],
            agents=sum(len(s.last_heartbeat.agents) for s in rt.sessions.values()),
            listen=self._endpoint(),
        )

    async def GetConfig(self, request: admin_pb2.GetConfigRequest, context: Ctx) -> admin_pb2.GetConfigResponse:
        if request.key:
            self._rt.live_settings.lookup(request.key)  # unknown key: INVALID_ARGUMENT naming the known ones
        return admin_pb2.GetConfigResponse(
            entries=[
                admin_pb2.ConfigEntry(key=s.key, value=value, default_value=default, description=s.description)
                for s, value, default in self._rt.live_settings.entries()
                if not request.key or s.key == request.key
            ]
        )

    async def SetConfig(self, request: admin_pb2.SetConfigRequest, context: Ctx) -> admin_pb2.ConfigEntry:
        if not request.key:
            raise InvalidArgument("key is empty: name a setting (see `maosctl config list`)")
        await self._rt.set_setting(request.key, request.value)
        listed = await self.GetConfig(admin_pb2.GetConfigRequest(key=request.key), context)
        return listed.entries[0]
