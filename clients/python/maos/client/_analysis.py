"""Performance figures of a finished task tree, from its stored timestamps.

Pure functions over Task messages (no I/O): `analyze` and `compare_sequential`
build the documents behind `maosctl task analyze --performance` and
`maosctl task compare --baseline sequential`.

Conventions:
- a node's run time is started_at -> finished_at (0 when either is unset);
- wall time is the root's created_at -> the last finished_at in the tree;
- "agents used" counts the distinct placement.agent_id values of the nodes
  (the placement of each node's last attempt);
- the critical path follows spec.depends_on edges (task ids) within the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from maos.v1 import common_pb2

SLOWEST = 5
CRITICAL_BOUND = 0.8
LOW_EFFICIENCY = 0.5
DOMINANT_SHARE = 0.5


_Stamp = Literal["created_at", "queued_at", "started_at", "finished_at"]


def _seconds(task: common_pb2.Task, field: _Stamp) -> float | None:
    if not task.HasField(field):
        return None
    ts: Timestamp = getattr(task, field)
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.seconds + ts.nanos / 1e9


def _gap(start: float | None, end: float | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(end - start, 0.0)


def node_name(task: common_pb2.Task) -> str:
    """How a node is shown: its workflow key, else its description, else its id."""
    return task.workflow_key or task.spec.description or task.id


def run_seconds(task: common_pb2.Task) -> float:
    """started_at -> finished_at in seconds; 0 when the task never started or has not finished."""
    return _gap(_seconds(task, "started_at"), _seconds(task, "finished_at"))


@dataclass(frozen=True)
class Split:
    """Where one node's time went."""

    waiting: float  # created -> queued, for a node with dependencies
    queued: float  # queued (or created) -> started
    running: float  # started -> finished


def time_split(task: common_pb2.Task) -> Split:
    """The node's waiting-on-dependencies, queued and running seconds."""
    created = _seconds(task, "created_at")
    queued_at = _seconds(task, "queued_at")
    started = _seconds(task, "started_at")
    waiting = _gap(created, queued_at) if task.spec.depends_on else 0.0
    return Split(
        waiting=waiting,
        queued=_gap(queued_at if queued_at is not None else created, started),
        running=run_seconds(task),
    )


def work_nodes(root: common_pb2.Task, descendants: Sequence[common_pb2.Task]) -> list[common_pb2.Task]:
    """The nodes that did work: every descendant, plus the root when it ran itself (not a group)."""
    nodes = [t for t in descendants if t.id != root.id]
    if not root.group and _seconds(root, "started_at") is not None:
        nodes.insert(0, root)
    return nodes


def wall_seconds(root: common_pb2.Task, nodes: Sequence[common_pb2.Task]) -> float:
    """The root's created_at -> the last finished_at in the tree (0 when nothing finished)."""
    finishes = [f for f in (_seconds(t, "finished_at") for t in [root, *nodes]) if f is not None]
    if not finishes:
        return 0.0
    start = _seconds(root, "created_at")
    if start is None:
        starts = [s for s in (_seconds(t, "created_at") for t in nodes) if s is not None]
        start = min(starts) if starts else None
    return _gap(start, max(finishes))


def critical_path(nodes: Sequence[common_pb2.Task]) -> tuple[list[common_pb2.Task], float]:
    """The longest chain through depends_on edges, weighted by run time: its nodes (first to last) and total."""
    by_id = {t.id: t for t in nodes}
    best: dict[str, tuple[float, str | None]] = {}  # id -> (chain total ending here, predecessor)
    for start in by_id:
        stack: list[tuple[str, bool]] = [(start, False)]
        visiting: set[str] = set()
        while stack:
            task_id, expanded = stack.pop()
            if task_id in best:
                continue
            deps = [d for d in by_id[task_id].spec.depends_on if d in by_id and d != task_id]
            if not expanded:
                visiting.add(task_id)
                stack.append((task_id, True))
                # A cycle (which the control plane refuses) is cut rather than followed.
                stack.extend((d, False) for d in deps if d not in best and d not in visiting)
                continue
            visiting.discard(task_id)
            prev: str | None = None
            prev_total = 0.0
            for d in deps:
                if d in best and best[d][0] > prev_total:
                    prev, prev_total = d, best[d][0]
            best[task_id] = (prev_total + run_seconds(by_id[task_id]), prev)
    if not best:
        return [], 0.0
    end = max(best, key=lambda i: best[i][0])
    total = best[end][0]
    path: list[common_pb2.Task] = []
    cursor: str | None = end
    while cursor is not None:
        path.append(by_id[cursor])
        cursor = best[cursor][1]
    path.reverse()
    return path, total


def agent_busy(nodes: Sequence[common_pb2.Task]) -> dict[str, float]:
    """Run seconds per placement.agent_id (nodes without one are left out)."""
    busy: dict[str, float] = {}
    for t in nodes:
        if t.placement.agent_id:
            busy[t.placement.agent_id] = busy.get(t.placement.agent_id, 0.0) + run_seconds(t)
    return busy


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def suggestions(
    *,
    wall: float,
    critical: float,
    critical_slowest: str | None,
    queued: float,
    running: float,
    efficiency: float | None,
    agents: int,
    total_work: float,
    slowest_name: str | None,
    slowest_run: float,
) -> list[str]:
    """ "What would have helped": plain rules over the figures."""
    hints: list[str] = []
    if wall > 0 and critical >= CRITICAL_BOUND * wall and critical_slowest is not None:
        hints.append(f"the critical path bounds this run: shorten {critical_slowest}")
    if queued > running:
        hints.append(f"tasks waited for slots: add workers (queued {queued:.2f} s vs running {running:.2f} s)")
    if efficiency is not None and efficiency < LOW_EFFICIENCY and agents >= 2:
        hints.append("agents were idle half the time: fewer, larger tasks or more parallel streams")
    if slowest_name is not None and total_work > 0 and slowest_run > DOMINANT_SHARE * total_work:
        hints.append(f"one node dominates: decompose {slowest_name}")
    return hints


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def analyze(root: common_pb2.Task, descendants: Sequence[common_pb2.Task]) -> dict[str, Any]:
    """The `task analyze --performance` document for `root` and its descendants."""
    nodes = work_nodes(root, descendants)
    wall = wall_seconds(root, nodes)
    path, critical = critical_path(nodes)
    total_work = sum(run_seconds(t) for t in nodes)
    busy = agent_busy(nodes)
    agents = len(busy)
    efficiency = _ratio(total_work, wall * agents)
    splits = {t.id: time_split(t) for t in nodes}
    waiting = sum(s.waiting for s in splits.values())
    queued = sum(s.queued for s in splits.values())
    running = sum(s.running for s in splits.values())
    slowest = sorted(nodes, key=run_seconds, reverse=True)[:SLOWEST]
    slowest_on_path = max(path, key=run_seconds) if path else None
    hints = suggestions(
        wall=wall,
        critical=critical,
        critical_slowest=node_name(slowest_on_path) if slowest_on_path is not None else None,
        queued=queued,
        running=running,
        efficiency=efficiency,
        agents=agents,
        total_work=total_work,
        slowest_name=node_name(slowest[0]) if slowest else None,
        slowest_run=run_seconds(slowest[0]) if slowest else 0.0,
    )
    return {
        "root_id": root.id,
        "nodes": len(nodes),
        "wall_seconds": _r(wall),
        "critical_path": {
            "seconds": _r(critical),
            "share_of_wall": _r(_ratio(critical, wall)),
            "nodes": [{"id": t.id, "name": node_name(t), "run_seconds": _r(run_seconds(t))} for t in path],
        },
        "total_work_seconds": _r(total_work),
        "agents_used": agents,
        "agents_used_basis": "distinct placement.agent_id of the nodes (last attempt)",
        "parallel_efficiency": _r(efficiency),
        "time_split": {
            "waiting_on_dependencies_seconds": _r(waiting),
            "queued_seconds": _r(queued),
            "running_seconds": _r(running),
            "nodes": [
                {
                    "id": t.id,
                    "name": node_name(t),
                    "agent_id": t.placement.agent_id or None,
                    "waiting_seconds": _r(splits[t.id].waiting),
                    "queued_seconds": _r(splits[t.id].queued),
                    "running_seconds": _r(splits[t.id].running),
                }
                for t in nodes
            ],
        },
        "slowest": [{"id": t.id, "name": node_name(t), "run_seconds": _r(run_seconds(t))} for t in slowest],
        "agents": [
            {"agent_id": agent, "busy_seconds": _r(seconds), "utilisation": _r(_ratio(seconds, wall))}
            for agent, seconds in sorted(busy.items(), key=lambda item: -item[1])
        ],
        "suggestions": hints,
    }


def compare_sequential(root: common_pb2.Task, descendants: Sequence[common_pb2.Task]) -> dict[str, Any]:
    """The `task compare --baseline sequential` document: this run against running every node one after another."""
    nodes = work_nodes(root, descendants)
    wall = wall_seconds(root, nodes)
    sequential = sum(run_seconds(t) for t in nodes)
    agents = len(agent_busy(nodes))
    speedup = _ratio(sequential, wall)
    return {
        "root_id": root.id,
        "baseline": "sequential",
        "nodes": len(nodes),
        "wall_seconds": _r(wall),
        "sequential_seconds": _r(sequential),
        "speedup": _r(speedup),
        "agents_used": agents,
        "efficiency_per_agent": _r(None if speedup is None or agents == 0 else speedup / agents),
    }
