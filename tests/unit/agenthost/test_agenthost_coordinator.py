"""The coordinator agent pools shard results exactly (count, mean, std, min, max) and the median approximately."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest
from maos.agenthost.builtin import analyst, coordinator
from maos.agenthost.builtin._stats import Moments, merged_median
from maos.client._context import TaskContext


def shard(values: list[float], path: str) -> dict[str, Any]:
    return analyst.analyse(None, path, [{"x": v, "i": i} for i, v in enumerate(values)], ["x"])


def dep(i: int, result: Any, status: str = "COMPLETED") -> dict[str, Any]:
    return {"task_id": f"t{i}", "key": f"shard-{i}", "status": status, "result": result, "description": f"shard {i}"}


def test_pooled_statistics_equal_one_pass_over_all_rows() -> None:
    rng = random.Random(3)
    shards = [[rng.gauss(10 * s, 1 + s) for _ in range(n)] for s, n in enumerate((120, 7, 400, 33))]
    deps = [dep(i, shard(v, f"/data/{i}.csv")) for i, v in enumerate(shards)]
    report = coordinator.run(TaskContext(task_id="c", dependencies=deps), {"title": "Test"})
    everything = [v for s in shards for v in s]
    x = report["columns"]["x"]
    assert report["title"] == "Test"
    assert report["shards"] == 4
    assert report["total_rows"] == len(everything)
    assert x["count"] == len(everything)
    assert x["mean"] == pytest.approx(statistics.fmean(everything), rel=1e-12)
    assert x["std"] == pytest.approx(statistics.stdev(everything), rel=1e-10)
    assert x["min"] == min(everything)
    assert x["max"] == max(everything)
    assert x["shards"] == 4
    # Approximate, and said to be.
    assert "approximate" in report["median_note"]
    spread = statistics.quantiles(everything, n=100)
    assert spread[44] <= x["median_approx"] <= spread[54]
    assert [c["key"] for c in report["contributions"]] == ["shard-0", "shard-1", "shard-2", "shard-3"]
    assert report["contributions"][1]["rows"] == 7
    assert report["contributions"][1]["means"]["x"] == pytest.approx(statistics.fmean(shards[1]))
    assert "4 shards" in report["summary"]


def test_no_dependencies_gives_an_empty_report() -> None:
    report = coordinator.run(TaskContext(task_id="c"), None)
    assert report["shards"] == 0
    assert report["total_rows"] == 0
    assert report["columns"] == {}
    assert report["summary"] == "No shard results to synthesise."


def test_failed_and_foreign_dependencies_are_skipped_with_a_reason() -> None:
    deps = [dep(0, shard([1.0, 2.0, 3.0], "a")), dep(1, None, "FAILED"), dep(2, {"something": "else"})]
    report = coordinator.synthesise(deps)
    assert report["shards"] == 1
    assert report["columns"]["x"]["count"] == 3
    assert [(s["key"], s["reason"]) for s in report["skipped"]] == [
        ("shard-1", "dependency FAILED"),
        ("shard-2", "result is not an analyst result"),
    ]
    assert "2 dependencies skipped" in report["summary"]


def test_sums_without_m2_still_pool() -> None:
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    legacy = {"rows": 8, "sums": {"x": {"n": 8, "sum": sum(values), "sumsq": sum(v * v for v in values),
                                       "min": 2.0, "max": 9.0}}}  # fmt: skip
    report = coordinator.synthesise([dep(0, legacy)])
    assert report["columns"]["x"]["mean"] == pytest.approx(5.0)
    assert report["columns"]["x"]["std"] == pytest.approx(statistics.stdev(values))
    assert report["columns"]["x"]["median_approx"] is None


def test_moments_merge_matches_a_single_pass() -> None:
    rng = random.Random(11)
    a, b = [rng.random() * 1e6 for _ in range(50)], [rng.random() for _ in range(3)]
    left, right, whole = Moments(), Moments(), Moments()
    for v in a:
        left.add(v)
        whole.add(v)
    for v in b:
        right.add(v)
        whole.add(v)
    left.merge(right)
    assert left.n == whole.n
    assert left.mean == pytest.approx(whole.mean)
    assert left.variance == pytest.approx(statistics.variance(a + b))


def test_merged_median_of_one_shard_is_its_median() -> None:
    values = sorted(random.Random(5).random() for _ in range(101))
    sketch = shard(values, "p")["sums"]["x"]["sketch"]
    assert merged_median([(101, sketch)]) == pytest.approx(statistics.median(values))
    assert merged_median([]) is None
    assert merged_median([(3, [2.0, 2.0]), (4, [2.0, 2.0])]) == 2.0
