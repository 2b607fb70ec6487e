"""The benchmark suite behind `maosctl bench`: the performance guide's six benchmarks
(task submission latency, agent spawning, parallel processing efficiency,
communication latency, database performance, storage I/O) against a connected
cluster, with recommendations from the guide's thresholds.

    from maos.client import Client
    from maos.client.bench import QUICK, run_bench

    with Client() as client:
        report = run_bench(client, QUICK, progress=print)

Everything a run creates (tasks, state keys, messages) is removed before
`run_bench` returns.
"""

from ._config import FULL as FULL
from ._config import QUICK as QUICK
from ._config import BenchConfig as BenchConfig
from ._context import BENCH_LABEL as BENCH_LABEL
from ._rules import recommendations as recommendations
from ._stats import percentile as percentile
from ._stats import rate as rate
from ._stats import speedup as speedup
from ._stats import summarize as summarize
from ._suite import BENCHMARKS as BENCHMARKS
from ._suite import TITLES as TITLES
from ._suite import run_bench as run_bench

__all__ = [
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
