"""A sparse histogram of durations with log-spaced buckets.

Histograms merge by adding bucket counts, so percentiles stay honest when a
rolling window is downsampled (averaging per-interval p95s would not be).
Bucket i holds values in [GROWTH**i, GROWTH**(i+1)); a quantile is
interpolated geometrically inside its bucket, so it is within one bucket
(20%) of the exact value, and never above the largest value seen.
"""

from __future__ import annotations

import math

GROWTH = 1.2
_LOG_GROWTH = math.log(GROWTH)
_FLOOR_SECONDS = 1e-7  # zero and negative durations land in the lowest bucket


class Histogram:
    """Counts of durations (seconds) by bucket, plus their count, sum and maximum."""

    __slots__ = ("buckets", "count", "peak", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.peak = 0.0

    def add(self, seconds: float) -> None:
        index = math.floor(math.log(max(seconds, _FLOOR_SECONDS)) / _LOG_GROWTH)
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.peak:
            self.peak = seconds

    def merge(self, other: Histogram) -> None:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.peak = max(self.peak, other.peak)

    def copy(self) -> Histogram:
        out = Histogram()
        out.merge(self)
        return out

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) in seconds; None when empty."""
        if not self.count:
            return None
        rank = min(max(q, 0.0), 1.0) * self.count
        seen = 0
        for index in sorted(self.buckets):
            n = self.buckets[index]
            if seen + n >= rank:
                within = (rank - seen) / n
                return min(float(GROWTH ** (index + within)), self.peak)
            seen += n
        return self.peak
