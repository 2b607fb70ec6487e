"""Log-bucket histograms: percentiles within a bucket of the truth, and merging keeps them honest."""

from __future__ import annotations

import random

import pytest
from maos.controlplane.metrics import Histogram
from maos.controlplane.metrics._histogram import GROWTH


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def test_empty_histogram_has_no_percentiles() -> None:
    h = Histogram()
    assert h.quantile(0.5) is None
    assert h.mean is None
    assert h.count == 0


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantiles_are_within_one_bucket(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-6, 1.5) for _ in range(5000)]  # around a few ms, long tail
    h = Histogram()
    for v in values:
        h.add(v)
    truth = exact(values, q)
    assert truth / GROWTH <= h.quantile(q) <= truth * GROWTH  # type: ignore[operator]


def test_count_sum_mean_and_max_are_exact() -> None:
    h = Histogram()
    for v in (0.001, 0.002, 0.003, 0.010):
        h.add(v)
    assert h.count == 4
    assert h.total == pytest.approx(0.016)
    assert h.mean == pytest.approx(0.004)
    assert h.peak == 0.010
    assert h.quantile(1.0) == 0.010  # never above the largest value seen


def test_merge_equals_one_histogram_of_everything() -> None:
    rng = random.Random(3)
    a_values = [rng.uniform(0.001, 0.01) for _ in range(300)]
    b_values = [rng.uniform(0.05, 0.5) for _ in range(100)]
    a, b, both = Histogram(), Histogram(), Histogram()
    for v in a_values:
        a.add(v)
        both.add(v)
    for v in b_values:
        b.add(v)
        both.add(v)
    merged = a.copy()
    merged.merge(b)
    assert merged.buckets == both.buckets
    assert merged.count == 400
    for q in (0.5, 0.9, 0.99):
        assert merged.quantile(q) == pytest.approx(both.quantile(q))
    assert a.count == 300  # copy() left the original alone


def test_zero_and_negative_durations_are_counted_not_crashing() -> None:
    h = Histogram()
    h.add(0.0)
    h.add(-1.0)  # clock skew between machines
    assert h.count == 2
    assert h.quantile(0.5) is not None
