"""The agent host daemon: a worker pool driven by the control plane over one stream.

    async with AgentHost(AgentHostConfig(controlplane="127.0.0.1:7700")) as host:
        await host.wait_closed()          # until shutdown() or SIGTERM via run_agent_host

Assignments go into the pool; what the pool reports goes up the stream as
TaskStarted / TaskProgress / TaskResult. SlotLent raises or lowers the pool's
capacity while a task waits on its children (see _pool). Each result is kept until a
ResultAck names its lease and resent after every reconnect. Running tasks
carry on while the stream is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING

import psutil
from maos import tracing
from maos.client._config import MESSAGES_ENDPOINT_ENV
from maos.controlplane.messaging import MessagingConfig
from maos.profiles import AgentProfile, load_profiles
from maos.v1 import common_pb2, hosts_pb2
from maos.wire import JSON_CONTENT_TYPE

from ._config import AgentHostConfig
from ._link import ControlPlaneLink, SizedItem
from ._pool import PoolTask, TaskOutcome, WorkerPool, WorkerStatus
from ._relay import MessageRelay, RelayConfig
from ._relay_server import RelayServer

if TYPE_CHECKING:
    from maos.tracing._host import AssignmentSpans

logger = logging.getLogger(__name__)

TRACING_SERVICE_NAME = "maos-agenthost"

# How long shutdown waits for the control plane to acknowledge the last results.
_ACK_WAIT_SECONDS = 2.0
RELAY_SWEEP_SECONDS = 0.5  # how late a local lease that ran out may be redelivered
_STATUS_NAMES = {value: name.removeprefix("TASK_STATUS_") for name, value in common_pb2.TaskStatus.items()}
_AGENT_STATUS = {
    WorkerStatus.IDLE: hosts_pb2.AGENT_STATUS_IDLE,
    WorkerStatus.BUSY: hosts_pb2.AGENT_STATUS_BUSY,
    WorkerStatus.WARMING: hosts_pb2.AGENT_STATUS_WARMING,
    WorkerStatus.DRAINING: hosts_pb2.AGENT_STATUS_DRAINING,
    WorkerStatus.DEAD: hosts_pb2.AGENT_STATUS_DEAD,
}


def _version() -> str:
    try:
        return metadata.version("maos")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _payload_text(payload: common_pb2.Payload) -> str | None:
    """A payload as JSON text for the worker; non-JSON content becomes a JSON string of its text."""
    if not payload.data:
        return None
    if payload.content_type in ("", JSON_CONTENT_TYPE):
        return payload.data.decode("utf-8", errors="replace")
    import orjson

    return orjson.dumps(payload.data.decode("utf-8", errors="replace")).decode()


class AgentHost:
    """One agent host: the worker pool plus the control plane link.

    `start()` loads the profiles, warms the workers and starts connecting;
    `shutdown()` (idempotent, bounded by the config's graces) lets work
    finish, reports results, closes the stream and stops the workers.
    """

    def __init__(self, config: AgentHostConfig, *, profiles: Mapping[str, AgentProfile] | None = None) -> None:
        self.config = config
        self._profiles = dict(profiles) if profiles is not None else None
        self._pool: WorkerPool | None = None
        self._link: ControlPlaneLink | None = None
        self._unacked: dict[tuple[str, int], SizedItem] = {}
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._heartbeat_interval = config.heartbeat_interval_seconds
        self._heartbeat_wake = asyncio.Event()
        self._draining = False
        self._ignored = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._shutdown: asyncio.Task[None] | None = None
        self._hostname = socket.gethostname()
        self._traces: AssignmentSpans | None = None  # a span per assignment when tracing is on
        self.relay = MessageRelay(
            RelayConfig(local_delivery=config.local_message_delivery, limits=config.messaging or MessagingConfig()),
            self._send_up,
            lambda: self.connected,
        )
        self._relay_server: RelayServer | None = None

    # ---- lifecycle ----

    async def __aenter__(self) -> AgentHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def host_id(self) -> str:
        """This host's id on the control plane."""
        return self.config.host_id

    @property
    def pool(self) -> WorkerPool:
        """The worker pool (after start())."""
        if self._pool is None:
            raise RuntimeError("the agent host is not started")
        return self._pool

    @property
    def connected(self) -> bool:
        """Registered with the control plane right now."""
        return self._link is not None and self._link.connected

    @property
    def draining(self) -> bool:
        """The control plane asked this host to drain."""
        return self._draining

    async def start(self) -> None:
        """Load profiles, start the workers (warm), start the control plane link and heartbeats."""
        config = self.config
        if config.tracing.enabled and tracing.active_spec() != config.tracing:
            tracing.configure(config.tracing, TRACING_SERVICE_NAME)  # workers inherit it via $MAOS_TRACING
        self._traces = tracing.assignment_spans(config.host_id)
        if self._profiles is None:
            # A small YAML file, read once at startup, before the loop has anything else to do.
            self._profiles = load_profiles(config.agents_file)
        self._relay_server = RelayServer(self.relay, config.host_id)
        messages_endpoint = await self._relay_server.start()
        self._pool = WorkerPool(
            self._profiles,
            size=config.workers,
            listener=self,
            host_id=config.host_id,
            kill_grace_seconds=config.kill_grace_seconds,
            python_path=config.python_path,
            endpoint=config.controlplane,
            env={**os.environ, MESSAGES_ENDPOINT_ENV: messages_endpoint},
        )
        await self._pool.start()
        self._link = ControlPlaneLink(config, self)
        self._tasks = [
            asyncio.create_task(self._link.run(), name="maos-link"),
            asyncio.create_task(self._heartbeat_loop(), name="maos-heartbeat"),
            asyncio.create_task(self._relay_sweep_loop(), name="maos-relay-sweep"),
        ]
        logger.info(
            "agent host %s started: %d workers, control plane %s", config.host_id, config.workers, config.controlplane
        )

    def request_shutdown(self, reason: str = "requested") -> None:
        """Start shutdown from a signal handler or any sync code; returns at once."""
        if self._shutdown is None:
            logger.info("shutting down (%s)", reason)
            self._shutdown = asyncio.get_running_loop().create_task(self._do_shutdown(), name="maos-shutdown")

    async def shutdown(self) -> None:
        """Stop: finish or cancel work within the grace, report results, close the stream, stop workers.

        Idempotent; every caller waits for the same shutdown.
        """
        self.request_shutdown()
        assert self._shutdown is not None
        await asyncio.shield(self._shutdown)

    async def wait_closed(self) -> None:
        """Wait until shutdown has finished."""
        await self._closed.wait()

    async def _do_shutdown(self) -> None:
        try:
            if self._pool is not None:
                await self._pool.shutdown(grace=self.config.shutdown_grace_seconds)
            link = self._link
            if link is not None:
                if link.connected and self._unacked:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._all_acked.wait(), _ACK_WAIT_SECONDS)
                await link.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._relay_server is not None:
                await self._relay_server.stop()
            if self._ignored:
                logger.info("left %d assignments that arrived during shutdown to the control plane", self._ignored)
            if self._unacked:
                logger.warning("%d results were not acknowledged by the control plane", len(self._unacked))
            if self._traces is not None:
                self._traces.end_all()  # work cut short by the shutdown: export what is known of it at exit
            logger.info("agent host %s stopped", self.host_id)
        finally:
            self._closed.set()

    # ---- PoolListener ----

    def task_started(self, task: PoolTask, agent_id: str) -> None:
        """Report that a worker began the task."""
        if self._traces is not None:
            self._traces.started(task.task_id, task.attempt, agent_id)
        link = self._link
        if link is not None and link.connected:
            item = hosts_pb2.HostItem()
            started = item.started
            started.task_id = task.task_id
            started.attempt = task.attempt
            started.agent_id = agent_id
            link.send(item)

    def task_progress(self, task: PoolTask, fraction: float, message: str) -> None:
        """Forward a progress event."""
        link = self._link
        if link is not None and link.connected:
            item = hosts_pb2.HostItem()
            progress = item.progress
            progress.task_id = task.task_id
            progress.attempt = task.attempt
            progress.progress.fraction = fraction
            progress.progress.message = message
            link.send(item, len(message))

    def task_finished(self, outcome: TaskOutcome) -> None:
        """Record the result until acknowledged, and send it."""
        task = outcome.task
        if self._traces is not None:
            self._traces.finished(
                task.task_id, task.attempt, outcome.outcome.name.lower(), outcome.error_kind, outcome.error_message
            )
        self.relay.task_ended(task.task_id)
        item = hosts_pb2.HostItem()
        result = item.result
        result.task_id = task.task_id
        result.attempt = task.attempt
        result.outcome = int(outcome.outcome)  # type: ignore[assignment]
        size = len(outcome.log)
        if outcome.result_json is not None:
            data = outcome.result_json.encode()
            result.result.data = data
            result.result.content_type = JSON_CONTENT_TYPE
            size += len(data)
        if outcome.error_kind:
            result.error.kind = outcome.error_kind
            result.error.message = outcome.error_message
            size += len(outcome.error_message)
        if outcome.log:
            result.log = outcome.log
        result.agent_id = outcome.agent_id
        result.duration_seconds = outcome.duration_seconds
        sized = (item, size)
        self._unacked[(task.task_id, task.attempt)] = sized
        self._all_acked.clear()
        if self._link is not None:
            self._link.send(item, size)

    # ---- LinkHandler ----

    def register_item(self) -> hosts_pb2.HostItem:
        """Register: identity, capacity, agent types and every lease held."""
        pool = self.pool
        item = hosts_pb2.HostItem()
        reg = item.register
        reg.host_id = self.host_id
        reg.hostname = self._hostname
        reg.slots = pool.size
        reg.cpu_count = os.cpu_count() or 1
        reg.memory_bytes = psutil.virtual_memory().total
        for profile in pool.profiles.values():
            reg.agent_types.add(
                name=profile.name,
                capabilities=profile.capabilities,
                runner=profile.runner_kind,
                timeout_seconds=profile.timeout_seconds,
            )
        for task_id, attempt in pool.leases():
            reg.running.add(task_id=task_id, attempt=attempt)
        reg.version = _version()
        return item

    def unacked_results(self) -> Sequence[SizedItem]:
        """Results the control plane has not acknowledged yet."""
        return list(self._unacked.values())

    def on_control(self, items: hosts_pb2.ControlItems) -> None:
        """Act on one envelope from the control plane, in order."""
        pool = self.pool
        batch: list[PoolTask] = []
        for item in items.items:
            kind = item.WhichOneof("item")
            if kind == "assignment":
                a = item.assignment
                done = self._unacked.get((a.task_id, a.attempt))
                if done is not None:
                    # Already ran under this very lease: a control plane that had not seen the result
                    # (a restart, a failover) assigned it again. Send the result again for it: the
                    # earlier copy may have reached it before the lease existed, and been dropped.
                    if self._link is not None:
                        self._link.send(*done)
                    continue
                if self._shutdown is not None:
                    # Neither run nor given back: a CANCELLED result would make the control plane requeue
                    # the task, possibly straight back to us. Unanswered, it counts against our credit (so
                    # no more come) and is requeued the moment our stream closes.
                    self._ignored += 1
                    continue
                self.relay.task_assigned(a.task_id, a.root_id)
                pool_task = self._pool_task(a)
                if self._traces is not None:
                    # The worker's span is a child of this host's span, a child of the control plane's.
                    pool_task.trace_context = self._traces.received(a.task_id, a.attempt, a.agent_type, a.trace_context)
                batch.append(pool_task)
            elif kind == "result_ack":
                unacked = self._unacked
                for lease in item.result_ack.leases:
                    unacked.pop((lease.task_id, lease.attempt), None)
                if not unacked:
                    self._all_acked.set()
            elif kind == "cancel":
                if batch:
                    pool.submit(batch)  # keep the order: an assignment then its cancel
                    batch = []
                c = item.cancel
                pool.cancel(c.task_id, c.attempt, message=c.reason or "cancelled by the control plane")
            elif kind == "slot_lent":
                if batch:
                    pool.submit(batch)
                    batch = []
                s = item.slot_lent
                pool.set_lent(s.task_id, s.attempt, s.lent)
            elif kind == "message_delivery":
                self.relay.on_delivery(item.message_delivery)
            elif kind == "message_reply":
                self.relay.on_reply(item.message_reply)
            elif kind == "mailbox_closed":
                self.relay.on_closed(item.mailbox_closed)
            elif kind == "registered":
                # Called before the link counts as connected; the relay resubscribes right after.
                asyncio.get_running_loop().call_soon(self.relay.on_connected)
                r = item.registered
                if r.heartbeat_interval_seconds > 0:
                    self._heartbeat_interval = r.heartbeat_interval_seconds
                self._heartbeat_wake.set()
            elif kind == "drain":
                if not self._draining:
                    logger.info("draining: %s", item.drain.reason or "asked by the control plane")
                self._draining = True
        if batch:
            pool.submit(batch)

    def on_disconnected(self) -> None:
        """The stream is down; tasks keep running and results wait for the next session."""
        self.relay.on_disconnected()
        if self._shutdown is not None:
            logger.info("stream to the control plane closed")
        else:
            logger.warning("disconnected from the control plane; %d tasks held", self.pool.held_count)

    # ---- internals ----

    @staticmethod
    def _pool_task(a: hosts_pb2.Assignment) -> PoolTask:
        deps = None
        if a.dependencies:
            deps = [
                {
                    "task_id": d.task_id,
                    "key": d.key,
                    "status": _STATUS_NAMES.get(d.status, "UNSPECIFIED"),
                    "result": _payload_text(d.result),
                    "description": d.description,
                }
                for d in a.dependencies
            ]
        return PoolTask(
            task_id=a.task_id,
            attempt=a.attempt,
            agent_type=a.agent_type,
            description=a.description,
            input_json=_payload_text(a.input) or "null",
            timeout_seconds=a.timeout_seconds,
            root_id=a.root_id,
            parent_id=a.parent_id,
            dependencies=deps,
            labels=dict(a.labels) if a.labels else None,
        )

    def heartbeat_item(self) -> hosts_pb2.HostItem:
        """A Heartbeat: free slots, host CPU and memory, every worker, every lease."""
        pool = self.pool
        item = hosts_pb2.HostItem()
        hb = item.heartbeat
        hb.free_slots = 0 if self._draining else pool.free_slots
        # interval=None: the CPU use since the previous call, without blocking the loop.
        hb.cpu_percent = psutil.cpu_percent(interval=None)
        hb.memory_used_bytes = psutil.virtual_memory().used
        for w in pool.workers():
            agent = hb.agents.add(
                id=w.id,
                host_id=self.host_id,
                status=hosts_pb2.AGENT_STATUS_DRAINING
                if self._draining and w.status is WorkerStatus.IDLE
                else _AGENT_STATUS[w.status],
                agent_type=w.agent_type,
                task_id=w.task_id,
                pid=w.pid,
                tasks_completed=w.tasks_completed,
                tasks_failed=w.tasks_failed,
                rss_bytes=w.rss_bytes,
            )
            if w.started_at:
                agent.started_at.FromNanoseconds(int(w.started_at * 1e9))
        for task_id, attempt in pool.leases():
            hb.running.add(task_id=task_id, attempt=attempt)
        hb.message_stats.CopyFrom(self.relay.message_stats())
        return item

    def _send_up(self, item: hosts_pb2.HostItem, size: int) -> bool:
        link = self._link
        return link is not None and link.send(item, size)

    async def _relay_sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(RELAY_SWEEP_SECONDS)
            self.relay.sweep(time.time())

    async def _heartbeat_loop(self) -> None:
        psutil.cpu_percent(interval=None)  # prime the counter: the first call always says 0.0
        wake = self._heartbeat_wake
        while True:
            # Woken early by Registered: the first heartbeat of a session goes out at once, at the new interval.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._heartbeat_interval)
            wake.clear()
            link = self._link
            if link is not None and link.connected:
                link.send(self.heartbeat_item())


async def run_agent_host(config: AgentHostConfig) -> None:
    """Run an agent host until SIGTERM or SIGINT, then shut down cleanly (the daemon's whole life)."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    async with AgentHost(config) as host:
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, host.request_shutdown, sig.name)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or not Unix
                pass
        try:
            await host.wait_closed()
        finally:
            for sig in installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
    logger.debug("agent host ran for %.1fs", time.monotonic() - started)
