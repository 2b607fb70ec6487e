"""Metrics and the performance monitor of the control plane.

Pure parts (no I/O, no clock): `_histogram` (mergeable latency histograms),
`_window` (samples, the rolling window and its downsampling), `_rules` (trend
rules and the alert book), `_recorder` (task figures from committed
decisions), `_api` (RPC durations), `_prometheus` (text exposition). Edges:
`_monitor` (samples the runtime, psutil and messaging every interval),
`_exposition` (what /metrics serves) and `_http` (the tiny scrape server).
"""

from ._api import LONG_POLLS as LONG_POLLS
from ._api import ApiLatency as ApiLatency
from ._api import method_name as method_name
from ._exposition import render_metrics as render_metrics
from ._histogram import Histogram as Histogram
from ._http import MetricsHttpServer as MetricsHttpServer
from ._monitor import DEFAULT_INTERVAL_SECONDS as DEFAULT_INTERVAL_SECONDS
from ._monitor import HostNow as HostNow
from ._monitor import Monitor as Monitor
from ._rules import Alert as Alert
from ._rules import AlertBook as AlertBook
from ._rules import Condition as Condition
from ._rules import MonitorLimits as MonitorLimits
from ._rules import QueueView as QueueView
from ._rules import evaluate as evaluate
from ._window import Gauge as Gauge
from ._window import RollingWindow as RollingWindow
from ._window import Sample as Sample
from ._window import TypeCounts as TypeCounts
from ._window import downsample as downsample
from ._window import merge_samples as merge_samples

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "LONG_POLLS",
    "Alert",
    "AlertBook",
    "ApiLatency",
    "Condition",
    "Gauge",
    "Histogram",
    "HostNow",
    "MetricsHttpServer",
    "Monitor",
    "MonitorLimits",
    "QueueView",
    "RollingWindow",
    "Sample",
    "TypeCounts",
    "downsample",
    "evaluate",
    "merge_samples",
    "method_name",
    "render_metrics",
]
