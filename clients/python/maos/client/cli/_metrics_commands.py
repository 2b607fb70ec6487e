"""`maosctl metrics`, `maosctl alerts` and `maosctl agent metrics`: the performance monitor's figures."""

from __future__ import annotations

import click

from ._common import CliState, format_option, pass_state
from ._metrics_views import (
    AGENT_METRICS,
    DEFAULT_AGENT_METRICS,
    METRICS,
    agent_metrics_table,
    agent_type_dict,
    alert_dict,
    alerts_table,
    metrics_dict,
    metrics_text,
    parse_metrics,
    parse_names,
    parse_timeframe,
)


def _metric_help(names: dict[str, str]) -> str:
    return "Comma-separated, any of: " + ", ".join(names) + "."


@click.command("metrics")
@click.option(
    "--timeframe",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="How far back: 30s, 5m, 1h30m, 24h, 7d (the control plane keeps 7 days).",
)
@click.option("--metric", "metric_names", metavar="NAMES", help=_metric_help(METRICS))
@format_option
@pass_state
def metrics(state: CliState, timeframe: str, metric_names: str | None) -> None:
    """Throughput, latency, queue, utilisation, hosts and alerts over a timeframe.

    Figures come from the control plane's performance monitor, which samples
    itself every few seconds (fine samples for 30 minutes, then by minute for
    a day and by hour for a week). Example: maosctl metrics --timeframe 24h
    """
    seconds = parse_timeframe(timeframe)
    chosen = parse_metrics(metric_names)
    reply = state.client().get_metrics(seconds)
    state.emit(metrics_dict(reply, chosen), lambda: metrics_text(reply, chosen))


@click.command("alerts")
@click.option("--active", "active_only", is_flag=True, help="Only the alerts whose condition still holds.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many (0 = all kept).")
@format_option
@pass_state
def alerts(state: CliState, active_only: bool, limit: int) -> None:
    """Alerts of the performance monitor, newest first.

    Rules: high_cpu / high_memory (a machine above monitor.cpu_threshold /
    monitor.memory_threshold, averaged over monitor.sustained_samples),
    throughput_drop (tasks/s down monitor.throughput_drop against its recent
    history while work is pending), queue_age (a task queued longer than
    scheduling.max_queue_time), idle_while_queued (agents idle while tasks wait
    on no host, monitor.idle_samples samples running). Change thresholds with
    `maosctl config set monitor.cpu_threshold 75`.
    """
    found = state.client().list_alerts(active_only=active_only, limit=limit)
    state.emit([alert_dict(a) for a in found], lambda: alerts_table(found))


@click.command("metrics")
@click.option("--metric", "metric_names", metavar="NAMES", help=_metric_help(AGENT_METRICS))
@click.option("--timeframe", default="1h", show_default=True, metavar="DURATION", help="How far back, e.g. 30m, 24h.")
@format_option
@pass_state
def agent_metrics(state: CliState, metric_names: str | None, timeframe: str) -> None:
    """Per agent type: tasks, success rate, mean duration, utilisation.

    Success rate = completed / (completed + failed or timed out); cancelled tasks
    do not count. Utilisation = time its attempts ran / slot time of the hosts
    offering the type. Example: maosctl agent metrics --metric success_rate
    """
    columns = parse_names(metric_names, AGENT_METRICS, "--metric", DEFAULT_AGENT_METRICS)
    seconds = parse_timeframe(timeframe)
    reply = state.client().get_metrics(seconds)
    keep = ("agent_type", *(("mean_duration_seconds" if c == "mean_duration" else c) for c in columns))
    state.emit(
        [{k: v for k, v in agent_type_dict(m).items() if k in keep} for m in reply.agent_types],
        lambda: agent_metrics_table(reply, columns),
    )
