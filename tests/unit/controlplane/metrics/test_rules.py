"""The monitor's trend rules over samples, and the alert book that raises and clears alerts."""

from __future__ import annotations

import pytest
from maos.controlplane.metrics import AlertBook, Condition, MonitorLimits, QueueView, Sample, evaluate
from maos.controlplane.metrics._rules import (
    RECENT_SAMPLES,
    idle_rule,
    queue_age_rule,
    resource_rules,
    throughput_rule,
)
from maos.controlplane.metrics._window import Gauge, HostGauges

T0 = 50_000.0


def sample(
    i: int,
    *,
    cpu: float = 10.0,
    memory: float = 20.0,
    completed: int = 0,
    running: float = 0.0,
    idle: float = 0.0,
    waiting: float = 0.0,
    hosts: dict[str, tuple[float, float]] | None = None,
) -> Sample:
    s = Sample(T0 + 2.0 * i, T0 + 2.0 * (i + 1), completed=completed)
    s.cpu_percent.add(cpu)
    s.memory_percent.add(memory)
    s.running.add(running)
    s.idle_agents.add(idle)
    s.waiting.add(waiting)
    for host_id, (host_cpu, host_memory) in (hosts or {}).items():
        g = HostGauges()
        g.cpu_percent.add(host_cpu)
        g.memory_percent.add(host_memory)
        s.hosts[host_id] = g
    q = Gauge()
    q.add(0.0)
    s.queue["medium"] = q
    return s


LIMITS = MonitorLimits(sustained_samples=4, idle_samples=2)


def test_cpu_sustained_above_the_threshold_raises_high_cpu() -> None:
    samples = [sample(i, cpu=v) for i, v in enumerate([10, 90, 85, 95, 88])]
    [c] = resource_rules(samples, LIMITS)
    assert (c.rule, c.subject, c.severity) == ("high_cpu", "controlplane", "warning")
    assert c.figures["average_percent"] == pytest.approx((90 + 85 + 95 + 88) / 4)
    assert "threshold 80%" in c.message


def test_one_spike_is_not_sustained() -> None:
    samples = [sample(i, cpu=v) for i, v in enumerate([10, 10, 10, 100])]
    assert resource_rules(samples, LIMITS) == []


def test_too_few_samples_say_nothing() -> None:
    assert resource_rules([sample(i, cpu=99) for i in range(3)], LIMITS) == []


def test_memory_and_hosts_are_checked_each_with_their_subject() -> None:
    hosts = {"h1": (20.0, 97.0), "h2": (95.0, 10.0)}
    samples = [sample(i, memory=50, hosts=hosts) for i in range(4)]
    found = {(c.rule, c.subject): c for c in resource_rules(samples, LIMITS)}
    assert set(found) == {("high_memory", "host:h1"), ("high_cpu", "host:h2")}
    assert found[("high_memory", "host:h1")].severity == "critical"  # >= 95%
    assert found[("high_cpu", "host:h2")].severity == "critical"


def test_thresholds_are_the_live_settings() -> None:
    samples = [sample(i, cpu=70) for i in range(4)]
    assert resource_rules(samples, LIMITS) == []
    [c] = resource_rules(samples, MonitorLimits(cpu_threshold=60, sustained_samples=4))
    assert c.figures["threshold_percent"] == 60


def test_throughput_down_30_percent_with_work_pending_is_a_drop() -> None:
    history = [sample(i, completed=20, running=2) for i in range(10)]
    recent = [sample(10 + i, completed=12, running=2) for i in range(RECENT_SAMPLES)]
    [c] = throughput_rule(history + recent, LIMITS)
    assert c.rule == "throughput_drop"
    assert c.figures["drop_fraction"] == pytest.approx(0.4)
    assert c.figures["history_per_second"] == pytest.approx(10.0)
    assert c.severity == "warning"


def test_a_smaller_dip_is_no_drop() -> None:
    history = [sample(i, completed=20, running=2) for i in range(10)]
    recent = [sample(10 + i, completed=15, running=2) for i in range(RECENT_SAMPLES)]
    assert throughput_rule(history + recent, LIMITS) == []


def test_a_workload_that_ended_is_no_drop() -> None:
    history = [sample(i, completed=20, running=2) for i in range(10)]
    idle = [sample(10 + i, completed=0, running=0) for i in range(RECENT_SAMPLES)]
    assert throughput_rule(history + idle, LIMITS) == []


def test_throughput_that_stops_while_work_waits_is_critical() -> None:
    history = [sample(i, completed=20, running=2) for i in range(10)]
    stuck = [sample(10 + i, completed=0, waiting=5) for i in range(RECENT_SAMPLES)]
    [c] = throughput_rule(history + stuck, LIMITS)
    assert c.severity == "critical"


def test_queue_older_than_max_queue_time() -> None:
    view = QueueView(oldest_seconds=12.0, oldest_task_id="t1", oldest_agent_type="ghost", max_queue_time_seconds=5.0)
    [c] = queue_age_rule(view)
    assert (c.rule, c.severity) == ("queue_age", "warning")
    assert "t1" in c.message and "ghost" in c.message
    assert c.figures == {"oldest_seconds": 12.0, "max_queue_time_seconds": 5.0}
    assert queue_age_rule(QueueView(oldest_seconds=25.0, max_queue_time_seconds=5.0))[0].severity == "critical"
    assert queue_age_rule(QueueView(oldest_seconds=4.0, max_queue_time_seconds=5.0)) == []
    assert queue_age_rule(QueueView(oldest_seconds=400.0, max_queue_time_seconds=0.0)) == []  # aging off


def test_idle_agents_while_tasks_wait_for_an_unserved_type() -> None:
    samples = [sample(i, idle=2, waiting=1) for i in range(3)]
    view = QueueView(waiting_types=("ghost",), unserved_types=("ghost",))
    [c] = idle_rule(samples, view, LIMITS)
    assert (c.rule, c.severity) == ("idle_while_queued", "critical")
    assert "no connected host offers agent type ghost" in c.message
    assert c.figures["idle_agents"] == 2 and c.figures["waiting_tasks"] == 1


def test_idle_while_queued_must_hold_sample_after_sample() -> None:
    samples = [sample(0, idle=2, waiting=1), sample(1, idle=0, waiting=1), sample(2, idle=2, waiting=1)]
    assert idle_rule(samples, QueueView(), LIMITS) == []
    assert idle_rule([sample(i, idle=2) for i in range(3)], QueueView(), LIMITS) == []


def test_evaluate_runs_every_rule() -> None:
    samples = [sample(i, cpu=99, idle=1, waiting=1) for i in range(4)]
    view = QueueView(oldest_seconds=10, max_queue_time_seconds=1, waiting_types=("x",))
    rules = sorted(c.rule for c in evaluate(samples, view, LIMITS))
    assert rules == ["high_cpu", "idle_while_queued", "queue_age"]


def cond(rule: str, subject: str = "cluster", severity: str = "warning", value: float = 1.0) -> Condition:
    return Condition(rule, subject, severity, f"{rule} on {subject}", {"value": value})


def test_alert_book_raises_once_refreshes_and_clears() -> None:
    book = AlertBook()
    raised, cleared = book.update([cond("queue_age")], 100.0)
    assert [a.rule for a in raised] == ["queue_age"] and cleared == []
    first = raised[0]
    raised, cleared = book.update([cond("queue_age", severity="critical", value=2.0)], 102.0)
    assert raised == [] and cleared == []
    assert (first.severity, first.figures["value"], first.updated_at) == ("critical", 2.0, 102.0)
    raised, cleared = book.update([], 104.0)
    assert cleared == [first] and first.cleared_at == 104.0 and not first.active
    assert book.active() == []
    raised, _ = book.update([cond("queue_age")], 106.0)
    assert raised[0].id != first.id  # a new episode is a new alert
    assert [a.id for a in book.listing()] == [raised[0].id, first.id]
    assert [a.id for a in book.listing(active_only=True)] == [raised[0].id]


def test_alert_book_keys_by_rule_and_subject_and_stays_bounded() -> None:
    book = AlertBook(limit=3)
    book.update([cond("high_cpu", "host:a"), cond("high_cpu", "host:b")], 1.0)
    assert len(book.active()) == 2
    for t in range(2, 10):
        book.update([cond("high_cpu", "host:a"), cond("queue_age", value=t)], float(t))
        book.update([cond("high_cpu", "host:a")], float(t) + 0.5)
    listed = book.listing()
    assert len(listed) <= 4  # the history bound, plus the active alert that fell out of it
    assert any(a.subject == "host:a" and a.active for a in listed)
    assert book.listing(limit=1)[0].id == max(a.id for a in listed)
