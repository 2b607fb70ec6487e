"""`maosctl task analyze "DESCRIPTION" --recommend-agents` learning from a real cluster's finished tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from maos.client import Client
from maos.client.recommend import MIN_HISTORY

from tests.integration.conftest import Cluster

MAOSCTL = Path(sys.executable).with_name("maosctl")


def analyze(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAOS_ENDPOINT": endpoint}
    run = subprocess.run(
        [str(MAOSCTL), "task", "analyze", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run


def recommendation(endpoint: str, description: str) -> dict[str, Any]:
    run = analyze(endpoint, description, "--recommend-agents", "--format", "json")
    assert run.returncode == 0, run.stderr
    doc: dict[str, Any] = json.loads(run.stdout)
    return doc


def shard_workflow(client: Client, region: int, data: Path) -> str:
    nodes: dict[str, Any] = {}
    for i in range(3):
        path = data / f"r{region}-{i}.csv"
        path.write_text("day,sales\n" + "".join(f"{d},{(d * 7 + i) % 13}\n" for d in range(50)))
        nodes[f"shard{i}"] = {"description": f"shard {i}", "agent_type": "analyst", "input": {"path": str(path)}}
    nodes["pool"] = {"description": "pool", "agent_type": "coordinator", "depends_on": list(nodes)}
    root, _ = client.submit_workflow(nodes, f"analyse the sales shards of region {region}")
    return root.id


@pytest.mark.slow
def test_heuristics_with_little_history_then_the_model_once_there_is_enough(cluster: Cluster, tmp_path: Path) -> None:
    with Client(cluster.endpoint) as client:
        hellos = [client.submit_task(f"say hello to visitor {i}", agent_type="echo", input=i) for i in range(3)]
        client.wait_tasks([t.id for t in hellos], timeout=30)

        few = recommendation(cluster.endpoint, "analyse the sales shards of region north")
        assert few["method"] == "heuristics"
        assert few["history"]["trees"] == 3 and few["history"]["tasks"] == 3
        assert 1 <= few["complexity"] <= 10 and few["recommended_agents"] >= 1

        roots = [shard_workflow(client, region, tmp_path) for region in range(12)]
        more = [client.submit_task(f"say hello to visitor {i}", agent_type="echo", input=i) for i in range(3, 13)]
        done = client.wait_tasks(roots + [t.id for t in more], timeout=60)
        assert {t.status for t in done} == {4}, [t.error.message for t in done if t.status != 4]

    trees = 3 + 12 + 10
    assert trees >= MIN_HISTORY
    learned = recommendation(cluster.endpoint, "analyse the sales shards of region north")
    assert learned["method"] == "model"
    assert learned["history"]["trees"] == trees
    assert learned["history"]["tasks"] == 3 + 12 * 5 + 10  # each workflow: its root and four nodes
    assert learned["recommended_agents"] == 4
    assert learned["agent_types"] == [{"type": "analyst", "count": 3}, {"type": "coordinator", "count": 1}]
    assert 0 < learned["estimated_duration_seconds"]["low"] <= learned["estimated_duration_seconds"]["high"]
    assert learned["parallel_efficiency"] > 0

    # Not an id, so a description; the people's view says which path answered.
    hello = analyze(cluster.endpoint, "say hello to visitor 99")
    assert hello.returncode == 0, hello.stderr
    assert f"learned (scikit-learn random forest + nearest neighbours) from {trees} finished task trees" in hello.stdout
    assert "recommended agents:   1 (echo x1)" in hello.stdout


def test_bad_input_is_one_clear_line(cluster: Cluster) -> None:
    both = analyze(cluster.endpoint, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--performance", "--recommend-agents")
    assert both.returncode == 1 and both.stderr.startswith("error: --performance analyses a task id")
    empty = analyze(cluster.endpoint, " ", "--recommend-agents")
    assert empty.returncode == 1 and empty.stderr.startswith("error: the description is empty")
    missing = analyze(cluster.endpoint, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--performance")
    assert missing.returncode == 1 and "01ARZ3NDEKTSV4RRFFQ69G5FAV" in missing.stderr
