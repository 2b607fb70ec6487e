"""The monitor's live settings: `maosctl config set monitor.cpu_threshold 75` and the like."""

from __future__ import annotations

from maos.controlplane._settings import LiveSettings, Setting
from maos.errors import InvalidArgument

from ._rules import MonitorLimits

DEFAULTS = MonitorLimits()


def _number(text: str, what: str) -> float:
    try:
        value = float(text.removesuffix("%"))
    except ValueError:
        raise InvalidArgument(f"{text!r} is not {what}") from None
    if value != value:  # NaN
        raise InvalidArgument(f"{text!r} is not {what}")
    return value


def _percent(text: str) -> float:
    value = _number(text, "a percentage between 0 and 100")
    if not 0 <= value <= 100:
        raise InvalidArgument(f"{text!r} is not a percentage between 0 and 100")
    return value


def _fraction(text: str) -> float:
    value = _number(text, "a fraction between 0 and 1 (e.g. 0.3 for 30%)")
    if not 0 < value < 1:
        raise InvalidArgument(f"{text!r} is not a fraction above 0 and below 1 (e.g. 0.3 for 30%)")
    return value


def _samples(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InvalidArgument(f"{text!r} is not a number of samples from 1 to 1000")
    return int(text)


MONITOR_SETTINGS = (
    Setting(
        "monitor.cpu_threshold",
        "",
        _percent,
        "CPU % of a machine (averaged over monitor.sustained_samples) above which a high_cpu alert is raised",
        DEFAULTS.cpu_threshold,
    ),
    Setting(
        "monitor.memory_threshold",
        "",
        _percent,
        "memory % of a machine (averaged over monitor.sustained_samples) above which high_memory is raised",
        DEFAULTS.memory_threshold,
    ),
    Setting(
        "monitor.sustained_samples",
        "",
        _samples,
        "samples (one per --metrics-interval) CPU and memory are averaged over before an alert",
        DEFAULTS.sustained_samples,
    ),
    Setting(
        "monitor.throughput_drop",
        "",
        _fraction,
        "fall in tasks/s against the recent history (0.3 = 30%) that raises throughput_drop",
        DEFAULTS.throughput_drop,
    ),
    Setting(
        "monitor.idle_samples",
        "",
        _samples,
        "consecutive samples with idle agents and waiting tasks before idle_while_queued is raised",
        DEFAULTS.idle_samples,
    ),
)


def monitor_limits(settings: LiveSettings) -> MonitorLimits:
    """The thresholds in force now."""
    return MonitorLimits(
        cpu_threshold=settings.value("monitor.cpu_threshold"),
        memory_threshold=settings.value("monitor.memory_threshold"),
        sustained_samples=settings.value("monitor.sustained_samples"),
        throughput_drop=settings.value("monitor.throughput_drop"),
        idle_samples=settings.value("monitor.idle_samples"),
    )
