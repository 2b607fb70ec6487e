"""The monitor's thresholds are live settings: validated, listed, applied, read back."""

from __future__ import annotations

import pytest
from maos.controlplane._settings import LiveSettings
from maos.controlplane.core import Orchestrator
from maos.controlplane.metrics._settings import MONITOR_SETTINGS, monitor_limits
from maos.errors import InvalidArgument


def settings() -> LiveSettings:
    live = LiveSettings(Orchestrator())
    live.register(MONITOR_SETTINGS)
    return live


def test_defaults_are_the_guide_s() -> None:
    limits = monitor_limits(settings())
    assert (limits.cpu_threshold, limits.memory_threshold, limits.throughput_drop) == (80.0, 85.0, 0.3)


def test_set_and_read_back() -> None:
    live = settings()
    assert live.apply("monitor.cpu_threshold", "75") == "75"
    assert live.apply("monitor.throughput_drop", "0.5") == "0.5"
    assert live.apply("monitor.sustained_samples", "3") == "3"
    limits = monitor_limits(live)
    assert (limits.cpu_threshold, limits.throughput_drop, limits.sustained_samples) == (75.0, 0.5, 3)
    entries = {s.key: (value, default) for s, value, default in live.entries()}
    assert entries["monitor.cpu_threshold"] == ("75", "80")
    assert "scheduling.max_queue_time" in entries  # the core's settings are still listed


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("monitor.cpu_threshold", "120", "percentage between 0 and 100"),
        ("monitor.cpu_threshold", "lots", "percentage"),
        ("monitor.memory_threshold", "nan", "percentage"),
        ("monitor.throughput_drop", "30", "fraction above 0 and below 1"),
        ("monitor.sustained_samples", "0", "from 1 to 1000"),
        ("monitor.idle_samples", "-2", "from 1 to 1000"),
    ],
)
def test_bad_values_are_refused_with_what_is_accepted(key: str, value: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        settings().apply(key, value)


def test_unknown_key_lists_the_monitor_settings_too() -> None:
    with pytest.raises(InvalidArgument, match=r"monitor\.cpu_threshold"):
        settings().lookup("monitor.cpu")
