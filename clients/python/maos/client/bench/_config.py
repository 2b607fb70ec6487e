"""How big each benchmark is: the full suite and the --quick one (CI, well under a minute)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Sizes of the six benchmarks. Every count is of operations against the cluster."""

    name: str
    submissions: int = 100  # task submission latency: sequential SubmitTask calls
    warm_tasks_per_type: int = 20  # agent spawning: warm tasks per agent type, one at a time
    parallel_agents: tuple[int, ...] = (1, 2, 4, 6, 8)
    parallel_rows: int = 40_000  # rows of the CSV shard each analyst task reads (~0.4 s of CPU)
    parallel_repeats: int = 3  # median wall time of this many runs per agent count
    messages: int = 100  # communication: one-way message latencies
    state_ops: int = 100  # communication: state put and get latencies
    database_tasks: int = 2000  # database: tasks submitted in batches, then run to the end
    database_batch: int = 100
    storage_sizes: tuple[int, ...] = (64 * 1024, 256 * 1024, 1_000_000)  # bytes per value (limit: 1 MiB)
    storage_values: int = 20  # values written and read per size
    warmup_submissions: int = 5  # not measured: the first calls pay for connecting
    timeout_seconds: float = 120.0  # longest wait for any one benchmark's tasks


FULL = BenchConfig(name="full")
QUICK = BenchConfig(
    name="quick",
    warm_tasks_per_type=5,
    parallel_rows=10_000,
    parallel_repeats=1,
    messages=20,
    state_ops=30,
    database_tasks=300,
    storage_sizes=(64 * 1024, 1_000_000),
    storage_values=5,
    timeout_seconds=60.0,
)
