"""The control-plane daemon: a grpc.aio server around the runtime."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from maos import tracing
from maos.errors import InvalidArgument, MaosError
from maos.profiles import AgentProfile, load_profiles
from maos.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agents_pb2,
    agents_pb2_grpc,
    hosts_pb2,
    hosts_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
)

from ._config import ControlPlaneConfig
from ._leadership import Leadership
from ._library import Library
from ._runtime import Runtime
from .api import (
    AdminServicer,
    AgentServicer,
    BatchServicer,
    ErrorMappingInterceptor,
    HostServicer,
    TaskServicer,
    TemplateServicer,
)
from .api._checkpoints import CHECKPOINT_SERVICE_NAME, add_checkpoint_service
from .api._fanout import wire_feeds
from .api._hosts import host_message_stats
from .api._leadership import LeadershipGate
from .api._messages import SERVICE_NAME as MESSAGE_SERVICE_NAME
from .api._messages import add_message_service
from .api._metrics import MetricsInterceptor
from .api._state import STATE_SERVICE_NAME, add_state_service
from .checkpoints import AutoCheckpoints, CheckpointManager, Progress, Sources, open_target
from .fanout import DEFAULT_CHANNEL_PREFIX, RedisFanout
from .messaging import (
    Messaging,
    PostgresMessageStore,
    RuntimeTaskDirectory,
    StatsRow,
    open_messaging,
)
from .metrics import MetricsHttpServer, Monitor, render_metrics
from .state import PostgresStateBackend, RedisStateBackend, StateBackend, open_state_backend
from .store import PostgresStore, open_store

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5.0
TRACING_SERVICE_NAME = "maos-controlplane"


def _agent_type_info(profile: AgentProfile) -> hosts_pb2.AgentTypeInfo:
    runner = "python" if hasattr(profile.runner, "target") else "command"
    return hosts_pb2.AgentTypeInfo(
        name=profile.name,
        capabilities=profile.capabilities,
        runner=runner,
        timeout_seconds=profile.timeout_seconds,
    )


class ControlPlane:
    """Start with `async with ControlPlane(config) as cp:`; `cp.endpoint` is where it listens."""

    def __init__(self, config: ControlPlaneConfig) -> None:
        self.config = config
        self.profiles = load_profiles(config.agents_file)
        if config.tracing.enabled and tracing.active_spec() != config.tracing:
            tracing.configure(config.tracing, TRACING_SERVICE_NAME)  # before the runtime: it asks for task spans
        self.store = open_store(
            config.store_url,
            config.data_dir,
            sqlite_synchronous=config.sqlite_synchronous,
            postgres=config.store_options,
        )
        self.runtime = Runtime(self.store, config.runtime, config.input_limits, lambda: self.profiles.keys())
        self.library = Library(self.runtime)
        self.runtime.live_settings.set_default("checkpoints.interval", config.checkpoints.interval_seconds)
        self.runtime.live_settings.set_default("checkpoints.retention.count", config.checkpoints.retention_count)
        self.checkpoints: CheckpointManager | None = None
        self.auto_checkpoints: AutoCheckpoints | None = None
        self.monitor = Monitor(self.runtime, config.metrics_interval_seconds, messages=self._message_stats)
        self._metrics_http: MetricsHttpServer | None = None
        self.metrics_endpoint = ""  # where Prometheus scrapes, once serving
        self.state: StateBackend | None = None
        self.messaging: Messaging | None = None
        # With --redis: the leader's live events to the other control planes, theirs to our watchers.
        self.fanout = (
            RedisFanout(config.redis_url, channel_prefix=f"{DEFAULT_CHANNEL_PREFIX}{self._deployment()}:")
            if config.redis_url
            else None
        )
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        self.endpoint = ""
        self._stopped = asyncio.Event()
        self._shut = False
        # Active/standby (PostgreSQL only): a standby listens but refuses calls until it leads.
        self.leadership: Leadership | None = None
        self._leading = False
        self._campaign: asyncio.Task[None] | None = None
        self.failure = ""  # why the control plane stopped on its own (e.g. leadership lost)
        self._health_names: list[str] = []

    async def start(self) -> None:
        await self.store.open()
        if not isinstance(self.store, PostgresStore):
            await self._take_over()
        # On PostgreSQL, messages and state live beside the tasks (they follow a failover), and
        # messages are loaded only once this control plane leads (see _take_over).
        pg = self.store if isinstance(self.store, PostgresStore) else None
        self.state = await open_state_backend(
            self.config.state_url,
            self.config.database_path,
            sqlite_synchronous=self.config.sqlite_synchronous,
            redis_ttl_seconds=self.config.state_cache_ttl_seconds,
            postgres=pg,
        )
        self.messaging = await open_messaging(
            self.config.database_path,
            RuntimeTaskDirectory(self.runtime.orch.tasks, self.runtime.store.get_tasks),
            dataclasses.replace(self.config.messaging, sqlite_synchronous=self.config.sqlite_synchronous),
            postgres=pg,
            load=pg is None,
        )
        self.checkpoints = CheckpointManager(
            open_target(self.config.checkpoints, self.config.data_dir),
            Sources(self.runtime, self.library, self.state, self.messaging),
        )
        await self.checkpoints.open()  # a checkpoint bucket that does not exist stops the start here
        if self._leading:
            await self._start_checkpoints()
        options = [
            ("grpc.max_receive_message_length", self.config.max_message_bytes),
            ("grpc.max_send_message_length", self.config.max_message_bytes),
            ("grpc.max_concurrent_streams", self.config.max_concurrent_streams),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.so_reuseport", 0),
        ]
        interceptors: list[grpc.aio.ServerInterceptor] = [  # type: ignore[type-arg]
            ErrorMappingInterceptor(),
            # Inside the error mapping: its Unavailable gets mapped.
            LeadershipGate(self._refusal, self._read_refusal),
            MetricsInterceptor(self.monitor.api),  # innermost: times the servicer itself
        ]
        if tracing.enabled():
            from .api._tracing import TracingInterceptor  # imports OpenTelemetry: only when tracing is on

            interceptors.insert(0, TracingInterceptor())  # outermost: its span sees the mapped status
        server = grpc.aio.server(interceptors=interceptors, options=options)
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(TaskServicer(self.runtime), server)
        hosts_pb2_grpc.add_HostServiceServicer_to_server(HostServicer(self.runtime, self.messaging), server)
        infos = [_agent_type_info(p) for p in self.profiles.values()]
        agents_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(self.runtime, lambda: infos), server)
        templates_pb2_grpc.add_TemplateServiceServicer_to_server(TemplateServicer(self.runtime, self.library), server)
        templates_pb2_grpc.add_BatchServiceServicer_to_server(BatchServicer(self.library), server)
        admin = AdminServicer(self.runtime, lambda: self.endpoint, self.monitor, lambda: self.metrics_endpoint)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        state_servicer = add_state_service(server, self.runtime, self.state, capabilities_of=self._capabilities)
        add_checkpoint_service(server, self.checkpoints)
        message_servicer = add_message_service(
            server, self.messaging, lambda: host_message_stats(self.runtime), self.runtime.orch.task_on_agent
        )
        wire_feeds(state_servicer.hub, message_servicer.topic_feed, self.messaging, self.fanout)
        if self.fanout is not None:
            await self.fanout.open()  # a Redis that cannot be reached stops the start here
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [
            CHECKPOINT_SERVICE_NAME,
            STATE_SERVICE_NAME,
            MESSAGE_SERVICE_NAME,
            tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
            hosts_pb2.DESCRIPTOR.services_by_name["HostService"].full_name,
            agents_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
            templates_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name,
            templates_pb2.DESCRIPTOR.services_by_name["BatchService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
        if not self.config.is_loopback:
            log.warning(
                "listening on %s beyond loopback without authentication: anyone who can reach it can "
                "submit work; bind to 127.0.0.1 unless the network is trusted",
                self.config.listen,
            )
        try:
            port = server.add_insecure_port(self.config.listen)
        except RuntimeError as exc:
            raise InvalidArgument(f"cannot listen on {self.config.listen}: {exc}") from exc
        if port == 0:
            raise InvalidArgument(f"cannot listen on {self.config.listen}: the address is in use or not local")
        await server.start()
        self._server = server
        host = self.config.listen.rpartition(":")[0]
        self.endpoint = f"{host}:{port}"
        # Every MAOS service, plus "" for the server as a whole (not health and reflection themselves).
        self._health_names = [*names[:-2], ""]
        if self.config.metrics_listen:
            self._metrics_http = MetricsHttpServer(
                self.config.metrics_listen,
                lambda: render_metrics(self.monitor, self.fanout.stats if self.fanout is not None else None),
            )
            self.metrics_endpoint = await self._metrics_http.start()
            log.info("Prometheus metrics at http://%s/metrics", self.metrics_endpoint)
        if isinstance(self.store, PostgresStore):
            self.leadership = Leadership(self.store, self.endpoint, on_lost=self._lose)
            if not await self.leadership.try_acquire():
                await self._announce()
                self._campaign = asyncio.create_task(self._stand_by(), name="maos-standby")
                return
            await self._take_over()
        await self._announce()

    async def _take_over(self) -> None:
        """Load state from the store and lead: at start, or when a standby wins the lock."""
        await self.runtime.start()
        await self.library.load()
        await self.monitor.start()
        if self.messaging is not None:  # a standby taking over: state and messaging are open already
            if self.leadership is not None:
                # Fenced before the first write; messages loaded as the old leader committed them.
                for fenced in (self.state, self.messaging.store):
                    # The Redis state cache fences its PostgreSQL backend and caches only while leading.
                    if isinstance(fenced, PostgresStateBackend | RedisStateBackend | PostgresMessageStore):
                        fenced.fence(self.leadership.epoch, self.leadership.deposed)
                await self.messaging.open()
            await self._start_checkpoints()
        self._leading = True

    async def _start_checkpoints(self) -> None:
        """As the leader: restore the checkpoint named at start-up (before any call is served),
        then take automatic checkpoints."""
        assert self.checkpoints is not None
        restore_id = self.config.checkpoints.restore_id
        if restore_id:
            log.info("restoring checkpoint %s from %s", restore_id, self.checkpoints.target.description)
            summary = await self.checkpoints.restore(restore_id, progress=_log_progress)
            log.info(
                "restored checkpoint %s: %d tasks, %d unfinished (%d re-queued)",
                restore_id,
                summary.counts["tasks"],
                summary.counts["unfinished_tasks"],
                summary.requeued,
            )
        self.auto_checkpoints = AutoCheckpoints(self.checkpoints, self.runtime.live_settings)
        await self.auto_checkpoints.start()

    async def _stand_by(self) -> None:
        assert self.leadership is not None
        try:
            await self.leadership.wait_until_leader()
            log.info("standby won the leadership lock; loading state from %s", self.store.description)
            await self._take_over()
            await self._announce()
        except MaosError as exc:
            self._lose(f"could not take over as leader: {exc}")
        except Exception as exc:
            log.exception("taking over as leader failed")
            self._lose(f"could not take over as leader: {type(exc).__name__}: {exc}")

    async def _announce(self) -> None:
        """Health and the ready file say whether we serve (leader) or wait (standby)."""
        role = "leader" if self._leading else "standby"
        status = health_pb2.HealthCheckResponse.SERVING if self._leading else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._health_names:
            await _maybe_await(self._health.set(name, status))
        if self.config.ready_file is not None:
            ready = {"endpoint": self.endpoint, "pid": os.getpid(), "role": role}
            if self.metrics_endpoint:
                ready["metrics_endpoint"] = self.metrics_endpoint
            _write_atomically(self.config.ready_file, json.dumps(ready))
        log.info("control plane %s on %s with store %s", role, self.endpoint, self.store.description)
        if not self._leading and self.leadership is not None:
            log.info("standby: %s", self.leadership.refusal())

    def _refusal(self) -> str | None:
        """Why calls are refused right now, None once we lead (the LeadershipGate asks per call)."""
        if self.failure:
            return f"this control plane stopped: {self.failure}"
        if self._leading:
            # A leader that lost PostgreSQL (its lock or the store) refuses until it is back.
            return self.leadership.refusal() if self.leadership is not None else None
        if self.leadership is not None:
            return self.leadership.refusal()
        return "the control plane is starting; retry shortly"

    def _deployment(self) -> str:
        """What control planes sharing one store share: their fan-out channels are named after it."""
        if isinstance(self.store, PostgresStore):
            return self.store.target.deployment
        return f"sqlite:{self.config.database_path.resolve()}"

    def _read_refusal(self) -> str | None:
        """Read-only calls: a standby serves them too when --redis feeds it the leader's live events."""
        if not self.failure and not self._leading and self.fanout is not None and self.leadership is not None:
            return None
        return self._refusal()

    def _lose(self, reason: str) -> None:
        """Leadership is gone: stop serving at once and shut down; the process exits non-zero."""
        if self.failure:
            return
        self.failure = reason
        self._leading = False
        log.error("stopping: %s", reason)
        asyncio.get_running_loop().create_task(self.shutdown(), name="maos-stop-on-lost-leadership")

    def _message_stats(self) -> list[StatsRow]:
        return self.messaging.stats() if self.messaging is not None else []

    def _capabilities(self, agent_type: str) -> tuple[str, ...]:
        profile = self.profiles.get(agent_type)
        return profile.capabilities if profile is not None else ()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def shutdown(self, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop taking requests, let in-flight ones finish within the grace, flush the store."""
        if self._shut:
            return
        self._shut = True
        if self._campaign is not None:
            self._campaign.cancel()
            await asyncio.wait([self._campaign])
        await _maybe_await(self._health.enter_graceful_shutdown())
        if self.auto_checkpoints is not None:
            await self.auto_checkpoints.shutdown()
        await self.monitor.shutdown()
        if self._metrics_http is not None:
            await self._metrics_http.close()
        await self.runtime.shutdown()
        if self._server is not None:
            await self._server.stop(grace_seconds)
        if self.fanout is not None:
            await self.fanout.close()
        if self.messaging is not None:
            await self.messaging.close()
        if self.state is not None:
            await self.state.close()  # after the server: in-flight writes finish first
        await self.store.close()
        if self.checkpoints is not None:
            await self.checkpoints.close()
        if self.leadership is not None:
            await self.leadership.close()  # after the store's last commit: releases the lock
        if self.runtime.traces is not None:
            self.runtime.traces.end_all()  # tasks still open: export what is known of them at exit
        self._stopped.set()
        log.info("control plane stopped")

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()


def _log_progress(progress: Progress) -> None:
    if progress.total:
        log.info("restore: %s (%d/%d)", progress.message, progress.done, progress.total)
    else:
        log.info("restore: %s", progress.message)


async def _maybe_await(value: object) -> None:
    if asyncio.iscoroutine(value):
        await value


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
