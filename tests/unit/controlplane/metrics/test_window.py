"""Samples merge field by field; the rolling window downsamples and picks the tier that covers a timeframe."""

from __future__ import annotations

import pytest
from maos.controlplane.metrics import Gauge, RollingWindow, Sample, TypeCounts, downsample, merge_samples

T0 = 10_000.0


def sample(i: int, *, step: float = 2.0, completed: int = 1, cpu: float = 10.0, latency: float = 0.001) -> Sample:
    s = Sample(T0 + i * step, T0 + (i + 1) * step, completed=completed)
    s.cpu_percent.add(cpu)
    s.completion.add(latency)
    s.api.setdefault("TaskService/SubmitTask", type(s.completion)()).add(latency)
    s.types["echo"] = TypeCounts(completed=completed, busy_seconds=1.0, available_seconds=step * 2)
    s.busy_seconds, s.slot_seconds = 1.0, step * 2
    depth = Gauge()
    depth.add(float(i))
    s.queue["medium"] = depth
    return s


def test_gauge_keeps_mean_peak_and_last() -> None:
    g = Gauge()
    for v in (3.0, 9.0, 6.0):
        g.add(v)
    later = Gauge()
    later.add(1.0)
    g.merge(later)
    assert (g.mean, g.peak, g.last, g.n) == (pytest.approx(4.75), 9.0, 1.0, 4)
    assert Gauge().mean is None


def test_merge_adds_counters_and_averages_levels() -> None:
    merged = merge_samples([sample(0, completed=2, cpu=10), sample(1, completed=4, cpu=30)])
    assert (merged.start, merged.end) == (T0, T0 + 4.0)
    assert merged.completed == 6
    assert merged.throughput == pytest.approx(6 / 4.0)
    assert merged.cpu_percent.mean == pytest.approx(20.0)
    assert merged.cpu_percent.peak == 30.0
    assert merged.types["echo"].completed == 6
    assert merged.utilisation == pytest.approx(2.0 / 8.0)
    assert merged.api["TaskService/SubmitTask"].count == 2
    assert merged.queue["medium"].last == 1.0


def test_merge_leaves_its_inputs_alone() -> None:
    a, b = sample(0), sample(1)
    merge_samples([a, b])
    assert a.completed == 1 and a.end == T0 + 2.0 and a.types["echo"].completed == 1


def test_api_overall_leaves_out_long_polls() -> None:
    s = sample(0, latency=0.001)
    s.api.setdefault("TaskService/WaitTasks", type(s.completion)()).add(30.0)
    assert s.api_overall().peak == 30.0
    assert s.api_overall({"TaskService/WaitTasks"}).peak == pytest.approx(0.001)


def test_downsample_merges_runs_of_neighbours() -> None:
    samples = [sample(i) for i in range(10)]
    points = downsample(samples, 3)
    assert len(points) == 3
    assert sum(p.completed for p in points) == 10
    assert points[0].start == T0 and points[-1].end == T0 + 20.0
    assert downsample(samples, 0) == samples
    assert merge_samples(points).completed == merge_samples(samples).completed


def test_window_keeps_recent_fine_samples() -> None:
    w = RollingWindow(2.0, fine_capacity=5, coarse=((10.0, 4),))
    for i in range(12):
        w.add(sample(i))
    assert [s.start for s in w.recent(3)] == [T0 + 18.0, T0 + 20.0, T0 + 22.0]
    assert len(w.recent(100)) == 5
    assert w.recent(0) == []


def test_short_timeframe_reads_fine_samples() -> None:
    w = RollingWindow(2.0, fine_capacity=5, coarse=((10.0, 4),))
    for i in range(12):
        w.add(sample(i))
    now = T0 + 24.0
    samples, step = w.span(6.0, now)
    assert step == 2.0
    assert sum(s.completed for s in samples) == 3


def test_long_timeframe_reads_the_coarse_tier_with_its_partial_step() -> None:
    w = RollingWindow(2.0, fine_capacity=5, coarse=((10.0, 4),))
    for i in range(12):  # 24 s: two full 10 s steps and a partial one of 4 s
        w.add(sample(i))
    samples, step = w.span(24.0, T0 + 24.0)
    assert step == 10.0
    assert [round(s.seconds) for s in samples] == [10, 10, 4]
    assert sum(s.completed for s in samples) == 12  # nothing lost in the downsampling


def test_a_ring_that_has_not_wrapped_answers_any_timeframe_finely() -> None:
    w = RollingWindow(2.0, fine_capacity=50, coarse=((10.0, 4),))
    for i in range(6):
        w.add(sample(i))
    samples, step = w.span(3600.0, T0 + 12.0)
    assert step == 2.0 and len(samples) == 6
