"""The pure performance figures behind `task analyze --performance` and `task compare --baseline sequential`."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from maos.client._analysis import analyze, compare_sequential, critical_path, run_seconds, time_split
from maos.client.cli._analyze import analysis_text, compare_text
from maos.v1 import common_pb2

T0 = 1_700_000_000


def _ts(field: Timestamp, offset: float) -> None:
    field.FromNanoseconds(int((T0 + offset) * 1e9))


def node(
    task_id: str,
    *,
    created: float = 0.0,
    queued: float | None = None,
    started: float | None = None,
    finished: float | None = None,
    depends_on: tuple[str, ...] = (),
    agent: str = "",
    root_id: str = "root",
) -> common_pb2.Task:
    task = common_pb2.Task(id=task_id, root_id=root_id, parent_id=root_id, workflow_key=task_id)
    task.spec.depends_on.extend(depends_on)
    task.placement.agent_id = agent
    _ts(task.created_at, created)
    for name, value in (("queued_at", queued), ("started_at", started), ("finished_at", finished)):
        if value is not None:
            _ts(getattr(task, name), value)
    return task


def group_root(finished: float) -> common_pb2.Task:
    root = common_pb2.Task(id="root", root_id="root", group=True)
    _ts(root.created_at, 0.0)
    _ts(root.finished_at, finished)
    return root


def diamond() -> list[common_pb2.Task]:
    # a -> (b, c) -> d on agents x and y; the wall time is 10 s.
    return [
        node("a", queued=0, started=1, finished=3, agent="x"),
        node("b", queued=3, started=3, finished=8, depends_on=("a",), agent="x"),
        node("c", queued=3, started=4, finished=6, depends_on=("a",), agent="y"),
        node("d", queued=8, started=8.5, finished=10, depends_on=("b", "c"), agent="y"),
    ]


def test_run_seconds_and_split_of_one_node() -> None:
    d = diamond()[3]
    assert run_seconds(d) == pytest.approx(1.5)
    split = time_split(d)
    assert (split.waiting, split.queued, split.running) == pytest.approx((8.0, 0.5, 1.5))
    # Without queued_at the queue time counts from created_at; no dependencies, no waiting.
    loose = node("z", created=2, started=5, finished=6)
    assert (time_split(loose).waiting, time_split(loose).queued) == pytest.approx((0.0, 3.0))
    assert run_seconds(node("never")) == 0.0


def test_critical_path_of_a_diamond() -> None:
    path, total = critical_path(diamond())
    assert [t.id for t in path] == ["a", "b", "d"]
    assert total == pytest.approx(8.5)
    assert critical_path([]) == ([], 0.0)


def test_analyze_a_diamond() -> None:
    doc = analyze(group_root(10), diamond())
    assert doc["nodes"] == 4
    assert doc["wall_seconds"] == pytest.approx(10.0)
    assert [n["name"] for n in doc["critical_path"]["nodes"]] == ["a", "b", "d"]
    assert doc["critical_path"]["seconds"] == pytest.approx(8.5)
    assert doc["critical_path"]["share_of_wall"] == pytest.approx(0.85)
    assert doc["total_work_seconds"] == pytest.approx(10.5)
    assert doc["agents_used"] == 2
    assert doc["parallel_efficiency"] == pytest.approx(10.5 / 20)
    split = doc["time_split"]
    assert split["waiting_on_dependencies_seconds"] == pytest.approx(14.0)
    assert split["queued_seconds"] == pytest.approx(2.5)
    assert split["running_seconds"] == pytest.approx(10.5)
    assert [n["name"] for n in doc["slowest"]] == ["b", "a", "c", "d"]
    agents = {a["agent_id"]: a for a in doc["agents"]}
    assert agents["x"]["busy_seconds"] == pytest.approx(7.0)
    assert agents["x"]["utilisation"] == pytest.approx(0.7)
    assert agents["y"]["utilisation"] == pytest.approx(0.35)
    # Only the critical-path rule fires: 85% of the wall time, b is its slowest node.
    assert doc["suggestions"] == ["the critical path bounds this run: shorten b"]
    text = analysis_text(doc)
    assert "a → b → d" in text
    assert "shorten b" in text


def test_the_other_rules_fire() -> None:
    # p waits 5 s for a slot then runs 10 s; q waits 15.5 s and runs 0.5 s; wall 16 s on two agents.
    nodes = [
        node("p", queued=0, started=5, finished=15, agent="x"),
        node("q", queued=0, started=15.5, finished=16, agent="y"),
    ]
    doc = analyze(group_root(16), nodes)
    assert doc["critical_path"]["seconds"] == pytest.approx(10.0)  # 62% of wall: no critical-path hint
    assert doc["parallel_efficiency"] == pytest.approx(10.5 / 32)
    assert doc["suggestions"] == [
        "tasks waited for slots: add workers (queued 20.50 s vs running 10.50 s)",
        "agents were idle half the time: fewer, larger tasks or more parallel streams",
        "one node dominates: decompose p",
    ]


def test_a_root_that_ran_itself_counts_as_a_node() -> None:
    root = node("root", started=0, finished=4, agent="x")
    root.group = False
    child = node("kid", created=1, queued=1, started=1, finished=3, agent="y")
    doc = analyze(root, [child])
    assert doc["nodes"] == 2
    assert doc["total_work_seconds"] == pytest.approx(6.0)
    assert doc["wall_seconds"] == pytest.approx(4.0)


def test_compare_with_the_sequential_baseline() -> None:
    doc = compare_sequential(group_root(10), diamond())
    assert doc["baseline"] == "sequential"
    assert doc["sequential_seconds"] == pytest.approx(10.5)
    assert doc["speedup"] == pytest.approx(1.05)
    assert doc["efficiency_per_agent"] == pytest.approx(0.525)
    assert "1.05x" in compare_text(doc)


def test_nothing_finished_has_no_ratios() -> None:
    root = common_pb2.Task(id="root", root_id="root", group=True)
    doc = analyze(root, [node("a")])
    assert doc["wall_seconds"] == 0.0
    assert doc["parallel_efficiency"] is None
    assert compare_sequential(root, [node("a")])["speedup"] is None
