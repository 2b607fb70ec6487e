"""Plain data of the control plane's core: task records, enums, events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class TaskStatus(enum.IntEnum):
    """Mirrors maos.v1.TaskStatus (values are pinned by a test)."""

    PENDING = 1
    QUEUED = 2
    RUNNING = 3
    COMPLETED = 4
    FAILED = 5
    CANCELLED = 6
    TIMED_OUT = 7

    @property
    def final(self) -> bool:
        return self >= TaskStatus.COMPLETED


FINAL_STATUSES = frozenset(s for s in TaskStatus if s.final)


class Priority(enum.IntEnum):
    """Mirrors maos.v1.Priority; lower is more urgent."""

    CRITICAL = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4


class DependencyPolicy(enum.IntEnum):
    """Mirrors maos.v1.DependencyFailurePolicy."""

    FAIL = 1
    SKIP = 2
    CONTINUE = 3


class Outcome(enum.IntEnum):
    """Mirrors maos.v1.Outcome: how an attempt ended on its host."""

    SUCCEEDED = 1
    FAILED = 2
    TIMED_OUT = 3
    CANCELLED = 4


@dataclass(slots=True)
class TaskRecord:
    """One task as the core sees it. `spec` is opaque to the core (the edge's TaskSpec)."""

    id: str
    root_id: str
    parent_id: str
    spec: Any
    agent_type: str
    priority: Priority
    created_at: float
    depends_on: tuple[str, ...] = ()
    dependency_policy: DependencyPolicy = DependencyPolicy.FAIL
    timeout_seconds: float = 0.0
    max_retries: int = 0
    retry_initial_seconds: float = 0.0
    retry_coefficient: float = 2.0
    retry_max_seconds: float = 60.0
    non_retryable: frozenset[str] = frozenset()
    idempotency_key: str = ""
    workflow_key: str = ""
    group: bool = False
    queue_timeout_seconds: float = 0.0
    plan: bytes = b""  # opaque: how the planner decomposed this root (the edge's Plan message)

    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    failures: int = 0
    host_id: str = ""
    agent_id: str = ""
    queued_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    progress: float = 0.0
    progress_message: str = ""
    result: bytes = b""
    result_type: str = ""
    error_kind: str = ""
    error_message: str = ""
    log: str = ""
    seq: int = 0

    # Bookkeeping that is rebuilt on recovery, never stored.
    deps_remaining: set[str] = field(default_factory=set)
    dependents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    open_children: int = 0
    queue_token: int = 0
    retry_at: float = 0.0
    dispatched_at: float = 0.0
    aging_since: float = 0.0  # when it last entered its current priority level
    spawned: bool = False  # submitted by a running agent under itself: served depth-first

    @property
    def final(self) -> bool:
        return self.status >= TaskStatus.COMPLETED


@dataclass(slots=True, frozen=True)
class TaskEventRecord:
    """One persisted transition or progress report of a task."""

    task_id: str
    seq: int
    status: TaskStatus
    attempt: int
    time: float
    host_id: str
    message: str
    progress: float
    progress_message: str


@dataclass(slots=True, frozen=True)
class AttemptRecord:
    """One dispatch of a task (the lease) and how it ended; RUNNING while it runs."""

    task_id: str
    number: int
    host_id: str
    agent_id: str
    dispatched_at: float
    started_at: float
    finished_at: float
    status: TaskStatus
    error_kind: str = ""
    error_message: str = ""


@dataclass(slots=True, frozen=True)
class AttemptResult:
    """What a host reports when an attempt ends."""

    task_id: str
    attempt: int
    outcome: Outcome
    result: bytes = b""
    result_type: str = ""
    error_kind: str = ""
    error_message: str = ""
    log: str = ""
    agent_id: str = ""
    duration_seconds: float = 0.0
