"""The bench's recommendations fire at the guide's thresholds, and only there."""

from __future__ import annotations

from typing import Any

from maos.client.bench import recommendations


def lat(avg: float = 1.0, p95: float = 2.0) -> dict[str, float]:
    return {"count": 10, "avg": avg, "p50": avg, "p95": p95, "p99": p95, "min": 0.5, "max": p95}


def healthy() -> dict[str, Any]:
    return {
        "benchmarks": {
            "task_submission": {"latency_ms": lat()},
            "agent_spawning": {"average_spawn_time_ms": 3.0, "cold_average_spawn_time_ms": 40.0},
            "parallel_processing": {"max_speedup": 3.1, "slots": 4},
            "communication": {"messages": {"latency_ms": lat()}, "state_put_ms": lat(), "state_get_ms": lat()},
            "database": {"batch_commit_ms": lat(10, 20), "submits_per_second": 500.0},
            "storage_io": {
                "sizes": [
                    {"value_bytes": 1000, "put_ms": lat(), "get_ms": lat()},
                    {"value_bytes": 1_000_000, "put_ms": lat(40, 90), "get_ms": lat(10, 20)},
                ]
            },
        }
    }


def test_healthy_figures_call_for_nothing() -> None:
    assert recommendations(healthy()) == []


def test_submission_latency_above_100_ms_on_average() -> None:
    doc = healthy()
    doc["benchmarks"]["task_submission"]["latency_ms"] = lat(avg=100.5, p95=300)
    [rec] = recommendations(doc)
    assert rec.startswith("High task submission latency detected (avg 100.5 ms > 100 ms)")
    doc["benchmarks"]["task_submission"]["latency_ms"] = lat(avg=100.0, p95=100.0)
    assert recommendations(doc) == []


def test_submission_p95_above_the_response_target() -> None:
    doc = healthy()
    doc["benchmarks"]["task_submission"]["latency_ms"] = lat(avg=20, p95=150)
    [rec] = recommendations(doc)
    assert "p95 is 150.0 ms, above the 100 ms response target" in rec


def test_slow_spawning_warm_or_cold_above_5_s() -> None:
    doc = healthy()
    doc["benchmarks"]["agent_spawning"]["cold_average_spawn_time_ms"] = 5001.0
    [rec] = recommendations(doc)
    assert rec.startswith("Slow cold agent starts") and "agent warming strategies" in rec
    doc["benchmarks"]["agent_spawning"]["average_spawn_time_ms"] = 6000.0
    [rec] = recommendations(doc)
    assert rec.startswith("Slow agent spawning detected (avg 6000 ms > 5000 ms")


def test_low_speedup_names_the_slots_when_they_are_the_bound() -> None:
    doc = healthy()
    doc["benchmarks"]["parallel_processing"] = {"max_speedup": 1.9, "slots": 2}
    [rec] = recommendations(doc)
    assert "best speedup 1.90x < 2.0x" in rec and "2 worker slot(s)" in rec and "Add agent hosts" in rec
    doc["benchmarks"]["parallel_processing"] = {"max_speedup": 1.5, "slots": 8}
    [rec] = recommendations(doc)
    assert "Review task decomposition strategies" in rec
    doc["benchmarks"]["parallel_processing"] = {"max_speedup": 2.0, "slots": 2}
    assert recommendations(doc) == []


def test_slow_messages_and_state_calls() -> None:
    doc = healthy()
    comm = doc["benchmarks"]["communication"]
    comm["messages"]["latency_ms"] = lat(50, 101)
    comm["state_get_ms"] = lat(50, 120)
    messages, state = recommendations(doc)
    assert "Message delivery p95 is 101.0 ms" in messages
    assert "get p95 120.0 ms" in state and "put" not in state.split("(")[1].split(")")[0]


def test_slow_commits_and_low_throughput() -> None:
    doc = healthy()
    doc["benchmarks"]["database"] = {"batch_commit_ms": lat(900, 1200), "submits_per_second": 0.2}
    commits, throughput = recommendations(doc)
    assert "p95 1200 ms per batch > 1000 ms" in commits
    assert "720 tasks/hour, below 1000" in throughput


def test_slow_large_values_look_at_the_largest_size_only() -> None:
    doc = healthy()
    sizes = doc["benchmarks"]["storage_io"]["sizes"]
    sizes[0]["put_ms"] = lat(500, 900)  # the small size does not count
    assert recommendations(doc) == []
    sizes[1]["get_ms"] = lat(90, 130)
    [rec] = recommendations(doc)
    assert "get of 1,000,000 bytes p95 > 100 ms" in rec


def test_skipped_and_missing_benchmarks_are_ignored() -> None:
    doc = {"benchmarks": {"parallel_processing": {"skipped": "no analyst"}}}
    assert recommendations(doc) == []
    assert recommendations({}) == []
