"""The performance monitor's trend rules and the book of alerts they raise.

Plain functions over the recent fine samples and a view of the queue; no
I/O, no clock. Each rule returns the conditions that hold now; `AlertBook`
turns conditions into alerts: a new (rule, subject) raises one, a condition
that stops holding clears it (cleared_at), one that goes on holding keeps
its alert and refreshes its figures.

The rules (thresholds are live settings, `maosctl config set monitor.*`):

- high_cpu / high_memory: a machine's CPU (memory) use averaged over the
  last `sustained_samples` samples is above the threshold (80% / 85%).
  Subjects: "controlplane" (its machine) and "host:<id>" (from heartbeats).
- throughput_drop: completed tasks per second over the last
  RECENT_SAMPLES samples fell by `throughput_drop` (30%) or more against the
  samples before them (up to HISTORY_SAMPLES), while work was still queued
  or running in each recent sample (a workload that simply ended is not a
  degradation).
- queue_age: the oldest queued task has waited longer than
  scheduling.max_queue_time (off when that is 0).
- idle_while_queued: agents were idle while due tasks waited on no host, in
  each of the last `idle_samples` samples.

Severity is "warning", or "critical" when: CPU or memory >= 95%; throughput
fell by twice the threshold; a task waited 4x max_queue_time; tasks wait for
an agent type that no connected host offers (they can never run as things are).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._window import Gauge, Sample

RECENT_SAMPLES = 5
HISTORY_SAMPLES = 30
CRITICAL_PERCENT = 95.0
CRITICAL_QUEUE_FACTOR = 4.0
CONTROLPLANE = "controlplane"
CLUSTER = "cluster"
ALERT_HISTORY = 1000

WARNING = "warning"
CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class MonitorLimits:
    """Thresholds of the rules; live settings change them (see MONITOR_SETTINGS)."""

    cpu_threshold: float = 80.0
    memory_threshold: float = 85.0
    sustained_samples: int = 10
    throughput_drop: float = 0.30
    idle_samples: int = 3


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue as it is now, for the rules that are not about trends."""

    oldest_seconds: float = 0.0
    oldest_task_id: str = ""
    oldest_agent_type: str = ""
    max_queue_time_seconds: float = 0.0
    waiting_types: tuple[str, ...] = ()  # agent types of due tasks on no host
    unserved_types: tuple[str, ...] = ()  # ...of those, the ones no connected host offers


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule that holds now, for one subject, with the figures that made it hold."""

    rule: str
    subject: str
    severity: str
    message: str
    figures: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _level_means(samples: Sequence[Sample], pick: str, subject: str) -> list[float] | None:
    """The per-sample means of a gauge for a subject, or None when a sample lacks it."""
    out = []
    for sample in samples:
        if subject == CONTROLPLANE:
            gauge: Gauge = getattr(sample, pick)
        else:
            host = sample.hosts.get(subject.removeprefix("host:"))
            if host is None:
                return None
            gauge = getattr(host, pick)
        if gauge.mean is None:
            return None
        out.append(gauge.mean)
    return out


def resource_rules(samples: Sequence[Sample], limits: MonitorLimits) -> list[Condition]:
    """high_cpu and high_memory for the control plane's machine and every host."""
    n = max(limits.sustained_samples, 1)
    if len(samples) < n:
        return []
    recent = samples[-n:]
    subjects = [CONTROLPLANE, *sorted(f"host:{h}" for h in recent[-1].hosts)]
    out: list[Condition] = []
    for rule, pick, threshold, what in (
        ("high_cpu", "cpu_percent", limits.cpu_threshold, "CPU"),
        ("high_memory", "memory_percent", limits.memory_threshold, "memory"),
    ):
        for subject in subjects:
            means = _level_means(recent, pick, subject)
            if means is None:
                continue
            average = _mean(means)
            if average > threshold:
                out.append(
                    Condition(
                        rule,
                        subject,
                        CRITICAL if average >= CRITICAL_PERCENT else WARNING,
                        f"{subject}: {what} averaged {average:.1f}% over the last {n} samples "
                        f"(threshold {threshold:g}%)",
                        {"average_percent": average, "threshold_percent": threshold, "samples": n},
                    )
                )
    return out


def throughput_rule(samples: Sequence[Sample], limits: MonitorLimits) -> list[Condition]:
    """throughput_drop: recent completions per second well below their history, with work pending."""
    if len(samples) < 2 * RECENT_SAMPLES:
        return []
    recent = samples[-RECENT_SAMPLES:]
    history = samples[-(RECENT_SAMPLES + HISTORY_SAMPLES) : -RECENT_SAMPLES]
    if not all(s.running.last > 0 or s.waiting.last > 0 or sum(g.last for g in s.queue.values()) > 0 for s in recent):
        return []
    before = _mean(s.throughput for s in history)
    now = _mean(s.throughput for s in recent)
    if before <= 0 or now >= before * (1 - limits.throughput_drop):
        return []
    drop = 1 - now / before
    return [
        Condition(
            "throughput_drop",
            CLUSTER,
            CRITICAL if drop >= 2 * limits.throughput_drop else WARNING,
            f"throughput fell {drop * 100:.0f}%: {now:.2f} tasks/s over the last {len(recent)} samples "
            f"against {before:.2f} tasks/s over the {len(history)} before, with work still pending",
            {"recent_per_second": now, "history_per_second": before, "drop_fraction": drop},
        )
    ]


def queue_age_rule(queue: QueueView) -> list[Condition]:
    """queue_age: the oldest queued task waited longer than scheduling.max_queue_time."""
    limit = queue.max_queue_time_seconds
    if limit <= 0 or queue.oldest_seconds <= limit:
        return []
    return [
        Condition(
            "queue_age",
            CLUSTER,
            CRITICAL if queue.oldest_seconds >= CRITICAL_QUEUE_FACTOR * limit else WARNING,
            f"task {queue.oldest_task_id} ({queue.oldest_agent_type or 'any type'}) has been queued "
            f"{queue.oldest_seconds:.1f}s, longer than scheduling.max_queue_time ({limit:g}s)",
            {"oldest_seconds": queue.oldest_seconds, "max_queue_time_seconds": limit},
        )
    ]


def idle_rule(samples: Sequence[Sample], queue: QueueView, limits: MonitorLimits) -> list[Condition]:
    """idle_while_queued: idle agents and due tasks on no host, sample after sample."""
    n = max(limits.idle_samples, 1)
    if len(samples) < n:
        return []
    recent = samples[-n:]
    if not all(s.idle_agents.last > 0 and s.waiting.last > 0 for s in recent):
        return []
    last = recent[-1]
    idle, waiting = last.idle_agents.last, last.waiting.last
    message = f"{idle:.0f} agents idle while {waiting:.0f} tasks wait, for the last {n} samples"
    if queue.unserved_types:
        message += f"; no connected host offers agent type {', '.join(queue.unserved_types)}"
    elif queue.waiting_types:
        message += f"; waiting types: {', '.join(queue.waiting_types)}"
    return [
        Condition(
            "idle_while_queued",
            CLUSTER,
            CRITICAL if queue.unserved_types else WARNING,
            message,
            {"idle_agents": idle, "waiting_tasks": waiting, "unserved_types": float(len(queue.unserved_types))},
        )
    ]


def evaluate(samples: Sequence[Sample], queue: QueueView, limits: MonitorLimits) -> list[Condition]:
    """Every rule over the recent fine samples (oldest first) and the queue now."""
    return [
        *resource_rules(samples, limits),
        *throughput_rule(samples, limits),
        *queue_age_rule(queue),
        *idle_rule(samples, queue, limits),
    ]


@dataclass(slots=True)
class Alert:
    """A raised alert; `cleared_at` is 0 while its condition still holds."""

    id: int
    rule: str
    subject: str
    severity: str
    message: str
    figures: dict[str, float]
    raised_at: float
    updated_at: float
    cleared_at: float = 0.0

    @property
    def active(self) -> bool:
        return self.cleared_at == 0.0


class AlertBook:
    """Active alerts by (rule, subject) and a bounded history, newest last."""

    def __init__(self, limit: int = ALERT_HISTORY) -> None:
        self._history: deque[Alert] = deque(maxlen=limit)
        self._active: dict[tuple[str, str], Alert] = {}
        self._next_id = 1

    def update(self, conditions: Iterable[Condition], now: float) -> tuple[list[Alert], list[Alert]]:
        """Apply what holds now; returns the alerts raised and the alerts cleared."""
        raised: list[Alert] = []
        holding: set[tuple[str, str]] = set()
        for c in conditions:
            holding.add(c.key)
            alert = self._active.get(c.key)
            if alert is None:
                alert = Alert(self._next_id, c.rule, c.subject, c.severity, c.message, dict(c.figures), now, now)
                self._next_id += 1
                self._active[c.key] = alert
                self._history.append(alert)
                raised.append(alert)
            else:
                alert.severity, alert.message, alert.figures, alert.updated_at = (
                    c.severity,
                    c.message,
                    dict(c.figures),
                    now,
                )
        cleared = [a for key, a in self._active.items() if key not in holding]
        for alert in cleared:
            alert.cleared_at = now
            del self._active[(alert.rule, alert.subject)]
        return raised, cleared

    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: -a.id)

    def listing(self, *, active_only: bool = False, limit: int = 0) -> list[Alert]:
        """Newest first; an active alert is listed even if it fell out of the history."""
        alerts = {a.id: a for a in self._history}
        alerts.update((a.id, a) for a in self._active.values())
        out = sorted((a for a in alerts.values() if a.active or not active_only), key=lambda a: -a.id)
        return out[:limit] if limit > 0 else out
