"""`task show --execution-plan`: the subtree drawn as a tree with states, agents, durations and arrows."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp
from maos.client.cli._plan_tree import execution_plan_dict, plan_nodes, render_execution_plan
from maos.v1 import common_pb2 as S

T0 = 1_735_689_600


def ts(offset: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((T0 + offset) * 1e9))
    return stamp


NOW = dt.datetime.fromtimestamp(T0 + 10, dt.UTC)


def task(
    task_id: str,
    key: str = "",
    *,
    parent: str = "r",
    deps: tuple[str, ...] = (),
    status: int = S.TASK_STATUS_COMPLETED,
    created: float = 0.0,
    run: tuple[float, float] | None = None,
    agent: str = "",
) -> S.Task:
    t = S.Task(id=task_id, root_id="r", parent_id=parent, status=status, workflow_key=key)  # type: ignore[arg-type]
    t.spec.description = f"do {key or task_id}"
    t.spec.depends_on.extend(deps)
    t.created_at.CopyFrom(ts(created))
    if run is not None:
        t.started_at.CopyFrom(ts(run[0]))
        t.finished_at.CopyFrom(ts(run[1]))
    if agent:
        t.placement.host_id, t.placement.agent_id = "h", agent
    return t


def planned_root() -> S.Task:
    root = S.Task(id="r", root_id="r", group=True, status=S.TASK_STATUS_COMPLETED)
    root.spec.description = "analyse 2 shards"
    root.started_at.CopyFrom(ts(0))
    root.finished_at.CopyFrom(ts(1.2))
    root.plan.CopyFrom(
        S.Plan(template="parallel-synthesis", parallel_streams=2, estimated_speedup=1.8, synthesis_key="synthesis")
    )
    return root


def synthesis_graph() -> list[S.Task]:
    # Listed newest first, as ListTasks returns them: the tree puts them in dependency order.
    return [
        task("t3", "synthesis", deps=("t1", "t2"), created=0.3, run=(1.0, 1.03), agent="h-w0"),
        task("t2", "shard-2", created=0.2, run=(0.1, 0.6), agent="h-w1"),
        task("t1", "shard-1", created=0.1, run=(0.1, 0.62), agent="h-w0"),
    ]


def test_the_issue_example() -> None:
    text = render_execution_plan(planned_root(), synthesis_graph(), NOW)
    assert text.splitlines() == [
        "analyse 2 shards  r  completed  1.20s",
        "plan: parallel-synthesis · 2 parallel streams · estimated speedup 1.80x",
        "├─ shard-1    completed  agent h-w0  0.52s",
        "├─ shard-2    completed  agent h-w1  0.50s",
        "└─ synthesis  completed  agent h-w0  0.03s  ← shard-1, shard-2",
    ]


def test_diamond_siblings_follow_dependencies_then_creation() -> None:
    root = S.Task(id="r", root_id="r", group=True, status=S.TASK_STATUS_RUNNING)
    root.spec.description = "diamond"
    tasks = [
        task("d", "d", deps=("b", "c"), status=S.TASK_STATUS_PENDING, created=0.0),
        task("c", "c", deps=("a",), status=S.TASK_STATUS_QUEUED, created=0.1),
        task("b", "b", deps=("a",), status=S.TASK_STATUS_RUNNING, created=0.2, agent="h-w1"),
        task("a", "a", created=0.3, run=(1, 2), agent="h-w0"),
    ]
    tasks[2].started_at.CopyFrom(ts(7.5))
    assert [n.name for n in plan_nodes(root, tasks)] == ["a", "c", "b", "d"]
    lines = render_execution_plan(root, tasks, NOW).splitlines()
    assert lines[0] == "diamond  r  running  -"
    assert lines[1:] == [
        "├─ a  completed  agent h-w0  1.00s",
        "├─ c  queued     -           -       ← a",
        "├─ b  running    agent h-w1  2.50s…  ← a",
        "└─ d  pending    -           -       ← b, c",
    ]


def test_nested_subtasks_hang_under_their_parent_and_unnamed_tasks_use_the_description() -> None:
    root = S.Task(id="r", root_id="r", status=S.TASK_STATUS_RUNNING)
    root.spec.description = "research"
    tasks = [
        task("p", "plan", created=0, run=(0, 1)),
        task("k1", parent="p", created=1),
        task("k2", parent="p", created=2, deps=("k1",)),
        task("z", "report", deps=("p", "elsewhere"), created=3),
        task("orphan", parent="gone", created=4),
    ]
    nodes = plan_nodes(root, tasks)
    assert [(n.prefix, n.name, n.depth) for n in nodes] == [
        ("├─ ", "plan", 1),
        ("│  ├─ ", "do k1", 2),
        ("│  └─ ", "do k2", 2),
        ("├─ ", "do orphan", 1),
        ("└─ ", "report", 1),
    ]
    # A dependency outside the subtree is shown by its id.
    assert nodes[-1].depends_on == ("plan", "elsewhere")


def test_a_task_without_children_and_the_json_view() -> None:
    root = planned_root()
    assert render_execution_plan(root, [], NOW).splitlines()[-1] == "(no subtasks)"
    document = execution_plan_dict(root, synthesis_graph())
    assert document["plan"] == {
        "template": "parallel-synthesis",
        "parallel_streams": 2,
        "estimated_speedup": 1.8,
        "synthesis_key": "synthesis",
    }
    assert [n["name"] for n in document["nodes"]] == ["shard-1", "shard-2", "synthesis"]
    last = document["nodes"][-1]
    assert last["depends_on"] == ["t1", "t2"]
    assert last["depends_on_names"] == ["shard-1", "shard-2"]
    assert last["agent_id"] == "h-w0"
    assert round(last["duration_seconds"], 3) == 0.03
    assert document["root"]["status"] == "completed"


def test_a_dependency_cycle_in_bad_data_does_not_hang() -> None:
    root = S.Task(id="r", root_id="r")
    tasks = [task("a", "a", deps=("b",)), task("b", "b", deps=("a",))]
    assert sorted(n.name for n in plan_nodes(root, tasks)) == ["a", "b"]
