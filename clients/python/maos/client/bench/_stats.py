"""Summary statistics of measured samples (pure functions).

Percentiles are nearest-rank: the p-th percentile of n sorted samples is the
ceil(p * n)-th smallest, so it is always a measured value (p95 of 100
samples is the 95th smallest) and min <= p50 <= p95 <= p99 <= max holds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank `p` percentile (0 < p <= 1) of `samples`; ValueError when empty."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < p <= 1:
        raise ValueError(f"percentile rank must be in (0, 1], got {p}")
    ordered = sorted(samples)
    rank = max(math.ceil(p * len(ordered)), 1)
    return ordered[rank - 1]


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """count, avg, p50, p95, p99, min and max of `samples` (rounded to 3 decimals); ValueError when empty."""
    if not samples:
        raise ValueError("no samples to summarise")
    return {
        "count": len(samples),
        "avg": round(statistics.fmean(samples), 3),
        "p50": round(percentile(samples, 0.50), 3),
        "p95": round(percentile(samples, 0.95), 3),
        "p99": round(percentile(samples, 0.99), 3),
        "min": round(min(samples), 3),
        "max": round(max(samples), 3),
    }


def rate(count: float, seconds: float) -> float | None:
    """count / seconds, or None when no time passed (a rate we cannot state)."""
    return round(count / seconds, 3) if seconds > 0 else None


def speedup(base_wall: float, base_tasks: int, wall: float, tasks: int) -> float | None:
    """Throughput of `tasks` equal tasks in `wall` seconds relative to `base_tasks` in `base_wall`.

    With one agent doing one task in T1 and N agents doing N tasks in TN, this
    is N * T1 / TN: N when nothing is lost to coordination, 1 when the N tasks
    ran one after another.
    """
    if base_wall <= 0 or wall <= 0 or base_tasks <= 0:
        return None
    return round((tasks / wall) / (base_tasks / base_wall), 3)
