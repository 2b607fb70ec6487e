"""Benchmark 3, parallel processing efficiency: N equal CPU-bound analyst tasks at once.

For each agent count N (1, 2, 4, 6, 8) the bench submits N identical analyst
tasks (statistics over the same CSV shard) in one SubmitTasks call and waits
for all of them. Wall time is the first task's creation to the last one's
finish, on the control plane's clock. One round runs every N in turn, the
baseline (the smallest N) first, and speedup is measured within the round:
speedup(N) = N x wall(1) / wall(N) (work per second against one agent), so a
machine that gets busier or quieter between rounds does not skew the ratio;
the report keeps the median over `parallel_repeats` rounds. efficiency =
speedup / N. The cluster cannot run more than its worker slots at once, so
speedup is bounded by min(N, slots): the report shows the slots.
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
    counts = cfg.parallel_agents
    walls: dict[int, list[float]] = {n: [] for n in counts}
    works: dict[int, list[float]] = {n: [] for n in counts}
    gains: dict[int, list[float]] = {n: [] for n in counts}
    for repeat in range(cfg.parallel_repeats):
        for count in counts:
            ctx.progress(f"round {repeat + 1}/{cfg.parallel_repeats}: {count} agents")
            wall, work = _wall(ctx, path, count)
            walls[count].append(wall)
            works[count].append(work / count)
            gain = speedup(walls[counts[0]][-1], counts[0], wall, count)  # the baseline of this round
            if gain is not None:
                gains[count].append(gain)
    runs: list[dict[str, Any]] = []
    for count in counts:
        gain = round(statistics.median(gains[count]), 3) if gains[count] else None
        runs.append(
            {
                "agents": count,
                "tasks": count,
                "wall_seconds": round(statistics.median(walls[count]), 4),
                "task_seconds": round(statistics.median(works[count]), 4),
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
        "speedup_basis": "N x wall(baseline) / wall(N) within each round; median over rounds",
        "runs": runs,
        "max_speedup": max(speedups) if speedups else None,
    }
