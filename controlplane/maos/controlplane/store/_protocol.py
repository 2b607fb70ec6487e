"""The Store protocol: what the control plane needs from durable storage.

SQLite is the embedded default; PostgreSQL implements the same protocol.
Writes are handed over as batches and become durable in group commits, in
the order they were handed over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from maos.controlplane.core import AttemptRecord, TaskEventRecord, TaskRecord, TaskStatus

from ._rows import FullRow, MutableRow


@dataclass(frozen=True, slots=True)
class NamedBlob:
    """A template or batch: a name, its serialized message, when it was created."""

    name: str
    data: bytes
    created_at: float


@dataclass(slots=True)
class WriteBatch:
    """Rows snapshotted on the event loop: tasks, events, attempts, templates, batches.
    Everything in one batch commits together (e.g. a batch's tasks and its state)."""

    inserts: list[FullRow] = field(default_factory=list)
    updates: list[MutableRow] = field(default_factory=list)
    events: list[tuple[object, ...]] = field(default_factory=list)
    attempts: list[tuple[object, ...]] = field(default_factory=list)
    templates: list[NamedBlob] = field(default_factory=list)
    deleted_templates: list[str] = field(default_factory=list)
    batches: list[NamedBlob] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    # Root ids of finished task trees to delete with their events and attempts.
    purged_roots: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.inserts)
            + len(self.updates)
            + len(self.events)
            + len(self.attempts)
            + len(self.templates)
            + len(self.deleted_templates)
            + len(self.batches)
            + len(self.settings)
            + len(self.purged_roots)
        )


@dataclass(frozen=True, slots=True)
class TaskQuery:
    statuses: tuple[TaskStatus, ...] = ()
    root_id: str = ""
    parent_id: str = ""
    limit: int = 100
    before_id: str = ""  # page token: newest first, ids below this one


class Store(Protocol):
    """Durable task storage."""

    @property
    def description(self) -> str:
        """Where the data lives, for status output (e.g. "sqlite:/var/lib/maos/maos.db")."""
        ...

    @property
    def backlog(self) -> int:
        """Rows handed over and not yet durable; the API sheds load above a bound."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def write(self, batch: WriteBatch) -> asyncio.Future[None]:
        """Hand over a batch; the future resolves once it is durable (in order)."""
        ...

    async def load_recovery_set(self) -> list[TaskRecord]:
        """Unfinished tasks plus the finished tasks they depend on or descend from,
        parents before children."""
        ...

    async def get_tasks(self, ids: Sequence[str]) -> list[TaskRecord]: ...

    async def list_tasks(self, query: TaskQuery) -> list[TaskRecord]: ...

    async def task_events(self, task_id: str, after_seq: int, limit: int) -> list[TaskEventRecord]: ...

    async def find_idempotency_key(self, key: str) -> str | None: ...

    async def counts_by_status(self) -> dict[TaskStatus, int]: ...

    async def attempts(self, task_id: str) -> list[AttemptRecord]: ...

    async def events_of(self, task_ids: Sequence[str]) -> list[TaskEventRecord]:
        """Every stored event of these tasks, by task id then sequence number
        (checkpoints read a page of tasks, then their events in one call)."""
        ...

    async def attempts_of(self, task_ids: Sequence[str]) -> list[AttemptRecord]:
        """Every stored attempt of these tasks, by task id then attempt number."""
        ...

    async def load_templates(self) -> list[NamedBlob]: ...

    async def load_batches(self) -> list[NamedBlob]: ...

    async def load_settings(self) -> dict[str, str]: ...
