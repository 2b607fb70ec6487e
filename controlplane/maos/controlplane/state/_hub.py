"""In-process fan-out of committed state changes to the watchers of their namespace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ._model import StateChange, StateEntry

WATCH_QUEUE_SIZE = 4_096
WATCH_QUEUE_BYTES = 16 * 1024 * 1024  # of values: a watcher this far behind re-reads the log instead


@dataclass(eq=False, slots=True)
class StateWatcher:
    """One Watch stream's mailbox: every change of its namespace, possibly out of revision
    order (writers finish in any order). Bounded in changes and in bytes of values: a watcher
    that falls that far behind is marked overflowed and must resume from the last revision it
    handled (from the change log). Its reader calls `took` for each change it takes."""

    namespace: str
    queue: asyncio.Queue[StateChange] = field(default_factory=lambda: asyncio.Queue(WATCH_QUEUE_SIZE))
    overflowed: bool = False
    queued_bytes: int = 0

    def took(self, change: StateChange) -> None:
        self.queued_bytes -= len(change.entry.value)

    @classmethod
    def bounded(cls, namespace: str, size: int) -> StateWatcher:
        return cls(namespace, asyncio.Queue(size))


# Queued to wake a watcher that must re-read the log; revision 0 is below anything it handled.
_RESYNC = StateChange(StateEntry("", "", b"", 0, 0, 0.0))


class StateHub:
    """Watchers by namespace; `publish` is called only with committed changes.

    `forward`, when set, is also called with each change published here (to
    fan it out to other control planes); changes that came from another
    control plane enter through `deliver` and are not forwarded again.
    """

    def __init__(self, queue_size: int = WATCH_QUEUE_SIZE, queue_bytes: int = WATCH_QUEUE_BYTES) -> None:
        self._by_namespace: dict[str, set[StateWatcher]] = {}
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self.forward: Callable[[StateChange], None] | None = None

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
        self.deliver(change)
        if self.forward is not None:
            self.forward(change)

    def resync(self) -> None:
        """Changes may have been missed (fan-out interrupted): every watcher re-reads the log."""
        for watchers in self._by_namespace.values():
            for watcher in watchers:
                watcher.overflowed = True
                if watcher.queue.empty():
                    watcher.queue.put_nowait(_RESYNC)

    def deliver(self, change: StateChange) -> None:
        """Hand a committed change to this process's watchers of its namespace."""
        watchers = self._by_namespace.get(change.entry.namespace)
        if not watchers:
            return
        size = len(change.entry.value)
        for watcher in watchers:
            if watcher.overflowed:
                continue
            if watcher.queued_bytes + size > self._queue_bytes:
                watcher.overflowed = True
                if watcher.queue.empty():
                    watcher.queue.put_nowait(_RESYNC)  # wake it to read the log
                continue
            try:
                watcher.queue.put_nowait(change)
            except asyncio.QueueFull:
                watcher.overflowed = True
            else:
                watcher.queued_bytes += size
