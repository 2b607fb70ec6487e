"""Benchmark 3, parallel processing efficiency: N equal CPU-bound analyst tasks at once.

For each agent count N (1, 2, 4, 6, 8) the bench submits N identical analyst
tasks (statistics over the same CSV shard) in one SubmitTasks call and waits
for all of them. Wall time is the first task's creation to the last one's
finish, on the control plane's clock; the median of `parallel_repeats` runs is
kept. speedup(N) = N x wall(1) / wall(N) (work per second against one agent);
efficiency = speedup / N. The cluster cannot run more than its worker slots at
once, so speedup is bounded by min(N, slots): the report shows the slots.
"""

from __future__ import annotations

import statistics
from typing import Any

from ._context import BenchContext, seconds
from ._data import require_completed, write_shard
from ._stats import speedup

AGENT_TYPE = "analyst"


def _wall(ctx: BenchContext, path: str, count: int) -> tuple[float, float]:
    """(wall seconds, summed run seconds) of `count` analyst tasks submitted together."""
    specs = [
        {"description": f"bench: parallel {i + 1}/{count}", "agent_type": AGENT_TYPE, "input": {"path": path}}
        for i in range(count)
    ]
    tasks = ctx.submit_many(specs)
    done = ctx.wait_all([t.id for t in tasks], f"parallel processing ({count} agents)")
    for task in done:
        require_completed(task, f"parallel processing ({count} agents)")
    created = [s for s in (seconds(t.created_at) for t in done) if s is not None]
    finished = [s for s in (seconds(t.finished_at) for t in done) if s is not None]
    work = 0.0
    for t in done:
        start, end = seconds(t.started_at), seconds(t.finished_at)
        if start is not None and end is not None:
            work += max(end - start, 0.0)
    return max(max(finished) - min(created), 1e-9), work


def parallel_processing(ctx: BenchContext) -> dict[str, Any]:
    """Wall time, speedup and efficiency per agent count."""
    if AGENT_TYPE not in ctx.agent_types:
        return {"skipped": f"no connected host offers the {AGENT_TYPE} agent type"}
    cfg = ctx.config
    path = str(write_shard(ctx.data_dir, cfg.parallel_rows))
    runs: list[dict[str, Any]] = []
    base: tuple[float, int] | None = None
    for count in cfg.parallel_agents:
        walls: list[float] = []
        works: list[float] = []
        for repeat in range(cfg.parallel_repeats):
            ctx.progress(f"{count} agents, run {repeat + 1}/{cfg.parallel_repeats}")
            wall, work = _wall(ctx, path, count)
            walls.append(wall)
            works.append(work)
        wall = statistics.median(walls)
        if base is None:
            base = (wall, count)  # the first (smallest) agent count is the baseline
        gain = speedup(base[0], base[1], wall, count)
        runs.append(
            {
                "agents": count,
                "tasks": count,
                "wall_seconds": round(wall, 4),
                "task_seconds": round(statistics.median(works) / count, 4),
                "speedup": gain,
                "efficiency": None if gain is None else round(gain / count, 3),
            }
        )
    speedups = [r["speedup"] for r in runs if r["speedup"] is not None]
    return {
        "agent_type": AGENT_TYPE,
        "rows_per_task": cfg.parallel_rows,
        "slots": ctx.slots,
        "repeats": cfg.parallel_repeats,
        "runs": runs,
        "max_speedup": max(speedups) if speedups else None,
    }
