"""Store benchmark: SQLite against PostgreSQL, from the Store protocol up to end-to-end.

    .venv/bin/python benchmarks/bench_store.py [--quick] [--json] [--finished N] [--postgres URL]

1. Task inserts and state transitions per second through `Store.write`, on
   both backends: "single" = one task per write, each awaited before the next
   (latency-bound, one commit each); "batched" = 100 tasks per write, all
   handed over at once (group commits, as the runtime does under load).
   Median of 3 runs.
2. End-to-end no-op throughput: a real control plane (SQLite, then
   PostgreSQL) and one 2-worker agent host, echo tasks submitted in batches of
   500 and waited for (median of 3 runs); the PostgreSQL/SQLite ratio (target
   >= 70%).
3. With --finished N (e.g. 1000000): the same end-to-end throughput after
   bulk-loading N finished tasks into the store (COPY on PostgreSQL,
   executemany on SQLite), against the empty store (target: within 20%).

PostgreSQL runs in a fresh schema of the `test` database (or --postgres URL),
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from maos.controlplane._ids import UlidGenerator
from maos.controlplane.core import TaskEventRecord, TaskStatus
from maos.controlplane.store import (
    PostgresOptions,
    PostgresStore,
    SqliteStore,
    Store,
    WriteBatch,
    event_row,
    full_row,
    mutable_row,
    record_from_spec,
)
from maos.controlplane.store._pg_schema import create_partitions, month_of, next_month
from maos.controlplane.store._rows import ALL_COLUMNS
from maos.testing import start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
ECHO = common_pb2.TaskSpec(
    description="noop", agent_type="echo", input=common_pb2.Payload(data=b"1", content_type="application/json")
)
BATCH = 100
RUNS = 3

# ------------------------------------------------------------ store level


def _records(n: int, ids: UlidGenerator) -> list[Any]:
    now = time.time()
    return [
        record_from_spec(tid, ECHO, root_id=tid, agent_type="echo", created_at=now)
        for tid in (ids.new() for _ in range(n))
    ]


def _event(rec: Any, status: TaskStatus) -> tuple[Any, ...]:
    rec.seq += 1
    return event_row(
        TaskEventRecord(rec.id, rec.seq, status, rec.attempt, time.time(), rec.host_id, status.name.lower(), 0.0, "")
    )


def _insert_batch(recs: list[Any]) -> WriteBatch:
    for rec in recs:
        rec.status = TaskStatus.QUEUED
    return WriteBatch(inserts=[full_row(r) for r in recs], events=[_event(r, TaskStatus.QUEUED) for r in recs])


def _transition_batch(recs: list[Any]) -> WriteBatch:
    for rec in recs:
        rec.status, rec.attempt, rec.host_id = TaskStatus.RUNNING, 1, "bench-host"
    return WriteBatch(updates=[mutable_row(r) for r in recs], events=[_event(r, TaskStatus.RUNNING) for r in recs])


async def _single(store: Store, recs: list[Any], make: Callable[[list[Any]], WriteBatch]) -> float:
    start = time.perf_counter()
    for rec in recs:
        await store.write(make([rec]))
    return len(recs) / (time.perf_counter() - start)


async def _batched(store: Store, recs: list[Any], make: Callable[[list[Any]], WriteBatch]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(store.write(make(recs[i : i + BATCH])) for i in range(0, len(recs), BATCH)))
    return len(recs) / (time.perf_counter() - start)


async def store_rates(
    open_store: Callable[[], AbstractAsyncContextManager[Store]], single: int, batched: int
) -> dict[str, float]:
    """Median rows/s of each (operation, mode) over RUNS runs, each on a fresh store."""
    samples: dict[str, list[float]] = {}
    ids = UlidGenerator()
    for _ in range(RUNS):
        async with open_store() as store:
            few, many = _records(single, ids), _records(batched, ids)
            samples.setdefault("insert single", []).append(await _single(store, few, _insert_batch))
            samples.setdefault("insert batched", []).append(await _batched(store, many, _insert_batch))
            samples.setdefault("transition single", []).append(await _single(store, few, _transition_batch))
            samples.setdefault("transition batched", []).append(await _batched(store, many, _transition_batch))
    return {k: statistics.median(v) for k, v in samples.items()}


# ------------------------------------------------------------- PostgreSQL


async def _drop_schema(base_url: str, schema: str) -> None:
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A fresh schema's store URL; the schema is dropped afterwards."""
    schema = f"maos_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{base_url}?schema={schema}"
    finally:
        asyncio.run(_drop_schema(base_url, schema))


def _finished_rows(n: int, now: float) -> Iterator[list[tuple[Any, ...]]]:
    """N finished tasks, created over the last ~90 days, in chunks (rows as `full_row` makes them)."""
    ids = UlidGenerator()
    template = record_from_spec("x", ECHO, root_id="x", agent_type="echo", created_at=now)
    template.status, template.attempt, template.result = TaskStatus.COMPLETED, 1, b"1"
    template.result_type, template.host_id, template.agent_id = "application/json", "old-host", "old-host-w0"
    base = list(full_row(template))
    chunk: list[tuple[Any, ...]] = []
    for i in range(n):
        row = base.copy()
        row[0] = row[1] = ids.new()
        row[4] = now - 90 * 86400 * (1 - i / n)
        chunk.append(tuple(row))
        if len(chunk) == 50_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def bulk_load_postgres(url: str, n: int) -> float:
    """COPY n finished tasks into the store at `url` (opened once so its schema exists)."""
    store = PostgresStore(url, PostgresOptions(pool_size=1, max_overflow=0))
    await store.open()
    await store.close()
    conn = await store.connect()
    start = time.perf_counter()
    try:
        now = time.time()
        months = [month_of(now - 90 * 86400)]
        while months[-1] != month_of(now):
            months.append(next_month(months[-1]))
        await create_partitions(conn, months)
        for chunk in _finished_rows(n, now):
            await conn.copy_records_to_table(
                "tasks", records=chunk, columns=ALL_COLUMNS, schema_name=store.target.schema
            )
        await conn.execute("ANALYZE tasks")
        if await conn.fetchval("SELECT COUNT(*) FROM tasks") != n:
            sys.exit("the bulk load into PostgreSQL did not land every row")
    finally:
        await conn.close()
    return time.perf_counter() - start


def bulk_load_sqlite(data_dir: Path, n: int) -> float:
    async def create() -> None:
        store = SqliteStore(data_dir / "maos.db")
        await store.open()
        await store.close()

    asyncio.run(create())
    start = time.perf_counter()
    with sqlite3.connect(data_dir / "maos.db") as db:
        sql = f"INSERT INTO tasks ({', '.join(ALL_COLUMNS)}) VALUES ({', '.join('?' * len(ALL_COLUMNS))})"
        for chunk in _finished_rows(n, time.time()):
            db.executemany(sql, chunk)
        if db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] != n:
            sys.exit("the bulk load into SQLite did not land every row")
    return time.perf_counter() - start


# -------------------------------------------------------------- end to end


def drain(stub: tasks_pb2_grpc.TaskServiceStub, ids: list[str]) -> None:
    for i in range(0, len(ids), 5000):
        response = stub.WaitTasks(tasks_pb2.WaitTasksRequest(ids=ids[i : i + 5000], timeout_seconds=300), timeout=310)
        bad = [t for t in response.tasks if t.status != common_pb2.TASK_STATUS_COMPLETED]
        if response.timed_out or bad:
            sys.exit(f"benchmark tasks did not complete: {len(bad)} not completed")


def throughput(stub: tasks_pb2_grpc.TaskServiceStub, n: int, runs: int) -> list[float]:
    """Echo tasks per second, submitted 500 at a time and waited for (as bench_foundation.py)."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        ids: list[str] = []
        for i in range(0, n, 500):
            batch = [ECHO] * min(500, n - i)
            ids += [t.id for t in stub.SubmitTasks(tasks_pb2.SubmitTasksRequest(specs=batch), timeout=30).tasks]
        drain(stub, ids)
        rates.append(n / (time.perf_counter() - start))
    return rates


@contextmanager
def cluster(data_dir: Path, store_args: list[str]) -> Iterator[tasks_pb2_grpc.TaskServiceStub]:
    """A control plane (on the store the args name) and one 2-worker host, warmed up."""
    cp = start_controlplane(data_dir / "cp", extra=store_args, timeout=120)
    host = start_agenthost(cp.endpoint, data_dir, workers=2)
    try:
        wait_for_hosts(cp.endpoint, 1)
        with grpc.insecure_channel(cp.endpoint) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            drain(stub, [stub.SubmitTask(tasks_pb2.SubmitTaskRequest(spec=ECHO)).task.id])
            yield stub
    finally:
        host.stop()
        cp.stop()


def round_robin(stubs: dict[str, tasks_pb2_grpc.TaskServiceStub], tasks: int, runs: int) -> dict[str, list[float]]:
    """One run on each cluster in turn, `runs` rounds: the machine's drifting load hits all alike."""
    rates: dict[str, list[float]] = {name: [] for name in stubs}
    for _ in range(runs):
        for name, stub in stubs.items():
            rates[name] += throughput(stub, tasks, 1)
    return rates


# ----------------------------------------------------------------- report


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows and tasks (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--finished", type=int, default=0, help="also measure with N finished tasks in the store")
    parser.add_argument("--postgres", default=POSTGRES_URL, help=f"PostgreSQL database to use ({POSTGRES_URL})")
    parser.add_argument("--skip-e2e", action="store_true", help="only the store-level figures")
    args = parser.parse_args()
    single, batched, tasks = (100, 2_000, 1_000) if args.quick else (500, 20_000, 5_000)
    pg_options = PostgresOptions(pool_size=4, max_overflow=4)
    results: dict[str, Any] = {"store": {}, "e2e": {}}

    with tempfile.TemporaryDirectory(prefix="maos-bench-store-") as tmp:
        root = Path(tmp)

        @asynccontextmanager
        async def sqlite() -> AsyncIterator[Store]:
            store = SqliteStore(root / f"{uuid.uuid4().hex}.db")
            await store.open()
            try:
                yield store
            finally:
                await store.close()

        @asynccontextmanager
        async def postgres() -> AsyncIterator[Store]:
            schema = f"maos_bench_{uuid.uuid4().hex[:12]}"
            store = PostgresStore(f"{args.postgres}?schema={schema}", pg_options)
            await store.open()
            try:
                yield store
            finally:
                await store.close()
                await _drop_schema(args.postgres, schema)

        results["store"]["sqlite"] = asyncio.run(store_rates(sqlite, single, batched))
        results["store"]["postgresql"] = asyncio.run(store_rates(postgres, single, batched))

        if not args.skip_e2e:
            pg_flags = ["--store-pool-size", "4", "--store-max-overflow", "4"]
            with contextlib.ExitStack() as stack:
                loaded: dict[str, float] = {}
                stores: dict[str, list[str]] = {
                    "sqlite": [],
                    "postgresql": ["--store", stack.enter_context(pg_schema(args.postgres)), *pg_flags],
                }
                if args.finished:
                    url = stack.enter_context(pg_schema(args.postgres))
                    loaded["postgresql"] = asyncio.run(bulk_load_postgres(url, args.finished))
                    stores["postgresql+finished"] = ["--store", url, *pg_flags]
                    (root / "sqlite+finished" / "cp").mkdir(parents=True)
                    loaded["sqlite"] = bulk_load_sqlite(root / "sqlite+finished" / "cp", args.finished)
                    stores["sqlite+finished"] = []
                    results["bulk_load_seconds"] = loaded
                stubs = {name: stack.enter_context(cluster(root / name, extra)) for name, extra in stores.items()}
                e2e = round_robin(stubs, tasks, RUNS)
            results["e2e"] = {
                k: {"runs": [round(r) for r in v], "median_per_s": statistics.median(v)} for k, v in e2e.items()
            }
            pairs = [("postgresql", "sqlite"), ("postgresql+finished", "postgresql"), ("sqlite+finished", "sqlite")]
            results["ratios"] = {
                f"{a}/{b}": statistics.median(x / y for x, y in zip(e2e[a], e2e[b], strict=True))
                for a, b in pairs
                if a in e2e
            }

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"MAOS store benchmark — {'quick' if args.quick else 'full'} run, medians of {RUNS}")
    print()
    rows = []
    for op in ("insert single", "insert batched", "transition single", "transition batched"):
        s, p = results["store"]["sqlite"][op], results["store"]["postgresql"][op]
        rows.append([op, f"{s:,.0f}", f"{p:,.0f}", f"{p / s:.2f}"])
    print(table(["tasks/s through Store.write", "SQLite", "PostgreSQL", "PG/SQLite"], rows))
    if results["e2e"]:
        e, ratios = results["e2e"], results["ratios"]
        print()
        rows = [[k, f"{v['median_per_s']:,.0f}", str(v["runs"])] for k, v in e.items()]
        print(table(["end-to-end no-op echo (2 workers)", "tasks/s", "runs (round robin)"], rows))
        print(
            f"\nPostgreSQL / SQLite end to end: {ratios['postgresql/sqlite']:.0%} "
            "(median of the per-round ratios; target >= 70%)"
        )
        for kind in ("postgresql", "sqlite"):
            if f"{kind}+finished/{kind}" in ratios:
                print(
                    f"{kind}: with {args.finished:,} finished tasks {ratios[f'{kind}+finished/{kind}']:.0%} of the "
                    f"empty store's throughput (target >= 80%; bulk load {results['bulk_load_seconds'][kind]:.1f}s)"
                )


if __name__ == "__main__":
    main()
