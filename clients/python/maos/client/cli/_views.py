"""How MAOS messages look to a person (tables) and to a program (JSON dicts).

JSON documents have a fixed key order, lower-case enum names, ISO-8601 UTC
timestamps (null when unset), null for absent ids, and decoded payloads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from maos.errors import MaosError
from maos.v1 import admin_pb2, common_pb2, hosts_pb2

from .._enums import (
    STATUS,
    agent_status_name,
    dependency_failure_name,
    host_status_name,
    priority_name,
    status_name,
    task_type_name,
)
from .._specs import task_input, task_result
from ._detail_views import attempt_dict, plan_dict, plan_text, retry_dict, retry_text
from ._output import ago, duration, iso, render_fields, render_table, seconds_between, size, timestamp

_COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def _opt(text: str) -> str | None:
    return text or None


def task_duration(task: common_pb2.Task) -> float | None:
    """Seconds from start to finish, or None when the task has not finished (or never ran)."""
    return seconds_between(
        timestamp(task.started_at, task.HasField("started_at")),
        timestamp(task.finished_at, task.HasField("finished_at")),
    )


def task_dict(task: common_pb2.Task, *, include_payloads: bool = True) -> dict[str, Any]:
    """The JSON view of a task."""
    spec = task.spec
    document: dict[str, Any] = {
        "id": task.id,
        "root_id": _opt(task.root_id),
        "parent_id": _opt(task.parent_id or spec.parent_id),
        "description": spec.description,
        "status": status_name(task.status),
        "type": task_type_name(spec.type),
        "agent_type": _opt(spec.agent_type),
        "priority": priority_name(spec.priority),
        "effective_priority": effective_priority(task),
        "workflow_key": _opt(task.workflow_key),
        "group": task.group,
        "attempt": task.attempt,
        "host_id": _opt(task.placement.host_id),
        "agent_id": _opt(task.placement.agent_id),
        "depends_on": list(spec.depends_on),
        "labels": dict(sorted(spec.labels.items())),
        "timeout_seconds": spec.timeout_seconds or None,
        "max_retries": spec.retry.max_retries if spec.HasField("retry") else None,
        "retry": retry_dict(spec.retry) if spec.HasField("retry") else None,
        "on_dependency_failure": dependency_failure_name(spec.on_dependency_failure),
        "queue_timeout_seconds": spec.queue_timeout_seconds if spec.HasField("queue_timeout_seconds") else None,
        "required_capabilities": list(spec.required_capabilities),
        "idempotency_key": _opt(spec.idempotency_key),
        "created_at": iso(task.created_at, task.HasField("created_at")),
        "queued_at": iso(task.queued_at, task.HasField("queued_at")),
        "started_at": iso(task.started_at, task.HasField("started_at")),
        "finished_at": iso(task.finished_at, task.HasField("finished_at")),
        "duration_seconds": task_duration(task),
        "progress": (
            {"fraction": task.progress.fraction, "message": task.progress.message}
            if task.HasField("progress")
            else None
        ),
        "error": (
            {"kind": task.error.kind, "message": task.error.message}
            if task.HasField("error") and (task.error.kind or task.error.message)
            else None
        ),
        "last_seq": task.last_seq,
        "plan": plan_dict(task.plan) if task.HasField("plan") else None,
        "attempts": [attempt_dict(a) for a in task.attempts],
    }
    if include_payloads:
        document["input"] = task_input(task)
        document["result"] = task_result(task)
        document["log"] = _opt(task.log)
    return document


TASK_HEADERS = ("id", "status", "type", "agent type", "priority", "host", "duration", "description")


def task_row(task: common_pb2.Task) -> tuple[object, ...]:
    """One `task list` row."""
    return (
        task.id,
        status_name(task.status),
        task_type_name(task.spec.type),
        task.spec.agent_type or ("(group)" if task.group else None),
        effective_priority(task),
        task.placement.host_id or None,
        duration(task_duration(task)) if task.HasField("finished_at") else None,
        task.spec.description,
    )


def task_table(tasks: Sequence[common_pb2.Task]) -> str:
    """The `task list` table."""
    return render_table(TASK_HEADERS, [task_row(t) for t in tasks], max_widths={7: 60}, empty="no tasks")


def error_line(task: common_pb2.Task) -> str | None:
    """The task's error as "kind: message", or None."""
    if not task.HasField("error") or not (task.error.kind or task.error.message):
        return None
    return f"{task.error.kind}: {task.error.message}" if task.error.kind else task.error.message


def progress_text(task: common_pb2.Task) -> str | None:
    """Reported progress as "40% reading shard", a task's reported progress, or None when it reported none."""
    if not task.HasField("progress") or not (task.progress.fraction or task.progress.message):
        return None
    return f"{task.progress.fraction:.0%} {task.progress.message}".strip()


def effective_priority(task: common_pb2.Task) -> str:
    """The priority the scheduler uses now (after `task priority` or aging), else the submitted one."""
    return priority_name(task.effective_priority or task.spec.priority)


def _priority_text(task: common_pb2.Task) -> str:
    submitted = priority_name(task.spec.priority)
    now = effective_priority(task)
    return now if now == submitted else f"{now} (submitted as {submitted})"


def task_fields(task: common_pb2.Task) -> str:
    """The `task show` key/value block (without the result)."""
    spec = task.spec
    progress = progress_text(task)
    return render_fields(
        [
            ("id", task.id),
            ("description", spec.description),
            ("status", status_name(task.status)),
            ("type", task_type_name(spec.type)),
            ("agent type", spec.agent_type or ("(group)" if task.group else None)),
            ("priority", _priority_text(task)),
            ("key", task.workflow_key or None),
            ("root", task.root_id if task.root_id and task.root_id != task.id else None),
            ("parent", task.parent_id or spec.parent_id or None),
            ("depends on", ", ".join(spec.depends_on) or None),
            (
                "on dep. failure",
                dependency_failure_name(spec.on_dependency_failure) if spec.on_dependency_failure else None,
            ),
            ("labels", ", ".join(f"{k}={v}" for k, v in sorted(spec.labels.items())) or None),
            ("capabilities", ", ".join(spec.required_capabilities) or None),
            ("timeout", duration(spec.timeout_seconds) if spec.HasField("timeout_seconds") else None),
            (
                "queue timeout",
                duration(spec.queue_timeout_seconds) if spec.HasField("queue_timeout_seconds") else None,
            ),
            ("retries", retry_text(spec.retry) if spec.HasField("retry") else None),
            ("plan", plan_text(task.plan) if task.HasField("plan") else None),
            ("attempt", task.attempt or None),
            ("host", task.placement.host_id or None),
            ("agent", task.placement.agent_id or None),
            ("created", iso(task.created_at, task.HasField("created_at"))),
            ("started", iso(task.started_at, task.HasField("started_at"))),
            ("finished", iso(task.finished_at, task.HasField("finished_at"))),
            ("duration", duration(task_duration(task)) if task.HasField("finished_at") else None),
            ("progress", progress),
            ("error", error_line(task)),
        ]
    )


def host_dict(host: hosts_pb2.Host) -> dict[str, Any]:
    """The JSON view of an agent host."""
    return {
        "id": host.id,
        "hostname": host.hostname,
        "status": host_status_name(host.status),
        "slots": host.slots,
        "in_flight": host.in_flight,
        "cpu_count": host.cpu_count,
        "cpu_percent": host.cpu_percent,
        "memory_bytes": host.memory_bytes,
        "memory_used_bytes": host.memory_used_bytes,
        "tasks_completed": host.tasks_completed,
        "agent_types": [t.name for t in host.agent_types],
        "connected_at": iso(host.connected_at, host.HasField("connected_at")),
        "last_heartbeat": iso(host.last_heartbeat, host.HasField("last_heartbeat")),
    }


def host_table(hosts: Sequence[hosts_pb2.Host], now: dt.datetime) -> str:
    """The `host list` table."""
    rows = [
        (
            h.id,
            h.hostname,
            host_status_name(h.status),
            f"{h.in_flight}/{h.slots}",
            f"{h.cpu_percent:.0f}%",
            f"{size(h.memory_used_bytes)}/{size(h.memory_bytes)}" if h.memory_bytes else None,
            h.tasks_completed,
            ago(timestamp(h.last_heartbeat, h.HasField("last_heartbeat")), now),
            ",".join(t.name for t in h.agent_types),
        )
        for h in hosts
    ]
    headers = ("id", "hostname", "status", "busy/slots", "cpu", "memory", "done", "heartbeat", "agent types")
    return render_table(headers, rows, right=(3, 4, 6, 7), max_widths={8: 50}, empty="no hosts connected")


def agent_dict(agent: hosts_pb2.Agent) -> dict[str, Any]:
    """The JSON view of an agent worker process."""
    return {
        "id": agent.id,
        "host_id": agent.host_id,
        "status": agent_status_name(agent.status),
        "agent_type": _opt(agent.agent_type),
        "task_id": _opt(agent.task_id),
        "pid": agent.pid or None,
        "tasks_completed": agent.tasks_completed,
        "tasks_failed": agent.tasks_failed,
        "rss_bytes": agent.rss_bytes,
        "started_at": iso(agent.started_at, agent.HasField("started_at")),
    }


def agent_table(agents: Sequence[hosts_pb2.Agent]) -> str:
    """The `agent list` table."""
    rows = [
        (
            a.id,
            a.host_id,
            agent_status_name(a.status),
            a.agent_type or None,
            a.task_id or None,
            a.pid or None,
            a.tasks_completed,
            a.tasks_failed,
            size(a.rss_bytes) if a.rss_bytes else None,
        )
        for a in agents
    ]
    headers = ("id", "host", "status", "agent type", "task", "pid", "done", "failed", "rss")
    return render_table(headers, rows, right=(5, 6, 7, 8), empty="no agents")


def agent_type_dict(info: hosts_pb2.AgentTypeInfo) -> dict[str, Any]:
    """The JSON view of an agent type."""
    return {
        "name": info.name,
        "runner": info.runner,
        "capabilities": list(info.capabilities),
        "timeout_seconds": info.timeout_seconds or None,
    }


def agent_type_table(types: Sequence[hosts_pb2.AgentTypeInfo]) -> str:
    """The `agent types` table."""
    rows = [
        (t.name, t.runner, duration(t.timeout_seconds) if t.timeout_seconds else None, ", ".join(t.capabilities))
        for t in types
    ]
    return render_table(("name", "runner", "timeout", "capabilities"), rows, empty="no agent types")


def status_counts(status: admin_pb2.StatusResponse) -> list[tuple[str, int]]:
    """Task counts by lower-case status name, in lifecycle order (unknown names last)."""
    order = {name: i for i, name in enumerate(STATUS.names)}
    counts: dict[str, int] = {}
    for key, count in status.tasks_by_status.items():
        try:
            name = status_name(STATUS.parse(key))
        except MaosError:  # a status this client does not know yet: show it as sent
            name = key.lower()
        counts[name] = counts.get(name, 0) + count
    return sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def status_dict(status: admin_pb2.StatusResponse, endpoint: str) -> dict[str, Any]:
    """The JSON view of the control plane's status (`endpoint`: where this client reached it)."""
    return {
        "endpoint": endpoint,
        "version": status.version,
        "listen": _opt(status.listen),
        "store": status.store,
        "started_at": iso(status.started_at, status.HasField("started_at")),
        "hosts_connected": status.hosts_connected,
        "agents": status.agents,
        "slots_total": status.slots_total,
        "slots_busy": status.slots_busy,
        "tasks_by_status": dict(status_counts(status)),
        "queue": {q.priority.lower(): q.depth for q in status.queue},
    }


def status_text(status: admin_pb2.StatusResponse, now: dt.datetime, endpoint: str) -> str:
    """The `status` view: a summary block, then task counts and queue depths as tables."""
    started = timestamp(status.started_at, status.HasField("started_at"))
    summary = render_fields(
        [
            ("control plane", endpoint),
            ("version", status.version),
            ("store", status.store),
            ("up", ago(started, now) if started else None),
            ("hosts", status.hosts_connected),
            ("agents", status.agents),
            ("slots", f"{status.slots_busy} busy / {status.slots_total}"),
        ]
    )
    counts = render_table(
        ("status", "tasks"),
        status_counts(status),
        right=(1,),
        empty="no tasks yet",
    )
    queue = render_table(("priority", "queued"), [(q.priority.lower(), q.depth) for q in status.queue], right=(1,))
    return f"{summary}\n\n{counts}\n\n{queue}" if status.queue else f"{summary}\n\n{counts}"
