"""Fan-out between control planes (`--redis`): how late a standby's watch sees the leader's writes.

    .venv/bin/python benchmarks/bench_fanout.py [--quick] [--json] [--postgres URL] [--redis URL]

Starts a leader and a standby on one fresh PostgreSQL schema, both with
--redis. One state watch runs on the leader (its own hub) and one on the
standby (the leader's events through Redis pub/sub). Lone writes: one put at
a time, each carrying its send time; latency = when a watch saw it - when the
put was sent, p50/p99 per watch. Burst: 8 writer threads put as fast as they
can; events/s = how fast each watch delivered them (first to last seen).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from maos.client import Client
from maos.client.bench._stats import percentile
from maos.testing import start_controlplane

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
WRITERS = 8


class Watch(threading.Thread):
    """Collects (key, value, seen at) of every change under a prefix until `count` arrived."""

    def __init__(self, endpoint: str, prefix: str, count: int) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.prefix, self.count = endpoint, prefix, count
        self.seen: list[tuple[Any, float]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        with Client(self.endpoint) as client:
            stream = client.state.watch(prefix=self.prefix, namespace="global")
            self.ready.set()
            for event in stream:
                self.seen.append((event.value, time.time()))
                if len(self.seen) >= self.count:
                    return


def _watches(leader: str, standby: str, prefix: str, count: int) -> list[Watch]:
    watches = [Watch(leader, prefix, count), Watch(standby, prefix, count)]
    for w in watches:
        w.start()
        w.ready.wait(10)
    time.sleep(0.3)  # both streams registered
    return watches


def lone(leader: str, standby: str, count: int) -> dict[str, dict[str, float]]:
    watches = _watches(leader, standby, "lone/", count)
    with Client(leader) as client:
        for i in range(count):
            client.state.put(f"lone/{i % 10}", {"sent": time.time()}, namespace="global")
            time.sleep(0.002)  # an idle system between writes
    for w in watches:
        w.join(60)
    out = {}
    for name, w in zip(("leader watch", "standby watch"), watches, strict=True):
        ms = [(seen - value["sent"]) * 1000 for value, seen in w.seen]
        out[name] = {"events": len(ms), "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 0.99)}
    return out


def burst(leader: str, standby: str, count: int) -> dict[str, dict[str, float]]:
    watches = _watches(leader, standby, "burst/", count)
    per_writer = count // WRITERS

    def write(n: int) -> None:
        with Client(leader) as client:
            for i in range(per_writer):
                client.state.put(f"burst/{n}/{i % 10}", i, namespace="global")

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    for w in watches:
        w.join(60)
    out = {}
    for name, w in zip(("leader watch", "standby watch"), watches, strict=True):
        span = w.seen[-1][1] - w.seen[0][1] if len(w.seen) > 1 else float("nan")
        out[name] = {"events": len(w.seen), "per_second": (len(w.seen) - 1) / span if span > 0 else 0.0}
    return out


async def _schema(url: str, create: bool, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {name}" if create else f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer writes")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--redis", default=REDIS_URL)
    args = parser.parse_args()
    lone_count, burst_count = (200, 2_000) if args.quick else (1_000, 8_000)
    schema = f"maos_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_schema(args.postgres, True, schema))
    results: dict[str, Any] = {}
    daemons = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            flags = ["--store", f"{args.postgres}?schema={schema}", "--redis", args.redis]
            leader = start_controlplane(Path(tmp) / "cp1", extra=flags)
            daemons.append(leader)
            standby = start_controlplane(Path(tmp) / "cp2", extra=flags)
            daemons.append(standby)
            results["lone"] = lone(leader.endpoint, standby.endpoint, lone_count)
            results["burst"] = burst(leader.endpoint, standby.endpoint, burst_count)
    finally:
        for daemon in daemons:
            daemon.stop()
        asyncio.run(_schema(args.postgres, False, schema))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    print(f"fan-out over Redis ({args.redis}), leader + standby on PostgreSQL")
    print(f"  {'scenario':<8} {'watch':<14} {'events':>7} {'p50 ms':>8} {'p99 ms':>8} {'events/s':>10}")
    for scenario, rows in results.items():
        for watch, row in rows.items():
            p50 = f"{row['p50_ms']:8.2f}" if "p50_ms" in row else f"{'':8}"
            p99 = f"{row['p99_ms']:8.2f}" if "p99_ms" in row else f"{'':8}"
            rate = f"{row['per_second']:10,.0f}" if "per_second" in row else f"{'':10}"
            print(f"  {scenario:<8} {watch:<14} {row['events']:>7,} {p50} {p99} {rate}")


if __name__ == "__main__":
    main()
