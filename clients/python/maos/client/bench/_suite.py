"""`run_bench`: the six benchmarks of the performance guide against a connected cluster,
in order, with progress, then the cleanup and the recommendations."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from maos.errors import FailedPrecondition, InvalidArgument, MaosError

from .._sync_client import Client
from ._cleanup import clean_up
from ._communication import communication
from ._config import BenchConfig
from ._context import BenchContext, Progress
from ._database import database
from ._parallel import parallel_processing
from ._rules import recommendations
from ._spawning import agent_spawning, cold_probes
from ._storage import storage_io
from ._submission import task_submission

Benchmark = Callable[[BenchContext], dict[str, Any]]

BENCHMARKS: tuple[tuple[str, str, Benchmark], ...] = (
    ("task_submission", "Task Submission Latency", task_submission),
    ("agent_spawning", "Agent Spawning Performance", agent_spawning),
    ("parallel_processing", "Parallel Processing Efficiency", parallel_processing),
    ("communication", "Communication Latency", communication),
    ("database", "Database Performance", database),
    ("storage_io", "Storage I/O Performance", storage_io),
)
TITLES = {key: title for key, title, _ in BENCHMARKS}
_WORKER_REPORT_SECONDS = 3.0


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    """Where the analyst's CSV shards go: `given` (only our files are removed after), else a temp dir."""
    if given is not None:
        try:
            given.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidArgument(f"--data-dir {given}: {exc.strerror or exc}") from None
        try:
            yield given
        finally:
            for shard in given.glob("bench-shard-*.csv"):
                shard.unlink(missing_ok=True)
        return
    path = Path(tempfile.mkdtemp(prefix="maos-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _prefixed(progress: Progress, prefix: str) -> Progress:
    return lambda message: progress(f"{prefix}: {message}")


def _cluster(client: Client) -> dict[str, Any]:
    hosts = client.list_hosts()
    if not hosts:
        raise FailedPrecondition(
            f"no agent host is connected to {client.endpoint}: start one "
            f"(maosctl agenthost --controlplane {client.endpoint}) and run the bench again"
        )
    status = client.status()
    slots = sum(h.slots for h in hosts)
    workers = client.list_agents()
    deadline = time.monotonic() + _WORKER_REPORT_SECONDS
    while len(workers) < slots and time.monotonic() < deadline:
        time.sleep(0.05)  # a host lists its workers in heartbeats: a just-connected one may not have yet
        workers = client.list_agents()
    return {
        "version": status.version,
        "store": status.store,
        "hosts": len(hosts),
        "slots": slots,
        "cpu_count": sum(h.cpu_count for h in hosts),
        "agent_types": sorted({t.name for h in hosts for t in h.agent_types}),
        "workers": len(workers),
        "fresh_workers": sum(1 for w in workers if w.tasks_completed == 0 and w.tasks_failed == 0),
        "tasks_unfinished_at_start": sum(status.tasks_by_status.get(s, 0) for s in ("pending", "queued", "running")),
    }


def run_bench(
    client: Client,
    config: BenchConfig,
    *,
    progress: Progress = lambda _: None,
    data_dir: Path | None = None,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the benchmarks (all, or the keys in `only`) and return the report document.

    Everything the run creates is removed before returning, also when a
    benchmark fails; the document's `cleanup` says what was removed.
    """
    unknown = sorted(set(only) - set(TITLES))
    if unknown:
        raise InvalidArgument(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(TITLES)}")
    cluster = _cluster(client)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "run_id": run_id,
        "mode": config.name,
        "endpoint": client.endpoint,
        "started_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "cluster": cluster,
        "benchmarks": {},
    }
    chosen = [b for b in BENCHMARKS if not only or b[0] in only]
    with _data_dir(data_dir) as directory:
        ctx = BenchContext(
            client,
            config,
            run_id,
            directory,
            progress,
            slots=cluster["slots"],
            agent_types=tuple(cluster["agent_types"]),
            namespace="global",  # the operators' namespace; every key is under bench/<run id>/ and deleted
            workers=cluster["workers"],
            fresh_workers=cluster["fresh_workers"],
        )
        failed = True
        try:
            if any(key == "agent_spawning" for key, _, _ in chosen):
                progress("probing cold starts: the run's first task of each agent type")
                ctx.cold_probes = cold_probes(ctx)
            for n, (key, title, benchmark) in enumerate(chosen, 1):
                prefix = f"[{n}/{len(chosen)}] {title}"
                progress(prefix)
                ctx.progress = _prefixed(progress, prefix)
                begun = time.perf_counter()
                section = benchmark(ctx)
                section["seconds"] = round(time.perf_counter() - begun, 3)
                doc["benchmarks"][key] = section
            failed = False
        finally:
            progress("cleaning up: deleting the run's keys, purging its tasks")
            try:
                doc["cleanup"] = clean_up(client, ctx.created, config.timeout_seconds)
            except MaosError as exc:
                if not failed:
                    raise
                progress(f"cleanup incomplete: {exc}")  # the benchmark's own error is the one to report
    doc["recommendations"] = recommendations(doc)
    doc["duration_seconds"] = round(time.perf_counter() - started, 3)
    return doc
