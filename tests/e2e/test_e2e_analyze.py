"""`maosctl task analyze ID --performance` and `task compare ID --baseline sequential` on a real run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Fixtures come from conftest.py (cluster, maosctl).
Maosctl = Callable[..., Any]

FAN_IN = """\
description: e2e analyze fan-in
nodes:
  - id: one
    description: one
    agent_type: echo
    input: {n: 1}
  - id: two
    description: two
    agent_type: echo
    input: {n: 2}
  - id: three
    description: three
    agent_type: echo
    input: {n: 3}
  - id: join
    description: join
    agent_type: coordinator
    depends_on: [one, two, three]
"""

EPS = 1e-6


def test_analyze_and_compare_a_finished_workflow(maosctl: Maosctl, tmp_path: Path) -> None:
    path = tmp_path / "fan-in.yaml"
    path.write_text(FAN_IN)
    run = maosctl("workflow", "submit", str(path), "--wait", timeout=90)
    assert run.code == 0, run.stderr
    root_id = run.stdout.splitlines()[0].removeprefix("root: ")

    analysis = maosctl("task", "analyze", root_id, "--performance", "--format", "json")
    assert analysis.code == 0, analysis.stderr
    doc = analysis.json()
    assert isinstance(doc, dict)
    assert doc["root_id"] == root_id
    assert doc["nodes"] == 4
    wall, work = doc["wall_seconds"], doc["total_work_seconds"]
    critical = doc["critical_path"]["seconds"]
    assert 0 < critical <= wall + EPS
    assert work >= critical - EPS
    # The join depends on all three streams, so it ends every longest chain.
    names = [n["name"] for n in doc["critical_path"]["nodes"]]
    assert len(names) == 2 and names[-1] == "join", names
    assert doc["agents_used"] >= 1
    assert 0 < doc["parallel_efficiency"] <= 1 + EPS
    split = doc["time_split"]
    assert {n["name"] for n in split["nodes"]} == {"one", "two", "three", "join"}
    assert split["running_seconds"] == work
    assert 1 <= len(doc["slowest"]) <= 5
    assert all(0 <= a["utilisation"] <= 1 + EPS for a in doc["agents"])
    assert isinstance(doc["suggestions"], list)

    table = maosctl("task", "analyze", root_id, "--performance")
    assert table.code == 0, table.stderr
    assert "critical path:" in table.stdout and "what would have helped:" in table.stdout

    compared = maosctl("task", "compare", root_id, "--baseline", "sequential", "--format", "json")
    assert compared.code == 0, compared.stderr
    cmp = compared.json()
    assert isinstance(cmp, dict)
    assert cmp["baseline"] == "sequential"
    assert cmp["wall_seconds"] == wall
    assert cmp["sequential_seconds"] == work
    assert cmp["speedup"] > 0
    assert 0 < cmp["efficiency_per_agent"] <= 1 + EPS
    assert abs(cmp["efficiency_per_agent"] - doc["parallel_efficiency"]) < 1e-3

    plain = maosctl("task", "compare", root_id, "--baseline", "sequential")
    assert plain.code == 0, plain.stderr
    assert plain.stdout.splitlines()[0].split()[:3] == ["RUN", "SEQUENTIAL", "SPEEDUP"]
