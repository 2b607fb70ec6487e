"""`maosctl bench --quick --format json` against a real cluster: every figure, and nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from maos.client import Client
from maos.client.bench import BENCH_LABEL, QUICK

from tests.integration.conftest import Cluster

MAOSCTL = Path(sys.executable).with_name("maosctl")
BUILTIN_TYPES = {"echo", "analyst", "coordinator", "shell"}


def maosctl(endpoint: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAOS_ENDPOINT": endpoint}
    run = subprocess.run([str(MAOSCTL), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def ordered(summary: dict[str, Any], count: int) -> None:
    """A latency summary with every figure, consistent with itself."""
    assert summary["count"] == count
    assert 0 <= summary["min"] <= summary["p50"] <= summary["p95"] <= summary["p99"] <= summary["max"]
    assert summary["min"] <= summary["avg"] <= summary["max"]


@pytest.mark.slow
def test_quick_bench_produces_every_figure_and_cleans_up(cluster: Cluster, tmp_path: Path) -> None:
    with Client(cluster.endpoint) as client:
        before = {t.id for t in client.list_tasks(page_size=1000)}

    run = maosctl(cluster.endpoint, "bench", "--quick", "--format", "json", "--data-dir", str(tmp_path))

    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    for n, title in enumerate(("Task Submission Latency", "Agent Spawning Performance", "Storage I/O Performance")):
        assert f"] {title}" in run.stderr, (n, run.stderr)
    b = doc["benchmarks"]
    assert list(b) == [
        "task_submission",
        "agent_spawning",
        "parallel_processing",
        "communication",
        "database",
        "storage_io",
    ]

    ordered(b["task_submission"]["latency_ms"], QUICK.submissions)
    assert b["task_submission"]["submits_per_second"] > 0

    spawning = b["agent_spawning"]
    assert set(spawning["types"]) == BUILTIN_TYPES
    for name, t in spawning["types"].items():
        assert t["runner"] == ("command" if name == "shell" else "python")
        assert t["cold"]["start_ms"] >= 0 and t["cold"]["round_trip_ms"] > 0
        ordered(t["warm"]["start_ms"], QUICK.warm_tasks_per_type)
        ordered(t["warm"]["round_trip_ms"], QUICK.warm_tasks_per_type)
    assert spawning["total_agents_tested"] == len(BUILTIN_TYPES) * (QUICK.warm_tasks_per_type + 1)
    assert 0 <= spawning["average_spawn_time_ms"] <= spawning["p95_spawn_time_ms"]
    assert "cold" in spawning["cold_basis"]
    # The module's cluster is fresh: its workers had run nothing, so the cold probes were first tasks.
    assert (spawning["workers_at_start"], spawning["fresh_workers_at_start"]) == (2, 2)

    parallel = b["parallel_processing"]
    assert parallel["slots"] == 2
    assert [r["agents"] for r in parallel["runs"]] == list(QUICK.parallel_agents)
    for r in parallel["runs"]:
        assert r["tasks"] == r["agents"] and r["wall_seconds"] > 0 and r["task_seconds"] > 0
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["agents"], abs=0.001)
    assert parallel["runs"][0]["speedup"] == 1.0
    assert parallel["max_speedup"] == max(r["speedup"] for r in parallel["runs"])

    comm = b["communication"]
    ordered(comm["messages"]["latency_ms"], QUICK.messages)
    ordered(comm["messages"]["send_call_ms"], QUICK.messages)
    ordered(comm["state_put_ms"], QUICK.state_ops)
    ordered(comm["state_get_ms"], QUICK.state_ops)

    db = b["database"]
    assert db["tasks"] == QUICK.database_tasks and db["store"].startswith("sqlite:")
    assert db["state_transitions"] >= 3 * QUICK.database_tasks  # queued, running, completed each
    assert db["submits_per_second"] > 0 and db["transitions_per_second"] > 0
    ordered(db["batch_commit_ms"], -(-QUICK.database_tasks // QUICK.database_batch))

    storage = b["storage_io"]
    assert [s["value_bytes"] for s in storage["sizes"]] == list(QUICK.storage_sizes)
    for s in storage["sizes"]:
        assert s["values"] == QUICK.storage_values
        assert s["put_mib_per_second"] > 0 and s["get_mib_per_second"] > 0
        ordered(s["put_ms"], QUICK.storage_values)
        ordered(s["get_ms"], QUICK.storage_values)

    assert all(isinstance(r, str) and r for r in doc["recommendations"])
    cleanup = doc["cleanup"]
    assert cleanup["keys_deleted"] == 1 + len(QUICK.storage_sizes) * QUICK.storage_values
    assert cleanup["messages_acknowledged"] == QUICK.messages
    assert cleanup["tasks_purged"] > cleanup["trees_purged"] > QUICK.submissions + QUICK.database_tasks

    # Nothing the run created is left: tasks, keys, messages, data files.
    with Client(cluster.endpoint) as client:
        after = list(client.list_tasks(page_size=1000))
        assert {t.id for t in after} == before
        assert not [t for t in after if BENCH_LABEL in t.spec.labels]
        assert list(client.state.list(namespace=storage["namespace"])) == []
        assert [m.mailbox for m in client.messages.stats() if m.queued or m.in_flight] == []
    assert list(tmp_path.iterdir()) == []


def test_bench_without_an_agent_host_is_one_clear_error(fresh_cluster: Cluster) -> None:
    fresh_cluster.start_controlplane()
    run = maosctl(fresh_cluster.endpoint, "bench", "--quick")
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: no agent host is connected to {fresh_cluster.endpoint}: start one")
    assert run.stderr.count("\n") == 1 and run.stdout == ""
