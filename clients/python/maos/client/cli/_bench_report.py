"""The people's view of a `maosctl bench` document: the guide's report, as tables.

Pure functions of the document (no I/O), so they are unit-tested as strings.
"""

from __future__ import annotations

from typing import Any

from ._output import duration, render_table, size

_LATENCY = ("avg", "p50", "p95", "p99", "min", "max")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.1f}{unit}"


def _latency_row(label: str, summary: dict[str, Any]) -> tuple[object, ...]:
    return (label, summary["count"], *(_ms(summary[k]) for k in _LATENCY))


def _latency_table(rows: list[tuple[object, ...]]) -> str:
    return render_table(("", "count", *(f"{k} ms" for k in _LATENCY)), rows, right=range(1, 8))


def _skipped(section: dict[str, Any]) -> str | None:
    return f"  skipped: {section['skipped']}" if "skipped" in section else None


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


def _submission(s: dict[str, Any]) -> str:
    head = f"{s['latency_ms']['count']} SubmitTask calls of an {s['agent_type']} task, one at a time"
    table = _latency_table([_latency_row("submit", s["latency_ms"])])
    return f"  {head}; {_num(s['submits_per_second'])} submits/s\n{_indent(table)}"


def _spawning(s: dict[str, Any]) -> str:
    rows = [
        (
            name,
            t["runner"],
            _ms(t["cold"]["start_ms"]),
            _ms(t["cold"]["round_trip_ms"]),
            _ms(t["warm"]["start_ms"]["avg"]),
            _ms(t["warm"]["start_ms"]["p95"]),
            _ms(t["warm"]["round_trip_ms"]["avg"]),
            _ms(t["warm"]["round_trip_ms"]["p95"]),
        )
        for name, t in s["types"].items()
    ]
    table = render_table(
        ("agent type", "runner", "cold ms", "cold trip ms", "warm avg ms", "warm p95 ms", "trip avg ms", "trip p95 ms"),
        rows,
        right=range(2, 8),
    )
    summary = (
        f"average spawn time {_ms(s['average_spawn_time_ms'])} ms (warm), p95 {_ms(s['p95_spawn_time_ms'])} ms, "
        f"cold {_ms(s['cold_average_spawn_time_ms'])} ms; {s['total_agents_tested']} agents tested"
    )
    fresh = f"{s['fresh_workers_at_start']} of {s['workers_at_start']} workers had run no task when the run began"
    terms = "spawn (ms) = created -> started on the control plane; trip = the client's submit -> result"
    return f"{_indent(table)}\n  {summary}\n  {fresh}\n  {terms}\n  cold = {s['cold_basis']}"


def _parallel(s: dict[str, Any]) -> str:
    rows = [
        (
            r["agents"],
            r["tasks"],
            duration(r["wall_seconds"]),
            duration(r["task_seconds"]),
            "-" if r["speedup"] is None else f"{r['speedup']:.2f}x",
            "-" if r["efficiency"] is None else f"{r['efficiency'] * 100:.0f}%",
        )
        for r in s["runs"]
    ]
    head = (
        f"  {s['agent_type']} over {s['rows_per_task']:,} CSV rows per task; the cluster has {s['slots']} worker "
        f"slots; median of {s['repeats']} round(s)"
    )
    table = render_table(("agents", "tasks", "wall", "per task", "speedup", "efficiency"), rows, right=range(6))
    best = "-" if s["max_speedup"] is None else f"{s['max_speedup']:.2f}x"
    formula = "speedup = N x wall(1) / wall(N) within a round; efficiency = speedup / N"
    return f"{head}\n{_indent(table)}\n  best speedup {best} ({formula})"


def _communication(s: dict[str, Any]) -> str:
    rows = [
        _latency_row("message task→task", s["messages"]["latency_ms"]),
        _latency_row("message send call", s["messages"]["send_call_ms"]),
        _latency_row("state put", s["state_put_ms"]),
        _latency_row("state get", s["state_get_ms"]),
    ]
    return f"{_indent(_latency_table(rows))}\n  message latency = {s['messages']['basis']}"


def _database(s: dict[str, Any]) -> str:
    commit = s["batch_commit_ms"]
    rows = [
        (f"submits/s (batches of {s['batch_size']})", _num(s["submits_per_second"])),
        ("batch commit p50 / p95", f"{_ms(commit['p50'])} / {_ms(commit['p95'])} ms"),
        ("state transitions/s", _num(s["transitions_per_second"])),
        ("transitions persisted", f"{s['state_transitions']:,} for {s['tasks']:,} tasks"),
    ]
    return f"  store {s['store']}\n{_indent(render_table(('figure', 'value'), rows, right=(1,)))}"


def _storage(s: dict[str, Any]) -> str:
    rows = [
        (
            size(r["value_bytes"]),
            r["values"],
            _num(r["put_mib_per_second"]),
            _num(r["get_mib_per_second"]),
            _ms(r["put_ms"]["p95"]),
            _ms(r["get_ms"]["p95"]),
        )
        for r in s["sizes"]
    ]
    headers = ("value size", "values", "put MiB/s", "get MiB/s", "put p95 ms", "get p95 ms")
    return f"  shared state, namespace {s['namespace']}\n{_indent(render_table(headers, rows, right=range(6)))}"


_RENDER = {
    "task_submission": _submission,
    "agent_spawning": _spawning,
    "parallel_processing": _parallel,
    "communication": _communication,
    "database": _database,
    "storage_io": _storage,
}


def bench_text(doc: dict[str, Any], titles: dict[str, str]) -> str:
    """The whole report: header, one block per benchmark, recommendations, cleanup."""
    c = doc["cluster"]
    lines = [
        "MAOS Performance Benchmark Report",
        "=================================",
        f"cluster {doc['endpoint']}: {c['hosts']} host(s), {c['slots']} worker slots, {c['cpu_count']} CPUs; "
        f"store {c['store']}; maos {c['version']}",
        f"run {doc['run_id']} ({doc['mode']}), {duration(doc['duration_seconds'])}",
    ]
    if c.get("tasks_unfinished_at_start"):
        lines.append(f"note: {c['tasks_unfinished_at_start']} other task(s) were unfinished when the run began")
    for key, section in doc["benchmarks"].items():
        lines += ["", f"{titles.get(key, key)}:", _skipped(section) or _RENDER[key](section)]
    lines += ["", "Performance Recommendations:", "============================"]
    lines += [f"• {r}" for r in doc["recommendations"]] or ["• None: every figure is within the guide's thresholds."]
    cleanup = doc.get("cleanup")
    if cleanup:
        lines += [
            "",
            f"cleanup: purged {cleanup['trees_purged']} task trees ({cleanup['tasks_purged']} tasks), deleted "
            f"{cleanup['keys_deleted']} keys, acknowledged {cleanup['messages_acknowledged']} messages",
        ]
    return "\n".join(lines)
