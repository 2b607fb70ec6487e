"""Checkpoint benchmark: write and restore MB/s and the compression ratio for 100,000 tasks.

    .venv/bin/python benchmarks/bench_checkpoints.py [--tasks N] [--runs R] [--s3] [--quick] [--json]

A control plane's components (SQLite store, shared state, messaging, the runtime)
run in this process on a temporary data directory, filled straight through the
store with N tasks (each with 3 events and an attempt; most finished, a few
queued, running or pending), 1 shared-state key per 10 tasks and 1 queued message
per 20 tasks. Then R times: a checkpoint is written to a local directory, and
restored into a fresh, empty set of components. With --s3 the same runs go to a
local S3 server (moto, started here) with multipart uploads in 10 MiB parts.
Throughput is the checkpoint's raw (uncompressed JSON) bytes per second; the
figures are medians of the runs, measured on this machine in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from maos.controlplane._library import Library
from maos.controlplane._runtime import Runtime, RuntimeSettings
from maos.controlplane._validation import InputLimits
from maos.controlplane.checkpoints import CheckpointManager, CheckpointTarget, LocalTarget, Sources
from maos.controlplane.checkpoints._s3 import S3Target
from maos.controlplane.core import AttemptRecord, TaskEventRecord, TaskStatus
from maos.controlplane.messaging import Messaging, MessagingConfig, RuntimeTaskDirectory, StoredMessage, open_messaging
from maos.controlplane.state import StateBackend, open_state_backend
from maos.controlplane.store import SqliteStore, WriteBatch, attempt_row, event_row, full_row, record_from_spec
from maos.v1 import common_pb2

MIB = 1024 * 1024


class Plane:
    """The parts of a control plane a checkpoint reads from and restores into."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.db = data_dir / "maos.db"
        self.store = SqliteStore(self.db)
        self.runtime = Runtime(self.store, RuntimeSettings(), InputLimits(), lambda: ["echo", "analyst"])
        self.library = Library(self.runtime)
        self.state: StateBackend | None = None
        self.messaging: Messaging | None = None

    async def open(self) -> Sources:
        await self.store.open()
        await self.runtime.start()
        await self.library.load()
        self.state = await open_state_backend("sqlite", self.db)
        directory = RuntimeTaskDirectory(self.runtime.orch.tasks, self.store.get_tasks)
        self.messaging = await open_messaging(self.db, directory, MessagingConfig())
        return Sources(self.runtime, self.library, self.state, self.messaging)

    async def close(self) -> None:
        await self.runtime.shutdown()
        if self.messaging is not None:
            await self.messaging.close()
        if self.state is not None:
            await self.state.close()
        await self.store.close()


def _spec(i: int) -> common_pb2.TaskSpec:
    data = {"path": f"/data/shards/sales-{i:06d}.csv", "columns": ["region", "units", "price"], "shard": i}
    return common_pb2.TaskSpec(
        description=f"summarise sales shard {i} by region",
        agent_type="analyst",
        input=common_pb2.Payload(data=orjson.dumps(data), content_type="application/json"),
        labels={"team": "data", "run": "nightly"},
    )


async def fill(plane: Plane, tasks: int) -> None:
    """N tasks in trees of 10 (a root and 9 children), with events, attempts, state and messages."""
    from maos.controlplane._ids import UlidGenerator

    ids = UlidGenerator()
    now = time.time()
    root_id = ""
    for start in range(0, tasks, 5000):
        batch = WriteBatch()
        for i in range(start, min(tasks, start + 5000)):
            task_id = ids.new()
            if i % 10 == 0:
                root_id = task_id
            spec = _spec(i)
            if task_id != root_id:
                spec.parent_id = root_id
            created = now - 3600 + i / 100
            rec = record_from_spec(task_id, spec, root_id=root_id, agent_type="analyst", created_at=created)
            kind = i % 50
            status = (
                TaskStatus.QUEUED
                if kind == 0
                else TaskStatus.PENDING
                if kind == 1
                else TaskStatus.FAILED
                if kind == 2
                else TaskStatus.COMPLETED
            )
            rec.status = status
            rec.attempt = 0 if status in (TaskStatus.QUEUED, TaskStatus.PENDING) else 1
            rec.seq = 3 if rec.attempt else 1
            rec.queued_at = rec.created_at + 0.01
            if rec.attempt:
                rec.host_id, rec.agent_id = "host-a-1234", f"host-a-1234/w{i % 8}"
                rec.started_at, rec.finished_at = rec.queued_at + 0.02, rec.queued_at + 0.5
                if status == TaskStatus.COMPLETED:
                    result = {"region": {"north": i % 97, "south": i % 89}, "rows": 1000 + i % 500, "mean": i / 7}
                    rec.result, rec.result_type, rec.progress = orjson.dumps(result), "application/json", 1.0
                else:
                    rec.error_kind, rec.error_message = "ValueError", f"shard {i} has a malformed row 17"
            batch.inserts.append(full_row(rec))
            events = [(TaskStatus.QUEUED, "queued")]
            if rec.attempt:
                events += [(TaskStatus.RUNNING, "running on agent w1"), (status, status.name.lower())]
            for seq, (st, message) in enumerate(events, 1):
                host = rec.host_id if seq > 1 else ""
                ev = TaskEventRecord(task_id, seq, st, rec.attempt if seq > 1 else 0, now, host, message, 0.0, "")
                batch.events.append(event_row(ev))
            if rec.attempt:
                a = AttemptRecord(
                    task_id, 1, rec.host_id, rec.agent_id, rec.queued_at, rec.started_at, rec.finished_at, status
                )
                batch.attempts.append(attempt_row(a))
        await plane.store.write(batch)
    assert plane.state is not None
    assert plane.messaging is not None
    for i in range(tasks // 10):
        value = orjson.dumps({"progress": i % 100, "findings": [f"shard {i} region north", "units up 3%"]})
        await plane.state.put(f"tree:ROOT{i // 10:05d}", f"results/{i:06d}", value)
    messages = [
        StoredMessage(
            seq=i + 1,
            mailbox=f"task:T{i % 500:05d}",
            id=f"M{i:08d}",
            sender="",
            recipient=f"T{i % 500:05d}",
            topic="",
            priority=3,
            data=orjson.dumps({"hint": f"look at shard {i}", "n": i}),
            content_type="application/json",
            sent_at=now,
            expires_at=now + 86400,
        )
        for i in range(tasks // 20)
    ]
    await plane.messaging.store.insert(messages)


def start_moto(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ, S3_UPLOAD_PART_MIN_SIZE="1024")
    with log_path.open("wb") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], stdout=log, stderr=log, env=env
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(rb"Running on (http://127\.0\.0\.1:\d+)", log_path.read_bytes())
        if found:
            return proc, found.group(1).decode()
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"moto server did not start: {log_path.read_text()}")


async def one_run(root: Path, sources: Sources, target_for: Any, run: int) -> dict[str, float]:
    target: CheckpointTarget = target_for(root / f"ckpt-{run}")
    manager = CheckpointManager(target, sources)
    await manager.open()
    t0 = time.perf_counter()
    manifest = await manager.create(label=f"bench run {run}")
    write_s = time.perf_counter() - t0
    await manager.close()

    fresh = Plane(root / f"restore-{run}")
    fresh_sources = await fresh.open()
    target2: CheckpointTarget = target_for(root / f"ckpt-{run}")
    restorer = CheckpointManager(target2, fresh_sources)
    await restorer.open()
    t0 = time.perf_counter()
    summary = await restorer.restore(manifest.id)
    restore_s = time.perf_counter() - t0
    await restorer.close()
    await fresh.close()
    shutil.rmtree(root / f"restore-{run}", ignore_errors=True)
    assert summary.counts["tasks"] == manifest.counts["tasks"]
    return {
        "tasks": manifest.counts["tasks"],
        "raw_bytes": manifest.raw_bytes,
        "stored_bytes": manifest.compressed_bytes,
        "ratio": manifest.compression_ratio,
        "write_s": write_s,
        "restore_s": restore_s,
    }


async def bench(tasks: int, runs: int, use_s3: bool) -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="maos-bench-ckpt-"))
    moto: subprocess.Popen[bytes] | None = None
    try:
        source = Plane(root / "source")
        sources = await source.open()
        t0 = time.perf_counter()
        await fill(source, tasks)
        print(f"filled the store with {tasks:,} tasks in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        targets: list[tuple[str, Any]] = [("local dir", lambda path: LocalTarget(path))]
        if use_s3:
            import boto3  # type: ignore[import-untyped]

            moto, endpoint = start_moto(root / "moto.log")
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="maos-bench")

            def s3(path: Path) -> S3Target:
                return S3Target(
                    "maos-bench",
                    path.name,
                    endpoint_url=endpoint,
                    multipart_threshold=10 * MIB,
                    part_size=10 * MIB,
                    concurrency=8,
                )

            targets.append(("S3 (moto)", s3))
        rows = []
        for name, target_for in targets:
            results = [await one_run(root / name.split()[0], sources, target_for, r) for r in range(runs)]
            raw = results[0]["raw_bytes"]
            write_s = statistics.median(r["write_s"] for r in results)
            restore_s = statistics.median(r["restore_s"] for r in results)
            rows.append(
                {
                    "target": name,
                    "tasks": results[0]["tasks"],
                    "raw_mib": raw / MIB,
                    "stored_mib": results[0]["stored_bytes"] / MIB,
                    "compression_ratio": results[0]["ratio"],
                    "write_s": write_s,
                    "write_mib_s": raw / MIB / write_s,
                    "restore_s": restore_s,
                    "restore_mib_s": raw / MIB / restore_s,
                    "runs": runs,
                }
            )
        await source.close()
        return rows
    finally:
        if moto is not None:
            moto.send_signal(signal.SIGTERM)
            moto.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def print_table(rows: list[dict[str, Any]]) -> None:
    headers = ["target", "tasks", "raw MiB", "stored MiB", "ratio"]
    headers += ["write s", "write MiB/s", "restore s", "restore MiB/s"]
    body = [
        [
            r["target"],
            f"{r['tasks']:,}",
            f"{r['raw_mib']:.1f}",
            f"{r['stored_mib']:.1f}",
            f"{r['compression_ratio']:.2f}x",
            f"{r['write_s']:.2f}",
            f"{r['write_mib_s']:.1f}",
            f"{r['restore_s']:.2f}",
            f"{r['restore_mib_s']:.1f}",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in body:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also write to and restore from a local S3 server (moto)")
    parser.add_argument("--quick", action="store_true", help="10,000 tasks, one run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.runs = 10_000, 1
    import uvloop

    rows = uvloop.run(bench(args.tasks, args.runs, args.s3))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
