"""What the Prometheus endpoint serves: counters since start-up, levels now, rates and quantiles
over the last RECENT_SECONDS of samples."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._api import LONG_POLLS
from ._monitor import Monitor
from ._prometheus import Exposition
from ._window import merge_samples

if TYPE_CHECKING:
    from maos.controlplane.fanout import FanoutStats

RECENT_SECONDS = 60.0
QUANTILES = (0.5, 0.95, 0.99)


def render_metrics(monitor: Monitor, fanout: FanoutStats | None = None) -> str:
    """The exposition text; `fanout` adds the --redis fan-out's counters when it is on."""
    now = time.time()
    samples, _ = monitor.window.span(RECENT_SECONDS, now)
    recent = merge_samples(samples)
    out = Exposition()
    totals = monitor.recorder.totals

    for name, by_type, what in (
        ("maos_tasks_completed_total", totals.completed, "Tasks that completed, by agent type."),
        ("maos_tasks_failed_total", totals.failed, "Tasks that failed or timed out, by agent type."),
        ("maos_tasks_cancelled_total", totals.cancelled, "Tasks that were cancelled, by agent type."),
    ):
        out.family(name, "counter", what)
        for agent_type in sorted(by_type):
            out.sample(name, by_type[agent_type], {"agent_type": agent_type})
    out.family("maos_agent_busy_seconds_total", "counter", "Seconds agents spent running attempts, by agent type.")
    for agent_type in sorted(totals.busy_seconds):
        out.sample("maos_agent_busy_seconds_total", totals.busy_seconds[agent_type], {"agent_type": agent_type})

    out.family("maos_task_throughput_per_second", "gauge", f"Tasks completed per second, last {RECENT_SECONDS:g}s.")
    out.sample("maos_task_throughput_per_second", recent.throughput)
    out.family("maos_task_completion_seconds", "summary", "Submission to completion of completed tasks.")
    for q in QUANTILES:
        value = recent.completion.quantile(q)
        if value is not None:
            out.sample("maos_task_completion_seconds", value, {"quantile": f"{q:g}"})
    out.sample("maos_task_completion_seconds_sum", totals.completion_seconds)
    out.sample("maos_task_completion_seconds_count", totals.completion_count)

    api = monitor.api
    out.family(
        "maos_api_request_duration_seconds",
        "summary",
        f"Unary RPC handling time by method (quantiles over the last {RECENT_SECONDS:g}s).",
    )
    for method in sorted(api.count_total):
        hist = recent.api.get(method)
        for q in QUANTILES:
            value = hist.quantile(q) if hist is not None else None
            if value is not None:
                out.sample("maos_api_request_duration_seconds", value, {"method": method, "quantile": f"{q:g}"})
        out.sample("maos_api_request_duration_seconds_sum", api.seconds_total[method], {"method": method})
        out.sample("maos_api_request_duration_seconds_count", api.count_total[method], {"method": method})
    out.family("maos_api_request_errors_total", "counter", "Unary RPCs that ended in an error status, by method.")
    for method in sorted(api.errors_total):
        out.sample("maos_api_request_errors_total", api.errors_total[method], {"method": method})
    overall = recent.api_overall(LONG_POLLS).quantile(0.95)
    if overall is not None:
        out.family("maos_api_latency_p95_seconds", "gauge", "p95 of every unary RPC but the long polls, last 60s.")
        out.sample("maos_api_latency_p95_seconds", overall)

    out.family("maos_queue_depth", "gauge", "Tasks queued (not yet started), by effective priority.")
    for priority, depth in monitor.depth_now().items():
        out.sample("maos_queue_depth", depth, {"priority": priority.name.lower()})
    out.family("maos_queue_oldest_seconds", "gauge", "How long the longest-queued due task has waited.")
    out.sample("maos_queue_oldest_seconds", monitor.queue_view.oldest_seconds)
    out.family("maos_tasks_running", "gauge", "Attempts running on agents now.")
    out.sample("maos_tasks_running", monitor.recorder.running)

    out.family(
        "maos_agent_utilisation", "gauge", f"Busy / available agent time by agent type, last {RECENT_SECONDS:g}s."
    )
    for agent_type in sorted(recent.types):
        counts = recent.types[agent_type]
        if counts.available_seconds > 0:
            value = min(counts.busy_seconds / counts.available_seconds, 1.0)
            out.sample("maos_agent_utilisation", value, {"agent_type": agent_type})
    if recent.utilisation is not None:
        out.family("maos_utilisation", "gauge", f"Busy / available agent time, every slot, last {RECENT_SECONDS:g}s.")
        out.sample("maos_utilisation", recent.utilisation)
    if recent.efficiency.mean is not None:
        out.family("maos_parallel_efficiency", "gauge", "Work / (wall x agents) of task trees that finished lately.")
        out.sample("maos_parallel_efficiency", recent.efficiency.mean)

    last = samples[-1] if samples else None
    if last is not None:
        for name, gauge, what in (
            (
                "maos_controlplane_cpu_percent",
                last.process_cpu_percent,
                "CPU of the control-plane process (100 = a core).",
            ),
            ("maos_controlplane_rss_bytes", last.process_rss_bytes, "Resident memory of the control-plane process."),
            ("maos_system_cpu_percent", last.cpu_percent, "CPU use of the control plane's machine."),
            ("maos_system_memory_percent", last.memory_percent, "Memory use of the control plane's machine."),
        ):
            out.family(name, "gauge", what)
            out.sample(name, gauge.last)
    hosts = [h for h in monitor.hosts() if h.connected]
    out.family("maos_host_cpu_percent", "gauge", "CPU use of each agent host's machine (last heartbeat).")
    for h in hosts:
        out.sample("maos_host_cpu_percent", h.cpu_percent, {"host": h.host_id})
    out.family("maos_host_memory_percent", "gauge", "Memory use of each agent host's machine (last heartbeat).")
    for h in hosts:
        if h.memory_percent is not None:
            out.sample("maos_host_memory_percent", h.memory_percent, {"host": h.host_id})
    out.family("maos_host_slots", "gauge", "Worker slots of each agent host.")
    for h in hosts:
        out.sample("maos_host_slots", h.slots, {"host": h.host_id})
    out.family("maos_host_idle_agents", "gauge", "Idle agents (worker processes) of each agent host.")
    for h in hosts:
        out.sample("maos_host_idle_agents", h.idle_agents, {"host": h.host_id})

    out.family(
        "maos_messages_sent_total", "counter", "Messages accepted into mailboxes (control plane and host relays)."
    )
    out.sample("maos_messages_sent_total", monitor.messages_sent_total)
    out.family("maos_messages_delivered_total", "counter", "First deliveries of messages.")
    out.sample("maos_messages_delivered_total", monitor.messages_delivered_total)

    if fanout is not None:
        out.family("maos_fanout_connected", "gauge", "1 while the fan-out's Redis subscription is up (--redis).")
        out.sample("maos_fanout_connected", 1 if fanout.connected else 0)
        for name, value, what in (
            ("maos_fanout_published_total", fanout.published, "Events published to the other control planes."),
            ("maos_fanout_received_total", fanout.received, "Events received from the other control planes."),
            ("maos_fanout_dropped_total", fanout.dropped, "Events that could not be published (Redis away)."),
            ("maos_fanout_resyncs_total", fanout.resyncs, "Times watchers re-read the change log (events missed)."),
        ):
            out.family(name, "counter", what)
            out.sample(name, value)

    out.family("maos_alerts_active", "gauge", "Alerts of the performance monitor that are active, by rule.")
    active: dict[str, int] = {}
    for alert in monitor.alerts.active():
        active[alert.rule] = active.get(alert.rule, 0) + 1
    for rule in sorted(active):
        out.sample("maos_alerts_active", active[rule], {"rule": rule})
    return out.text()
