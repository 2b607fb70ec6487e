"""The rolling window: one Sample per interval in a ring buffer, downsampled for long timeframes.

A Sample covers [start, end). Every field merges: counters add, histograms
add their buckets, gauges keep (sum, count, peak, last). So any run of
samples merges into one that covers their union, which is how the coarse
tiers are built (fine samples -> minutes -> hours) and how a timeframe is
summarised. No I/O, no clock: callers pass the times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ._histogram import Histogram

FINE_CAPACITY = 900  # 30 minutes at the default 2 s interval
# (step seconds, capacity): a day by minute, a week by hour.
COARSE_TIERS: tuple[tuple[float, int], ...] = ((60.0, 1440), (3600.0, 168))


@dataclass(slots=True)
class Gauge:
    """Readings of a level (queue depth, CPU %): their sum, count, peak and last."""

    total: float = 0.0
    n: int = 0
    peak: float = 0.0
    last: float = 0.0

    def add(self, value: float) -> None:
        self.total += value
        self.peak = value if self.n == 0 else max(self.peak, value)
        self.n += 1
        self.last = value

    def merge(self, later: Gauge) -> None:
        if not later.n:
            return
        self.peak = later.peak if self.n == 0 else max(self.peak, later.peak)
        self.total += later.total
        self.n += later.n
        self.last = later.last

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass(slots=True)
class TypeCounts:
    """One agent type over a sample: what finished, and busy vs available agent time."""

    completed: int = 0
    failed: int = 0  # failed or timed out (cancelled tasks are counted apart)
    cancelled: int = 0
    run_seconds: float = 0.0  # started -> finished, summed over the tasks that ran and finished
    runs: int = 0
    busy_seconds: float = 0.0  # time attempts of this type were running, inside the sample
    available_seconds: float = 0.0  # slot-seconds of connected hosts that offer the type

    def merge(self, other: TypeCounts) -> None:
        self.completed += other.completed
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.run_seconds += other.run_seconds
        self.runs += other.runs
        self.busy_seconds += other.busy_seconds
        self.available_seconds += other.available_seconds


@dataclass(slots=True)
class HostGauges:
    """One agent host's machine, as its heartbeats report it."""

    cpu_percent: Gauge = field(default_factory=Gauge)
    memory_percent: Gauge = field(default_factory=Gauge)

    def merge(self, later: HostGauges) -> None:
        self.cpu_percent.merge(later.cpu_percent)
        self.memory_percent.merge(later.memory_percent)


class _Mergeable(Protocol):
    def merge(self, other: Any, /) -> None: ...


_M = TypeVar("_M", bound=_Mergeable)


def _merge_dict(into: dict[str, _M], other: dict[str, _M], make: Callable[[], _M]) -> None:
    for key, value in other.items():
        mine = into.get(key)
        if mine is None:
            mine = into[key] = make()
        mine.merge(value)


@dataclass(slots=True)
class Sample:
    """Everything measured over [start, end)."""

    start: float
    end: float
    # Tasks (workflow roots, which are containers, are not counted) that became final.
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    completion: Histogram = field(default_factory=Histogram)  # created -> finished, completed tasks
    api: dict[str, Histogram] = field(default_factory=dict)  # unary RPC durations by method
    api_errors: dict[str, int] = field(default_factory=dict)
    types: dict[str, TypeCounts] = field(default_factory=dict)
    busy_seconds: float = 0.0  # agent time spent running attempts, every type
    slot_seconds: float = 0.0  # worker slots of connected hosts x time
    queue: dict[str, Gauge] = field(default_factory=dict)  # QUEUED tasks by priority name
    oldest_queued_seconds: Gauge = field(default_factory=Gauge)
    running: Gauge = field(default_factory=Gauge)
    waiting: Gauge = field(default_factory=Gauge)  # queued, due and on no host yet
    idle_agents: Gauge = field(default_factory=Gauge)
    cpu_percent: Gauge = field(default_factory=Gauge)  # the control plane's machine
    memory_percent: Gauge = field(default_factory=Gauge)
    process_cpu_percent: Gauge = field(default_factory=Gauge)  # the control-plane daemon (100 = one core)
    process_rss_bytes: Gauge = field(default_factory=Gauge)
    hosts: dict[str, HostGauges] = field(default_factory=dict)
    messages_sent: int = 0
    messages_delivered: int = 0
    efficiency: Gauge = field(default_factory=Gauge)  # one reading per task tree that finished

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def throughput(self) -> float:
        """Completed tasks per second."""
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    @property
    def utilisation(self) -> float | None:
        """Busy agent time over available slot time (a parent blocked on its children lends its
        slot, so the raw ratio can pass 1 briefly; it is capped)."""
        return min(self.busy_seconds / self.slot_seconds, 1.0) if self.slot_seconds > 0 else None

    def api_overall(self, exclude: Iterable[str] = ()) -> Histogram:
        """Every method's durations in one histogram, except `exclude` (long polls)."""
        skip = set(exclude)
        out = Histogram()
        for method, hist in self.api.items():
            if method not in skip:
                out.merge(hist)
        return out

    def merge(self, later: Sample) -> None:
        """Absorb a sample that follows this one."""
        self.start = min(self.start, later.start)
        self.end = max(self.end, later.end)
        self.completed += later.completed
        self.failed += later.failed
        self.cancelled += later.cancelled
        self.completion.merge(later.completion)
        _merge_dict(self.api, later.api, Histogram)
        for method, n in later.api_errors.items():
            self.api_errors[method] = self.api_errors.get(method, 0) + n
        _merge_dict(self.types, later.types, TypeCounts)
        self.busy_seconds += later.busy_seconds
        self.slot_seconds += later.slot_seconds
        _merge_dict(self.queue, later.queue, Gauge)
        for name in ("oldest_queued_seconds", "running", "waiting", "idle_agents", "cpu_percent", "memory_percent"):
            getattr(self, name).merge(getattr(later, name))
        self.process_cpu_percent.merge(later.process_cpu_percent)
        self.process_rss_bytes.merge(later.process_rss_bytes)
        _merge_dict(self.hosts, later.hosts, HostGauges)
        self.messages_sent += later.messages_sent
        self.messages_delivered += later.messages_delivered
        self.efficiency.merge(later.efficiency)


def merge_samples(samples: Sequence[Sample]) -> Sample:
    """One new sample covering them all (the inputs are left as they are)."""
    if not samples:
        return Sample(0.0, 0.0)
    out = Sample(samples[0].start, samples[0].start)
    for sample in samples:
        out.merge(sample)
    return out


def downsample(samples: Sequence[Sample], max_points: int) -> list[Sample]:
    """At most `max_points` samples, each merging a run of consecutive ones (the samples
    themselves when there are few enough: read them, do not change them)."""
    if max_points <= 0 or len(samples) <= max_points:
        return list(samples)
    per = -(-len(samples) // max_points)  # ceiling division
    return [merge_samples(samples[i : i + per]) for i in range(0, len(samples), per)]


class _Tier:
    """A ring of merged samples, each `step` seconds long, and the partial one being filled."""

    def __init__(self, step: float, capacity: int) -> None:
        self.step = step
        self.ring: deque[Sample] = deque(maxlen=capacity)
        self.pending: list[Sample] = []

    @property
    def span(self) -> float:
        return self.step * (self.ring.maxlen or 0)

    def add(self, sample: Sample) -> Sample | None:
        """Add a finer sample; returns the merged one when a step is complete."""
        self.pending.append(sample)
        if self.pending[-1].end - self.pending[0].start < self.step * 0.999:
            return None
        merged = merge_samples(self.pending)
        self.pending = []
        self.ring.append(merged)
        return merged

    def since(self, cutoff: float) -> list[Sample]:
        out = [s for s in self.ring if s.end > cutoff]
        if self.pending and self.pending[-1].end > cutoff:
            out.append(merge_samples(self.pending))
        return out


class RollingWindow:
    """Fine samples (one per interval) and coarser tiers for long timeframes."""

    def __init__(
        self,
        interval_seconds: float,
        fine_capacity: int = FINE_CAPACITY,
        coarse: Sequence[tuple[float, int]] = COARSE_TIERS,
    ) -> None:
        self.interval_seconds = interval_seconds
        self.fine: deque[Sample] = deque(maxlen=fine_capacity)
        self._tiers = [_Tier(step, capacity) for step, capacity in coarse]

    def add(self, sample: Sample) -> None:
        self.fine.append(sample)
        carry: Sample | None = sample
        for tier in self._tiers:
            if carry is None:
                break
            carry = tier.add(carry)

    def recent(self, n: int) -> list[Sample]:
        """The last `n` fine samples, oldest first."""
        if n <= 0:
            return []
        return list(self.fine)[-n:]

    def span(self, timeframe_seconds: float, now: float) -> tuple[list[Sample], float]:
        """The samples that cover the last `timeframe_seconds` before `now`, from the finest
        tier that reaches that far back, and that tier's step."""
        cutoff = now - timeframe_seconds
        # A ring that has not wrapped yet still holds everything since start-up.
        if len(self.fine) < (self.fine.maxlen or 0) or (self.fine and self.fine[0].start <= cutoff):
            return [s for s in self.fine if s.end > cutoff], self.interval_seconds
        for tier in self._tiers:
            whole = len(tier.ring) < (tier.ring.maxlen or 0)
            if whole or timeframe_seconds <= tier.span or tier is self._tiers[-1]:
                return tier.since(cutoff), tier.step
        return [s for s in self.fine if s.end > cutoff], self.interval_seconds
