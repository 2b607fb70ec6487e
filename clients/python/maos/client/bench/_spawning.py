"""Benchmark 2, agent spawning: how long until an agent is working on a task, per agent type.

MAOS does not start a process per task: each agent host keeps a warm pool of
worker processes (one per core by default), started with the host, and any
worker runs any Python agent type (importing its code on the worker's first
task of that type); a command agent type starts its command for every task.
No API lets a client start a fresh worker, so:

- warm: a task of the type on an idle worker, right after another task of the
  same type; `start_ms` is created -> started on the control plane's clock
  (dispatch, the host's pickup and the worker's start report);
- cold: the first task of the type in this run, sent before any other
  benchmark. It is a true cold start (the worker imports the agent's code)
  only if no worker ran that type since its host started; on a cluster that
  already ran the type it measures a warm pool. The run reports how many
  workers had run nothing at all when it began (`fresh_workers_at_start`).
  A worker process start happens at host start, after a worker dies, and for
  a slot lent to a parent waiting on its children; no API triggers one.

`round_trip_ms` is the client's view of one SubmitTask that waits for the
result: submit, schedule, start, run, record, answer. A host reports a task
started when it hands it to a worker, before the worker loads the agent's
code, so what a cold start costs shows in `round_trip_ms`, not `start_ms`.
"""

from __future__ import annotations

import statistics
from typing import Any

from maos.errors import DeadlineExceeded

from .._enums import is_final
from .._specs import SpecOptions
from ._context import BenchContext, ms_between, timed
from ._data import require_completed, write_shard
from ._stats import percentile, summarize

SPAWN_SHARD_ROWS = 200
BUILTIN_TYPES = ("echo", "analyst", "coordinator", "shell")
COLD_BASIS = (
    "first task of the type in this run, before any other benchmark: cold (the worker imports the agent's "
    "code) only if no worker ran the type since its host started; workers are a warm pool started with each "
    "host and no API starts one"
)


def _builtin_specs(ctx: BenchContext) -> dict[str, SpecOptions]:
    """The built-in agent types the bench knows how to feed; other types may do anything (an LLM CLI)."""
    return {
        "echo": {"agent_type": "echo", "input": {"bench": "spawn"}},
        "analyst": {"agent_type": "analyst", "input": {"path": str(write_shard(ctx.data_dir, SPAWN_SHARD_ROWS))}},
        "coordinator": {"agent_type": "coordinator", "input": {"title": "bench"}},
        "shell": {"agent_type": "shell"},
    }


def _one(ctx: BenchContext, agent_type: str, options: SpecOptions) -> tuple[float, float]:
    """(start_ms, round_trip_ms) of one task that the call waits for."""
    wait = ctx.config.timeout_seconds
    task, round_trip = timed(ctx.submit, f"bench: spawn {agent_type}", wait=wait, **options)
    if not is_final(task.status):  # the wait ran out
        raise DeadlineExceeded(f"agent spawning: a {agent_type} task did not finish within {wait:.0f}s")
    require_completed(task, f"agent spawning ({agent_type})")
    start = ms_between(task.created_at, task.started_at)
    return (start if start is not None else round_trip), round_trip


def _types(ctx: BenchContext) -> list[str]:
    return [t for t in BUILTIN_TYPES if t in ctx.agent_types]


def cold_probes(ctx: BenchContext) -> dict[str, tuple[float, float]]:
    """(start_ms, round_trip_ms) of the run's first task of each built-in type the hosts offer.

    The suite calls this before any other benchmark, so that on a freshly started
    cluster these are the workers' first tasks of each type.
    """
    specs = _builtin_specs(ctx)
    return {agent_type: _one(ctx, agent_type, specs[agent_type]) for agent_type in _types(ctx)}


def agent_spawning(ctx: BenchContext) -> dict[str, Any]:
    """Cold and warm start latency per built-in agent type the hosts offer."""
    inputs = _builtin_specs(ctx)
    types = _types(ctx)
    cold = ctx.cold_probes if ctx.cold_probes is not None else cold_probes(ctx)
    runners = {info.name: info.runner for info in ctx.client.list_agent_types()}
    per_type: dict[str, Any] = {}
    warm_all: list[float] = []
    cold_all: list[float] = []
    for agent_type in types:
        ctx.progress(f"{agent_type}: {ctx.config.warm_tasks_per_type} warm")
        cold_start, cold_rt = cold[agent_type]
        starts: list[float] = []
        trips: list[float] = []
        for _ in range(ctx.config.warm_tasks_per_type):
            start, trip = _one(ctx, agent_type, inputs[agent_type])
            starts.append(start)
            trips.append(trip)
        per_type[agent_type] = {
            "runner": runners.get(agent_type, ""),
            "cold": {"start_ms": round(cold_start, 3), "round_trip_ms": round(cold_rt, 3)},
            "warm": {"start_ms": summarize(starts), "round_trip_ms": summarize(trips)},
        }
        warm_all += starts
        cold_all.append(cold_start)
    if not types:
        return {"skipped": "no connected host offers a built-in agent type (echo, analyst, coordinator, shell)"}
    return {
        "types": per_type,
        "average_spawn_time_ms": round(statistics.fmean(warm_all), 3),
        "p95_spawn_time_ms": round(percentile(warm_all, 0.95), 3),
        "cold_average_spawn_time_ms": round(statistics.fmean(cold_all), 3),
        "total_agents_tested": len(warm_all) + len(cold_all),
        "cold_basis": COLD_BASIS,
        "workers_at_start": ctx.workers,
        "fresh_workers_at_start": ctx.fresh_workers,
    }
