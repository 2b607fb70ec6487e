"""Agent functions the integration tests run in real worker processes."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any


def sleep(ctx: Any, data: Any) -> dict[str, Any]:
    seconds = float((data or {}).get("seconds", 1.0))
    time.sleep(seconds)
    return {"slept": seconds, "pid": os.getpid()}


def segfault(ctx: Any, data: Any) -> None:
    ctypes.string_at(0)


def exit_hard(ctx: Any, data: Any) -> None:
    os._exit(3)


def fail(ctx: Any, data: Any) -> None:
    raise ValueError("asked to fail")


def fail_first_attempt(ctx: Any, data: Any) -> dict[str, int]:
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return {"attempt": ctx.attempt}


def recursive_spawn(ctx: Any, data: Any) -> int:
    """{"depth": d}: 1 at depth 0, else the sum of two children of the same agent type at depth d-1.

    Each parent blocks in ctx.wait while its children run, so a small host only gets
    through the tree if the slots of waiting parents are lent out.
    """
    depth = int((data or {}).get("depth", 0))
    if depth <= 0:
        return 1
    child = {"description": f"depth {depth - 1}", "agent_type": ctx.agent_type, "input": {"depth": depth - 1}}
    ids = ctx.spawn_many([child, child])
    return int(sum(ctx.wait(ids)))


def increment_counter(ctx: Any, data: Any) -> int:
    """Add 1 to the tree's shared counter `times` times with explicit compare-and-set."""
    from maos.errors import FailedPrecondition

    conflicts = 0
    for _ in range(int(data["times"])):
        while True:
            current = ctx.state.get("counter")
            value, version = (current.value, current.version) if current is not None else (0, 0)
            try:
                ctx.state.cas("counter", value + 1, version)
                break
            except FailedPrecondition:
                conflicts += 1
    return conflicts


def voter(ctx: Any, data: Any) -> Any:
    """Vote this agent's choice on `topic` with `quorum` agents of its tree; return the outcome."""
    outcome = ctx.vote(data["topic"], data["choice"], int(data["quorum"]), timeout=60)
    return {"value": outcome.value, "voters": len(outcome.voters)}
