"""What messaging needs to know about tasks, and an adapter over the runtime's task table.

Messaging never imports the orchestrator: it asks a `TaskDirectory` whether a
task exists, which tree it belongs to and whether it is finished, and which
tasks of a tree are still running (the targets of a broadcast). The control
plane passes `RuntimeTaskDirectory(runtime.orch.tasks, runtime.store.get_tasks)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """A task as messaging sees it."""

    task_id: str
    root_id: str
    final: bool
    status: str = ""  # lower-case status name, for messages ("completed")
    group: bool = False  # a workflow root: no agent runs it, so nobody reads its mailbox


class TaskDirectory(Protocol):
    """The task lookups messaging depends on; both are cheap and never raise for unknown ids."""

    async def task(self, task_id: str) -> TaskInfo | None:
        """The task, or None if no task has that id."""

    def unfinished_in_tree(self, root_id: str) -> list[str]:
        """Ids of the unfinished tasks whose root is `root_id` (the root included), sorted;
        workflow roots (group tasks) are left out, since no agent reads their mailbox."""


class TaskLike(Protocol):
    """The fields of the core's TaskRecord that the adapter reads."""

    @property
    def id(self) -> str: ...
    @property
    def root_id(self) -> str: ...
    @property
    def final(self) -> bool: ...
    @property
    def status(self) -> Enum: ...
    @property
    def group(self) -> bool: ...


class RuntimeTaskDirectory:
    """A TaskDirectory over the orchestrator's in-memory tasks, falling back to the store.

    Every unfinished task is in memory (the orchestrator restores them at
    start-up), so a broadcast's targets are found there; a finished task that
    the orchestrator evicted from its cache is fetched from the store so that
    a send to it is answered FAILED_PRECONDITION rather than NOT_FOUND.
    Finding a tree's members scans the in-memory table: O(tasks held), paid
    per broadcast, not per message copy.
    """

    def __init__(
        self,
        tasks: Mapping[str, TaskLike],
        fetch: Callable[[Sequence[str]], Awaitable[Sequence[TaskLike]]] | None = None,
    ) -> None:
        self._tasks = tasks
        self._fetch = fetch

    async def task(self, task_id: str) -> TaskInfo | None:
        rec = self._tasks.get(task_id)
        if rec is None and self._fetch is not None:
            found = await self._fetch([task_id])
            rec = found[0] if found else None
        if rec is None:
            return None
        return TaskInfo(rec.id, rec.root_id, rec.final, rec.status.name.lower(), rec.group)

    def unfinished_in_tree(self, root_id: str) -> list[str]:
        return sorted(
            rec.id for rec in self._tasks.values() if rec.root_id == root_id and not rec.final and not rec.group
        )
