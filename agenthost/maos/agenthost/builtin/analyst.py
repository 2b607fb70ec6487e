"""The analyst agent: descriptive statistics and a linear trend over one data shard.

Input:
    {"path": "/data/shard-3.csv",        # .csv, .json (a list of objects, or {"rows": [...]}), .jsonl
     "columns": ["price", "qty"],         # optional: only these (each must be numeric)
     "x": "day"}                          # optional: the trend's x column (default: the row index)

Output:
    {"path": ..., "rows": N,
     "columns": {name: {count, mean, std, min, p25, p50, p75, max,
                        trend: {slope, intercept, r2}}},
     "sums":    {name: {n, sum, sumsq, mean, m2, min, max, sketch}}}

`sums` is what a coordinator needs to pool shards exactly (n, mean, M2;
sum and sum of squares too) plus a 21-point quantile sketch for an
approximate pooled median. std is the sample standard deviation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from maos.client._context import TaskContext

from ._stats import Moments, Regression, quantile, sketch


def run(ctx: TaskContext, input: Any) -> dict[str, Any]:
    """Analyse the file named by input["path"]; raises ValueError (naming the path) on bad input."""
    if not isinstance(input, dict) or not isinstance(input.get("path"), str) or not input["path"]:
        raise ValueError('analyst: input must be an object like {"path": "/abs/file.csv"}')
    path = Path(input["path"])
    wanted = input.get("columns")
    if wanted is not None and (not isinstance(wanted, list) or not all(isinstance(c, str) for c in wanted)):
        raise ValueError(f"analyst: {path}: 'columns' must be a list of column names")
    x_column = input.get("x")
    if x_column is not None and not isinstance(x_column, str):
        raise ValueError(f"analyst: {path}: 'x' must be a column name")

    rows = _read_rows(path)
    return analyse(ctx, str(path), rows, wanted, x_column)


def analyse(
    ctx: TaskContext | None,
    path: str,
    rows: list[dict[str, Any]],
    wanted: list[str] | None = None,
    x_column: str | None = None,
) -> dict[str, Any]:
    """The statistics of already-loaded rows (each a mapping of column -> value)."""
    names = _column_names(rows)
    numeric = _numeric_columns(rows, names)
    if wanted is not None:
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(f"analyst: {path}: no column {missing[0]!r} (columns: {', '.join(names) or 'none'})")
        not_numeric = [c for c in wanted if c not in numeric]
        if not_numeric:
            raise ValueError(f"analyst: {path}: column {not_numeric[0]!r} is not numeric")
        columns = list(wanted)
    else:
        columns = [c for c in names if c in numeric and c != x_column]
    if not columns:
        raise ValueError(f"analyst: {path}: no numeric columns (columns: {', '.join(names) or 'none'})")
    if x_column is not None and x_column not in numeric:
        raise ValueError(f"analyst: {path}: the x column {x_column!r} is missing or not numeric")

    moments = {c: Moments() for c in columns}
    trends = {c: Regression() for c in columns}
    values: dict[str, list[float]] = {c: [] for c in columns}
    total = len(rows)
    step = max(1, total // 10)
    for i, row in enumerate(rows):
        x = float(i) if x_column is None else _number(row.get(x_column))
        for c in columns:
            y = _number(row.get(c))
            if y is None:
                continue
            moments[c].add(y)
            values[c].append(y)
            if x is not None:
                trends[c].add(x, y)
        if ctx is not None and (i + 1) % step == 0:
            ctx.progress((i + 1) / total, f"{i + 1}/{total} rows")

    out_columns: dict[str, Any] = {}
    sums: dict[str, Any] = {}
    for c in columns:
        m = moments[c]
        vs = sorted(values[c])
        if m.n == 0:
            out_columns[c] = {"count": 0}
            sums[c] = {"n": 0, "sum": 0.0, "sumsq": 0.0, "mean": None, "m2": 0.0, "min": None, "max": None}
            continue
        out_columns[c] = {
            "count": m.n,
            "mean": m.mean,
            "std": m.std,
            "min": m.min,
            "p25": quantile(vs, 0.25),
            "p50": quantile(vs, 0.5),
            "p75": quantile(vs, 0.75),
            "max": m.max,
            "trend": trends[c].fit(),
        }
        sums[c] = {
            "n": m.n,
            "sum": m.total,
            "sumsq": m.sumsq,
            "mean": m.mean,
            "m2": m.m2,
            "min": m.min,
            "max": m.max,
            "sketch": sketch(vs),
        }
    return {"path": path, "rows": total, "columns": out_columns, "sums": sums}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ValueError(f"analyst: input file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        if suffix == ".jsonl":
            return list(_jsonl_rows(path))
        if suffix == ".json":
            doc = orjson.loads(path.read_bytes())
            if isinstance(doc, dict) and isinstance(doc.get("rows"), list):
                doc = doc["rows"]
            if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
                raise ValueError(f"analyst: {path}: a .json file must hold a list of objects (or {{'rows': [...]}})")
            return doc
    except (OSError, UnicodeDecodeError, orjson.JSONDecodeError, csv.Error) as exc:
        raise ValueError(f"analyst: cannot read {path}: {exc}") from exc
    raise ValueError(f"analyst: {path}: unsupported file type {suffix or '(none)'!r}; use .csv, .json or .jsonl")


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = orjson.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"analyst: {path}:{lineno}: each line must be a JSON object")
            yield row


def _column_names(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key is not None:
                names.setdefault(str(key), None)
    return list(names)


def _numeric_columns(rows: list[dict[str, Any]], names: list[str]) -> set[str]:
    """Columns whose non-empty values all parse as finite numbers (and at least one does)."""
    numeric = set()
    for c in names:
        seen = False
        for row in rows:
            v = row.get(c)
            if v is None or v == "":
                continue
            if not _parses_as_number(v):
                break
            seen = True
        else:
            if seen:
                numeric.add(c)
    return numeric


def _parses_as_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _number(v: Any) -> float | None:
    """The value as a finite float; None for missing, non-numeric, NaN and infinities (skipped)."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None
