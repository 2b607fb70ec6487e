"""`maosctl report`: the user guide's performance report, from the monitor's figures.

Averages over the timeframe, a performance score out of 100 and
recommendations, each drawn from the figures it quotes. The score:

    score = 100 x sum(weight x part) / sum(weight), over the parts whose figure is known

    part      weight  0..1
    cpu         15    1 up to monitor.cpu_threshold (80%), then falling linearly to 0 at 100%;
                      the busiest machine's average counts (control plane's or a host's)
    memory      15    the same with monitor.memory_threshold (85%)
    latency     25    API p95 (every unary call but the long polls): 1 up to 100 ms, 0 from 1 s,
                      linear in log10 between
    success     20    completed / (completed + failed or timed out)
    flow        25    1 when the queue was empty on average (mean depth < 1); else agent
                      utilisation / 0.75 (the target utilisation), at most 1: work waited, so
                      agents should have been busy
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
from maos.v1 import admin_pb2

from ._common import CliState, format_option, pass_state
from ._metrics_views import machine_averages, ms, parse_timeframe, pct

WEIGHTS = {"cpu": 15.0, "memory": 15.0, "latency": 25.0, "success": 20.0, "flow": 25.0}
LATENCY_GOOD_SECONDS = 0.1  # the guide's threshold for submission latency
LATENCY_BAD_SECONDS = 1.0
TARGET_UTILISATION = 0.75
SCALE_UP_UTILISATION = 0.85
SCALE_DOWN_UTILISATION = 0.30
LOW_EFFICIENCY = 0.5
LOW_SUCCESS = 0.95
NOTHING_STANDS_OUT = "nothing stands out: every figure is within its bounds"


def _headroom(value: float, threshold: float) -> float:
    if value <= threshold:
        return 1.0
    return max(0.0, (100.0 - value) / max(100.0 - threshold, 1e-9))


def latency_part(p95_seconds: float) -> float:
    if p95_seconds <= LATENCY_GOOD_SECONDS:
        return 1.0
    if p95_seconds >= LATENCY_BAD_SECONDS:
        return 0.0
    return 1.0 - math.log10(p95_seconds / LATENCY_GOOD_SECONDS) / math.log10(LATENCY_BAD_SECONDS / LATENCY_GOOD_SECONDS)


def flow_part(mean_queue_depth: float | None, utilisation: float | None) -> float | None:
    if mean_queue_depth is None:
        return None
    if mean_queue_depth < 1:
        return 1.0
    if utilisation is None:
        return None
    return min(utilisation / TARGET_UTILISATION, 1.0)


@dataclass(frozen=True)
class Figures:
    """What the score and recommendations read, in plain numbers (None = not measured)."""

    cpu_percent: float | None  # the busiest machine's average
    memory_percent: float | None
    cpu_threshold: float
    memory_threshold: float
    api_p95_seconds: float | None
    completed: int
    failed: int
    mean_queue_depth: float | None
    utilisation: float | None


def score_parts(f: Figures) -> dict[str, float | None]:
    """Each part of the score in 0..1, None when its figure is unknown."""
    finished = f.completed + f.failed
    return {
        "cpu": None if f.cpu_percent is None else _headroom(f.cpu_percent, f.cpu_threshold),
        "memory": None if f.memory_percent is None else _headroom(f.memory_percent, f.memory_threshold),
        "latency": None if f.api_p95_seconds is None else latency_part(f.api_p95_seconds),
        "success": f.completed / finished if finished else None,
        "flow": flow_part(f.mean_queue_depth, f.utilisation),
    }


def performance_score(parts: dict[str, float | None]) -> float | None:
    """100 x the weighted mean of the known parts; None when none is known."""
    known = {k: v for k, v in parts.items() if v is not None}
    if not known:
        return None
    return 100.0 * sum(WEIGHTS[k] * v for k, v in known.items()) / sum(WEIGHTS[k] for k in known)


def figures_of(reply: admin_pb2.GetMetricsResponse) -> Figures:
    s = reply.summary
    cpu = machine_averages(reply, "cpu")
    memory = machine_averages(reply, "memory")
    return Figures(
        cpu_percent=max((v for _, v in cpu), default=None),
        memory_percent=max((v for _, v in memory), default=None),
        cpu_threshold=reply.thresholds.get("monitor.cpu_threshold", 80.0),
        memory_threshold=reply.thresholds.get("monitor.memory_threshold", 85.0),
        api_p95_seconds=s.api_latency.p95 if s.api_latency.count else None,
        completed=s.completed,
        failed=s.failed,
        mean_queue_depth=s.queue_depth.mean if s.queue_depth.known else None,
        utilisation=s.utilisation if s.HasField("utilisation") else None,
    )


def _alert_advice(alert: admin_pb2.Alert) -> str:
    figures = alert.figures
    advice = {
        "queue_age": "give its agent type more capacity (hosts or --workers), or raise its priority",
        "idle_while_queued": "start an agent host that offers the waiting agent types (--agents FILE)"
        if figures.get("unserved_types", 0) > 0
        else "check that hosts offering the waiting agent types are not draining",
        "throughput_drop": "look for failing tasks or a lost host since it began (maosctl task list --status failed)",
        "high_cpu": "move agents to another machine or lower --workers there",
        "high_memory": "lower agent memory limits or spread agents over more hosts",
    }.get(alert.rule, "see `maosctl alerts`")
    return f"active alert {alert.rule} ({alert.severity}): {alert.message}; {advice}"


def recommendations(reply: admin_pb2.GetMetricsResponse, f: Figures) -> list[str]:
    """Advice drawn from the figures, each quoting the numbers that call for it."""
    s = reply.summary
    out: list[str] = []
    covered: set[tuple[str, str]] = set()  # (rule, machine) already advised from the averages
    for machine, value in machine_averages(reply, "cpu"):
        if value > f.cpu_threshold:
            covered.add(("high_cpu", machine))
            out.append(
                f"{machine}: CPU averaged {value:.0f}% (threshold {f.cpu_threshold:g}%): "
                "run agents on more machines or lower --workers on this one"
            )
    for machine, value in machine_averages(reply, "memory"):
        if value > f.memory_threshold:
            covered.add(("high_memory", machine))
            out.append(
                f"{machine}: memory averaged {value:.0f}% (threshold {f.memory_threshold:g}%): "
                "lower agent memory limits or spread agents over more hosts"
            )
    if f.api_p95_seconds is not None and f.api_p95_seconds > LATENCY_GOOD_SECONDS:
        slowest = max((m for m in reply.api if not m.long_poll), key=lambda m: m.latency.p95, default=None)
        where = f"; slowest method {slowest.method} at p95 {ms(slowest.latency.p95)}" if slowest else ""
        out.append(
            f"API p95 latency is {ms(f.api_p95_seconds)}, above {ms(LATENCY_GOOD_SECONDS)}{where}: "
            "check the store (PostgreSQL pool, --sqlite-synchronous) and the control plane's CPU"
        )
    finished = f.completed + f.failed
    if f.failed and finished and f.completed / finished < LOW_SUCCESS:
        worst = max(reply.agent_types, key=lambda m: m.failed)
        out.append(
            f"{f.failed} of {finished} tasks failed ({pct(f.failed / finished, 1)}); most in agent type "
            f"{worst.agent_type} ({worst.failed} failed): see maosctl task list --status failed"
        )
    u, depth = f.utilisation, f.mean_queue_depth
    slots = sum(h.slots for h in reply.hosts if h.connected)
    if depth is not None and depth >= 1 and u is not None:
        if u < LOW_EFFICIENCY:
            out.append(
                f"tasks queued (mean depth {depth:.1f}) while agents were busy only {pct(u)} of the time: "
                "the queued agent types may lack hosts (maosctl agent types, maosctl alerts)"
            )
        elif u > SCALE_UP_UTILISATION and depth > 2 * slots:
            out.append(
                f"agents were busy {pct(u)} of the time and the queue (mean depth {depth:.1f}) was deeper than "
                f"twice the {slots} slots: add agent hosts or workers"
            )
    elif u is not None and u < SCALE_DOWN_UTILISATION and f.completed:
        out.append(
            f"agents were busy only {pct(u)} of the time with nothing queued on average: "
            f"fewer than the {slots} workers would do"
        )
    if s.HasField("parallel_efficiency") and s.parallel_efficiency < LOW_EFFICIENCY:
        trees = "the task tree that finished" if s.trees == 1 else f"the {s.trees} task trees that finished"
        out.append(
            f"{trees} ran at {pct(s.parallel_efficiency)} parallel efficiency (mean): "
            "fewer, larger tasks or more parallel streams (maosctl task analyze ROOT --performance)"
        )
    out.extend(_alert_advice(a) for a in reply.alerts if (a.rule, a.subject) not in covered)
    return out


def build_report(reply: admin_pb2.GetMetricsResponse) -> dict[str, Any]:
    """The report as a document: averages, the score and its parts, recommendations."""
    s = reply.summary
    f = figures_of(reply)
    parts = score_parts(f)
    score = performance_score(parts)
    return {
        "timeframe_seconds": reply.timeframe_seconds,
        "covered_seconds": s.seconds,
        "cpu_percent": {m: v for m, v in machine_averages(reply, "cpu")},
        "memory_percent": {m: v for m, v in machine_averages(reply, "memory")},
        "throughput_per_minute": s.throughput_per_second * 60,
        "completed": s.completed,
        "failed": s.failed,
        "api_p95_ms": None if f.api_p95_seconds is None else f.api_p95_seconds * 1000,
        "completion_p95_ms": s.completion.p95 * 1000 if s.completion.count else None,
        "utilisation": f.utilisation,
        "mean_queue_depth": f.mean_queue_depth,
        "parallel_efficiency": s.parallel_efficiency if s.HasField("parallel_efficiency") else None,
        "score": score,
        "score_parts": {
            k: {"value": v, "weight": WEIGHTS[k], "points": None if v is None else v * WEIGHTS[k]}
            for k, v in parts.items()
        },
        "recommendations": recommendations(reply, f),
    }


def _machines(values: dict[str, float]) -> str:
    if not values:
        return "-"
    return " · ".join(f"{machine} {value:.1f}%" for machine, value in values.items())


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def report_text(doc: dict[str, Any], endpoint: str) -> str:
    parts: Sequence[tuple[str, dict[str, Any]]] = list(doc["score_parts"].items())
    score = doc["score"]
    lines = [
        "MAOS Performance Report",
        "=======================",
        f"{endpoint} · last {doc['covered_seconds']:.0f}s of samples (asked {doc['timeframe_seconds']:.0f}s)",
        "",
        "System Metrics:",
        f"  Average CPU Usage: {_machines(doc['cpu_percent'])}",
        f"  Average Memory Usage: {_machines(doc['memory_percent'])}",
        "",
        "Task Processing:",
        f"  Average Throughput: {doc['throughput_per_minute']:.1f} tasks/minute "
        f"({doc['completed']} completed, {doc['failed']} failed)",
        f"  Average P95 Latency: {_num(doc['api_p95_ms'], '.1f')}ms (API) · "
        f"task completion p95 {_num(doc['completion_p95_ms'], '.1f')}ms",
        f"  Agent Utilisation: {pct(doc['utilisation'])} · mean queue depth {_num(doc['mean_queue_depth'], '.1f')}"
        f" · parallel efficiency {pct(doc['parallel_efficiency'])}",
        "",
        f"Performance Score: {'-' if score is None else f'{score:.1f}'}/100",
        "  " + " · ".join(f"{name} {_num(p['points'], '.1f')}/{p['weight']:g}" for name, p in parts),
        "",
        "Recommendations:",
        *([f"  - {r}" for r in doc["recommendations"]] or [f"  - {NOTHING_STANDS_OUT}"]),
    ]
    return "\n".join(lines)


@click.command("report")
@click.option("--timeframe", default="1h", show_default=True, metavar="DURATION", help="How far back, e.g. 30m, 24h.")
@format_option
@pass_state
def report(state: CliState, timeframe: str) -> None:
    """The performance report: averages, a score out of 100, recommendations.

    Figures come from the control plane's performance monitor over
    --timeframe; every recommendation quotes the figures that call for it.

    \b
    score = 100 x sum(weight x part) / sum(weight), over the known parts
      cpu      15  1 up to monitor.cpu_threshold (80%), then linearly to 0
                   at 100% (the busiest machine: control plane's or a host's)
      memory   15  the same with monitor.memory_threshold (85%)
      latency  25  API p95 (unary calls, long polls left out): 1 up to
                   100 ms, 0 from 1 s, linear in log10 between
      success  20  completed / (completed + failed or timed out)
      flow     25  1 if the mean queue depth was below 1, else
                   utilisation / 0.75 (at most 1): work waited, so agents
                   should have been busy
    """
    seconds = parse_timeframe(timeframe)
    reply = state.client().get_metrics(seconds)
    doc = build_report(reply)
    state.emit(doc, lambda: report_text(doc, state.endpoint))
