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


_PRIORITIES = ("critical", "high", "medium", "low")


def chat_receiver(ctx: Any, data: Any) -> Any:
    """Publish this task's id in the tree's state as `receiver`, then receive `count` messages.
    Returns how many arrived, how many distinct, and whether each priority level came FIFO."""
    ctx.state.put("receiver", ctx.task_id)
    count = int(data["count"])
    seen: set[str] = set()
    last_n: dict[str, int] = {}
    fifo = True
    received = 0
    while len(seen) < count:
        for msg in ctx.messages.receive(timeout=30, max=1000):
            received += 1
            seen.add(msg.id)
            n = int(msg.value["n"])
            if n <= last_n.get(msg.priority, -1):
                fifo = False
            last_n[msg.priority] = n
            if msg.priority != msg.value["p"]:
                fifo = False
    return {"received": received, "distinct": len(seen), "fifo_within_priority": fifo}


def chat_sender(ctx: Any, data: Any) -> Any:
    """Wait for the receiver's id in the tree's state, then send it `count` messages in batches."""
    import time

    deadline = time.monotonic() + 60
    while (entry := ctx.state.get("receiver")) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("no receiver published its id")
        time.sleep(0.02)
    to, count, batch = entry.value, int(data["count"]), int(data.get("batch", 500))
    sent = 0
    for start in range(0, count, batch):
        messages = [
            {"to_task_id": to, "payload": {"n": i, "p": _PRIORITIES[i % 4]}, "priority": _PRIORITIES[i % 4]}
            for i in range(start, min(count, start + batch))
        ]
        sent += len(ctx.messages.send_many(messages))
    return {"sent": sent, "to": to}


def checkpoint_then_fail(ctx: Any, data: Any) -> dict[str, Any]:
    """Attempt 1 saves a checkpoint (with what restore() gave it then) and fails; a retried
    attempt reports what restore() returns. {"big": n} checkpoints n bytes instead."""
    if (data or {}).get("big"):
        ctx.checkpoint("x" * int(data["big"]))
    if ctx.attempt == 1:
        ctx.checkpoint({"step": 3, "first_restore": ctx.restore(), "saved_by": ctx.attempt})
        raise RuntimeError("attempt 1 fails after its checkpoint")
    return {"attempt": ctx.attempt, "restored": ctx.restore()}


def news_reader(ctx: Any, data: Any) -> Any:
    """Subscribe to topic `news` and read `count` messages; then tell the writer to stop."""
    count = int(data["count"])
    values: list[int] = []
    for msg in ctx.messages.subscribe("news"):
        values.append(int(msg.value))
        if len(values) == count:
            break
    ctx.state.put("reader-done", True)
    return values


def news_writer(ctx: Any, data: Any) -> Any:
    """Publish numbered messages to topic `news` until the reader has had enough: the reader's
    subscription starts at some message, and from there it must see every one, in order."""
    import time

    deadline = time.monotonic() + 60
    i = 0
    while ctx.state.get("reader-done") is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the reader never finished")
        ctx.messages.publish("news", i)
        i += 1
        time.sleep(0.002)
    return i
