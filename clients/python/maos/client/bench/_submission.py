"""Benchmark 1, task submission latency: sequential SubmitTask round trips of a no-op task."""

from __future__ import annotations

from typing import Any

from ._context import BenchContext, timed
from ._stats import rate, summarize


def task_submission(ctx: BenchContext) -> dict[str, Any]:
    """avg/p50/p95/p99/min/max milliseconds of `submissions` SubmitTask calls, one after another.

    Each call returns once the task is durably stored (QUEUED); the echo tasks then
    run, and the benchmark waits for them so they leave nothing running behind.
    """
    cfg = ctx.config
    ids = [ctx.submit("bench: warm-up", agent_type="echo").id for _ in range(cfg.warmup_submissions)]
    latencies: list[float] = []
    for i in range(cfg.submissions):
        task, ms = timed(ctx.submit, f"Benchmark task {i}: simple calculation", agent_type="echo", input=i)
        ids.append(task.id)
        latencies.append(ms)
        if (i + 1) % 25 == 0:
            ctx.progress(f"{i + 1}/{cfg.submissions} submitted")
    ctx.wait_all(ids, "task submission")
    return {
        "agent_type": "echo",
        "latency_ms": summarize(latencies),
        "submits_per_second": rate(len(latencies), sum(latencies) / 1000),
    }
