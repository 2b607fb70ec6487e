"""The performance report: its documented score formula and recommendations drawn from the figures."""

from __future__ import annotations

import pytest
from maos.client.cli._report import (
    NOTHING_STANDS_OUT,
    Figures,
    build_report,
    latency_part,
    performance_score,
    report_text,
    score_parts,
)
from maos.v1 import admin_pb2


def figures(**kw: object) -> Figures:
    base: dict[str, object] = {
        "cpu_percent": 40.0,
        "memory_percent": 50.0,
        "cpu_threshold": 80.0,
        "memory_threshold": 85.0,
        "api_p95_seconds": 0.002,
        "completed": 100,
        "failed": 0,
        "mean_queue_depth": 0.0,
        "utilisation": 0.6,
    }
    base.update(kw)
    return Figures(**base)  # type: ignore[arg-type]


def test_a_healthy_cluster_scores_100() -> None:
    assert performance_score(score_parts(figures())) == pytest.approx(100.0)


def test_each_part_by_its_formula() -> None:
    parts = score_parts(
        figures(
            cpu_percent=90.0,
            memory_percent=92.5,
            api_p95_seconds=0.316,
            failed=25,
            mean_queue_depth=3.0,
            utilisation=0.375,
        )
    )
    assert parts["cpu"] == pytest.approx(0.5)  # halfway from 80% to 100%
    assert parts["memory"] == pytest.approx(0.5)  # halfway from 85% to 100%
    assert parts["latency"] == pytest.approx(0.5, abs=0.01)  # 316 ms: halfway from 100 ms to 1 s in log10
    assert parts["success"] == pytest.approx(0.8)
    assert parts["flow"] == pytest.approx(0.5)  # work waited, utilisation 0.375 of the 0.75 target
    expected = 100 * (15 * 0.5 + 15 * 0.5 + 25 * parts["latency"] + 20 * 0.8 + 25 * 0.5) / 100  # type: ignore[operator]
    assert performance_score(parts) == pytest.approx(expected)


def test_unknown_parts_are_left_out_not_counted_as_zero() -> None:
    parts = score_parts(figures(api_p95_seconds=None, completed=0, failed=0, cpu_percent=90.0))
    assert parts["latency"] is None and parts["success"] is None
    # cpu 0.5 x 15, memory 1 x 15, flow 1 x 25 over 55
    assert performance_score(parts) == pytest.approx(100 * (7.5 + 15 + 25) / 55)
    assert performance_score(dict.fromkeys(parts)) is None


def test_latency_part_bounds() -> None:
    assert latency_part(0.05) == 1.0
    assert latency_part(2.0) == 0.0
    assert 0 < latency_part(0.2) < 1


def metrics(**kw: float) -> admin_pb2.GetMetricsResponse:
    r = admin_pb2.GetMetricsResponse(timeframe_seconds=3600)
    r.thresholds.update({"monitor.cpu_threshold": 80.0, "monitor.memory_threshold": 85.0})
    s = r.summary
    s.seconds, s.completed, s.failed = 600.0, int(kw.get("completed", 100)), int(kw.get("failed", 0))
    s.throughput_per_second = s.completed / 600
    s.api_latency.CopyFrom(admin_pb2.Percentiles(count=50, p95=kw.get("api_p95", 0.002)))
    s.utilisation = kw.get("utilisation", 0.6)
    s.queue_depth.CopyFrom(admin_pb2.Level(mean=kw.get("queue", 0.0), known=True))
    r.controlplane.cpu_percent.CopyFrom(admin_pb2.Level(mean=kw.get("cpu", 30.0), known=True))
    r.controlplane.memory_percent.CopyFrom(admin_pb2.Level(mean=40.0, known=True))
    r.hosts.add(host_id="h1", connected=True, slots=2, cpu=admin_pb2.Level(mean=kw.get("host_cpu", 30.0), known=True))
    r.agent_types.add(agent_type="echo", completed=s.completed, failed=s.failed)
    r.api.add(method="TaskService/SubmitTask", latency=s.api_latency)
    return r


def test_nothing_to_recommend_when_every_figure_is_within_bounds() -> None:
    doc = build_report(metrics())
    assert doc["recommendations"] == []
    assert doc["score"] == pytest.approx(100.0)
    assert NOTHING_STANDS_OUT in report_text(doc, "127.0.0.1:7700")


def test_recommendations_quote_the_figures_that_call_for_them() -> None:
    doc = build_report(metrics(host_cpu=93.0, api_p95=0.4, completed=80, failed=20, queue=6.0, utilisation=0.2))
    text = "\n".join(doc["recommendations"])
    assert "host:h1: CPU averaged 93% (threshold 80%)" in text
    assert "API p95 latency is 400ms" in text and "TaskService/SubmitTask" in text
    assert "20 of 100 tasks failed (20.0%)" in text
    assert "mean depth 6.0" in text and "busy only 20%" in text
    assert doc["score"] < 70


def test_scale_up_and_scale_down_advice_follow_the_autoscaling_rule() -> None:
    up = "\n".join(build_report(metrics(queue=9.0, utilisation=0.95))["recommendations"])
    assert "deeper than twice the 2 slots" in up
    down = "\n".join(build_report(metrics(queue=0.0, utilisation=0.1))["recommendations"])
    assert "busy only 10%" in down and "fewer than the 2 workers" in down


def test_active_alerts_feed_recommendations() -> None:
    r = metrics()
    r.alerts.add(
        rule="idle_while_queued",
        severity="critical",
        subject="cluster",
        message="2 agents idle",
        figures={"unserved_types": 1.0},
        active=True,
    )
    [advice] = build_report(r)["recommendations"]
    assert "idle_while_queued" in advice and "start an agent host that offers" in advice


def test_report_text_has_the_guide_s_shape() -> None:
    text = report_text(build_report(metrics()), "127.0.0.1:7700")
    for piece in (
        "MAOS Performance Report",
        "System Metrics:",
        "Average CPU Usage: controlplane 30.0%",
        "Average Throughput: 10.0 tasks/minute",
        "Average P95 Latency: 2.0ms",
        "Performance Score: 100.0/100",
        "Recommendations:",
    ):
        assert piece in text, piece
