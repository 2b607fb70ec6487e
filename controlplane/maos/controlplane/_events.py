"""Fan-out of committed task events to watchers, and of final states to waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from maos.controlplane.core import TaskEventRecord, TaskRecord

WATCH_QUEUE_SIZE = 10_000


@dataclass(eq=False, slots=True)
class Watcher:
    """One WatchTask stream's mailbox. Bounded: a watcher that falls that far behind
    is dropped and told to resume from its last sequence number."""

    task_id: str
    subtree: bool
    queue: asyncio.Queue[TaskEventRecord] = field(default_factory=lambda: asyncio.Queue(WATCH_QUEUE_SIZE))
    overflowed: bool = False


class EventHub:
    """Watchers by task id; `publish` is called only with events that are durable."""

    def __init__(self, parent_of: Callable[[str], str | None]) -> None:
        self._by_task: dict[str, set[Watcher]] = {}
        self._subtree_watchers = 0
        self._parent_of = parent_of
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def subscribe(self, task_id: str, subtree: bool) -> Watcher:
        watcher = Watcher(task_id, subtree)
        self._by_task.setdefault(task_id, set()).add(watcher)
        if subtree:
            self._subtree_watchers += 1
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self._by_task.get(watcher.task_id)
        if watchers is not None and watcher in watchers:
            watchers.discard(watcher)
            if watcher.subtree:
                self._subtree_watchers -= 1
            if not watchers:
                del self._by_task[watcher.task_id]

    def publish(self, events: list[TaskEventRecord]) -> None:
        if not self._by_task:
            return
        for ev in events:
            self._deliver(self._by_task.get(ev.task_id), ev, direct=True)
            if self._subtree_watchers:
                ancestor = self._parent_of(ev.task_id)
                while ancestor:
                    self._deliver(self._by_task.get(ancestor), ev, direct=False)
                    ancestor = self._parent_of(ancestor)

    @staticmethod
    def _deliver(watchers: set[Watcher] | None, ev: TaskEventRecord, *, direct: bool) -> None:
        if not watchers:
            return
        for watcher in watchers:
            if (direct or watcher.subtree) and not watcher.overflowed:
                try:
                    watcher.queue.put_nowait(ev)
                except asyncio.QueueFull:
                    watcher.overflowed = True

    # ----------------------------------------------------------------- waiters

    def wait_for(self, task_id: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, []).append(fut)
        return fut

    def drop_waiter(self, task_id: str, fut: asyncio.Future[None]) -> None:
        futures = self._waiters.get(task_id)
        if futures and fut in futures:
            futures.remove(fut)
            if not futures:
                del self._waiters[task_id]

    def finished(self, records: list[TaskRecord]) -> None:
        if not self._waiters:
            return
        for rec in records:
            for fut in self._waiters.pop(rec.id, ()):
                if not fut.done():
                    fut.set_result(None)
