"""The demo: 8 CSV shards analysed in parallel by `analyst` agents, then a `coordinator` synthesis.

One SubmitWorkflow call, the live progress display, then a results table
with the parallel speedup the run actually achieved.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from maos.v1 import common_pb2

from .._async_client import AsyncClient
from .._enums import status_name
from .._specs import task_result
from ._demo_data import ROWS_PER_SHARD, SHARDS, generate_dataset
from ._output import duration, render_fields, render_table, timestamp, truncate
from ._progress import follow_progress
from ._views import error_line

_COMPLETED = common_pb2.TASK_STATUS_COMPLETED
_METRIC = "revenue"


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def column_stat(result: Any, column: str, stat: str) -> float | None:
    """A per-column statistic from an analyst result, whichever common nesting it uses."""
    for path in ((column, stat), ("columns", column, stat), ("stats", column, stat), ("numeric", column, stat)):
        found = _number(_dig(result, *path))
        if found is not None:
            return found
    return None


def row_count(result: Any) -> int | None:
    """The number of rows an analyst result reports (top-level, or a column's count)."""
    for key in ("rows", "row_count", "count", "n"):
        found = _number(_dig(result, key))
        if found is not None:
            return int(found)
    found = column_stat(result, _METRIC, "count")
    return None if found is None else int(found)


def scalar_leaves(value: Any, prefix: str = "", depth: int = 3) -> list[tuple[str, Any]]:
    """(dotted path, value) for the numbers and short strings in a nested result."""
    if isinstance(value, Mapping) and depth > 0:
        leaves: list[tuple[str, Any]] = []
        for key, inner in value.items():
            leaves.extend(scalar_leaves(inner, f"{prefix}.{key}" if prefix else str(key), depth - 1))
        return leaves
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 60):
        return [(prefix or "value", value)]
    return []


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.3f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _interval(task: common_pb2.Task) -> tuple[dt.datetime, dt.datetime] | None:
    start = timestamp(task.started_at, task.HasField("started_at"))
    end = timestamp(task.finished_at, task.HasField("finished_at"))
    return None if start is None or end is None else (start, end)


def parallel_speedup(tasks: Sequence[common_pb2.Task]) -> tuple[float, float, float] | None:
    """(sum of run times, wall span from first start to last finish, their ratio) or None."""
    spans = [iv for iv in map(_interval, tasks) if iv is not None]
    if not spans:
        return None
    busy = sum((end - start).total_seconds() for start, end in spans)
    wall = (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()
    return busy, wall, (busy / wall if wall > 0 else float("nan"))


def workflow_nodes(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """The demo graph: shard-1..N on `analyst`, then `synthesis` on `coordinator` after all of them."""
    nodes: dict[str, dict[str, Any]] = {
        f"shard-{i}": {
            "description": f"shard-{i}: statistics of {path.name}",
            "type": "analysis",
            "agent_type": "analyst",
            "input": {"path": str(path)},
        }
        for i, path in enumerate(paths, start=1)
    }
    nodes["synthesis"] = {
        "description": f"synthesis: pool the statistics of {len(paths)} shards",
        "type": "coordination",
        "agent_type": "coordinator",
        "depends_on": list(nodes),
    }
    return nodes


# Statistic columns of the pooled table: (header, keys the coordinator may use for it).
_POOLED_STATS = (
    ("count", ("count", "n")),
    ("mean", ("mean",)),
    ("std", ("std",)),
    ("min", ("min",)),
    ("median", ("median", "median_approx", "p50")),
    ("max", ("max",)),
)


def synthesis_summary(result: Any) -> str:
    """The coordinator's pooled figures: a per-column table when it reports one, else its scalar fields."""
    pooled = _dig(result, "pooled") if isinstance(_dig(result, "pooled"), Mapping) else result
    columns = _dig(pooled, "columns")
    shards, total = _number(_dig(pooled, "shards")), _number(_dig(pooled, "total_rows"))
    scope = f"{int(shards)} shards" if shards is not None else "all shards"
    if total is not None:
        scope += f", {int(total):,} rows"
    head = f"synthesis (pooled over {scope}):"
    if isinstance(columns, Mapping) and columns and all(isinstance(v, Mapping) for v in columns.values()):
        rows = []
        for name, stats in columns.items():
            cells: list[object] = [name]
            for _header, keys in _POOLED_STATS:
                value = next((stats[k] for k in keys if _number(stats.get(k)) is not None), None)
                cells.append(None if value is None else _fmt(value))
            rows.append(cells)
        table = render_table(("column", *(h for h, _ in _POOLED_STATS)), rows, right=range(1, 7))
        return head + "\n" + "\n".join("  " + line for line in table.splitlines())
    leaves = scalar_leaves(pooled)[:14]
    if not leaves:
        return f"{head}\n  {truncate(str(result), 100)}"
    return head + "\n" + "\n".join(f"  {truncate(path, 40):<40}  {_fmt(value)}" for path, value in leaves)


def results_report(tasks_by_key: Mapping[str, common_pb2.Task], wall_seconds: float, slots: int | None) -> str:
    """The table printed after the run: per shard, the synthesis, totals and speedup."""
    shards = [(k, t) for k, t in tasks_by_key.items() if k.startswith("shard-")]
    shards.sort(key=lambda kv: int(kv[0].split("-", 1)[1]))
    rows = []
    for key, task in shards:
        result = task_result(task)
        iv = _interval(task)
        mean = column_stat(result, _METRIC, "mean")
        count = row_count(result)
        rows.append(
            (
                key,
                status_name(task.status),
                task.placement.agent_id or None,
                task.placement.host_id or None,
                None if count is None else f"{count:,}",
                duration((iv[1] - iv[0]).total_seconds()) if iv else None,
                None if mean is None else f"{mean:,.2f}",
            )
        )
    parts = [
        render_table(
            ("node", "status", "agent", "host", "rows", "duration", f"mean {_METRIC}"),
            rows,
            right=(4, 5, 6),
            max_widths={2: 24, 3: 24},
        )
    ]
    synthesis = tasks_by_key.get("synthesis")
    if synthesis is not None:
        parts.append("")
        if synthesis.status != _COMPLETED:
            parts.append(f"synthesis: {status_name(synthesis.status)} — {error_line(synthesis) or 'no result'}")
        else:
            parts.append(synthesis_summary(task_result(synthesis)))
    all_tasks = list(tasks_by_key.values())
    agent_seconds = sum((iv[1] - iv[0]).total_seconds() for iv in map(_interval, all_tasks) if iv is not None)
    figures = [
        ("wall time (submit to result)", duration(wall_seconds)),
        ("agents' running time (sum)", duration(agent_seconds)),
    ]
    speed = parallel_speedup([t for _, t in shards])
    if speed is not None:
        busy, span, ratio = speed
        on = f" on {slots} worker slots" if slots else ""
        figures.append(
            (
                "parallel speedup",
                f"{ratio:.2f}x{on}\n= sum of shard run times {duration(busy)}"
                f" / first shard start to last shard finish {duration(span)}",
            )
        )
    parts.append("")
    parts.append(render_fields(figures))
    return "\n".join(parts)


async def run_demo(endpoint: str, data_dir: Path, out: TextIO, *, rows: int = ROWS_PER_SHARD) -> int:
    """Generate the data, run the workflow with a live display, print the report; 0 iff it completed."""
    demo_dir = data_dir / "demo"

    def shard_written(i: int, path: Path) -> None:
        out.write(f"  wrote {path.name} ({i + 1}/{SHARDS})\n")
        out.flush()

    out.write(f"sample dataset: {SHARDS} CSV shards x {rows:,} rows in {demo_dir}\n")
    out.flush()
    paths = generate_dataset(demo_dir, rows=rows, on_shard=shard_written)
    async with AsyncClient(endpoint) as client:
        slots = sum(h.slots for h in await client.list_hosts()) or None
        started = time.monotonic()
        root, ids = await client.submit_workflow(
            workflow_nodes(paths),
            f"demo: analyse {len(paths)} CSV shards in parallel, then synthesise",
            labels={"demo": "shards"},
        )
        out.write(f"submitted workflow {root.id} ({len(ids)} tasks)\n\n")
        out.flush()
        names = {task_id: key for key, task_id in ids.items()}
        view = await follow_progress(client, root.id, out, names=names, report=False)
        wall = time.monotonic() - started
    by_id = {t.id: t for t in view.children.values()}
    tasks_by_key = {key: by_id[task_id] for key, task_id in ids.items() if task_id in by_id}
    out.write("\n" + results_report(tasks_by_key, wall, slots) + "\n")
    if view.root.status != _COMPLETED:
        out.write(f"\nthe workflow ended {status_name(view.root.status)}: {error_line(view.root) or ''}\n")
        out.flush()
        return 1
    out.flush()
    return 0
