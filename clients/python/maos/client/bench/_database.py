"""Benchmark 5, database performance as the API shows it: submits/s and state transitions/s.

Submits: `database_tasks` no-op tasks in SubmitTasks calls of `database_batch`
each, one call at a time; every call returns after its tasks are durably
stored (one group commit), so submits/s is the store's insert rate as a client
sees it. Transitions: every status change of a task is persisted before it is
acknowledged and numbered (Task.last_seq counts them: QUEUED, RUNNING,
COMPLETED for a no-op), so transitions/s is the sum of last_seq over the
tasks divided by the span from the first creation to the last finish.
"""

from __future__ import annotations

from typing import Any

from ._context import BenchContext, seconds, timed
from ._stats import rate, summarize


def database(ctx: BenchContext) -> dict[str, Any]:
    """Batched submit throughput, commit latency per batch, and persisted transitions per second."""
    cfg = ctx.config
    ids: list[str] = []
    batch_ms: list[float] = []
    for start in range(0, cfg.database_tasks, cfg.database_batch):
        count = min(cfg.database_batch, cfg.database_tasks - start)
        specs = [
            {"description": f"bench: db {start + i}", "agent_type": "echo", "input": start + i} for i in range(count)
        ]
        tasks, ms = timed(ctx.submit_many, specs)
        ids += [t.id for t in tasks]
        batch_ms.append(ms)
        if len(batch_ms) % 5 == 0:
            ctx.progress(f"{len(ids)}/{cfg.database_tasks} submitted")
    ctx.progress(f"waiting for {len(ids)} tasks to finish")
    done = ctx.wait_all(ids, "database performance")
    transitions = sum(t.last_seq for t in done)
    created = [s for s in (seconds(t.created_at) for t in done) if s is not None]
    finished = [s for s in (seconds(t.finished_at) for t in done) if s is not None]
    span = max(finished) - min(created) if created and finished else 0.0
    return {
        "store": ctx.client.status().store,
        "tasks": len(ids),
        "batch_size": cfg.database_batch,
        "submits_per_second": rate(len(ids), sum(batch_ms) / 1000),
        "batch_commit_ms": summarize(batch_ms),
        "state_transitions": transitions,
        "transitions_per_second": rate(transitions, span),
        "span_seconds": round(span, 4),
    }
