"""The bench's statistics: nearest-rank percentiles, summaries, rates and speedups."""

from __future__ import annotations

import random

import pytest
from maos.client.bench import percentile, rate, speedup, summarize


def test_percentiles_are_nearest_rank_measured_values() -> None:
    samples = [float(n) for n in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(samples, 0.50) == 50.0
    assert percentile(samples, 0.95) == 95.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0  # ceil(1.5) = 2nd smallest


def test_percentile_refuses_no_samples_and_bad_ranks() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="rank"):
        percentile([1.0], 0.0)
    with pytest.raises(ValueError, match="rank"):
        percentile([1.0], 1.5)


def test_summary_is_ordered_for_any_samples() -> None:
    rng = random.Random(3)
    for size in (1, 2, 5, 100, 1000):
        samples = [rng.lognormvariate(0, 1.5) for _ in range(size)]
        s = summarize(samples)
        assert s["count"] == size
        assert s["min"] <= s["p50"] <= s["p95"] <= s["p99"] <= s["max"]
        assert s["min"] <= s["avg"] <= s["max"]
    assert summarize([2.0, 4.0]) == {"count": 2, "avg": 3.0, "p50": 2.0, "p95": 4.0, "p99": 4.0, "min": 2.0, "max": 4.0}
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_rate_is_unknown_without_elapsed_time() -> None:
    assert rate(100, 0.5) == 200.0
    assert rate(100, 0.0) is None


def test_speedup_is_work_per_second_against_the_baseline() -> None:
    assert speedup(1.0, 1, 1.0, 4) == 4.0  # four tasks in the time of one: perfect
    assert speedup(1.0, 1, 4.0, 4) == 1.0  # one after another: no gain
    assert speedup(1.0, 1, 2.0, 4) == 2.0  # two slots for four tasks
    assert speedup(2.0, 2, 2.0, 4) == 2.0  # baseline of two tasks
    assert speedup(0.0, 1, 1.0, 2) is None
    assert speedup(1.0, 1, 0.0, 2) is None
