"""Statistics shared by the analyst and coordinator agents (pure Python, numerically careful).

Means and variances use Welford's update and Chan et al.'s parallel merge, so
pooling shards gives the same answer as one pass over all rows (up to
floating point), not an average of averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Quantile sketch points per column per shard: 0%, 5%, ..., 100%.
SKETCH_POINTS = 21


@dataclass(slots=True)
class Moments:
    """Count, mean and M2 (sum of squared deviations) plus min/max/sum/sum of squares."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    total: float = 0.0
    sumsq: float = 0.0

    def add(self, x: float) -> None:
        """Welford's update with one value."""
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        self.total += x
        self.sumsq += x * x
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x

    def merge(self, other: Moments) -> None:
        """Chan et al.'s parallel combination: exact pooled count, mean and M2."""
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            self.min, self.max, self.total, self.sumsq = other.min, other.max, other.total, other.sumsq
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.total += other.total
        self.sumsq += other.sumsq

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1), None below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation, None below two values."""
        var = self.variance
        return math.sqrt(max(var, 0.0)) if var is not None else None


@dataclass(slots=True)
class Regression:
    """Online least squares of y on x (co-moments, Welford style)."""

    n: int = 0
    mean_x: float = 0.0
    mean_y: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0

    def add(self, x: float, y: float) -> None:
        """Add one (x, y) point."""
        self.n += 1
        dx = x - self.mean_x
        self.mean_x += dx / self.n
        dy = y - self.mean_y
        self.mean_y += dy / self.n
        self.sxx += dx * (x - self.mean_x)
        self.syy += dy * (y - self.mean_y)
        self.sxy += dx * (y - self.mean_y)

    def fit(self) -> dict[str, float | None]:
        """slope, intercept and r2; None where undefined (fewer than 2 points or constant x)."""
        if self.n < 2 or self.sxx == 0:
            return {"slope": None, "intercept": None, "r2": None}
        slope = self.sxy / self.sxx
        intercept = self.mean_y - slope * self.mean_x
        # A constant y is fitted perfectly by a flat line.
        r2 = 1.0 if self.syy == 0 else (self.sxy * self.sxy) / (self.sxx * self.syy)
        return {"slope": slope, "intercept": intercept, "r2": min(1.0, max(0.0, r2))}


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (statistics.quantiles' "inclusive" method)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def sketch(sorted_values: Sequence[float], points: int = SKETCH_POINTS) -> list[float]:
    """Evenly spaced quantiles (0% .. 100%): a compact summary a coordinator can merge."""
    return [quantile(sorted_values, i / (points - 1)) for i in range(points)]


def merged_median(shards: Sequence[tuple[int, Sequence[float]]]) -> float | None:
    """Approximate median of the union of shards, each given as (count, quantile sketch).

    Each sketch defines a piecewise-linear CDF; the result is the value where
    the count-weighted sum of the shard CDFs reaches half the total (found by
    bisection). Exact for one shard; close for many.
    """
    shards = [(n, sk) for n, sk in shards if n > 0 and len(sk) >= 2]
    if not shards:
        return None
    if len(shards) == 1:
        sk = shards[0][1]
        return _interp(sk, 0.5)
    total = sum(n for n, _ in shards)
    lo = min(sk[0] for _, sk in shards)
    hi = max(sk[-1] for _, sk in shards)
    if lo == hi:
        return lo
    for _ in range(100):
        mid = (lo + hi) / 2
        below = sum(n * _cdf(sk, mid) for n, sk in shards)
        if below < total / 2:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            break
    return (lo + hi) / 2


def _interp(sk: Sequence[float], q: float) -> float:
    pos = q * (len(sk) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sk) - 1)
    return sk[lo] + (sk[hi] - sk[lo]) * (pos - lo)


def _cdf(sk: Sequence[float], x: float) -> float:
    """Fraction of a shard at or below x, interpolating its sketch linearly."""
    if x < sk[0]:
        return 0.0
    if x >= sk[-1]:
        return 1.0
    step = 1.0 / (len(sk) - 1)
    for i in range(1, len(sk)):
        if x < sk[i]:
            a, b = sk[i - 1], sk[i]
            within = (x - a) / (b - a) if b > a else 1.0
            return (i - 1 + within) * step
    return 1.0
