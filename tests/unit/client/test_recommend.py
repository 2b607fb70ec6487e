"""The agent recommender: history samples, the heuristic path, the learned path (synthetic histories)."""

from __future__ import annotations

import random

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from maos.client.recommend import MIN_HISTORY, heuristic_recommendation, recommend, trees_from_tasks
from maos.client.recommend._model import _allocate, _weighted_median
from maos.v1 import common_pb2

GUIDE_EXAMPLE = (
    "Create a comprehensive e-commerce platform with user management, product catalog, shopping cart, "
    "payment processing, and admin dashboard"
)
COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def ts(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def task(
    task_id: str,
    root_id: str,
    *,
    parent_id: str = "",
    description: str = "",
    agent_type: str = "",
    run: tuple[float, float] | None = None,
    created: float = 0.5,
    status: int = COMPLETED,
    agent_id: str = "",
    group: bool = False,
    labels: dict[str, str] | None = None,
) -> common_pb2.Task:
    t = common_pb2.Task(id=task_id, root_id=root_id, parent_id=parent_id, group=group, attempt=1 if run else 0)
    t.status = status  # type: ignore[assignment]
    t.spec.description = description
    t.spec.agent_type = agent_type
    t.spec.labels.update(labels or {})
    t.created_at.CopyFrom(ts(created))
    if run is not None:
        t.started_at.CopyFrom(ts(run[0]))
        t.finished_at.CopyFrom(ts(run[1]))
        t.placement.agent_id = agent_id
    return t


def workflow(
    root_id: str, description: str, streams: int, seconds: float, t0: float, slots: int = 2
) -> list[common_pb2.Task]:
    """A group root with `streams` analyst nodes (run `slots` at a time) and one coordinator after them."""
    nodes = []
    end = t0
    for i in range(streams):
        start = t0 + (i // slots) * seconds
        end = max(end, start + seconds)
        nodes.append(
            task(
                f"{root_id}-s{i}",
                root_id,
                parent_id=root_id,
                description=f"{description} part {i}",
                agent_type="analyst",
                run=(start, start + seconds),
                created=t0,
                agent_id=f"w{i % slots}",
            )
        )
    nodes.append(
        task(
            f"{root_id}-syn",
            root_id,
            parent_id=root_id,
            description="synthesis",
            agent_type="coordinator",
            run=(end, end + 0.2),
            created=t0,
            agent_id="w0",
        )
    )
    root = task(root_id, root_id, description=description, group=True, created=t0)
    root.finished_at.CopyFrom(ts(end + 0.2))
    return [root, *nodes]


def single(root_id: str, description: str, seconds: float, t0: float) -> list[common_pb2.Task]:
    return [
        task(
            root_id,
            root_id,
            description=description,
            agent_type="echo",
            run=(t0 + 0.05, t0 + 0.05 + seconds),
            created=t0,
            agent_id="w1",
        )
    ]


def history(size: int, seed: int = 7) -> list[common_pb2.Task]:
    """Half "analyse sales shards" workflows (4 streams + synthesis), half "say hello" single echo tasks."""
    rng = random.Random(seed)
    tasks: list[common_pb2.Task] = []
    for i in range(size):
        t0 = 1_000.0 + i * 100
        if i % 2:
            tasks += workflow(f"W{i:03d}", f"analyse the sales shards of region {i}", 4, rng.uniform(2, 3), t0)
        else:
            tasks += single(f"E{i:03d}", f"say hello to visitor {i}", rng.uniform(0.01, 0.02), t0)
    return tasks


# ---- history samples ------------------------------------------------------


def test_a_workflow_becomes_one_sample_with_its_plan_shape_and_times() -> None:
    [sample] = trees_from_tasks(workflow("W1", "analyse shards", 4, 2.0, 100.0))
    assert (sample.root_id, sample.description, sample.nodes, sample.children, sample.depth) == (
        "W1",
        "analyse shards",
        5,
        5,
        1,
    )
    assert sample.work_seconds == pytest.approx(4 * 2.0 + 0.2)
    assert sample.wall_seconds == pytest.approx(2 * 2.0 + 0.2)  # two slots: two rounds, then the synthesis
    assert sample.agents_used == 2
    assert sample.agent_types == {"analyst": 4, "coordinator": 1}
    assert sample.speedup == pytest.approx(8.2 / 4.2)


def test_spawned_subtasks_give_depth_and_a_root_that_ran_counts_as_work() -> None:
    tasks = [
        task("R", "R", description="recurse", agent_type="rec", run=(1.0, 9.0), agent_id="w0"),
        task("C1", "R", parent_id="R", agent_type="rec", run=(2.0, 6.0), agent_id="w1"),
        task("C2", "R", parent_id="C1", agent_type="rec", run=(3.0, 4.0), agent_id="w2"),
    ]
    [sample] = trees_from_tasks(tasks)
    assert (sample.nodes, sample.children, sample.depth, sample.agents_used) == (3, 2, 2, 3)
    assert sample.work_seconds == pytest.approx(8 + 4 + 1)
    assert sample.wall_seconds == pytest.approx(9.0 - 0.5)  # created at 0.5, last finish at 9


def test_trees_that_did_not_complete_or_are_labelled_or_have_no_root_are_left_out() -> None:
    tasks = [
        *single("A", "kept", 1.0, 10.0),
        task("F", "F", description="failed", status=common_pb2.TASK_STATUS_FAILED, run=(1.0, 2.0)),
        task("B", "B", description="bench", run=(1.0, 2.0), labels={"maos.bench": "run-1"}),
        task("N", "N", description="cancelled before it ran", status=common_pb2.TASK_STATUS_CANCELLED),
        task("orphan", "GONE", parent_id="GONE", run=(1.0, 2.0)),  # its root is not in the window
    ]
    assert [s.root_id for s in trees_from_tasks(tasks, exclude_label="maos.bench")] == ["A"]


# ---- heuristics -----------------------------------------------------------


def test_the_guides_example_gets_the_guides_figures() -> None:
    doc = heuristic_recommendation(GUIDE_EXAMPLE)
    assert doc["complexity"] == 8.5
    assert doc["recommended_agents"] == 6
    assert doc["agent_types"] == [{"type": "coder", "count": 5}, {"type": "coordinator", "count": 1}]
    assert doc["estimated_duration_seconds"] == {
        "low": pytest.approx(45 * 60, abs=60),
        "high": pytest.approx(3600, abs=60),
    }
    assert doc["parallel_efficiency"] == 4.0  # the guide's streams x 0.8


def test_a_one_line_task_is_one_agent_and_an_explicit_type_names_the_role() -> None:
    doc = heuristic_recommendation("say hello")
    assert (doc["complexity"], doc["recommended_agents"], doc["parallel_efficiency"]) == (1.0, 1, 1.0)
    research = heuristic_recommendation("look into solar storage, batteries and grid prices", task_type=1)
    assert research["agent_types"][0] == {"type": "researcher", "count": 3}
    assert research["recommended_agents"] == 4


def test_more_components_never_lower_the_score_and_agents_stay_within_the_guides_cap() -> None:
    parts = ["auth", "billing", "search", "catalog", "cart", "checkout", "reviews", "admin", "reports", "email"]
    scores = []
    for n in range(1, len(parts) + 1):
        doc = heuristic_recommendation("Build a platform with " + ", ".join(parts[:n]))
        scores.append(doc["complexity"])
        assert 1 <= doc["complexity"] <= 10
        assert 1 <= doc["recommended_agents"] <= 8
    assert scores == sorted(scores)


# ---- the two paths -------------------------------------------------------------


def test_too_little_history_takes_the_heuristic_path_and_says_so() -> None:
    trees = trees_from_tasks(history(MIN_HISTORY - 1))
    doc = recommend(GUIDE_EXAMPLE, trees, tasks_seen=123)
    assert doc["method"] == "heuristics"
    assert doc["history"] == {"trees": MIN_HISTORY - 1, "tasks": 123, "min_trees_for_model": MIN_HISTORY}
    assert f"{MIN_HISTORY - 1} finished task trees is fewer than the {MIN_HISTORY}" in doc["basis"]
    assert doc["complexity"] == 8.5


def test_enough_history_takes_the_model_path_and_learns_from_similar_trees() -> None:
    trees = trees_from_tasks(history(2 * MIN_HISTORY))
    doc = recommend("analyse the sales shards of the north region", trees)
    assert doc["method"] == "model"
    assert doc["history"]["trees"] == 2 * MIN_HISTORY
    assert f"from {2 * MIN_HISTORY} finished task trees" in doc["basis"]
    assert doc["recommended_agents"] == 5  # like the similar past workflows: 4 streams + a synthesis
    assert doc["agent_types"] == [{"type": "analyst", "count": 4}, {"type": "coordinator", "count": 1}]
    assert all(s["description"].startswith("analyse the sales shards") for s in doc["similar_trees"])
    low, high = doc["estimated_duration_seconds"]["low"], doc["estimated_duration_seconds"]["high"]
    assert 0 < low <= high
    assert doc["parallel_efficiency"] > 1  # the past workflows ran two streams at once

    hello = recommend("say hello to the new visitor", trees)
    assert hello["recommended_agents"] == 1
    assert hello["agent_types"] == [{"type": "echo", "count": 1}]
    assert hello["complexity"] < doc["complexity"]
    assert hello["estimated_duration_seconds"]["high"] < low


def test_the_model_is_deterministic() -> None:
    trees = trees_from_tasks(history(2 * MIN_HISTORY, seed=3))
    first = recommend("analyse the sales shards of region 5", trees)
    second = recommend("analyse the sales shards of region 5", trees_from_tasks(history(2 * MIN_HISTORY, seed=3)))
    assert first == second


def test_allocation_and_weighted_median() -> None:
    assert _allocate({"analyst": 0.8, "coordinator": 0.2}, 5) == [
        {"type": "analyst", "count": 4},
        {"type": "coordinator", "count": 1},
    ]
    assert _allocate({"a": 0.5, "b": 0.3, "c": 0.2}, 1) == [{"type": "a", "count": 1}]
    for agents in range(1, 9):
        shares = {"a": 0.6, "b": 0.25, "c": 0.1, "d": 0.05}
        assert sum(t["count"] for t in _allocate(shares, agents)) == agents
    assert _weighted_median([1, 5, 9], [0.1, 0.1, 0.8]) == 9
    assert _weighted_median([1, 5, 9], [1, 1, 1]) == 5
    assert _weighted_median([3, 7], [0, 0]) == 7


def test_a_description_unlike_any_past_tree_falls_back_to_the_heuristics() -> None:
    trees = trees_from_tasks(history(2 * MIN_HISTORY))
    doc = recommend(GUIDE_EXAMPLE, trees)
    assert doc["method"] == "heuristics"
    assert f"none of the {2 * MIN_HISTORY} finished task trees resembles this description" in doc["basis"]
    assert (doc["complexity"], doc["recommended_agents"]) == (8.5, 6)
