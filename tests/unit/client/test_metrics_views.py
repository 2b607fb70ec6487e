"""Parsing of --timeframe/--duration and --metric, and the metrics views, from hand-built replies."""

from __future__ import annotations

import pytest
from maos.client.cli._metrics_views import (
    AGENT_METRICS,
    agent_metrics_table,
    alerts_table,
    metrics_dict,
    metrics_text,
    parse_duration,
    parse_metrics,
    parse_names,
    parse_timeframe,
    resources_table,
)
from maos.errors import InvalidArgument
from maos.v1 import admin_pb2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        (" 2m ", 120.0),
        ("1w", 604800.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--duration") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("5x", "is not a duration"),
        ("-1m", "is negative"),
        ("", "is not a duration"),
        ("m5", "is not a duration"),
        ("0s", "longer than 0"),
        ("1h-5m", "is not a duration"),
        ("5 minutes", "is not a duration"),
    ],
)
def test_malformed_durations_say_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says) as err:
        parse_duration(text, "--duration")
    assert "\n" not in str(err.value)
    assert "--duration" in str(err.value)


def test_timeframe_is_bounded_by_what_the_control_plane_keeps() -> None:
    assert parse_timeframe("7d") == 604800.0
    with pytest.raises(InvalidArgument, match="7 days"):
        parse_timeframe("8d")


def test_metric_names() -> None:
    assert parse_metrics(None)[0] == "throughput"
    assert parse_metrics("cpu, memory,cpu") == ("cpu", "memory")
    assert parse_metrics("utilization") == ("utilisation",)
    with pytest.raises(InvalidArgument, match=r"unknown metric 'bogus'; accepted: throughput, completion"):
        parse_metrics("cpu,bogus")
    with pytest.raises(InvalidArgument, match="names no metric"):
        parse_metrics(" , ")
    assert parse_names("success_rate", AGENT_METRICS, "--metric", ()) == ("success_rate",)
    assert parse_names("success-rate", AGENT_METRICS, "--metric", ()) == ("success_rate",)


def reply() -> admin_pb2.GetMetricsResponse:
    r = admin_pb2.GetMetricsResponse(timeframe_seconds=3600, step_seconds=2)
    s = r.summary
    s.seconds, s.completed, s.failed, s.cancelled = 100.0, 90, 10, 1
    s.throughput_per_second, s.peak_throughput_per_second = 0.9, 4.0
    s.completion.CopyFrom(admin_pb2.Percentiles(count=90, p50=0.01, p95=0.05, p99=0.09, mean=0.02, max=0.1))
    s.api_latency.CopyFrom(admin_pb2.Percentiles(count=200, p50=0.001, p95=0.002, p99=0.004, mean=0.001, max=0.01))
    s.utilisation = 0.5
    s.queue_depth.CopyFrom(admin_pb2.Level(mean=2.0, max=5, last=1, known=True))
    s.parallel_efficiency, s.trees = 0.8, 3
    r.api.add(method="TaskService/SubmitTask", latency=s.api_latency, errors=2)
    r.agent_types.add(
        agent_type="echo",
        completed=90,
        failed=10,
        success_rate=0.9,
        mean_run_seconds=0.004,
        utilisation=0.25,
        busy_seconds=10,
        available_seconds=40,
    )
    r.agent_types.add(agent_type="idle")
    r.hosts.add(
        host_id="h1",
        connected=True,
        slots=2,
        in_flight=1,
        idle_agents=1,
        cpu_percent=40,
        memory_percent=50,
        memory_used_bytes=2**30,
        memory_bytes=2**31,
        cpu=admin_pb2.Level(mean=35, max=60, last=40, known=True),
    )
    r.controlplane.pid = 42
    r.controlplane.cpu_percent.CopyFrom(admin_pb2.Level(mean=20, max=30, last=25, known=True))
    r.queue.add(priority="medium", now=1, depth=admin_pb2.Level(mean=2, max=5, last=1, known=True))
    r.alerts.add(id=7, rule="queue_age", severity="warning", subject="cluster", message="task t waited", active=True)
    return r


def test_metrics_text_shows_the_chosen_sections_only() -> None:
    text = metrics_text(reply(), ("throughput", "latency"))
    assert "0.90/s (peak 4.00/s) · 90 completed · 10 failed · 1 cancelled" in text
    assert "p50 1.00ms · p95 2.00ms · p99 4.00ms (200 calls)" in text
    assert "TaskService/SubmitTask" in text
    assert "queue" not in text and "h1" not in text


def test_metrics_text_every_section() -> None:
    text = metrics_text(reply())
    for piece in (
        "completion:",
        "medium 1",
        "mean depth 2.0",
        "50.0% of agent time busy",
        "80% (3 task trees)",
        "queue_age",
        "h1",
        "ECHO".lower(),
    ):
        assert piece in text


def test_metrics_dict_has_numbers_not_strings() -> None:
    doc = metrics_dict(reply(), ("throughput", "utilisation", "queue"))
    assert doc["throughput"]["completed"] == 90
    assert doc["utilisation"] == 0.5
    assert doc["agent_types"][0]["success_rate"] == pytest.approx(0.9)
    assert doc["agent_types"][1]["success_rate"] is None  # no task finished: unknown, not 0
    assert doc["queue"]["now"] == {"medium": 1}
    assert "hosts" not in doc and "alerts" not in doc


def test_agent_metrics_table_shows_chosen_columns() -> None:
    table = agent_metrics_table(reply(), ("success_rate",))
    assert table.splitlines()[0].split() == ["AGENT", "TYPE", "SUCCESS_RATE"]
    assert "90.0%" in table
    assert "4.00ms" in agent_metrics_table(reply(), ("mean_duration",))


def test_alerts_and_resources_tables() -> None:
    assert "queue_age" in alerts_table(list(reply().alerts))
    assert alerts_table([]) == "no alerts"
    resources = resources_table(reply())
    assert "controlplane (pid 42)" in resources and "host h1" in resources and "1.0GiB of 2.0GiB" in resources
