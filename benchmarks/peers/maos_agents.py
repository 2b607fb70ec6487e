"""The workloads as MAOS Python agents (`fn(ctx, input)`), named in the agent profiles run_maos.py writes."""

from __future__ import annotations

from typing import Any

from maos.client._context import TaskContext

from benchmarks.peers import workloads


def noop(ctx: TaskContext, input: Any) -> int:
    """The no-op: returns its input."""
    return workloads.noop(int(input))


def total(ctx: TaskContext, input: Any) -> int:
    """The reducer: sums the results of every dependency."""
    return workloads.total(int(dep["result"]) for dep in ctx.dependencies)


def burn(ctx: TaskContext, input: Any) -> int:
    """The CPU-bound function; the input is the iteration count."""
    return workloads.burn(int(input))
