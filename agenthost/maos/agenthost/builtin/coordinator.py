"""The coordinator agent: synthesises its dependencies' analyst results into one report.

Reads ctx.dependencies (task_id, key, status, result, description). Every
completed dependency whose result looks like an analyst result is a shard;
the others are listed under "skipped" with the reason. Per column it pools
count, mean, std (sample), min and max exactly (Chan et al.'s parallel
variance formula) and estimates the median from the shards' quantile
sketches (approximate, and the output says so).

Input (optional): {"title": "..."}.
"""

from __future__ import annotations

import math
from typing import Any

from maos.client._context import TaskContext

from ._stats import Moments, merged_median

MEDIAN_NOTE = (
    "median_approx is approximate: it merges each shard's 21-point quantile sketch "
    "(linear interpolation between 5% steps); count, mean, std, min and max are exact"
)


def run(ctx: TaskContext, input: Any) -> dict[str, Any]:
    """Pool the shard results of ctx.dependencies."""
    title = input.get("title") if isinstance(input, dict) else None
    return synthesise(ctx.dependencies, title=title if isinstance(title, str) else None)


def synthesise(dependencies: list[dict[str, Any]], *, title: str | None = None) -> dict[str, Any]:
    """The report for a list of dependency dicts (usable without a TaskContext)."""
    pooled: dict[str, Moments] = {}
    sketches: dict[str, list[tuple[int, list[float]]]] = {}
    shard_counts: dict[str, int] = {}
    contributions: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    total_rows = 0
    for dep in dependencies:
        task_id = str(dep.get("task_id", ""))
        key = str(dep.get("key", "") or "")
        status = str(dep.get("status", ""))
        result = dep.get("result")
        if status and status != "COMPLETED":
            skipped.append({"task_id": task_id, "key": key, "status": status, "reason": f"dependency {status}"})
            continue
        if not _is_shard(result):
            skipped.append(
                {"task_id": task_id, "key": key, "status": status, "reason": "result is not an analyst result"}
            )
            continue
        assert isinstance(result, dict)
        rows = int(result.get("rows") or 0)
        total_rows += rows
        means: dict[str, float | None] = {}
        for column, s in result["sums"].items():
            if not isinstance(s, dict) or not s.get("n"):
                continue
            m = Moments(
                n=int(s["n"]),
                mean=float(s["mean"]) if s.get("mean") is not None else float(s["sum"]) / int(s["n"]),
                m2=float(s["m2"]) if s.get("m2") is not None else _m2_from_sums(s),
                min=float(s["min"]),
                max=float(s["max"]),
                total=float(s.get("sum", 0.0)),
                sumsq=float(s.get("sumsq", 0.0)),
            )
            pooled.setdefault(column, Moments()).merge(m)
            shard_counts[column] = shard_counts.get(column, 0) + 1
            sk = s.get("sketch")
            if isinstance(sk, list) and len(sk) >= 2:
                sketches.setdefault(column, []).append((m.n, [float(v) for v in sk]))
            means[column] = m.mean
        contributions.append({"key": key, "task_id": task_id, "path": result.get("path"), "rows": rows, "means": means})

    columns: dict[str, Any] = {}
    for column, m in pooled.items():
        columns[column] = {
            "count": m.n,
            "mean": m.mean,
            "std": m.std,
            "min": m.min,
            "max": m.max,
            "median_approx": merged_median(sketches.get(column, [])),
            "shards": shard_counts[column],
        }
    report: dict[str, Any] = {
        "title": title or "Synthesis of shard analyses",
        "shards": len(contributions),
        "total_rows": total_rows,
        "columns": columns,
        "median_note": MEDIAN_NOTE,
        "contributions": contributions,
        "skipped": skipped,
    }
    report["summary"] = _summary(report)
    return report


def _is_shard(result: Any) -> bool:
    return isinstance(result, dict) and isinstance(result.get("sums"), dict) and "rows" in result


def _m2_from_sums(s: dict[str, Any]) -> float:
    # Fallback for results that carry only sum/sumsq (less stable than M2, but exact in exact arithmetic).
    n = int(s["n"])
    total = float(s["sum"])
    return max(0.0, float(s["sumsq"]) - total * total / n)


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.6g}"


def _summary(report: dict[str, Any]) -> str:
    if not report["shards"]:
        why = f" ({len(report['skipped'])} dependencies skipped)" if report["skipped"] else ""
        return f"No shard results to synthesise{why}."
    lines = [f"{report['shards']} shards, {report['total_rows']} rows in total."]
    for column, c in sorted(report["columns"].items()):
        lines.append(
            f"{column}: n={c['count']}, mean={_fmt(c['mean'])}, std={_fmt(c['std'])}, "
            f"range [{_fmt(c['min'])}, {_fmt(c['max'])}], median ~{_fmt(c['median_approx'])}"
        )
    if report["skipped"]:
        lines.append(f"{len(report['skipped'])} dependencies skipped (see 'skipped').")
    return "\n".join(lines)
