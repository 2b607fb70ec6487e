"""Tracing overhead: single-task round trip with tracing off versus jsonl, in one run.

    .venv/bin/python benchmarks/bench_tracing.py [--trips N] [--json]

Starts two local clusters (a control plane + one agent host each): one with
tracing off, one with `--tracing jsonl:FILE` (the SDK in this process traces
its calls to the second cluster too). Round trips (SubmitTask with a wait, an
`echo` agent) alternate between them, so both see the same machine noise, and
the figures are medians and ratios of that one run. A traced round trip makes
7 spans over 4 processes (client, control plane, host, worker).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from maos import tracing
from maos.client import Client
from maos.client.bench._stats import percentile
from maos.testing import ControlPlaneProcess, Daemon, start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2


def start_cluster(root: Path, spec: str) -> tuple[ControlPlaneProcess, Daemon]:
    cp = start_controlplane(root / "cp", extra=["--tracing", spec])
    host = start_agenthost(cp.endpoint, root / "hosts", workers=1, extra=["--tracing", spec])
    wait_for_hosts(cp.endpoint, 1)
    return cp, host


def round_trip_ms(client: Client) -> float:
    start = time.perf_counter()
    task = client.submit_task("noop", agent_type="echo", input=1, wait=30)
    elapsed = (time.perf_counter() - start) * 1e3
    if task.status != common_pb2.TASK_STATUS_COMPLETED:
        sys.exit(f"a benchmark task did not complete: {task}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trips", type=int, default=300, help="round trips per setting (default 300)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    os.environ.pop(tracing.TRACING_ENV, None)
    tracing.shutdown()
    with tempfile.TemporaryDirectory(prefix="maos-bench-tracing-") as tmp:
        root = Path(tmp)
        spans = root / "spans.jsonl"
        daemons: list[Daemon] = []
        try:
            off_cp, off_host = start_cluster(root / "off", "off")
            daemons += [off_host, off_cp]
            on_cp, on_host = start_cluster(root / "on", f"jsonl:{spans}")
            daemons += [on_host, on_cp]
            off_client = Client(off_cp.endpoint)  # opened while this process traces nothing
            round_trip_ms(off_client)
            tracing.configure(f"jsonl:{spans}", tracing.CLIENT_SERVICE_NAME)
            on_client = Client(on_cp.endpoint)
            round_trip_ms(on_client)
            off_ms: list[float] = []
            on_ms: list[float] = []
            for _ in range(args.trips):
                off_ms.append(round_trip_ms(off_client))
                on_ms.append(round_trip_ms(on_client))
            off_client.close()
            on_client.close()
        finally:
            tracing.shutdown()
            for daemon in daemons:
                daemon.stop()
        span_count = sum(1 for _ in spans.open()) if spans.exists() else 0
    results: dict[str, Any] = {
        "trips": args.trips,
        "off": {"p50_ms": statistics.median(off_ms), "p95_ms": percentile(off_ms, 0.95)},
        "jsonl": {"p50_ms": statistics.median(on_ms), "p95_ms": percentile(on_ms, 0.95)},
        "p50_ratio": statistics.median(on_ms) / statistics.median(off_ms),
        "spans_written": span_count,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"single-task round trip, {args.trips} each, alternating (one run)")
    print(f"  {'tracing':<8} {'p50 ms':>8} {'p95 ms':>8}")
    for name in ("off", "jsonl"):
        print(f"  {name:<8} {results[name]['p50_ms']:>8.2f} {results[name]['p95_ms']:>8.2f}")
    print(f"  p50 ratio jsonl/off: {results['p50_ratio']:.2f}   spans written: {span_count}")


if __name__ == "__main__":
    main()
