"""The demo's pure parts: dataset, graph, result extraction, speedup arithmetic."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from maos.client.cli._demo import (
    column_stat,
    parallel_speedup,
    results_report,
    row_count,
    scalar_leaves,
    synthesis_summary,
    workflow_nodes,
)
from maos.client.cli._demo_data import COLUMNS, generate_dataset
from maos.v1 import common_pb2
from maos.wire import json_payload


def test_dataset_is_deterministic_and_cached(tmp_path: Path) -> None:
    paths = generate_dataset(tmp_path / "a", shards=3, rows=50)
    again = generate_dataset(tmp_path / "b", shards=3, rows=50)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    with paths[1].open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 50
    assert rows[0]["timestamp"] == "2025-01-01T00:50:00Z"  # shard 2 continues where shard 1 stopped
    assert all(p.is_absolute() for p in paths)
    mtimes = [p.stat().st_mtime_ns for p in paths]
    calls: list[int] = []
    generate_dataset(tmp_path / "a", shards=3, rows=50, on_shard=lambda i, _p: calls.append(i))
    assert calls == []  # reused, not rewritten
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    generate_dataset(tmp_path / "a", shards=3, rows=60, on_shard=lambda i, _p: calls.append(i))
    assert calls == [0, 1, 2]  # different parameters: regenerated


def test_workflow_graph() -> None:
    nodes = workflow_nodes([Path("/d/shard-1.csv"), Path("/d/shard-2.csv")])
    assert list(nodes) == ["shard-1", "shard-2", "synthesis"]
    assert nodes["shard-1"]["agent_type"] == "analyst"
    assert nodes["shard-1"]["input"] == {"path": "/d/shard-1.csv"}
    assert nodes["synthesis"]["agent_type"] == "coordinator"
    assert nodes["synthesis"]["depends_on"] == ["shard-1", "shard-2"]


def test_result_extraction_tolerates_common_shapes() -> None:
    assert column_stat({"revenue": {"mean": 2.5}}, "revenue", "mean") == 2.5
    assert column_stat({"columns": {"revenue": {"mean": 3}}}, "revenue", "mean") == 3.0
    assert column_stat({"columns": {"units": {"mean": 3}}}, "revenue", "mean") is None
    assert column_stat(None, "revenue", "mean") is None
    assert row_count({"rows": 60000}) == 60000
    assert row_count({"columns": {"revenue": {"count": 10}}}) == 10
    assert row_count("nonsense") is None


def test_scalar_leaves() -> None:
    leaves = scalar_leaves({"rows": 10, "revenue": {"mean": 1.5, "quantiles": [1, 2]}, "note": "ok"})
    assert leaves == [("rows", 10), ("revenue.mean", 1.5), ("note", "ok")]


def ran(key: str, start: float, end: float, result: object = None) -> common_pb2.Task:
    task = common_pb2.Task(id=key, status=common_pb2.TASK_STATUS_COMPLETED)
    task.started_at.CopyFrom(Timestamp(seconds=int(start), nanos=int((start % 1) * 1e9)))
    task.finished_at.CopyFrom(Timestamp(seconds=int(end), nanos=int((end % 1) * 1e9)))
    task.placement.host_id, task.placement.agent_id = "h1", f"a-{key}"
    if result is not None:
        task.result.CopyFrom(json_payload(result))
    return task


def test_synthesis_summary_tabulates_pooled_columns() -> None:
    result = {
        "shards": 8,
        "total_rows": 960_000,
        "columns": {
            "revenue": {"count": 960_000, "mean": 1080.5, "std": 98.25, "min": 700.0, "median_approx": 1079.9},
            "units": {"count": 960_000, "mean": 43.2, "std": 4.1, "min": 21.0, "max": 60.0},
        },
    }
    lines = synthesis_summary(result).splitlines()
    assert lines[0] == "synthesis (pooled over 8 shards, 960,000 rows):"
    assert lines[1].split() == ["COLUMN", "COUNT", "MEAN", "STD", "MIN", "MEDIAN", "MAX"]
    assert lines[2].split() == ["revenue", "960,000", "1,080.5", "98.250", "700", "1,079.9", "-"]
    assert lines[3].split() == ["units", "960,000", "43.200", "4.100", "21", "-", "60"]


def test_speedup_is_busy_time_over_wall_span() -> None:
    tasks = [ran("a", 100, 102), ran("b", 100, 102), ran("c", 102, 104), ran("d", 102, 104)]
    busy, wall, ratio = parallel_speedup(tasks) or (0, 0, 0)
    assert (busy, wall, ratio) == (8.0, 4.0, 2.0)
    assert parallel_speedup([common_pb2.Task()]) is None


def test_results_report() -> None:
    tasks = {
        "shard-2": ran("shard-2", 100, 101, {"rows": 5, "columns": {"revenue": {"mean": 1234.5}}}),
        "shard-1": ran("shard-1", 100, 101.5, {"rows": 5, "columns": {"revenue": {"mean": 1000}}}),
        "synthesis": ran("synthesis", 101.5, 101.75, {"total_rows": 10, "revenue": {"mean": 1117.25}}),
    }
    text = results_report(tasks, wall_seconds=2.0, slots=2)
    lines = text.splitlines()
    assert lines[0].split() == ["NODE", "STATUS", "AGENT", "HOST", "ROWS", "DURATION", "MEAN", "REVENUE"]
    assert lines[1].split()[0] == "shard-1"  # numeric order, not insertion order
    assert "1,234.50" in lines[2]
    assert "synthesis (pooled over all shards, 10 rows):" in text
    assert re.search(r"revenue.mean\s+1,117.2", text)
    figures = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in lines if ":" in line}
    assert figures["parallel speedup"] == "1.67x on 2 worker slots"  # (1.5 + 1.0) / 1.5
    assert figures["agents' running time (sum)"] == "2.75s"  # shards and synthesis
    assert figures["wall time (submit to result)"] == "2.00s"
