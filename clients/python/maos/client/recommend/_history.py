"""Finished task trees as learning samples (pure functions over Task messages).

A tree is a root task and every task under it (same root_id). Conventions, as
in `maosctl task analyze --performance`: a node's run time is its last
attempt's started_at -> finished_at; the tree's work is the sum over the nodes
that ran (a workflow root only groups its nodes); its wall time is the root's
created_at -> the last finish; plan shape is the number of descendants of the
root and the depth of the deepest one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp
from maos.v1 import common_pb2

DEFAULT_TYPE_NAME = "(default)"  # a node that named no agent type ran the control plane's default


@dataclass(frozen=True, slots=True)
class TreeSample:
    """One finished task tree, reduced to what the recommender learns from."""

    root_id: str
    description: str
    task_type: int  # common_pb2.TaskType of the root
    nodes: int  # tasks that ran (a workflow root only groups its nodes): one agent each
    children: int  # descendants of the root
    depth: int  # 0 for a single task, 1 for a workflow of nodes, more for spawned subtasks
    work_seconds: float  # summed run time of the nodes that ran
    wall_seconds: float  # root created -> last finish
    agents_used: int  # distinct agent ids the nodes ran on
    attempts: int  # summed attempts (more than the nodes when some were retried)
    agent_types: dict[str, int] = field(default_factory=dict)  # nodes per agent type

    @property
    def speedup(self) -> float:
        """Work per wall second: 1 for tasks one after another, N for N agents fully busy."""
        return self.work_seconds / self.wall_seconds if self.wall_seconds > 0 else 1.0


def _seconds(ts: Timestamp) -> float | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.seconds + ts.nanos / 1e9


def _run_seconds(task: common_pb2.Task) -> float:
    start, end = _seconds(task.started_at), _seconds(task.finished_at)
    return max(end - start, 0.0) if start is not None and end is not None else 0.0


def _depths(root_id: str, tasks: dict[str, common_pb2.Task]) -> dict[str, int]:
    """Depth of each task below the root; a task whose parent is not listed counts as depth 1."""
    depths = {root_id: 0}
    for task_id in tasks:
        chain: list[str] = []
        cursor = task_id
        while cursor not in depths:
            chain.append(cursor)
            parent = tasks[cursor].parent_id
            if parent not in tasks or parent in chain:  # outside the listed tree, or a cycle
                depths[cursor] = 1
                chain.pop()
                break
            cursor = parent
        base = depths[cursor]
        for offset, node in enumerate(reversed(chain), 1):
            depths[node] = base + offset
    return depths


def tree_sample(root: common_pb2.Task, members: Iterable[common_pb2.Task]) -> TreeSample:
    """The sample for one tree: its root and the tasks under it (the root may be among them)."""
    tasks = {t.id: t for t in members if t.id != root.id}
    tasks_with_root = {root.id: root, **tasks}
    depths = _depths(root.id, tasks_with_root)
    nodes = list(tasks.values())
    if not root.group and _seconds(root.started_at) is not None:
        nodes.insert(0, root)  # a root that ran itself (and maybe spawned children) did work too
    finishes = [f for f in (_seconds(t.finished_at) for t in tasks_with_root.values()) if f is not None]
    created = _seconds(root.created_at)
    wall = max(max(finishes) - created, 0.0) if finishes and created is not None else 0.0
    return TreeSample(
        root_id=root.id,
        description=root.spec.description,
        task_type=int(root.spec.type),
        nodes=len(nodes),
        children=len(tasks),
        depth=max((depths[t] for t in tasks), default=0),
        work_seconds=sum(_run_seconds(t) for t in nodes),
        wall_seconds=wall,
        agents_used=len({t.placement.agent_id for t in nodes if t.placement.agent_id}),
        attempts=sum(max(t.attempt, 1) for t in nodes),
        agent_types=dict(Counter(t.spec.agent_type or DEFAULT_TYPE_NAME for t in nodes)),
    )


def trees_from_tasks(tasks: Iterable[common_pb2.Task], *, exclude_label: str = "") -> list[TreeSample]:
    """Samples of every tree whose root is among `tasks` and COMPLETED, with the tasks listed under it.

    Trees whose root carries the label `exclude_label` (e.g. the bench's own) are left out.
    A tree may show no work: a task faster than the host's report batching gets the same
    start and finish stamp.
    """
    by_root: dict[str, list[common_pb2.Task]] = {}
    roots: dict[str, common_pb2.Task] = {}
    for task in tasks:
        root_id = task.root_id or task.id
        by_root.setdefault(root_id, []).append(task)
        if task.id == root_id:
            roots[root_id] = task
    samples = []
    for root_id, root in roots.items():
        if root.status != common_pb2.TASK_STATUS_COMPLETED:
            continue
        if exclude_label and exclude_label in root.spec.labels:
            continue
        samples.append(tree_sample(root, by_root[root_id]))
    samples.sort(key=lambda s: s.root_id)  # ids sort by creation time: a stable order for the model
    return samples
