"""Views of the performance monitor's figures: parsing durations and metric names, tables, JSON.

Pure functions of a GetMetricsResponse (no I/O), shared by `maosctl metrics`,
`monitor`, `agent metrics`, `alerts` and `status --resources`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from maos.errors import InvalidArgument
from maos.v1 import admin_pb2

from ._output import duration, iso, render_fields, render_table, size, timestamp

MAX_TIMEFRAME_SECONDS = 7 * 24 * 3600.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_BARE = re.compile(r"\d+(?:\.\d+)?")

# What `monitor` and `metrics` can show (--metric), each a section of the view.
METRICS: dict[str, str] = {
    "throughput": "tasks completed per second; completed, failed and cancelled counts",
    "completion": "task completion time p50/p95 (submission to completion)",
    "latency": "API latency p50/p95/p99, overall and per method",
    "queue": "queue depth by priority, the oldest queued task, running tasks",
    "utilisation": "busy / available agent time per agent type",
    "hosts": "agent hosts: slots, busy, idle agents, CPU and memory",
    "cpu": "CPU of the control plane (machine and daemon) and of each host",
    "memory": "memory of the control plane (machine and daemon) and of each host",
    "messages": "messages sent and delivered per second",
    "efficiency": "parallel efficiency of the task trees that finished",
    "alerts": "the monitor's active alerts",
}
_ALIASES = {"utilization": "utilisation", "util": "utilisation", "host": "hosts", "alert": "alerts", "mem": "memory"}

# Columns of `agent metrics` (--metric).
AGENT_METRICS: dict[str, str] = {
    "tasks": "tasks of the type that finished (completed, failed or cancelled)",
    "completed": "tasks that completed",
    "failed": "tasks that failed or timed out",
    "success_rate": "completed / (completed + failed)",
    "mean_duration": "mean run time (started to finished)",
    "utilisation": "busy / available agent time (slots of hosts offering the type)",
    "running": "attempts running now",
}
DEFAULT_AGENT_METRICS = ("tasks", "success_rate", "mean_duration", "utilisation")


def parse_duration(text: str, option: str) -> float:
    """Seconds from "90", "30s", "5m", "1h30m", "24h", "7d" (units ms s m h d w); InvalidArgument otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    if cleaned.startswith("-"):
        raise InvalidArgument(f"{option} {text!r} is negative: give a positive duration, e.g. 30s, 5m, 24h")
    if _BARE.fullmatch(cleaned):
        seconds = float(cleaned)
    elif cleaned and "".join(m.group(0) for m in _PART.finditer(cleaned)) == cleaned:
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    else:
        raise InvalidArgument(
            f"{option} {text!r} is not a duration: use a number with a unit, "
            "e.g. 30s, 5m, 1h30m, 24h or 7d (units: ms, s, m, h, d, w)"
        )
    if seconds <= 0:
        raise InvalidArgument(f"{option} {text!r} must be longer than 0")
    return seconds


def parse_timeframe(text: str, option: str = "--timeframe") -> float:
    """A duration of at most the 7 days the control plane keeps."""
    seconds = parse_duration(text, option)
    if seconds > MAX_TIMEFRAME_SECONDS:
        raise InvalidArgument(f"{option} {text!r} is longer than the 7 days the control plane keeps (7d)")
    return seconds


def parse_names(text: str | None, accepted: Mapping[str, str], option: str, default: Sequence[str]) -> tuple[str, ...]:
    """Comma-separated names from `accepted` (in the order given); InvalidArgument naming the accepted ones."""
    if text is None:
        return tuple(default)
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower().replace("-", "_")
        name = _ALIASES.get(name, name)
        if not name:
            continue
        if name not in accepted:
            raise InvalidArgument(f"{option}: unknown metric {raw.strip()!r}; accepted: {', '.join(accepted)}")
        if name not in names:
            names.append(name)
    if not names:
        raise InvalidArgument(f"{option} names no metric; accepted: {', '.join(accepted)}")
    return tuple(names)


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """--metric of `monitor` and `metrics` (default: every section)."""
    return parse_names(text, METRICS, "--metric", tuple(METRICS))


# ------------------------------------------------------------------ formatting


def pct(value: float | None, digits: int = 0) -> str:
    """A fraction as a percentage ("-" when unknown)."""
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def percent(value: float | None) -> str:
    """A value already in percent."""
    return "-" if value is None else f"{value:.1f}%"


def ms(seconds: float | None) -> str:
    """A duration in milliseconds (or seconds once long)."""
    if seconds is None:
        return "-"
    if seconds >= 10:
        return duration(seconds)
    value = seconds * 1000
    return f"{value:.2f}ms" if value < 10 else f"{value:.1f}ms" if value < 100 else f"{value:.0f}ms"


def rate(value: float) -> str:
    return f"{value:.2f}/s" if value < 100 else f"{value:.0f}/s"


def _opt(message: Any, name: str) -> float | None:
    return float(getattr(message, name)) if message.HasField(name) else None


def _level(level: admin_pb2.Level, pick: str = "mean") -> float | None:
    return float(getattr(level, pick)) if level.known else None


def _quantiles(p: admin_pb2.Percentiles) -> dict[str, Any]:
    if not p.count:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    return {"count": p.count, "p50": p.p50, "p95": p.p95, "p99": p.p99, "mean": p.mean, "max": p.max}


def _level_dict(level: admin_pb2.Level) -> dict[str, float] | None:
    return {"mean": level.mean, "max": level.max, "last": level.last} if level.known else None


def machine_averages(reply: admin_pb2.GetMetricsResponse, pick: str) -> list[tuple[str, float]]:
    """(machine, mean % over the timeframe) for the control plane's machine and each host: pick cpu or memory."""
    out: list[tuple[str, float]] = []
    cp = reply.controlplane.cpu_percent if pick == "cpu" else reply.controlplane.memory_percent
    if cp.known:
        out.append(("controlplane", cp.mean))
    for host in reply.hosts:
        level = host.cpu if pick == "cpu" else host.memory
        if level.known:
            out.append((f"host:{host.host_id}", level.mean))
    return out


# ------------------------------------------------------------------ documents


def agent_type_dict(m: admin_pb2.AgentTypeMetrics) -> dict[str, Any]:
    return {
        "agent_type": m.agent_type,
        "tasks": m.completed + m.failed + m.cancelled,
        "completed": m.completed,
        "failed": m.failed,
        "cancelled": m.cancelled,
        "success_rate": _opt(m, "success_rate"),
        "mean_duration_seconds": _opt(m, "mean_run_seconds"),
        "busy_seconds": m.busy_seconds,
        "available_seconds": m.available_seconds,
        "utilisation": _opt(m, "utilisation"),
        "running": m.running,
    }


def host_dict(h: admin_pb2.HostResources) -> dict[str, Any]:
    return {
        "host_id": h.host_id,
        "hostname": h.hostname,
        "connected": h.connected,
        "draining": h.draining,
        "slots": h.slots,
        "busy": h.in_flight,
        "idle_agents": h.idle_agents,
        "cpu_percent": h.cpu_percent,
        "memory_percent": _opt(h, "memory_percent"),
        "memory_used_bytes": h.memory_used_bytes,
        "memory_bytes": h.memory_bytes,
        "workers_rss_bytes": h.workers_rss_bytes,
        "cpu_percent_over_timeframe": _level_dict(h.cpu),
        "memory_percent_over_timeframe": _level_dict(h.memory),
    }


def controlplane_dict(cp: admin_pb2.ControlPlaneResources) -> dict[str, Any]:
    return {
        "pid": cp.pid,
        "cpu_count": cp.cpu_count,
        "memory_bytes": cp.memory_bytes,
        "cpu_percent": _level_dict(cp.cpu_percent),
        "memory_percent": _level_dict(cp.memory_percent),
        "process_cpu_percent": _level_dict(cp.process_cpu_percent),
        "process_rss_bytes": _level_dict(cp.process_rss_bytes),
    }


def alert_dict(a: admin_pb2.Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "active": a.active,
        "rule": a.rule,
        "severity": a.severity,
        "subject": a.subject,
        "message": a.message,
        "figures": dict(sorted(a.figures.items())),
        "raised_at": iso(a.raised_at, a.HasField("raised_at")),
        "updated_at": iso(a.updated_at, a.HasField("updated_at")),
        "cleared_at": iso(a.cleared_at, a.HasField("cleared_at")),
    }


def metrics_dict(reply: admin_pb2.GetMetricsResponse, metrics: Iterable[str] = METRICS) -> dict[str, Any]:
    """The JSON document of `metrics` / `monitor`: the chosen sections over the timeframe."""
    chosen = set(metrics)
    s = reply.summary
    doc: dict[str, Any] = {
        "time": iso(reply.time, reply.HasField("time")),
        "timeframe_seconds": reply.timeframe_seconds,
        "covered_seconds": s.seconds,
        "step_seconds": reply.step_seconds,
    }
    if "throughput" in chosen:
        doc["throughput"] = {
            "per_second": s.throughput_per_second,
            "peak_per_second": s.peak_throughput_per_second,
            "completed": s.completed,
            "failed": s.failed,
            "cancelled": s.cancelled,
            "points": [
                {"time": iso(p.time), "per_second": p.throughput_per_second, "completed": p.completed}
                for p in reply.points
            ],
        }
    if "completion" in chosen:
        doc["completion_seconds"] = _quantiles(s.completion)
    if "latency" in chosen:
        doc["api_latency_seconds"] = {
            "overall": _quantiles(s.api_latency),
            "methods": [
                {"method": m.method, "errors": m.errors, "long_poll": m.long_poll, **_quantiles(m.latency)}
                for m in reply.api
            ],
        }
    if "queue" in chosen:
        doc["queue"] = {
            "now": {q.priority: q.now for q in reply.queue},
            "depth": _level_dict(s.queue_depth),
            "by_priority": {q.priority: _level_dict(q.depth) for q in reply.queue},
            "oldest_queued_seconds": _level_dict(s.oldest_queued_seconds),
            "running": _level_dict(s.running),
            "waiting_on_no_host": _level_dict(s.waiting),
        }
    if "utilisation" in chosen:
        doc["utilisation"] = _opt(s, "utilisation")
        doc["agent_types"] = [agent_type_dict(m) for m in reply.agent_types]
    if chosen & {"hosts", "cpu", "memory"}:
        doc["controlplane"] = controlplane_dict(reply.controlplane)
        doc["hosts"] = [host_dict(h) for h in reply.hosts]
    if "messages" in chosen:
        doc["messages"] = {
            "sent": s.messages_sent,
            "delivered": s.messages_delivered,
            "sent_per_second": s.messages_per_second,
        }
    if "efficiency" in chosen:
        doc["parallel_efficiency"] = {"mean": _opt(s, "parallel_efficiency"), "trees": s.trees}
    if "alerts" in chosen:
        doc["alerts"] = [alert_dict(a) for a in reply.alerts]
    return doc


# ------------------------------------------------------------------ tables


def _queue_line(reply: admin_pb2.GetMetricsResponse) -> str:
    s = reply.summary
    parts = [" · ".join(f"{q.priority} {q.now}" for q in reply.queue)]
    mean = _level(s.queue_depth)
    if mean is not None:
        parts.append(f"mean depth {mean:.1f}")
    parts.append(f"oldest {duration(_level(s.oldest_queued_seconds, 'last'))}")
    parts.append(f"running {_level(s.running, 'last') or 0:.0f}")
    return " · ".join(parts)


def _method_table(reply: admin_pb2.GetMetricsResponse, limit: int) -> str:
    methods = sorted(reply.api, key=lambda m: -m.latency.count)[:limit]
    return render_table(
        ("method", "calls", "p50", "p95", "p99", "errors"),
        [
            (
                m.method + (" (long poll)" if m.long_poll else ""),
                m.latency.count,
                ms(m.latency.p50),
                ms(m.latency.p95),
                ms(m.latency.p99),
                m.errors,
            )
            for m in methods
        ],
        right=(1, 2, 3, 4, 5),
        empty="(no API calls)",
    )


def agent_metrics_table(reply: admin_pb2.GetMetricsResponse, columns: Sequence[str] = DEFAULT_AGENT_METRICS) -> str:
    """`agent metrics`: one row per agent type, the chosen columns."""
    cells: dict[str, Callable[[admin_pb2.AgentTypeMetrics], object]] = {
        "tasks": lambda m: m.completed + m.failed + m.cancelled,
        "completed": lambda m: m.completed,
        "failed": lambda m: m.failed,
        "success_rate": lambda m: pct(_opt(m, "success_rate"), 1),
        "mean_duration": lambda m: ms(_opt(m, "mean_run_seconds")),
        "utilisation": lambda m: pct(_opt(m, "utilisation"), 1),
        "running": lambda m: m.running,
    }
    return render_table(
        ("agent type", *columns),
        [(m.agent_type, *(cells[c](m) for c in columns)) for m in reply.agent_types],
        right=range(1, len(columns) + 1),
        empty="(no agent types: no host has connected)",
    )


def hosts_table(reply: admin_pb2.GetMetricsResponse, metrics: Iterable[str] = METRICS) -> str:
    chosen = set(metrics)
    headers = ["host", "slots", "busy", "idle"]
    if chosen & {"cpu", "hosts"}:
        headers += ["cpu", "cpu avg"]
    if chosen & {"memory", "hosts"}:
        headers += ["memory", "mem avg", "used"]
    rows = []
    for h in reply.hosts:
        row: list[object] = [h.host_id + ("" if h.connected else " (lost)"), h.slots, h.in_flight, h.idle_agents]
        if chosen & {"cpu", "hosts"}:
            row += [percent(h.cpu_percent), percent(_level(h.cpu))]
        if chosen & {"memory", "hosts"}:
            row += [percent(_opt(h, "memory_percent")), percent(_level(h.memory)), size(h.memory_used_bytes)]
        rows.append(row)
    return render_table(headers, rows, right=range(1, len(headers)), empty="(no agent hosts)")


def alerts_table(alerts: Sequence[admin_pb2.Alert], now: dt.datetime | None = None) -> str:
    """`alerts`: newest first, active ones marked."""
    rows = []
    for a in alerts:
        raised = timestamp(a.raised_at, a.HasField("raised_at"))
        cleared = timestamp(a.cleared_at, a.HasField("cleared_at"))
        rows.append(
            (
                a.id,
                "active" if a.active else "cleared",
                a.severity,
                a.rule,
                a.subject,
                raised.strftime("%H:%M:%SZ") if raised else "-",
                cleared.strftime("%H:%M:%SZ") if cleared else "-",
                a.message,
            )
        )
    return render_table(
        ("id", "state", "severity", "rule", "subject", "raised", "cleared", "message"),
        rows,
        right=(0,),
        max_widths={7: 90},
        empty="no alerts",
    )


def resources_rows(reply: admin_pb2.GetMetricsResponse) -> list[tuple[object, ...]]:
    cp = reply.controlplane
    rows: list[tuple[object, ...]] = [
        (
            f"controlplane (pid {cp.pid})",
            percent(_level(cp.cpu_percent, "last")),
            percent(_level(cp.memory_percent, "last")),
            f"{size(cp.memory_bytes)} total",
            f"daemon cpu {percent(_level(cp.process_cpu_percent, 'last'))} · "
            f"rss {size(int(_level(cp.process_rss_bytes, 'last') or 0))}",
        )
    ]
    for h in reply.hosts:
        rows.append(
            (
                f"host {h.host_id}" + ("" if h.connected else " (lost)"),
                percent(h.cpu_percent),
                percent(_opt(h, "memory_percent")),
                f"{size(h.memory_used_bytes)} of {size(h.memory_bytes)}",
                f"{h.slots} workers · rss {size(h.workers_rss_bytes)}",
            )
        )
    return rows


def resources_table(reply: admin_pb2.GetMetricsResponse) -> str:
    """`status --resources`: CPU and memory of the control plane and each host, now."""
    return render_table(("node", "cpu", "memory", "memory used", "processes"), resources_rows(reply), right=(1, 2))


def resources_dict(reply: admin_pb2.GetMetricsResponse) -> dict[str, Any]:
    return {"controlplane": controlplane_dict(reply.controlplane), "hosts": [host_dict(h) for h in reply.hosts]}


def metrics_text(reply: admin_pb2.GetMetricsResponse, metrics: Iterable[str] = METRICS, *, methods: int = 20) -> str:
    """The people's view of the figures: a summary block, then tables, for the chosen sections."""
    chosen = set(metrics)
    s = reply.summary
    fields: list[tuple[str, object]] = []
    if "throughput" in chosen:
        fields.append(
            (
                "throughput",
                f"{rate(s.throughput_per_second)} (peak {rate(s.peak_throughput_per_second)}) · "
                f"{s.completed} completed · {s.failed} failed · {s.cancelled} cancelled",
            )
        )
    if "completion" in chosen:
        c = s.completion
        fields.append(
            ("completion", f"p50 {ms(c.p50)} · p95 {ms(c.p95)} ({c.count} tasks)" if c.count else "no task completed")
        )
    if "latency" in chosen:
        a = s.api_latency
        fields.append(
            (
                "api latency",
                f"p50 {ms(a.p50)} · p95 {ms(a.p95)} · p99 {ms(a.p99)} ({a.count} calls)" if a.count else "no calls",
            )
        )
    if "queue" in chosen:
        fields.append(("queue", _queue_line(reply)))
    if "utilisation" in chosen:
        fields.append(("utilisation", f"{pct(_opt(s, 'utilisation'), 1)} of agent time busy"))
    if "messages" in chosen:
        delivered = s.messages_delivered / s.seconds if s.seconds > 0 else 0.0
        fields.append(("messages", f"{rate(s.messages_per_second)} sent · {rate(delivered)} delivered"))
    if "efficiency" in chosen:
        eff = _opt(s, "parallel_efficiency")
        trees = f"{s.trees} task tree" + ("" if s.trees == 1 else "s")
        fields.append(("efficiency", f"{pct(eff)} ({trees})" if eff is not None else "no task tree finished"))
    cp = reply.controlplane
    if chosen & {"cpu", "memory"}:
        parts = []
        if "cpu" in chosen:
            parts.append(
                f"cpu {percent(_level(cp.cpu_percent))} avg · daemon {percent(_level(cp.process_cpu_percent))}"
            )
        if "memory" in chosen:
            parts.append(
                f"memory {percent(_level(cp.memory_percent))} avg · rss {size(int(_level(cp.process_rss_bytes) or 0))}"
            )
        fields.append(("control plane", " · ".join(parts)))
    blocks = [render_fields(fields)] if fields else []
    if "latency" in chosen and reply.api:
        blocks.append(_method_table(reply, methods))
    if "utilisation" in chosen:
        blocks.append(agent_metrics_table(reply, ("tasks", "success_rate", "mean_duration", "utilisation", "running")))
    if chosen & {"hosts", "cpu", "memory"}:
        blocks.append(hosts_table(reply, chosen))
    if "alerts" in chosen:
        blocks.append(
            "alerts:\n" + "\n".join(f"  {a.severity:<8} {a.rule:<18} {a.message}" for a in reply.alerts)
            if reply.alerts
            else "alerts: none active"
        )
    return "\n\n".join(b for b in blocks if b)
