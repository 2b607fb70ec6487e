"""In-process fan-out of committed state changes to the watchers of their namespace."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ._model import StateChange

WATCH_QUEUE_SIZE = 4_096


@dataclass(eq=False, slots=True)
class StateWatcher:
    """One Watch stream's mailbox: every change of its namespace, possibly out of revision
    order (writers finish in any order). Bounded: a watcher that falls that far behind is
    marked overflowed and must resume from the last revision it handled."""

    namespace: str
    queue: asyncio.Queue[StateChange] = field(default_factory=lambda: asyncio.Queue(WATCH_QUEUE_SIZE))
    overflowed: bool = False

    @classmethod
    def bounded(cls, namespace: str, size: int) -> StateWatcher:
        return cls(namespace, asyncio.Queue(size))


class StateHub:
    """Watchers by namespace; `publish` is called only with committed changes."""

    def __init__(self, queue_size: int = WATCH_QUEUE_SIZE) -> None:
        self._by_namespace: dict[str, set[StateWatcher]] = {}
        self._queue_size = queue_size

    def subscribe(self, namespace: str) -> StateWatcher:
        watcher = StateWatcher.bounded(namespace, self._queue_size)
        self._by_namespace.setdefault(namespace, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: StateWatcher) -> None:
        watchers = self._by_namespace.get(watcher.namespace)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._by_namespace[watcher.namespace]

    def watchers(self, namespace: str) -> int:
        """How many watches follow `namespace` now."""
        return len(self._by_namespace.get(namespace, ()))

    def publish(self, change: StateChange) -> None:
        watchers = self._by_namespace.get(change.entry.namespace)
        if not watchers:
            return
        for watcher in watchers:
            if watcher.overflowed:
                continue
            try:
                watcher.queue.put_nowait(change)
            except asyncio.QueueFull:
                watcher.overflowed = True
