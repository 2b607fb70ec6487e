"""The public surfaces of maos.client.bench and maos.client.recommend are what their __all__ say."""

from __future__ import annotations

import subprocess
import sys

import maos.client.bench
import maos.client.recommend


def test_bench_exports() -> None:
    assert sorted(maos.client.bench.__all__) == sorted(
        [
            "BENCHMARKS",
            "BENCH_LABEL",
            "FULL",
            "QUICK",
            "TITLES",
            "BenchConfig",
            "percentile",
            "rate",
            "recommendations",
            "run_bench",
            "speedup",
            "summarize",
        ]
    )
    for name in maos.client.bench.__all__:
        assert hasattr(maos.client.bench, name), name


def test_recommend_exports() -> None:
    assert sorted(maos.client.recommend.__all__) == sorted(
        [
            "MIN_HISTORY",
            "MIN_SIMILARITY",
            "TreeSample",
            "heuristic_recommendation",
            "indicators",
            "recommend",
            "tree_sample",
            "trees_from_tasks",
        ]
    )
    for name in maos.client.recommend.__all__:
        assert hasattr(maos.client.recommend, name), name


def test_the_cli_loads_scikit_learn_only_when_a_model_is_learned() -> None:
    code = "import sys, maos.client.cli, maos.client.recommend; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
