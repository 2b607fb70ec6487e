"""Benchmark: no-op echo tasks straight through the agent host's worker pool (no control plane).

    .venv/bin/python benchmarks/bench_worker_pool.py [--tasks 20000] [--workers 2] [--runs 3] [--daemon]

Each run submits every task at once and waits until the last result is
back. With --daemon the tasks go through the agent host's protocol layer
too: Assignments arrive as ControlItems envelopes of 100 (as the control
plane batches them), and every TaskStarted / TaskResult is built as a
HostItem and encoded into HostItems envelopes; only the gRPC stream itself
is replaced by a counter. Prints, per run and as the median of the runs: tasks/s, wall time per
task, and CPU time per task in the host process and in the workers. This is
the host's share of the end-to-end budget (3,000 tasks/s through control
plane + host + 2 workers on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass

import orjson
import psutil
import uvloop
from maos.agenthost import AgentHost, AgentHostConfig, Outcome, PoolTask, TaskOutcome, WorkerPool
from maos.profiles import load_profiles
from maos.v1 import common_pb2, hosts_pb2
from maos.wire import decode_envelope, encode_envelope, json_payload


class _Counter:
    """A PoolListener that only counts, so the benchmark measures the pool."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.target = 0
        self.finished = asyncio.Event()

    def task_started(self, task: PoolTask, agent_id: str) -> None:
        pass

    def task_progress(self, task: PoolTask, fraction: float, message: str) -> None:
        pass

    def task_finished(self, outcome: TaskOutcome) -> None:
        self.done += 1
        if outcome.outcome is not Outcome.SUCCEEDED:
            self.failed += 1
        if self.done == self.target:
            self.finished.set()


class _CountingLink:
    """Stands in for the gRPC stream: batches up-going items into envelopes like the real sender, counts results."""

    connected = True

    def __init__(self, counter: _Counter) -> None:
        self._counter = counter
        self._pending: list[hosts_pb2.HostItem] = []
        self._flush_scheduled = False

    def send(self, item: hosts_pb2.HostItem, size: int = 0) -> bool:
        self._pending.append(item)
        if item.HasField("result"):
            self._counter.task_finished(_SUCCEEDED if item.result.outcome == 1 else _FAILED)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        for i in range(0, len(pending), 100):
            batch = pending[i : i + 100]
            encode_envelope(hosts_pb2.HostItems(items=batch), len(batch))


_SUCCEEDED = TaskOutcome(PoolTask("", 0, ""), Outcome.SUCCEEDED)
_FAILED = TaskOutcome(PoolTask("", 0, ""), Outcome.FAILED)


@dataclass
class RunResult:
    tasks_per_second: float
    wall_us_per_task: float
    host_cpu_us_per_task: float
    worker_cpu_us_per_task: float


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _envelopes(n: int, run: int) -> list[bytes]:
    """Assignments as the control plane sends them: ControlItems envelopes of 100, serialized."""
    out = []
    value = {"n": 1, "text": "hello"}
    for start in range(0, n, 100):
        items = hosts_pb2.ControlItems()
        for i in range(start, min(n, start + 100)):
            task_id = f"0193a0b0-7c1d-7e3f-{run:04d}-{i:012d}"
            items.items.add().assignment.CopyFrom(
                hosts_pb2.Assignment(
                    task_id=task_id,
                    attempt=1,
                    agent_type="echo",
                    input=json_payload(value),
                    timeout_seconds=60,
                    root_id=task_id,
                )
            )
        out.append(encode_envelope(items, len(items.items)).SerializeToString())
    return out


async def _run_once(pool: WorkerPool, counter: _Counter, n: int, run: int, host: AgentHost | None) -> RunResult:
    workers = [psutil.Process(w.pid) for w in pool.workers()]
    me = psutil.Process()
    payload = orjson.dumps({"n": 1, "text": "hello"}).decode()
    counter.done = counter.failed = 0
    counter.target = n
    counter.finished.clear()
    if host is None:
        tasks = [PoolTask(task_id=f"r{run}-{i}", attempt=1, agent_type="echo", input_json=payload) for i in range(n)]
    else:
        wire = _envelopes(n, run)
    host_cpu0 = _cpu_seconds(me)
    worker_cpu0 = sum(_cpu_seconds(p) for p in workers)
    started = time.perf_counter()
    if host is None:
        pool.submit(tasks)
    else:
        for raw in wire:
            envelope = common_pb2.Envelope.FromString(raw)
            host.on_control(decode_envelope(envelope, hosts_pb2.ControlItems))
    await asyncio.wait_for(counter.finished.wait(), 300)
    elapsed = time.perf_counter() - started
    host_cpu = _cpu_seconds(me) - host_cpu0
    worker_cpu = sum(_cpu_seconds(p) for p in workers) - worker_cpu0
    if counter.failed:
        raise RuntimeError(f"{counter.failed} of {n} echo tasks failed")
    return RunResult(n / elapsed, elapsed / n * 1e6, host_cpu / n * 1e6, worker_cpu / n * 1e6)


async def main(n: int, workers: int, runs: int, daemon: bool) -> None:
    counter = _Counter()
    host: AgentHost | None = None
    listener: object = counter
    if daemon:
        # The real protocol layer, minus the socket: AgentHost is the pool's listener.
        host = AgentHost(AgentHostConfig(controlplane="127.0.0.1:1", workers=workers, host_id="bench"))
        host._link = _CountingLink(counter)  # type: ignore[assignment]
        listener = host
    pool = WorkerPool(load_profiles(), size=workers, listener=listener, host_id="bench")  # type: ignore[arg-type]
    if host is not None:
        host._pool = pool
    async with pool:
        await _run_once(pool, counter, min(n, 2000), 0, host)  # warm-up: imports, caches
        results = []
        for run in range(1, runs + 1):
            if host is not None:
                host._unacked.clear()  # nothing acknowledges in this setup
            r = await _run_once(pool, counter, n, run, host)
            results.append(r)
            print(
                f"run {run}: {r.tasks_per_second:9.0f} tasks/s  wall {r.wall_us_per_task:6.1f} us/task  "
                f"host cpu {r.host_cpu_us_per_task:6.1f} us/task  workers cpu {r.worker_cpu_us_per_task:6.1f} us/task"
            )
    med = RunResult(
        statistics.median(r.tasks_per_second for r in results),
        statistics.median(r.wall_us_per_task for r in results),
        statistics.median(r.host_cpu_us_per_task for r in results),
        statistics.median(r.worker_cpu_us_per_task for r in results),
    )
    print(
        f"median of {runs} runs, {n} echo tasks, {workers} workers, {psutil.cpu_count()} CPUs, "
        f"{'through the AgentHost protocol layer' if daemon else 'pool only'}, "
        f"Python {sys.version.split()[0]}:\n"
        f"  throughput            {med.tasks_per_second:9.0f} tasks/s\n"
        f"  wall time per task    {med.wall_us_per_task:9.1f} us\n"
        f"  host CPU per task     {med.host_cpu_us_per_task:9.1f} us  "
        f"({'protobuf in/out, ' if daemon else ''}pool, frames, listener)\n"
        f"  workers CPU per task  {med.worker_cpu_us_per_task:9.1f} us  (frames, TaskContext, stderr capture)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--daemon", action="store_true", help="also go through the AgentHost protocol layer")
    args = parser.parse_args()
    uvloop.run(main(args.tasks, args.workers, args.runs, args.daemon))
