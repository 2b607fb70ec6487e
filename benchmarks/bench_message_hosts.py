"""Messages between agents on hosts: two hosts (through the control plane) and one host (local).

    .venv/bin/python benchmarks/bench_message_hosts.py [--quick] [--json] [--only TEXT] [--layout two|one]

Starts a real control plane and agent hosts. Each scenario is a workflow of
a receiver agent and a sender agent (benchmarks/message_agents.py). On "two
hosts" the receiver's host offers only the receiver type and the sender's
host only the sender type, so every message goes sender -> its host's relay
-> host stream -> control plane (persisted) -> the other host's stream ->
relay -> receiver. On "one host" both run on one host and its relay delivers
locally. Batched = send_many (1,000 a call, 4 calls in flight); unbatched =
one Send per call (64 in flight). Throughput is messages / (last received -
first sent); latency is receive time - send time (in the payload), so under
load it includes time queued. "lone" rows send one message every 5 ms: the
latency of a message on an idle system. Compression is the host streams'
(bytes before / after lz4) over the run, from the relays' statistics. While
it runs, each row also says how many Receive calls the receiver made and how
many send calls a full mailbox refused (each sent again after 5 ms), and
the CPU time each process used per message (user + system over the
scenario, its workflow's start and end included; a host's workers counted
apart from it): work that shows where a run spent its time, and a figure
less at the mercy of other load on the machine than the rate. --only and
--layout pick scenarios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from maos.client import Client
from maos.client.bench._stats import percentile
from maos.testing import start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
PROFILES = {
    "bench-receiver": {"runner": {"python": "benchmarks.message_agents:receiver"}, "timeout": 600},
    "bench-sender": {"runner": {"python": "benchmarks.message_agents:sender"}, "timeout": 600},
}


def _agents(tmp: Path, name: str, types: list[str]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"agent_types": {t: PROFILES[t] for t in types}}))
    return path


def run_pair(stub: tasks_pb2_grpc.TaskServiceStub, params: dict[str, Any]) -> dict[str, Any]:
    def node(key: str, agent_type: str) -> tasks_pb2.WorkflowNode:
        payload = common_pb2.Payload(data=json.dumps(params).encode(), content_type="application/json")
        return tasks_pb2.WorkflowNode(
            key=key, spec=common_pb2.TaskSpec(description=key, agent_type=agent_type, input=payload)
        )

    reply = stub.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(
            root=common_pb2.TaskSpec(description="bench"),
            nodes=[node("receiver", "bench-receiver"), node("sender", "bench-sender")],
        ),
        timeout=10,
    )
    done = stub.WaitTasks(tasks_pb2.WaitTasksRequest(ids=[reply.root.id], timeout_seconds=600), timeout=610)
    root = done.tasks[0]
    if root.status != common_pb2.TASK_STATUS_COMPLETED:
        raise SystemExit(f"benchmark workflow ended {common_pb2.TaskStatus.Name(root.status)}: {root.error.message}")

    def result(key: str) -> Any:
        task = stub.GetTask(tasks_pb2.GetTaskRequest(id=reply.task_ids[key]), timeout=10)
        return json.loads(task.result.data)

    rx, tx = result("receiver"), result("sender")
    lat = rx["latencies"]
    return {
        "per_second": params["count"] / max(1e-9, rx["last"] - tx["start"]),
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "receive_calls": rx.get("calls", 0),
        "backoffs": tx.get("backoffs", 0),
    }


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) so far of each named daemon, and of its children as "<name> workers"."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            times = proc.cpu_times()
            out[name] = times.user + times.system
            children = proc.children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            key = f"{name} workers"
            out[key] = out.get(key, 0.0) + times.user + times.system
    return out


def compression(endpoint: str) -> float:
    with Client(endpoint) as client:
        rows = client.messages.host_stats()
    raw = sum(r.stats.bytes_raw for r in rows)
    wire = sum(r.stats.bytes_compressed for r in rows)
    return raw / wire if wire else 1.0


def scenarios(quick: bool, only: str = "", batched: int = 0) -> list[tuple[str, dict[str, Any]]]:
    n_batched, n_single, n_lone = (20_000, 2_000, 100) if quick else (200_000, 10_000, 400)
    n_batched = batched or n_batched
    out: list[tuple[str, dict[str, Any]]] = []
    for size in (100, 4096):
        out.append(
            (f"batched {size} B", {"count": n_batched // (4 if size > 1000 else 1), "size": size, "batch": 1000})
        )
        out.append((f"unbatched {size} B", {"count": n_single, "size": size, "batch": 1, "window": 64}))
    out.append(("lone 100 B", {"count": n_lone, "size": 100, "batch": 1, "gap": 0.005}))
    return [(name, params) for name, params in out if name.startswith(only)]


def run(layout: str, quick: bool, tmp: Path, only: str = "", batched: int = 0) -> list[dict[str, Any]]:
    cp = start_controlplane(tmp / layout, extra=["--heartbeat-interval", "0.5"])
    hosts = []
    try:
        if layout == "two hosts":
            for name, types in (("rx", ["bench-receiver"]), ("tx", ["bench-sender"])):
                hosts.append(
                    start_agenthost(
                        cp.endpoint,
                        tmp / layout,
                        workers=1,
                        agents=_agents(tmp, f"{layout}-{name}", types),
                        host_id=f"{name}-{time.monotonic_ns()}",
                        extra=["--python-path", str(ROOT)],
                    )
                )
        else:
            hosts.append(
                start_agenthost(
                    cp.endpoint,
                    tmp / layout,
                    workers=2,
                    agents=_agents(tmp, layout, list(PROFILES)),
                    extra=["--python-path", str(ROOT)],
                )
            )
        wait_for_hosts(cp.endpoint, len(hosts))
        names = ["rx host", "tx host"] if layout == "two hosts" else ["host"]
        pids = {"cp": cp.pid, **{name: host.pid for name, host in zip(names, hosts, strict=True)}}
        import grpc

        rows = []
        with grpc.insecure_channel(cp.endpoint) as channel:
            stub = tasks_pb2_grpc.TaskServiceStub(channel)
            for name, params in scenarios(quick, only, batched):
                before = cpu_seconds(pids)
                figures = run_pair(stub, params)
                after = cpu_seconds(pids)
                cpu = {k: (v - before.get(k, 0.0)) * 1e6 / params["count"] for k, v in after.items()}
                figures["cpu_us_per_msg"] = cpu
                rows.append({"layout": layout, "scenario": name, "messages": params["count"], **figures})
                print(
                    f"  {layout:<9} {name:<18} {params['count']:>8,} msgs  {figures['per_second']:>10,.0f}/s  "
                    f"p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms  "
                    f"({figures['receive_calls']:,} receive calls, {figures['backoffs']:,} sends refused full)\n"
                    f"    CPU per message: {', '.join(f'{k} {v:,.0f} us' for k, v in cpu.items())}; "
                    f"total {sum(cpu.values()):,.0f} us",
                    flush=True,
                )
        time.sleep(1.2)  # the relays' statistics ride on heartbeats
        ratio = compression(cp.endpoint)
        for row in rows:
            row["compression"] = ratio
        return rows
    finally:
        for host in hosts:
            host.stop()
        cp.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--only", default="", help="run the scenarios whose name starts with this (e.g. 'batched 100')")
    parser.add_argument("--layout", choices=("two", "one"), help="run one layout only")
    parser.add_argument(
        "--batched", type=int, default=0, help="messages in a batched 100 B run (4 KB: a quarter); e.g. to profile"
    )
    args = parser.parse_args()
    layouts = [name for name in ("two hosts", "one host") if args.layout is None or name.startswith(args.layout)]
    with tempfile.TemporaryDirectory(prefix="maos-bench-msg-") as tmp:
        rows = [row for layout in layouts for row in run(layout, args.quick, Path(tmp), args.only, args.batched)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print()
    print(f"{'layout':<10} {'scenario':<18} {'messages':>9} {'msgs/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'lz4':>6}")
    for r in rows:
        print(
            f"{r['layout']:<10} {r['scenario']:<18} {r['messages']:>9,} {r['per_second']:>11,.0f} "
            f"{r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['compression']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
