"""Agents of the host-message benchmark (bench_message_hosts.py); run in MAOS worker processes.

A receiver publishes its task id in the tree's state, then drains `count`
messages and reports when the first and last arrived and each message's
latency (its send time is in the payload). A sender waits for that id and
sends `count` messages of `size` bytes: batched (send_many, `batch` a call,
`window` calls in flight) or one per call (`window` sends in flight), or,
with `gap` > 0, one at a time with a pause between them (the idle latency).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from maos.errors import ResourceExhausted


def receiver(ctx: Any, data: Any) -> dict[str, Any]:
    ctx.state.put("receiver", ctx.task_id)
    count = int(data["count"])
    seen: set[str] = set()
    latencies: list[float] = []
    first = last = 0.0
    calls = 0
    while len(seen) < count:
        calls += 1
        batch = ctx.messages.receive(timeout=60, max=1000)
        if not batch:
            raise RuntimeError(f"no message for 60 s after {len(seen)} of {count}")
        for msg in batch:
            now = time.time()
            first = first or now
            last = now
            if msg.id not in seen:
                seen.add(msg.id)
                latencies.append(now - float(msg.value["t"]))
    # A long run reports an even sample of at most 100k: the result must stay under gRPC's 4 MB.
    step = max(1, -(-len(latencies) // 100_000))
    return {"first": first, "last": last, "latencies": latencies[::step], "calls": calls}


def sender(ctx: Any, data: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (entry := ctx.state.get("receiver")) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("no receiver published its id")
        time.sleep(0.01)
    to = entry.value
    count, size, batch = int(data["count"]), int(data["size"]), int(data["batch"])
    gap, window = float(data.get("gap", 0)), int(data.get("window", 4))
    filler = "x" * max(0, size - 40)  # the JSON around it is about 40 bytes
    start = time.time()
    backoffs = 0
    if gap > 0:
        for _ in range(count):
            ctx.messages.send(to, {"t": time.time(), "f": filler})
            time.sleep(gap)
    else:
        backoffs = asyncio.run(_send_windowed(ctx, to, count, batch, window, filler))
    return {"start": start, "end": time.time(), "backoffs": backoffs}


async def _send_windowed(ctx: Any, to: str, count: int, batch: int, window: int, filler: str) -> int:
    """Up to `window` calls in flight; each sends `batch` messages (send_many) or one (send).
    Returns how many calls were refused for a full mailbox and sent again."""
    calls = [(i, min(count, i + batch)) for i in range(0, count, batch)]
    slots = asyncio.Semaphore(window)
    backoffs = 0

    async def one(lo: int, hi: int) -> None:
        async with slots:
            while True:
                try:
                    if batch == 1:
                        await ctx.messages.send_async(to, {"t": time.time(), "f": filler})
                    else:
                        now = time.time()
                        await ctx.messages.send_many_async(
                            [{"to_task_id": to, "payload": {"t": now, "f": filler}} for _ in range(lo, hi)]
                        )
                    return
                except ResourceExhausted:
                    nonlocal backoffs
                    backoffs += 1
                    await asyncio.sleep(0.005)  # the receiver's mailbox is full: back off, as a real sender must

    await asyncio.gather(*(one(lo, hi) for lo, hi in calls))
    return backoffs
