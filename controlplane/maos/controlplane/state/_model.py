"""Shared state's data: entries, changes, limits, and the StateBackend protocol.

A namespace holds keys; each key holds one JSON value and a version (1 on
creation, +1 on every write; a deleted key is gone, so re-creating it starts
again at 1, as in etcd). Every change in a namespace gets the next revision
of that namespace (1, 2, 3, ... without gaps), so a watcher can tell from
revisions alone whether it missed something. Backends keep the last
`change_log_size` changes per namespace for watchers to replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from maos.errors import FailedPrecondition

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StateLimits:
    """Bounds on what shared state accepts and keeps (per control plane)."""

    max_value_bytes: int = MIB
    max_key_bytes: int = 512
    change_log_size: int = 10_000  # changes kept per namespace for Watch to replay
    max_pending_writes: int = 100_000  # writes queued for a backend before RESOURCE_EXHAUSTED


@dataclass(frozen=True, slots=True)
class StateEntry:
    """One key's current value. `revision` is the namespace revision of its last change."""

    namespace: str
    key: str
    value: bytes  # JSON; empty in answers that leave the value out (keys_only, writes)
    version: int
    revision: int
    updated_at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class StateChange:
    """One committed change. A delete has `deleted` set, an empty value and version 0."""

    entry: StateEntry
    deleted: bool = False

    @property
    def revision(self) -> int:
        return self.entry.revision


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What a delete did: the change it made (None when the key did not exist) and the
    namespace revision after it."""

    change: StateChange | None
    revision: int

    @property
    def deleted(self) -> bool:
        return self.change is not None


class StaleVersion(FailedPrecondition):
    """A compare-and-set (or a delete with an expected version) found another version.

    `current` is the key's entry as the backend saw it (None: the key does not exist),
    so a retry loop can go on without reading the key again.
    """

    def __init__(self, namespace: str, key: str, expected: int, current: StateEntry | None) -> None:
        actual = current.version if current is not None else 0
        if expected == 0:
            what = f"already exists at version {actual}, so it cannot be created (expected version 0)"
        elif current is None:
            what = f"does not exist (version 0), not version {expected}"
        else:
            what = f"is at version {actual}, not {expected}"
        super().__init__(f"stale version: key {key!r} in namespace {namespace} {what}; read it again and retry")
        self.expected = expected
        self.current = current

    @property
    def current_version(self) -> int:
        return self.current.version if self.current is not None else 0


class StateBackend(Protocol):
    """Where shared state lives: the embedded SQLite store or Redis.

    Callers validate namespaces; backends validate keys and values against their
    `StateLimits` (InvalidArgument), raise StaleVersion for a compare that fails,
    Unavailable when the storage cannot be reached and ResourceExhausted when too
    many writes are queued. Every write returns the change it committed; concurrent
    writes may finish out of revision order (watchers put them back in order).
    """

    @property
    def description(self) -> str:
        """Where the state is kept, for logs and status ("sqlite:/path", "redis://host:6379/0")."""

    @property
    def limits(self) -> StateLimits: ...

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Finish queued writes and release connections; idempotent."""

    async def __aenter__(self) -> StateBackend: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def get(self, namespace: str, key: str) -> StateEntry | None: ...

    async def put(self, namespace: str, key: str, value: bytes) -> StateChange:
        """Write unconditionally."""

    async def cas(self, namespace: str, key: str, value: bytes, expected_version: int) -> StateChange:
        """Write only if the key is at `expected_version` (0: only if it does not exist)."""

    async def delete(self, namespace: str, key: str, expected_version: int = 0) -> DeleteOutcome:
        """Delete the key (only at `expected_version` unless it is 0); absent keys are not an error
        when no version is expected."""

    async def list(
        self, namespace: str, prefix: str = "", *, after_key: str = "", limit: int = 100, keys_only: bool = False
    ) -> Sequence[StateEntry]:
        """Up to `limit` entries whose keys start with `prefix` and sort after `after_key`
        (by their UTF-8 bytes); values left empty with `keys_only`."""

    async def changes(self, namespace: str, after_revision: int, limit: int) -> Sequence[StateChange]:
        """Up to `limit` logged changes with a revision above `after_revision`, in order.
        Only the last `limits.change_log_size` changes per namespace are kept."""

    async def namespaces(self) -> Sequence[str]:
        """Every namespace that holds at least one key, sorted (checkpoints copy them all)."""

    async def import_entries(self, entries: Sequence[StateEntry]) -> None:
        """Write entries exactly as given (value, version, revision, updated_at): restoring a
        checkpoint into namespaces that hold nothing. A namespace's revision becomes at least the
        highest revision among its entries; its change log starts empty."""
