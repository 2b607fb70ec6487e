"""Foundation benchmark: a local control plane + one agent host, measured end to end.

    .venv/bin/python benchmarks/bench_foundation.py [--quick] [--json]

Prints submission latency (p50/p95/p99 over 1,000 SubmitTask calls), no-op
`echo` throughput (5,000 tasks submitted as fast as one client can, median of
3 runs), single-task round trip (one SubmitTask with wait_seconds, p50/p99) and the demo's
parallel speedup (8 analyst shards + a coordinator, run in parallel versus the
same shards chained one after another on the same cluster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from maos.client.bench._stats import percentile
from maos.client.cli._demo_data import generate_dataset
from maos.testing import start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

ECHO = common_pb2.TaskSpec(
    description="noop", agent_type="echo", input=common_pb2.Payload(data=b"1", content_type="application/json")
)


def submission_latency(stub: tasks_pb2_grpc.TaskServiceStub, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        stub.SubmitTask(tasks_pb2.SubmitTaskRequest(spec=ECHO), timeout=10)
        samples.append((time.perf_counter() - start) * 1e3)
    return {
        "p50_ms": percentile(samples, 0.50),
        "p95_ms": percentile(samples, 0.95),
        "p99_ms": percentile(samples, 0.99),
        "min_ms": min(samples),
        "max_ms": max(samples),
    }


def drain(stub: tasks_pb2_grpc.TaskServiceStub, ids: list[str]) -> None:
    for i in range(0, len(ids), 5000):
        response = stub.WaitTasks(tasks_pb2.WaitTasksRequest(ids=ids[i : i + 5000], timeout_seconds=300), timeout=310)
        bad = [t for t in response.tasks if t.status != common_pb2.TASK_STATUS_COMPLETED]
        if response.timed_out or bad:
            sys.exit(f"benchmark tasks did not complete: {len(bad)} not completed")


def throughput(stub: tasks_pb2_grpc.TaskServiceStub, n: int, runs: int) -> dict[str, Any]:
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        ids: list[str] = []
        for i in range(0, n, 500):
            batch = [ECHO] * min(500, n - i)
            ids += [t.id for t in stub.SubmitTasks(tasks_pb2.SubmitTasksRequest(specs=batch), timeout=30).tasks]
        drain(stub, ids)
        rates.append(n / (time.perf_counter() - start))
    return {"tasks": n, "runs": [round(r) for r in rates], "median_per_s": statistics.median(rates)}


def round_trip(stub: tasks_pb2_grpc.TaskServiceStub, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = stub.SubmitTask(tasks_pb2.SubmitTaskRequest(spec=ECHO, wait_seconds=10), timeout=15)
        samples.append((time.perf_counter() - start) * 1e3)
        if response.task.status != common_pb2.TASK_STATUS_COMPLETED:
            sys.exit(f"round-trip task ended {response.task.status}")
    return {"p50_ms": percentile(samples, 0.50), "p99_ms": percentile(samples, 0.99)}


def run_demo_workflow(stub: tasks_pb2_grpc.TaskServiceStub, paths: list[Path], chained: bool) -> float:
    nodes = []
    for i, path in enumerate(paths):
        spec = common_pb2.TaskSpec(
            description=f"shard {i}",
            agent_type="analyst",
            input=common_pb2.Payload(data=json.dumps({"path": str(path)}).encode(), content_type="application/json"),
        )
        if chained and i:
            spec.depends_on.append(f"shard-{i - 1}")
        nodes.append(tasks_pb2.WorkflowNode(key=f"shard-{i}", spec=spec))
    synthesis = common_pb2.TaskSpec(description="synthesis", agent_type="coordinator")
    synthesis.depends_on.extend(n.key for n in nodes)
    nodes.append(tasks_pb2.WorkflowNode(key="synthesis", spec=synthesis))
    start = time.perf_counter()
    root = stub.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(root=common_pb2.TaskSpec(description="demo"), nodes=nodes), timeout=30
    ).root
    drain(stub, [root.id])
    return time.perf_counter() - start


def demo_speedup(stub: tasks_pb2_grpc.TaskServiceStub, data_dir: Path, runs: int) -> dict[str, Any]:
    paths = generate_dataset(data_dir / "demo")
    run_demo_workflow(stub, paths[:2], chained=False)  # warm the workers' imports
    parallel = [run_demo_workflow(stub, paths, chained=False) for _ in range(runs)]
    sequential = [run_demo_workflow(stub, paths, chained=True) for _ in range(runs)]
    p, s = statistics.median(parallel), statistics.median(sequential)
    return {"parallel_s": p, "sequential_s": s, "speedup": s / p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    submits, tasks, runs, trips, demo_runs = (200, 1000, 1, 100, 1) if args.quick else (1000, 5000, 3, 500, 3)
    with tempfile.TemporaryDirectory(prefix="maos-bench-") as tmp:
        root = Path(tmp)
        cp = start_controlplane(root / "cp")
        host = start_agenthost(cp.endpoint, root, workers=args.workers)
        try:
            wait_for_hosts(cp.endpoint, 1)
            with grpc.insecure_channel(cp.endpoint) as channel:
                stub = tasks_pb2_grpc.TaskServiceStub(channel)
                drain(stub, [stub.SubmitTask(tasks_pb2.SubmitTaskRequest(spec=ECHO)).task.id])  # warm up
                results = {
                    "submission_latency": submission_latency(stub, submits),
                    "noop_throughput": throughput(stub, tasks, runs),
                    "round_trip": round_trip(stub, trips),
                    "demo_speedup": demo_speedup(stub, root, demo_runs),
                    "workers": args.workers,
                }
        finally:
            host.stop()
            cp.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    lat, tp, rt, demo = (
        results["submission_latency"],
        results["noop_throughput"],
        results["round_trip"],
        results["demo_speedup"],
    )
    rows = [
        (
            "submission latency p50 / p95 / p99",
            f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} / {lat['p99_ms']:.2f} ms",
            "p95 < 3 ms",
        ),
        ("no-op echo throughput (median)", f"{tp['median_per_s']:,.0f} tasks/s  runs {tp['runs']}", ">= 3,000/s"),
        ("single-task round trip p50 / p99", f"{rt['p50_ms']:.2f} / {rt['p99_ms']:.2f} ms", "< 2 / < 6 ms"),
        (
            "demo speedup (8 shards, parallel vs chained)",
            f"{demo['speedup']:.2f}x  ({demo['sequential_s']:.2f}s -> {demo['parallel_s']:.2f}s)",
            ">= 1.8x",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"MAOS foundation benchmark — {args.workers} workers, {'quick' if args.quick else 'full'} run")
    print(f"{'measure'.ljust(width)}  {'result'.ljust(vwidth)}  target")
    print(f"{'-' * width}  {'-' * vwidth}  ------")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value.ljust(vwidth)}  {target}")


if __name__ == "__main__":
    main()
