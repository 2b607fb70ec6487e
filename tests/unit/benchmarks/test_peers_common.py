"""The peer benchmark's bookkeeping: statistics, MAOS's advantage, the workloads' checks and the one table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from benchmarks.peers import common, workloads

SMALL = common.Sizes(rounds=2, noop_tasks=10, trips=5, fan_width=10, cpu_tasks=2, cpu_iterations=1_000)


class InProcess:
    """A system that runs every task in the caller: the workloads' logic without any orchestration."""

    def __init__(self, workers: int, *, garble_fan_in: bool = False) -> None:
        self.workers = workers
        self.garble_fan_in = garble_fan_in

    def noop_many(self, n: int) -> list[int]:
        return [workloads.noop(i) for i in range(n)]

    def noop_one(self, x: int) -> int:
        return workloads.noop(x)

    def fan_in(self, width: int) -> int:
        return workloads.total(self.noop_many(width)) + (1 if self.garble_fan_in else 0)

    def cpu_many(self, tasks: int, iterations: int) -> list[int]:
        return [workloads.burn(iterations) for _ in range(tasks)]


def starter(started: list[int], **kwargs: bool) -> common.Start:
    @contextmanager
    def start(workers: int) -> Iterator[InProcess]:
        started.append(workers)
        yield InProcess(workers, **kwargs)

    return start


def test_percentile_is_nearest_rank_and_rejects_an_empty_sample() -> None:
    values = [float(v) for v in range(1, 101)]
    assert common.percentile(values, 50) == 51.0  # round(0.5 * 99) = 50 -> the 51st value
    assert common.percentile(values, 99) == 99.0
    assert common.percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert common.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError, match="empty"):
        common.percentile([], 50)


def test_advantage_is_above_one_when_maos_is_ahead_whichever_way_the_measure_points() -> None:
    assert common.advantage(3000.0, 1000.0, higher_is_better=True) == 3.0  # throughput
    assert common.advantage(0.5, 2.0, higher_is_better=False) == 4.0  # wall time
    assert common.advantage(2.0, 1.0, higher_is_better=False) == 0.5  # the peer is faster
    assert common.advantage(None, 1.0, higher_is_better=True) is None
    assert common.advantage(1.0, 0.0, higher_is_better=True) is None


def test_measure_produces_every_figure_and_alternates_one_and_two_worker_clusters_for_the_speedup() -> None:
    started: list[int] = []
    result = common.measure(starter(started), SMALL)
    assert started == [2, 1, 2, 1, 2]  # the shared 2-worker cluster, then fresh 1- and 2-worker ones per round
    assert result["errors"] == {}
    assert result["noop_throughput"]["tasks"] == 10
    assert len(result["noop_throughput"]["runs_per_s"]) == SMALL.rounds
    assert result["round_trip"]["samples"] == SMALL.trips
    assert result["round_trip"]["p50_ms"] <= result["round_trip"]["p99_ms"]
    assert len(result["fan_out_fan_in"]["runs_s"]) == SMALL.rounds
    cpu = result["cpu_speedup"]
    assert cpu["speedup"] == pytest.approx(cpu["one_worker_s"] / cpu["two_workers_s"])


def test_a_wrong_result_fails_its_workload_and_keeps_the_others() -> None:
    result = common.measure(starter([], garble_fan_in=True), SMALL)
    assert "wrong result" in result["errors"]["fan_out_fan_in"]
    assert "fan_out_fan_in" not in result
    assert "noop_throughput" in result
    assert "speedup" in result["cpu_speedup"]


def test_a_system_that_does_not_start_raises_could_not_start() -> None:
    @contextmanager
    def start(workers: int) -> Iterator[InProcess]:
        raise ConnectionError("refused")
        yield InProcess(workers)  # unreachable: makes this a generator

    with pytest.raises(common.CouldNotStart, match=r"could not start with 2 worker.*refused"):
        common.measure(start, SMALL)


def test_the_table_puts_maos_first_with_ratios_and_says_why_a_peer_has_no_figures() -> None:
    samples = {
        "noop_throughput": [4000.0, 2000.0],
        "round_trip": [1.0, 2.0, 3.0],
        "fan_out_fan_in": [0.2],
        "cpu_one_worker": [2.0],
        "cpu_two_workers": [1.0],
    }
    maos = {"system": "maos", "version": "0.1.0", "error": None} | common.summarise(samples, {}, SMALL)
    peer_samples = samples | {"noop_throughput": [1000.0], "fan_out_fan_in": [0.8]}
    ray = {"system": "ray", "version": "2.60.0", "error": None} | common.summarise(peer_samples, {}, SMALL)
    missing = "not installed: ModuleNotFoundError: No module named 'celery'"
    celery = {"system": "celery", "version": None, "error": missing}
    text = common.render([ray, celery, maos], SMALL)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["MEASURE", "MAOS", "0.1.0", "RAY", "2.60.0"]
    throughput = next(line for line in lines if line.startswith("no-op throughput"))
    assert "3,000" in throughput  # MAOS's median
    assert "1,000 (3.00x)" in throughput
    fan = next(line for line in lines if line.startswith("fan-out/fan-in"))
    assert "0.800 (4.00x)" in fan
    assert "not installed, see below" in lines[1]
    assert f"Celery: {missing}" in lines
