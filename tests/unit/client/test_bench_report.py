"""The text report of `maosctl bench`: every benchmark's table, the recommendations, the cleanup."""

from __future__ import annotations

from typing import Any

from maos.client.bench import TITLES
from maos.client.cli._bench_report import bench_text


def lat(avg: float) -> dict[str, float]:
    return {"count": 5, "avg": avg, "p50": avg, "p95": avg * 2, "p99": avg * 3, "min": avg / 2, "max": avg * 3}


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": "20250101T000000-abcdef",
        "mode": "quick",
        "endpoint": "127.0.0.1:7700",
        "duration_seconds": 4.5,
        "cluster": {
            "version": "0.1.0",
            "store": "sqlite:/tmp/maos.db",
            "hosts": 1,
            "slots": 2,
            "cpu_count": 2,
            "agent_types": ["analyst", "echo"],
            "tasks_unfinished_at_start": 0,
        },
        "benchmarks": {
            "task_submission": {"agent_type": "echo", "latency_ms": lat(2.0), "submits_per_second": 450.0},
            "agent_spawning": {
                "types": {
                    "echo": {
                        "runner": "python",
                        "cold": {"start_ms": 0.8, "round_trip_ms": 2.0},
                        "warm": {"start_ms": lat(0.9), "round_trip_ms": lat(2.1)},
                    }
                },
                "average_spawn_time_ms": 0.9,
                "p95_spawn_time_ms": 1.8,
                "cold_average_spawn_time_ms": 0.8,
                "total_agents_tested": 6,
                "cold_basis": "first task of the type in this run",
                "workers_at_start": 2,
                "fresh_workers_at_start": 2,
            },
            "parallel_processing": {
                "agent_type": "analyst",
                "rows_per_task": 10_000,
                "slots": 2,
                "repeats": 1,
                "runs": [
                    {
                        "agents": 1,
                        "tasks": 1,
                        "wall_seconds": 0.1,
                        "task_seconds": 0.1,
                        "speedup": 1.0,
                        "efficiency": 1.0,
                    },
                    {
                        "agents": 2,
                        "tasks": 2,
                        "wall_seconds": 0.11,
                        "task_seconds": 0.1,
                        "speedup": 1.82,
                        "efficiency": 0.91,
                    },
                ],
                "max_speedup": 1.82,
            },
            "communication": {
                "messages": {"basis": "send -> receive", "latency_ms": lat(1.5), "send_call_ms": lat(1.2)},
                "state_put_ms": lat(1.0),
                "state_get_ms": lat(0.9),
            },
            "database": {
                "store": "sqlite:/tmp/maos.db",
                "tasks": 300,
                "batch_size": 100,
                "submits_per_second": 17_000.0,
                "batch_commit_ms": lat(5.0),
                "state_transitions": 900,
                "transitions_per_second": 10_000.0,
                "span_seconds": 0.09,
            },
            "storage_io": {
                "namespace": "tree:01ABC",
                "sizes": [
                    {
                        "value_bytes": 1_000_000,
                        "values": 5,
                        "put_mib_per_second": 27.4,
                        "get_mib_per_second": 133.0,
                        "put_ms": lat(30.0),
                        "get_ms": lat(7.0),
                    }
                ],
            },
        },
        "recommendations": ["Low parallel processing efficiency (best speedup 1.82x < 2.0x): add workers."],
        "cleanup": {"trees_purged": 452, "tasks_purged": 455, "keys_deleted": 11, "messages_acknowledged": 20},
    }
    doc.update(overrides)
    return doc


def test_the_report_has_every_benchmark_in_the_guides_order_with_its_figures() -> None:
    text = bench_text(document(), TITLES)
    positions = [text.index(f"{title}:") for title in TITLES.values()]
    assert positions == sorted(positions)
    assert text.startswith("MAOS Performance Benchmark Report\n=================================\n")
    assert "submit      5    2.00    2.00    4.00    6.00    1.00    6.00" in text
    assert "echo        python     0.80          2.00         0.90         1.80         2.10         4.20" in text
    assert "     2      2  0.11s     0.10s    1.82x         91%" in text
    assert "  2 of 2 workers had run no task when the run began\n" in text
    assert "message task→task" in text and "state get" in text
    assert "submits/s (batches of 100)" in text and "17,000.0" in text
    assert "976.6KiB       5       27.4      133.0       60.00       14.00" in text
    assert "• Low parallel processing efficiency" in text
    assert text.endswith("cleanup: purged 452 task trees (455 tasks), deleted 11 keys, acknowledged 20 messages")


def test_skipped_benchmarks_say_why_and_no_recommendations_say_so() -> None:
    doc = document(recommendations=[])
    doc["benchmarks"]["parallel_processing"] = {"skipped": "no connected host offers the analyst agent type"}
    doc["cluster"]["tasks_unfinished_at_start"] = 3
    text = bench_text(doc, TITLES)
    assert "Parallel Processing Efficiency:\n  skipped: no connected host offers the analyst agent type" in text
    assert "• None: every figure is within the guide's thresholds." in text
    assert "note: 3 other task(s) were unfinished when the run began" in text
