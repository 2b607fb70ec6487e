"""Parallel efficiency of a finished task tree, by the same formula as `maosctl task analyze`.

The figures come from maos.client.cli._analysis (work nodes, wall time, run
time, agents used), so the monitor and `task analyze --performance` agree:
efficiency = total work / (wall time x distinct agents). The tree is read
from the records the orchestrator still holds; trees larger than
MAX_TREE_NODES are left out rather than stall the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping

from maos.client.cli._analysis import agent_busy, run_seconds, wall_seconds, work_nodes
from maos.controlplane._convert import timestamp
from maos.controlplane.core import TaskRecord
from maos.v1 import common_pb2

MAX_TREE_NODES = 2_000


def _lean_task(rec: TaskRecord) -> common_pb2.Task:
    """Only what the efficiency formula reads (no spec, input or result is copied)."""
    return common_pb2.Task(
        id=rec.id,
        root_id=rec.root_id,
        group=rec.group,
        placement=common_pb2.Placement(host_id=rec.host_id, agent_id=rec.agent_id),
        created_at=timestamp(rec.created_at),
        started_at=timestamp(rec.started_at),
        finished_at=timestamp(rec.finished_at),
    )


def tree_efficiency(root_id: str, tasks: Mapping[str, TaskRecord]) -> float | None:
    """Total work / (wall x agents) of the tree under `root_id`; None when it cannot be told."""
    root = tasks.get(root_id)
    if root is None:
        return None
    nodes: list[TaskRecord] = []
    stack = list(root.children)
    while stack:
        rec = tasks.get(stack.pop())
        if rec is None:
            continue
        nodes.append(rec)
        if len(nodes) > MAX_TREE_NODES:
            return None
        stack.extend(rec.children)
    root_task = _lean_task(root)
    work = work_nodes(root_task, [_lean_task(r) for r in nodes])
    wall = wall_seconds(root_task, work)
    agents = len(agent_busy(work))
    if wall <= 0 or agents == 0:
        return None
    return sum(run_seconds(t) for t in work) / (wall * agents)
