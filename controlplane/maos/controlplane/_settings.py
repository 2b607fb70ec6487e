"""Live settings: `maosctl config set KEY VALUE` changes the running control plane.

Each setting has a parser that validates the text, a default taken from the
daemon's start-up configuration, and an apply step. Values are persisted in
the store and re-applied at start-up, so they survive restarts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    limit_field: str  # the CoreLimits field it sets
    parse: Callable[[str], Any]
    description: str


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
    )
}


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class LiveSettings:
    """Reads and changes the core's tunables; the defaults are the start-up values."""

    def __init__(self, orch: Orchestrator) -> None:
        self._orch = orch
        self._defaults = orch.limits

    def lookup(self, key: str) -> Setting:
        setting = SETTINGS.get(key)
        if setting is None:
            raise InvalidArgument(f"unknown setting {key!r}; settings: {', '.join(sorted(SETTINGS))}")
        return setting

    def entries(self) -> list[tuple[Setting, str, str]]:
        """(setting, current value, default value) for every setting, by key."""
        return [
            (s, _format(getattr(self._orch.limits, s.limit_field)), _format(getattr(self._defaults, s.limit_field)))
            for s in (SETTINGS[k] for k in sorted(SETTINGS))
        ]

    def apply(self, key: str, text: str) -> str:
        """Validate and apply; returns the normalised text to persist."""
        setting = self.lookup(key)
        value = setting.parse(text.strip())
        limits: CoreLimits = dataclasses.replace(self._orch.limits, **{setting.limit_field: value})
        if limits.prefetch_min > limits.prefetch_max:
            raise InvalidArgument(
                f"dispatch.prefetch_min ({limits.prefetch_min}) must not exceed "
                f"dispatch.prefetch_max ({limits.prefetch_max})"
            )
        self._orch.limits = limits
        return _format(value)
