"""`maosctl monitor`: a live dashboard of the performance monitor's figures.

On a terminal the dashboard redraws in place (the LiveRegion of `task
progress --follow`); without one, or with --format json, it prints one
snapshot per interval (a JSON document per line). Each refresh is one
GetMetrics call over the last --window of samples: nothing is polled faster
than the control plane samples.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import TextIO

import click
import orjson
from maos.v1 import admin_pb2

from ._common import CliState, format_option, pass_state
from ._metrics_views import METRICS, metrics_dict, metrics_text, parse_duration, parse_metrics, parse_timeframe
from ._terminal import LiveRegion, is_tty

DEFAULT_WINDOW = "1m"
DEFAULT_INTERVAL = "2s"


def dashboard_lines(
    reply: admin_pb2.GetMetricsResponse, metrics: tuple[str, ...], endpoint: str, window_seconds: float
) -> list[str]:
    """One frame: a title line, then the chosen sections."""
    when = dt.datetime.now().strftime("%H:%M:%S")
    title = f"MAOS monitor · {endpoint} · {when} · last {window_seconds:g}s · Ctrl-C to stop"
    return [title, "", *metrics_text(reply, metrics, methods=6).splitlines()]


def run_monitor(
    state: CliState,
    out: TextIO,
    *,
    metrics: tuple[str, ...],
    window_seconds: float,
    interval_seconds: float,
    duration_seconds: float | None,
    follow: bool,
) -> int:
    """Draw until the duration ends (or once without --follow); returns the frames drawn."""
    client = state.client()
    live = follow and is_tty(out) and not state.json
    region = LiveRegion(out) if live else None
    deadline = None if duration_seconds is None else time.monotonic() + duration_seconds
    frames = 0
    while True:
        started = time.monotonic()
        reply = client.get_metrics(window_seconds)
        frames += 1
        if state.json:
            out.write(orjson.dumps(metrics_dict(reply, metrics)).decode() + "\n")
        elif region is not None:
            region.update(dashboard_lines(reply, metrics, state.endpoint, window_seconds))
        else:
            out.write("\n".join(dashboard_lines(reply, metrics, state.endpoint, window_seconds)) + "\n\n")
        out.flush()
        if not follow:
            return frames
        pause = interval_seconds - (time.monotonic() - started)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return frames
            pause = min(pause, left)
        if pause > 0:
            time.sleep(pause)
        if deadline is not None and time.monotonic() >= deadline:
            return frames


@click.command("monitor")
@click.option("--follow", "-f", is_flag=True, help="Keep refreshing until Ctrl-C (or --duration).")
@click.option("--metric", "metric_names", metavar="NAMES", help="Sections, comma-separated: " + ", ".join(METRICS))
@click.option("--duration", metavar="DURATION", help="Stop after this long, e.g. 30s, 5m (implies --follow).")
@click.option(
    "--interval", default=DEFAULT_INTERVAL, show_default=True, metavar="DURATION", help="Time between refreshes."
)
@click.option(
    "--window",
    default=DEFAULT_WINDOW,
    show_default=True,
    metavar="DURATION",
    help="How far back each refresh's figures reach.",
)
@format_option
@pass_state
def monitor(
    state: CliState,
    follow: bool,
    metric_names: str | None,
    duration: str | None,
    interval: str,
    window: str,
) -> None:
    """Live dashboard: throughput, latency, queue, utilisation per agent type, hosts, alerts.

    On a terminal it redraws in place; piped, or with --format json, it prints
    one snapshot per interval. Example: maosctl monitor --follow --metric cpu,memory
    """
    metrics = parse_metrics(metric_names)
    duration_seconds = parse_duration(duration, "--duration") if duration is not None else None
    interval_seconds = parse_duration(interval, "--interval")
    window_seconds = parse_timeframe(window, "--window")
    try:
        run_monitor(
            state,
            sys.stdout,
            metrics=metrics,
            window_seconds=window_seconds,
            interval_seconds=interval_seconds,
            duration_seconds=duration_seconds,
            follow=follow or duration_seconds is not None,
        )
    except KeyboardInterrupt:
        click.echo("")
