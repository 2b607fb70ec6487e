"""Shared-state benchmark: get and put operations per second on each backend.

    .venv/bin/python benchmarks/bench_state.py [--quick] [--json] [--redis URL] [--postgres URL|""]

Backends: embedded SQLite, PostgreSQL (a fresh schema of the `test` database, dropped afterwards;
--postgres "" leaves it out), and `--state redis://...`, which is each of those with Redis as a
write-through cache in front ("redis/sqlite", "redis/postgresql"). For each, a StateService runs
in a server process of its own (uvloop, the control plane's interceptor), and one client process
measures through gRPC: puts then gets of a ~100-byte JSON value over 100 keys, first one caller at
a time (with p50/p99 latency), then 8 concurrent callers on one channel. The same operations
straight on the backend, in one process without gRPC, show the backend's own cost; there "get
miss" reads keys just evicted from the cache (the cache's worst case: Redis, the durable backend,
then the fill).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import grpc.aio
import orjson
import redis.asyncio as aioredis
from maos.client._state_client import AsyncStateClient
from maos.client.bench._stats import percentile
from maos.controlplane.api._errors import ErrorMappingInterceptor
from maos.controlplane.api._state import StateServicer
from maos.controlplane.state import (
    PostgresStateBackend,
    RedisStateBackend,
    SqliteStateBackend,
    StateBackend,
    StateCaller,
)
from maos.controlplane.store import PostgresOptions, PostgresStore
from maos.v1 import state_pb2_grpc

NAMESPACE = "tree:BENCH"
KEYS = [f"bench/{i:03d}" for i in range(100)]
VALUE = {"agent": "analyst-7", "rows": 12345, "mean": 0.4821, "tags": ["a", "b", "c"], "note": "x" * 24}
CONCURRENCY = 8
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def open_backend(kind: str, data_dir: Path, redis_url: str, pg_url: str, prefix: str) -> AsyncIterator[Any]:
    """An opened backend of `kind` ("sqlite", "postgresql", "redis/sqlite", "redis/postgresql")."""
    cached, _, durable_kind = kind.rpartition("/")
    store: PostgresStore | None = None
    durable: StateBackend
    if durable_kind == "postgresql":
        store = PostgresStore(f"{pg_url}?schema={prefix.replace(':', '_').replace('-', '_')}", PostgresOptions())
        await store.open()
        durable = PostgresStateBackend(store)
    else:
        durable = SqliteStateBackend(data_dir / f"{prefix.replace(':', '_')}.db")
    backend = RedisStateBackend(redis_url, durable, key_prefix=prefix) if cached else durable
    try:
        async with backend:
            if isinstance(backend, RedisStateBackend) and store is not None:
                backend.fence(await _epoch(store), lambda _: None)  # over PostgreSQL only the leader caches
            yield backend
    finally:
        if store is not None:
            await store.close()


async def _epoch(store: PostgresStore) -> int:
    async with store.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT epoch FROM leadership WHERE id = 1"))


async def _no_caller(_task_id: str) -> StateCaller | None:
    return None


async def serve(kind: str, data_dir: Path, redis_url: str, pg_url: str, prefix: str, conn: Connection) -> None:
    async with open_backend(kind, data_dir, redis_url, pg_url, prefix) as backend:
        server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
        state_pb2_grpc.add_StateServiceServicer_to_server(StateServicer(backend, _no_caller), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        conn.send(port)
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        await server.stop(1)


def server_main(kind: str, data_dir: str, redis_url: str, pg_url: str, prefix: str, conn: Connection) -> None:
    try:
        import uvloop

        uvloop.run(serve(kind, Path(data_dir), redis_url, pg_url, prefix, conn))
    except ImportError:
        asyncio.run(serve(kind, Path(data_dir), redis_url, pg_url, prefix, conn))


def summary(samples: list[float], elapsed: float) -> dict[str, float]:
    return {
        "ops_per_s": len(samples) / elapsed,
        "p50_ms": percentile(samples, 0.50) * 1e3,
        "p99_ms": percentile(samples, 0.99) * 1e3,
    }


async def measure(op: Callable[[int], Awaitable[Any]], n: int, callers: int) -> dict[str, float]:
    """`n` calls of `op(i)` spread over `callers` concurrent loops: ops/s, and latency for one caller."""
    samples: list[float] = []

    async def caller(start: int) -> None:
        for i in range(start, n, callers):
            t = time.perf_counter()
            await op(i)
            samples.append(time.perf_counter() - t)

    began = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    return summary(samples, time.perf_counter() - began)


async def bench_ops(
    put: Callable[[str, Any], Awaitable[Any]], get: Callable[[str], Awaitable[Any]], n: int
) -> dict[str, dict[str, float]]:
    for key in KEYS:  # warm up: connections, scripts, pages
        await put(key, VALUE)
    results = {}
    for callers in (1, CONCURRENCY):
        results[f"put x{callers}"] = await measure(lambda i: put(KEYS[i % len(KEYS)], VALUE), n, callers)
        results[f"get x{callers}"] = await measure(lambda i: get(KEYS[i % len(KEYS)]), n, callers)
    return results


async def bench_grpc(endpoint: str, n: int) -> dict[str, dict[str, float]]:
    channel = grpc.aio.insecure_channel(endpoint)
    client = AsyncStateClient(channel, endpoint, metadata=lambda: ())
    try:
        return await bench_ops(
            lambda k, v: client.put(k, v, namespace=NAMESPACE), lambda k: client.get(k, namespace=NAMESPACE), n
        )
    finally:
        await channel.close(None)


async def bench_direct(
    kind: str, data_dir: Path, redis_url: str, pg_url: str, prefix: str, n: int
) -> dict[str, dict[str, float]]:
    async with open_backend(kind, data_dir, redis_url, pg_url, prefix + "direct:") as backend:
        results = await bench_ops(
            lambda k, v: backend.put(NAMESPACE, k, orjson.dumps(v)), lambda k: backend.get(NAMESPACE, k), n
        )
        if isinstance(backend, RedisStateBackend):
            results["get miss x1"] = await bench_misses(backend, redis_url, prefix + "direct:", n)
        return results


async def bench_misses(backend: RedisStateBackend, redis_url: str, prefix: str, n: int) -> dict[str, float]:
    """Gets of keys just evicted from the cache (the evictions are not timed)."""
    client = aioredis.Redis.from_url(redis_url)
    samples: list[float] = []
    elapsed = 0.0
    try:
        while len(samples) < n:
            await client.delete(*[f"{prefix}g{backend.generation}:{{{NAMESPACE}}}:{k}" for k in KEYS])
            began = time.perf_counter()
            for key in KEYS:
                t = time.perf_counter()
                await backend.get(NAMESPACE, key)
                samples.append(time.perf_counter() - t)
            elapsed += time.perf_counter() - began
    finally:
        await client.aclose()
    return summary(samples, elapsed)


async def drop_prefix(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        names = [name async for name in client.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(names), 500):
            await client.delete(*names[i : i + 500])
    finally:
        await client.aclose()


async def drop_schemas(pg_url: str, prefix: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        for name in (prefix, prefix + "direct:"):
            await conn.execute(f"DROP SCHEMA IF EXISTS {name.replace(':', '_').replace('-', '_')} CASCADE")
    finally:
        await conn.close()


def run_backend(kind: str, redis_url: str, pg_url: str, n: int) -> dict[str, dict[str, dict[str, float]]]:
    prefix = f"maos_bench_{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory(prefix="maos-bench-state-") as tmp:
        try:
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=server_main, args=(kind, tmp, redis_url, pg_url, prefix, child), daemon=True)
            proc.start()
            try:
                if not parent.poll(60):
                    sys.exit(f"the {kind} state server did not start")
                port = parent.recv()
                over_grpc = asyncio.run(bench_grpc(f"127.0.0.1:{port}", n))
            finally:
                parent.send("stop")
                proc.join(10)
            direct = asyncio.run(bench_direct(kind, Path(tmp), redis_url, pg_url, prefix, n))
        finally:
            if kind.startswith("redis/"):
                asyncio.run(drop_prefix(redis_url, prefix))
            if kind.endswith("postgresql"):
                asyncio.run(drop_schemas(pg_url, prefix))
    return {"grpc": over_grpc, "direct": direct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer operations (1,000 per measure)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", metavar="URL", help="Redis for the cache runs")
    parser.add_argument(
        "--postgres", default=POSTGRES_URL, metavar="URL", help=f'PostgreSQL database ({POSTGRES_URL}; "" for none)'
    )
    args = parser.parse_args()
    n = 1_000 if args.quick else 5_000
    kinds = ["sqlite", "redis/sqlite"] + (["postgresql", "redis/postgresql"] if args.postgres else [])
    results = {kind: run_backend(kind, args.redis, args.postgres, n) for kind in kinds}
    if args.json:
        print(json.dumps({"operations_per_measure": n, "results": results}, indent=2))
        return
    print(f"MAOS shared-state benchmark — {n:,} operations per measure, ~{len(orjson.dumps(VALUE))}-byte values")
    header = f"{'backend':<16}  {'path':<6}  {'operation':<11}  {'ops/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}"
    print(header)
    print("-" * len(header))
    for kind, paths in results.items():
        for path, ops in paths.items():
            for name, r in ops.items():
                rate, p50, p99 = r["ops_per_s"], r["p50_ms"], r["p99_ms"]
                print(f"{kind:<16}  {path:<6}  {name:<11}  {rate:>8,.0f}  {p50:>7.2f}  {p99:>7.2f}")
    grpc_rates = [r["ops_per_s"] for paths in results.values() for r in paths["grpc"].values()]
    print(f"\nmedian over gRPC measures: {statistics.median(grpc_rates):,.0f} ops/s")
    print("\ndirect gets, cache vs its durable backend (ops/s, x1 / x8):")
    for durable in (k for k in kinds if "/" not in k):
        plain, cached = results[durable]["direct"], results[f"redis/{durable}"]["direct"]
        print(
            f"  {durable:<10}  {plain['get x1']['ops_per_s']:>7,.0f} / {plain['get x8']['ops_per_s']:>7,.0f}"
            f"   with the cache {cached['get x1']['ops_per_s']:>7,.0f} / {cached['get x8']['ops_per_s']:>7,.0f}"
            f"   (misses {cached['get miss x1']['ops_per_s']:,.0f})"
        )


if __name__ == "__main__":
    main()
