"""Recommendations from a bench document, by the thresholds of the performance guide.

Each rule names the guide's threshold it applies (pure function of the figures):

- submission: average latency above 100 ms (the guide's benchmark rule), or
  p95 above 100 ms (its "Response Latency (P95) < 100ms" target);
- spawning: average spawn time above 5000 ms (the guide's rule), warm or cold;
- parallel: best speedup below 2.0x (the guide's rule; its target is 2x-5x),
  with the cluster's worker slots named when they are what bounds it;
- communication: message delivery p95 above 100 ms (the guide's message
  batching window, batch_timeout 0.1 s), or state put/get p95 above 100 ms
  (the response-latency target);
- database: a batch commit p95 above 1000 ms (the guide's slow-statement
  threshold, log_min_duration_statement = 1000), or submit throughput below
  1000 tasks/hour (the top of its task-throughput range);
- storage: a put or get of the largest value with p95 above 100 ms (the
  response-latency target applied to shared-state calls).
"""

from __future__ import annotations

from typing import Any

SUBMIT_AVG_MS = 100.0
API_P95_MS = 100.0
SPAWN_AVG_MS = 5000.0
MIN_SPEEDUP = 2.0
MESSAGE_P95_MS = 100.0
SLOW_STATEMENT_MS = 1000.0
MIN_TASKS_PER_HOUR = 1000.0


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    section = doc.get("benchmarks", {}).get(name) or {}
    return {} if "skipped" in section else section


def _submission(doc: dict[str, Any]) -> list[str]:
    latency = _section(doc, "task_submission").get("latency_ms") or {}
    out = []
    if latency.get("avg", 0.0) > SUBMIT_AVG_MS:
        out.append(
            f"High task submission latency detected (avg {latency['avg']:.1f} ms > {SUBMIT_AVG_MS:.0f} ms). "
            "Consider optimizing database connections: a faster disk or PostgreSQL for the store."
        )
    elif latency.get("p95", 0.0) > API_P95_MS:
        out.append(
            f"Task submission p95 is {latency['p95']:.1f} ms, above the {API_P95_MS:.0f} ms response target: "
            "look for a busy control plane host or slow store commits."
        )
    return out


def _spawning(doc: dict[str, Any]) -> list[str]:
    section = _section(doc, "agent_spawning")
    out = []
    warm = section.get("average_spawn_time_ms")
    cold = section.get("cold_average_spawn_time_ms")
    if warm is not None and warm > SPAWN_AVG_MS:
        out.append(
            f"Slow agent spawning detected (avg {warm:.0f} ms > {SPAWN_AVG_MS:.0f} ms on warm workers). "
            "Consider implementing agent warming strategies: more workers per host, or fewer queued tasks."
        )
    elif cold is not None and cold > SPAWN_AVG_MS:
        out.append(
            f"Slow cold agent starts (avg {cold:.0f} ms > {SPAWN_AVG_MS:.0f} ms for the first task of a type). "
            "Consider implementing agent warming strategies: keep workers warm, import heavy agent code lazily."
        )
    return out


def _parallel(doc: dict[str, Any]) -> list[str]:
    section = _section(doc, "parallel_processing")
    best = section.get("max_speedup")
    if best is None or best >= MIN_SPEEDUP:
        return []
    slots = section.get("slots") or 0
    if 0 < slots < MIN_SPEEDUP * 1.25:
        return [
            f"Low parallel processing efficiency (best speedup {best:.2f}x < {MIN_SPEEDUP:.1f}x): the cluster has "
            f"{slots} worker slot(s), so it cannot run more at once. Add agent hosts or workers (--workers)."
        ]
    return [
        f"Low parallel processing efficiency (best speedup {best:.2f}x < {MIN_SPEEDUP:.1f}x with {slots} slots). "
        "Review task decomposition strategies: fewer, larger tasks, and check the hosts are not CPU-starved."
    ]


def _communication(doc: dict[str, Any]) -> list[str]:
    section = _section(doc, "communication")
    out = []
    messages = (section.get("messages") or {}).get("latency_ms") or {}
    if messages.get("p95", 0.0) > MESSAGE_P95_MS:
        out.append(
            f"Message delivery p95 is {messages['p95']:.1f} ms, above the {MESSAGE_P95_MS:.0f} ms batching window: "
            "check the control plane's load and the message store's disk."
        )
    slow_state = [
        f"{op} p95 {section[key]['p95']:.1f} ms"
        for op, key in (("put", "state_put_ms"), ("get", "state_get_ms"))
        if (section.get(key) or {}).get("p95", 0.0) > API_P95_MS
    ]
    if slow_state:
        out.append(
            f"Shared-state calls are slow ({', '.join(slow_state)} > {API_P95_MS:.0f} ms): "
            "use the Redis state backend (--state redis://...) or a faster disk."
        )
    return out


def _database(doc: dict[str, Any]) -> list[str]:
    section = _section(doc, "database")
    out = []
    commit = (section.get("batch_commit_ms") or {}).get("p95")
    if commit is not None and commit > SLOW_STATEMENT_MS:
        out.append(
            f"Store commits are slow (p95 {commit:.0f} ms per batch > {SLOW_STATEMENT_MS:.0f} ms): "
            "tune the database (see the guide's PostgreSQL settings) or move the store to a faster disk."
        )
    per_second = section.get("submits_per_second")
    if per_second is not None and per_second * 3600 < MIN_TASKS_PER_HOUR:
        out.append(
            f"Task throughput is {per_second * 3600:.0f} tasks/hour, below {MIN_TASKS_PER_HOUR:.0f}: "
            "submit in batches (SubmitTasks) and check the store."
        )
    return out


def _storage(doc: dict[str, Any]) -> list[str]:
    sizes = _section(doc, "storage_io").get("sizes") or []
    if not sizes:
        return []
    largest = max(sizes, key=lambda s: s["value_bytes"])
    slow = [op for op in ("put", "get") if (largest.get(f"{op}_ms") or {}).get("p95", 0.0) > API_P95_MS]
    if not slow:
        return []
    return [
        f"Large shared-state values are slow ({' and '.join(slow)} of {largest['value_bytes']:,} bytes p95 > "
        f"{API_P95_MS:.0f} ms): keep big artifacts in files or checkpoints and share their paths."
    ]


def recommendations(doc: dict[str, Any]) -> list[str]:
    """Every recommendation the figures call for, in the order of the benchmarks."""
    out: list[str] = []
    for rule in (_submission, _spawning, _parallel, _communication, _database, _storage):
        out += rule(doc)
    return out
