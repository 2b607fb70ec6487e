"""`task show --execution-plan`: a task's subtree drawn as a tree, with dependency arrows.

Pure: the command fetches the root and its descendants and passes them in;
this module orders, names and draws them.

    demo: analyse 2 shards  01JA…  completed  1.20s
    plan: parallel-synthesis · 2 parallel streams · estimated speedup 1.80x
    ├─ shard-1    completed  agent h1-w0  0.52s
    ├─ shard-2    completed  agent h1-w1  0.50s
    └─ synthesis  completed  agent h1-w0  0.03s  ← shard-1, shard-2

Siblings are listed in dependency order (a node after what it waits on),
then in creation order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from maos.v1 import common_pb2

from .._enums import status_name
from ._detail_views import plan_dict, plan_text
from ._output import duration, timestamp, truncate
from ._views import task_duration

_RUNNING = common_pb2.TASK_STATUS_RUNNING
_NAME_WIDTH = 40


@dataclass(frozen=True, slots=True)
class PlanNode:
    """One line of the tree: a task, where it hangs, and what it waits on."""

    task: common_pb2.Task
    depth: int  # 1 for the root's children
    prefix: str  # the tree branches drawn before the name ("│  └─ ")
    name: str
    parent_id: str
    depends_on: tuple[str, ...]  # display names of the tasks it depends on


def node_name(task: common_pb2.Task) -> str:
    """A short label: the workflow key, else the description cut short, else the id."""
    return task.workflow_key or truncate(task.spec.description, _NAME_WIDTH) or task.id


def _created(task: common_pb2.Task) -> tuple[int, int, str]:
    return (task.created_at.seconds, task.created_at.nanos, task.id)


def _levels(tasks: dict[str, common_pb2.Task]) -> dict[str, int]:
    """Longest chain of dependencies (within `tasks`) before each task; cycles count once."""
    levels: dict[str, int] = {}
    visiting: set[str] = set()

    def level(task_id: str) -> int:
        if task_id in levels:
            return levels[task_id]
        if task_id in visiting:  # cannot happen for a stored graph; never loop on bad data
            return 0
        visiting.add(task_id)
        deps = [d for d in tasks[task_id].spec.depends_on if d in tasks]
        levels[task_id] = 1 + max(map(level, deps)) if deps else 0
        visiting.discard(task_id)
        return levels[task_id]

    for task_id in tasks:
        level(task_id)
    return levels


def plan_nodes(root: common_pb2.Task, descendants: Iterable[common_pb2.Task]) -> list[PlanNode]:
    """The descendants of `root` in drawing order, with their tree prefixes.

    A task whose parent is missing from `descendants` hangs under the root, so
    a partial listing still draws every task once.
    """
    tasks = {t.id: t for t in descendants if t.id != root.id}
    names = {task_id: node_name(t) for task_id, t in tasks.items()}
    levels = _levels(tasks)
    children: dict[str, list[common_pb2.Task]] = {}
    for task in tasks.values():
        parent = task.parent_id or task.spec.parent_id
        if parent not in tasks:
            parent = root.id
        children.setdefault(parent, []).append(task)
    for siblings in children.values():
        siblings.sort(key=lambda t: (levels[t.id], *_created(t)))

    nodes: list[PlanNode] = []

    def walk(parent_id: str, indent: str, depth: int) -> None:
        siblings = children.get(parent_id, [])
        for i, task in enumerate(siblings):
            last = i == len(siblings) - 1
            deps = tuple(names.get(d, d) for d in task.spec.depends_on)
            nodes.append(PlanNode(task, depth, indent + ("└─ " if last else "├─ "), names[task.id], parent_id, deps))
            walk(task.id, indent + ("   " if last else "│  "), depth + 1)

    walk(root.id, "", 1)
    return nodes


def _elapsed(task: common_pb2.Task, now: dt.datetime) -> str:
    if task.HasField("finished_at"):
        return duration(task_duration(task))
    started = timestamp(task.started_at, task.HasField("started_at"))
    if task.status == _RUNNING and started is not None:
        return duration((now - started).total_seconds()) + "…"
    return "-"


def render_execution_plan(root: common_pb2.Task, descendants: Sequence[common_pb2.Task], now: dt.datetime) -> str:
    """The tree as text: a headline for the root, the plan line if any, one aligned line per task."""
    head = f"{root.spec.description or root.id}  {root.id}  {status_name(root.status)}  {_elapsed(root, now)}"
    lines = [head]
    if root.HasField("plan"):
        lines.append(f"plan: {plan_text(root.plan)}")
    nodes = plan_nodes(root, descendants)
    if not nodes:
        lines.append("(no subtasks)")
        return "\n".join(lines)
    rows = [
        (
            node.prefix + node.name,
            status_name(node.task.status),
            f"agent {node.task.placement.agent_id}" if node.task.placement.agent_id else "-",
            _elapsed(node.task, now),
            f"← {', '.join(node.depends_on)}" if node.depends_on else "",
        )
        for node in nodes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3].ljust(widths[3])]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def execution_plan_dict(root: common_pb2.Task, descendants: Sequence[common_pb2.Task]) -> dict[str, Any]:
    """The JSON view: the root, its plan, and every node in drawing order with its parent and dependencies."""
    return {
        "root": {
            "id": root.id,
            "description": root.spec.description,
            "status": status_name(root.status),
            "duration_seconds": task_duration(root),
        },
        "plan": plan_dict(root.plan) if root.HasField("plan") else None,
        "nodes": [
            {
                "id": node.task.id,
                "name": node.name,
                "workflow_key": node.task.workflow_key or None,
                "parent_id": node.parent_id,
                "depth": node.depth,
                "status": status_name(node.task.status),
                "host_id": node.task.placement.host_id or None,
                "agent_id": node.task.placement.agent_id or None,
                "duration_seconds": task_duration(node.task),
                "depends_on": list(node.task.spec.depends_on),
                "depends_on_names": list(node.depends_on),
            }
            for node in plan_nodes(root, descendants)
        ],
    }
