"""Messaging benchmark: two agents through the MessageService, measured end to end.

    .venv/bin/python benchmarks/bench_messages.py [--quick] [--json] [--messages N]

The service (real servicer, error interceptor, SQLite store with group
commits, on uvloop) runs in a process of its own; a sender (task A) and a
receiver (task B) run in this process on separate channels. Each run sends N
messages with up to 64 sends in flight (backing off on RESOURCE_EXHAUSTED, as
a real sender must) while the receiver drains the mailbox either in batches
(Receive max=100, one Ack per batch) or one at a time (Receive max=1, Ack
each); the "send_many" rows send with SendBatch, 100 messages a call and up to
4 calls in flight, the receiver batched. Latency is from just before Send to the receiver holding the message,
so under load it includes time queued in the mailbox. The last rows are one
message at a time with the receiver long-polling: the unloaded latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc.aio
from maos.client._messages_client import AsyncMessagesClient
from maos.client.bench._stats import percentile
from maos.controlplane.api._errors import ErrorMappingInterceptor
from maos.controlplane.api._messages import add_message_service
from maos.controlplane.messaging import MessagingConfig, TaskInfo, open_messaging
from maos.errors import ResourceExhausted

SEND_WINDOW = 64
SEND_MANY_WINDOW = 4  # send_many calls in flight at once


class _Tasks:
    """Two running tasks, A and B, in one tree: the task lookup the service needs."""

    async def task(self, task_id: str) -> TaskInfo | None:
        return TaskInfo(task_id, "A", False, "running") if task_id in ("A", "B") else None

    def unfinished_in_tree(self, root_id: str) -> list[str]:
        return ["A", "B"] if root_id == "A" else []


async def serve(db: Path) -> None:
    messaging = await open_messaging(db, _Tasks(), MessagingConfig())
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
    add_message_service(server, messaging)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"127.0.0.1:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await server.stop(1)
    await messaging.close()


async def flow(endpoint: str, n: int, size: int, batch: int) -> dict[str, Any]:
    """Send n messages of `size` bytes A -> B while B receives `batch` at a time."""
    async with grpc.aio.insecure_channel(endpoint) as ch_a, grpc.aio.insecure_channel(endpoint) as ch_b:
        sender = AsyncMessagesClient(ch_a, endpoint, caller=("A", 1))
        receiver = AsyncMessagesClient(ch_b, endpoint, caller=("B", 1))
        filler = "x" * max(0, size - 40)
        sent_at: dict[int, float] = {}
        latencies: list[float] = []
        window = asyncio.Semaphore(SEND_WINDOW)
        backoffs = 0

        async def send_one(i: int) -> None:
            nonlocal backoffs
            async with window:
                sent_at[i] = time.perf_counter()
                while True:
                    try:
                        await sender.send("B", {"i": i, "f": filler})
                        return
                    except ResourceExhausted:
                        backoffs += 1
                        await asyncio.sleep(0.005)

        async def send_all() -> None:
            await asyncio.gather(*(send_one(i) for i in range(n)))

        async def receive_all() -> None:
            seen: set[int] = set()
            while len(seen) < n:
                messages = await receiver.receive(max=batch, wait=1.0)
                now = time.perf_counter()
                for msg in messages:
                    i = json.loads(msg.payload.data)["i"]
                    if i not in seen:
                        seen.add(i)
                        latencies.append((now - sent_at[i]) * 1e3)
                if messages:
                    await receiver.ack(None, [m.id for m in messages])

        start = time.perf_counter()
        await asyncio.gather(send_all(), receive_all())
        elapsed = time.perf_counter() - start
    return {
        "messages": n,
        "payload_bytes": size,
        "receive_batch": batch,
        "per_s": n / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "sender_backoffs": backoffs,
    }


async def flow_many(endpoint: str, n: int, size: int, batch: int) -> dict[str, Any]:
    """Send n messages A -> B with send_many, `batch` per call (up to SEND_MANY_WINDOW calls in
    flight), while B receives 100 at a time."""
    async with grpc.aio.insecure_channel(endpoint) as ch_a, grpc.aio.insecure_channel(endpoint) as ch_b:
        sender = AsyncMessagesClient(ch_a, endpoint, caller=("A", 1))
        receiver = AsyncMessagesClient(ch_b, endpoint, caller=("B", 1))
        filler = "x" * max(0, size - 40)
        sent_at: dict[int, float] = {}
        latencies: list[float] = []
        window = asyncio.Semaphore(SEND_MANY_WINDOW)
        backoffs = 0

        async def send_batch(first: int) -> None:
            nonlocal backoffs
            numbers = range(first, min(first + batch, n))
            messages = [{"to_task_id": "B", "payload": {"i": i, "f": filler}} for i in numbers]
            async with window:
                began = time.perf_counter()
                for i in numbers:
                    sent_at[i] = began
                while True:
                    try:
                        await sender.send_many(messages)
                        return
                    except ResourceExhausted:
                        backoffs += 1
                        await asyncio.sleep(0.005)

        async def send_all() -> None:
            await asyncio.gather(*(send_batch(first) for first in range(0, n, batch)))

        async def receive_all() -> None:
            seen: set[int] = set()
            while len(seen) < n:
                messages = await receiver.receive(max=100, wait=1.0)
                now = time.perf_counter()
                for msg in messages:
                    i = json.loads(msg.payload.data)["i"]
                    if i not in seen:
                        seen.add(i)
                        latencies.append((now - sent_at[i]) * 1e3)
                if messages:
                    await receiver.ack(None, [m.id for m in messages])

        start = time.perf_counter()
        await asyncio.gather(send_all(), receive_all())
        elapsed = time.perf_counter() - start
    return {
        "messages": n,
        "payload_bytes": size,
        "receive_batch": 100,
        "per_s": n / elapsed,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "sender_backoffs": backoffs,
    }


async def idle_latency(endpoint: str, n: int, size: int) -> dict[str, Any]:
    """One message at a time, the receiver already long-polling: latency without queueing."""
    async with grpc.aio.insecure_channel(endpoint) as ch_a, grpc.aio.insecure_channel(endpoint) as ch_b:
        sender = AsyncMessagesClient(ch_a, endpoint, caller=("A", 1))
        receiver = AsyncMessagesClient(ch_b, endpoint, caller=("B", 1))
        filler = "x" * max(0, size - 40)
        samples = []
        start = time.perf_counter()
        for i in range(n):
            polling = asyncio.ensure_future(receiver.receive(wait=5))
            await asyncio.sleep(0.001)  # let the long poll reach the server first
            began = time.perf_counter()
            await sender.send("B", {"i": i, "f": filler})
            [msg] = await polling
            samples.append((time.perf_counter() - began) * 1e3)
            await receiver.ack(None, [msg.id])
        elapsed = time.perf_counter() - start
    return {
        "messages": n,
        "payload_bytes": size,
        "receive_batch": 1,
        "per_s": n / elapsed,
        "p50_ms": percentile(samples, 0.50),
        "p99_ms": percentile(samples, 0.99),
        "sender_backoffs": 0,
    }


async def run_all(endpoint: str, n: int, idle: int) -> list[dict[str, Any]]:
    await flow(endpoint, min(n, 500), 100, 100)  # warm up channels and the store
    rows = []
    for size in (100, 4096):
        for batch in (100, 1):
            row = await flow(endpoint, n, size, batch)
            rows.append({"mode": "batched" if batch > 1 else "one at a time", **row})
        rows.append({"mode": "send_many (batches of 100)", **await flow_many(endpoint, n, size, 100)})
    for size in (100, 4096):
        rows.append({"mode": "idle (long poll)", **await idle_latency(endpoint, idle, size)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'mode':<28}{'payload':>9}{'messages':>10}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'backoffs':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['mode']:<28}{r['payload_bytes']:>8}B{r['messages']:>10}{r['per_s']:>10.0f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['sender_backoffs']:>10}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--messages", type=int, default=None, help="messages per run (default 5000; quick 1000)")
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.serve is not None:
        uvloop.run(serve(args.serve))
        return
    n = args.messages or (1000 if args.quick else 5000)
    idle = 100 if args.quick else 500
    with tempfile.TemporaryDirectory(prefix="maos-bench-msg-") as tmp:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(Path(tmp) / "maos.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            endpoint = proc.stdout.readline().strip()
            if not endpoint:
                sys.exit("the message service did not start")
            rows = uvloop.run(run_all(endpoint, n, idle))
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=30)
    if args.json:
        print(
            json.dumps(
                {
                    "messaging": rows,
                    "median_batched_per_s": statistics.median(r["per_s"] for r in rows if r["mode"] == "batched"),
                },
                indent=2,
            )
        )
    else:
        print(table(rows))


if __name__ == "__main__":
    main()
