"""Parallel efficiency of a finished task tree, by the same formula as `maosctl task analyze`.

The figures come from maos.client._analysis (work nodes, wall time, run
time, agents used), so the monitor and `task analyze --performance` agree:
efficiency = total work / (wall time x distinct agents). Those functions
read Task messages, about 20 us per node; so the event loop only copies the
tree's times (`snapshot_tree`, cheap) and `tree_efficiency` runs in a
worker thread. Trees larger than MAX_TREE_NODES are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from maos.client._analysis import agent_busy, run_seconds, wall_seconds, work_nodes
from maos.controlplane.core import TaskRecord
from maos.v1 import common_pb2

MAX_TREE_NODES = 10_000

# id, group, created_at, started_at, finished_at, agent id: what the formula reads of a node.
NodeTimes = tuple[str, bool, float, float, float, str]


def snapshot_tree(root_id: str, tasks: Mapping[str, TaskRecord]) -> list[NodeTimes] | None:
    """The root's and its descendants' times, root first; None when unknown or too large."""
    root = tasks.get(root_id)
    if root is None:
        return None
    out: list[NodeTimes] = []
    stack = [root_id]
    while stack:
        rec = tasks.get(stack.pop())
        if rec is None:
            continue
        out.append((rec.id, rec.group, rec.created_at, rec.started_at, rec.finished_at, rec.agent_id))
        if len(out) > MAX_TREE_NODES + 1:
            return None
        stack.extend(rec.children)
    return out


def _set(field: common_pb2.Task, name: str, seconds: float) -> None:
    if seconds:
        getattr(field, name).FromNanoseconds(int(seconds * 1e9))


def _task(node: NodeTimes) -> common_pb2.Task:
    task_id, group, created, started, finished, agent_id = node
    task = common_pb2.Task(id=task_id, group=group)
    task.placement.agent_id = agent_id
    _set(task, "created_at", created)
    _set(task, "started_at", started)
    _set(task, "finished_at", finished)
    return task


def tree_efficiency(nodes: Sequence[NodeTimes]) -> float | None:
    """Total work / (wall x agents) of a snapshot (root first); None when it cannot be told."""
    if not nodes:
        return None
    root = _task(nodes[0])
    work = work_nodes(root, [_task(n) for n in nodes[1:]])
    wall = wall_seconds(root, work)
    agents = len(agent_busy(work))
    if wall <= 0 or agents == 0:
        return None
    return sum(run_seconds(t) for t in work) / (wall * agents)
