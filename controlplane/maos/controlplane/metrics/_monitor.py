"""The performance monitor: samples the control plane every interval, keeps the window, raises alerts.

The edge of the metrics package: it reads the runtime (orchestrator, host
sessions and their heartbeats), the messaging counters and psutil, and
builds one Sample per interval from them and from what the TaskRecorder and
ApiLatency gathered in between. Then it runs the trend rules over the recent
samples and updates the alert book. Everything runs on the event loop and
costs O(hosts + mailboxes + a bounded look at the queue) per sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
from maos.controlplane._runtime import Runtime
from maos.controlplane.core import Priority
from maos.controlplane.messaging import StatsRow
from maos.v1 import hosts_pb2

from ._api import ApiLatency
from ._efficiency import NodeTimes, snapshot_tree, tree_efficiency
from ._recorder import TaskRecorder
from ._rules import RECENT_SAMPLES, AlertBook, MonitorLimits, QueueView, evaluate
from ._settings import MONITOR_SETTINGS, monitor_limits
from ._window import Gauge, HostGauges, RollingWindow, Sample, TypeCounts

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 2.0
TREES_PER_SAMPLE = 4  # parallel efficiency is worked out for at most this many finished trees per sample
MAX_PENDING_TREES = 16  # trees waiting for the worker thread; more are dropped
_TOPIC_PREFIX = "topic:"


@dataclass(frozen=True, slots=True)
class HostNow:
    """One agent host as it is now."""

    host_id: str
    hostname: str
    connected: bool
    draining: bool
    slots: int
    in_flight: int
    idle_agents: int
    cpu_percent: float
    memory_used_bytes: int
    memory_bytes: int
    workers_rss_bytes: int
    agent_types: tuple[str, ...]

    @property
    def memory_percent(self) -> float | None:
        return 100.0 * self.memory_used_bytes / self.memory_bytes if self.memory_bytes else None


class Monitor:
    """Start with `await monitor.start()`; `shutdown()` stops the sampling loop."""

    def __init__(
        self,
        runtime: Runtime,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        messages: Callable[[], Iterable[StatsRow]] = list,
    ) -> None:
        self.runtime = runtime
        self.interval_seconds = interval_seconds
        self._messages = messages
        now = time.time()
        self.started_at = now
        self.recorder = TaskRecorder(runtime.orch.tasks, now)
        self.api = ApiLatency()
        self.window = RollingWindow(interval_seconds)
        self.alerts = AlertBook()
        self.queue_view = QueueView()
        self.messages_sent_total = 0
        self.messages_delivered_total = 0
        self._mailbox_counts: dict[str, tuple[int, int]] = {}
        self._host_local: dict[str, int] = {}
        self._last = now
        self._process = psutil.Process(os.getpid())
        self._task: asyncio.Task[None] | None = None
        # Finished trees' snapshots wait for a worker thread; their efficiencies join the next sample.
        self._trees: list[list[NodeTimes]] = []
        self._efficiencies: list[float] = []
        self._efficiency_job: asyncio.Task[None] | None = None
        runtime.live_settings.register(MONITOR_SETTINGS)
        runtime.commit_listeners.append(self.recorder.on_commit)

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self.recorder.seed()
        # psutil's CPU figures are "since the previous call": prime them so the first sample is real.
        psutil.cpu_percent(interval=None)
        self._process.cpu_percent(interval=None)
        self._last = time.time()
        self._task = asyncio.create_task(self._run(), name="maos-metrics")

    async def shutdown(self) -> None:
        for job in (self._task, self._efficiency_job):
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
        self._task = self._efficiency_job = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.interval_seconds
        while True:
            await asyncio.sleep(max(due - loop.time(), 0.0))
            due = max(due + self.interval_seconds, loop.time())
            try:
                self.sample(time.time())
            except Exception:  # a failed sample is a gap in the figures, never a dead monitor
                log.exception("metrics sample failed")
            if self._trees and self._efficiency_job is None:
                trees, self._trees = self._trees, []
                self._efficiency_job = asyncio.create_task(self._work_out(trees), name="maos-metrics-efficiency")

    async def _work_out(self, trees: list[list[NodeTimes]]) -> None:
        """Parallel efficiency of finished trees, off the event loop (it reads protobuf messages)."""
        try:
            found = await asyncio.to_thread(lambda: [tree_efficiency(t) for t in trees])
            self._efficiencies.extend(e for e in found if e is not None)
        except Exception:
            log.exception("working out parallel efficiency failed")
        finally:
            self._efficiency_job = None

    def limits(self) -> MonitorLimits:
        return monitor_limits(self.runtime.live_settings)

    # ---------------------------------------------------------------- sampling

    def sample(self, now: float) -> Sample:
        """Close the interval ending `now`: build its sample, keep it, run the rules."""
        orch, recorder = self.runtime.orch, self.recorder
        s = Sample(self._last, now)
        self._last = now
        tasks = recorder.take(now)
        s.completed, s.failed, s.cancelled = tasks.completed, tasks.failed, tasks.cancelled
        s.completion, s.types, s.busy_seconds = tasks.completion, tasks.types, tasks.busy_seconds
        s.api, s.api_errors = self.api.take()

        hosts = self.hosts()
        offered: set[str] = set()
        idle = 0
        for host in hosts:
            if not host.connected:
                continue
            offered.update(host.agent_types)
            available = host.slots * s.seconds
            s.slot_seconds += available
            for agent_type in host.agent_types:
                counts = s.types.get(agent_type)
                if counts is None:
                    counts = s.types[agent_type] = TypeCounts()
                counts.available_seconds += available
            idle += host.idle_agents
            gauges = s.hosts[host.host_id] = HostGauges()
            gauges.cpu_percent.add(host.cpu_percent)
            if host.memory_percent is not None:
                gauges.memory_percent.add(host.memory_percent)

        for priority, depth in recorder.depth().items():
            s.queue[priority.name.lower()] = _gauge(depth)
        oldest = recorder.oldest(now)
        waiting = recorder.waiting(now, lambda task_id: orch.lease_of(task_id) is not None)
        s.oldest_queued_seconds.add(oldest.seconds)
        s.waiting.add(waiting.count)
        s.idle_agents.add(idle)
        s.running.add(recorder.running)

        s.cpu_percent.add(psutil.cpu_percent(interval=None))
        s.memory_percent.add(psutil.virtual_memory().percent)
        s.process_cpu_percent.add(self._process.cpu_percent(interval=None))
        s.process_rss_bytes.add(self._process.memory_info().rss)
        s.messages_sent, s.messages_delivered = self._message_deltas()

        for efficiency in self._efficiencies:
            s.efficiency.add(efficiency)
        self._efficiencies = []
        finished = recorder.finished_trees
        for _ in range(min(len(finished), TREES_PER_SAMPLE)):
            snapshot = snapshot_tree(finished.pop(), orch.tasks)  # newest first
            if snapshot is not None and len(self._trees) < MAX_PENDING_TREES:
                self._trees.append(snapshot)
        finished.clear()

        self.window.add(s)
        limits = self.limits()
        self.queue_view = QueueView(
            oldest_seconds=oldest.seconds,
            oldest_task_id=oldest.task_id,
            oldest_agent_type=oldest.agent_type,
            max_queue_time_seconds=orch.limits.max_queue_time_seconds,
            waiting_types=waiting.types,
            unserved_types=tuple(t for t in waiting.types if t not in offered),
        )
        needed = max(limits.sustained_samples, limits.idle_samples, 2 * RECENT_SAMPLES + 30)
        raised, cleared = self.alerts.update(evaluate(self.window.recent(needed), self.queue_view, limits), now)
        for alert in raised:
            log.warning("alert %d raised (%s, %s): %s", alert.id, alert.rule, alert.severity, alert.message)
        for alert in cleared:
            log.info("alert %d cleared (%s): %s", alert.id, alert.rule, alert.message)
        return s

    def hosts(self) -> list[HostNow]:
        """Every host the core knows, with its last heartbeat's figures."""
        out = []
        for state in self.runtime.orch.hosts.values():
            if state.awaiting_reconnect:
                continue
            session = self.runtime.sessions.get(state.id)
            hb = session.last_heartbeat if session is not None else hosts_pb2.Heartbeat()
            reg = session.register if session is not None else hosts_pb2.Register()
            idle_reported = sum(1 for a in hb.agents if a.status == hosts_pb2.AGENT_STATUS_IDLE)
            # The core's free slots are fresher than the last heartbeat; an agent is idle when both agree.
            idle = 0 if state.draining or not state.connected else min(idle_reported, max(state.free_slots, 0))
            out.append(
                HostNow(
                    host_id=state.id,
                    hostname=reg.hostname,
                    connected=state.connected,
                    draining=state.draining,
                    slots=state.slots,
                    in_flight=len(state.in_flight),
                    idle_agents=idle,
                    cpu_percent=hb.cpu_percent,
                    memory_used_bytes=hb.memory_used_bytes,
                    memory_bytes=reg.memory_bytes,
                    workers_rss_bytes=sum(a.rss_bytes for a in hb.agents),
                    agent_types=tuple(sorted(state.agent_types)),
                )
            )
        return out

    def _message_deltas(self) -> tuple[int, int]:
        """Messages accepted into mailboxes and first deliveries since the previous sample: the
        control plane's mailboxes plus what host relays delivered locally (from heartbeats)."""
        sent = delivered = 0
        counts: dict[str, tuple[int, int]] = {}
        for row in self._messages():
            if row.name.startswith(_TOPIC_PREFIX) and "/" not in row.name:
                continue  # a topic's sum over its subscriptions, which are rows of their own
            now = (row.stats.sent, row.stats.delivered)
            before = self._mailbox_counts.get(row.name, (0, 0))
            sent += _delta(now[0], before[0])
            delivered += _delta(now[1], before[1])
            counts[row.name] = now
        self._mailbox_counts = counts
        local: dict[str, int] = {}
        for session in self.runtime.sessions.values():
            value = session.last_heartbeat.message_stats.sent_local
            local[session.host_id] = value
            step = _delta(value, self._host_local.get(session.host_id, 0))
            sent += step
            delivered += step
        self._host_local = local
        self.messages_sent_total += sent
        self.messages_delivered_total += delivered
        return sent, delivered

    def depth_now(self) -> dict[Priority, int]:
        return self.recorder.depth()


def _delta(now: int, before: int) -> int:
    # A counter that went down was reset (a mailbox or a host relay started over).
    return now - before if now >= before else now


def _gauge(value: float) -> Gauge:
    gauge = Gauge()
    gauge.add(value)
    return gauge
