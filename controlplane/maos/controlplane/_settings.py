"""Live settings: `maosctl config set KEY VALUE` changes the running control plane.

Each setting has a parser that validates the text, a default taken from the
daemon's start-up configuration, and an apply step. Values are persisted in
the store and re-applied at start-up, so they survive restarts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from maos.errors import InvalidArgument

from .core import CoreLimits, Orchestrator


def _seconds(text: str) -> float:
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise InvalidArgument(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise InvalidArgument("seconds must not be negative")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise InvalidArgument(f"{text!r} is not a whole number >= 0")
    return int(text)


def _positive_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"{text!r} is not a whole number >= 1")
    return int(text)


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    limit_field: str  # the CoreLimits field it sets; "" for a setting LiveSettings keeps itself
    parse: Callable[[str], Any]
    description: str
    default: Any = None  # of a setting outside CoreLimits (a daemon flag may replace it)


SETTINGS = {
    s.key: s
    for s in (
        Setting(
            "scheduling.max_queue_time",
            "max_queue_time_seconds",
            _seconds,
            "seconds a task may stay queued before it is promoted one priority level (0 = no aging)",
        ),
        Setting(
            "dispatch.prefetch_min", "prefetch_min", _count, "assignments a host may always hold beyond its free slots"
        ),
        Setting("dispatch.prefetch_max", "prefetch_max", _count, "upper bound of the adaptive prefetch per host"),
        Setting(
            "dispatch.prefetch_window",
            "prefetch_window_seconds",
            _seconds,
            "seconds of queued work per slot the adaptive prefetch may cover",
        ),
        Setting("checkpoints.interval", "", _seconds, "seconds between automatic checkpoints (0 = off)", 0.0),
        Setting(
            "checkpoints.retention.count",
            "",
            _positive_count,
            "automatic checkpoints kept, newest first (manual ones stay until deleted)",
            24,
        ),
    )
}


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class LiveSettings:
    """Reads and changes the core's tunables; the defaults are the start-up values."""

    def __init__(self, orch: Orchestrator) -> None:
        self._orch = orch
        self._defaults = orch.limits
        # Settings outside CoreLimits: current and default values by key.
        self._values: dict[str, Any] = {s.key: s.default for s in SETTINGS.values() if not s.limit_field}
        self._value_defaults = dict(self._values)
        self._registered: dict[str, Setting] = {}

    def register(self, settings: Iterable[Setting]) -> None:
        """Add settings a component keeps outside CoreLimits and reads with `value` (the
        monitor's thresholds); call before stored values are applied."""
        for s in settings:
            self._registered[s.key] = s
            self._values[s.key] = self._value_defaults[s.key] = s.default

    def set_default(self, key: str, value: Any) -> None:
        """The start-up value of a setting outside CoreLimits (a daemon flag); call before stored
        values are applied, which then win."""
        if key not in self._values:
            raise InvalidArgument(f"{key!r} is not a setting outside the core's limits")
        self._values[key] = self._value_defaults[key] = value

    def value(self, key: str) -> Any:
        """A setting's current value."""
        setting = self.lookup(key)
        return getattr(self._orch.limits, setting.limit_field) if setting.limit_field else self._values[key]

    def lookup(self, key: str) -> Setting:
        setting = SETTINGS.get(key) or self._registered.get(key)
        if setting is None:
            known = sorted([*SETTINGS, *self._registered])
            raise InvalidArgument(f"unknown setting {key!r}; settings: {', '.join(known)}")
        return setting

    def entries(self) -> list[tuple[Setting, str, str]]:
        """(setting, current value, default value) for every setting, by key."""
        return [
            (
                s,
                _format(self.value(s.key)),
                _format(getattr(self._defaults, s.limit_field) if s.limit_field else self._value_defaults[s.key]),
            )
            for s in (self.lookup(k) for k in sorted([*SETTINGS, *self._registered]))
        ]

    def apply(self, key: str, text: str) -> str:
        """Validate and apply; returns the normalised text to persist."""
        setting = self.lookup(key)
        value = setting.parse(text.strip())
        if not setting.limit_field:
            self._values[key] = value
            return _format(value)
        limits: CoreLimits = dataclasses.replace(self._orch.limits, **{setting.limit_field: value})
        if limits.prefetch_min > limits.prefetch_max:
            raise InvalidArgument(
                f"dispatch.prefetch_min ({limits.prefetch_min}) must not exceed "
                f"dispatch.prefetch_max ({limits.prefetch_max})"
            )
        self._orch.limits = limits
        return _format(value)
