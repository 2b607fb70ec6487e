"""Group commits on asyncio: one writer task takes every batch already queued into
one transaction, so many small writes cost one round trip and one commit.

The asyncio twin of `_group_commit.GroupCommitWriter` (which runs SQLite on a
thread): batches become durable in the order they were handed over, and each
caller's future resolves once its batch is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sized
from typing import Generic, TypeVar

from maos.errors import MaosError, Unavailable

log = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 20_000
_W = TypeVar("_W", bound=Sized)


class AsyncGroupWriter(Generic[_W]):
    """`commit(writes)` runs one transaction over every write queued at the time, in order."""

    def __init__(
        self, commit: Callable[[list[_W]], Awaitable[None]], *, name: str, max_rows: int = MAX_ROWS_PER_COMMIT
    ) -> None:
        self._commit = commit
        self._name = name
        self._max_rows = max_rows
        self._queue: deque[tuple[_W, asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.backlog = 0  # rows handed over and not yet committed
        self.commits = 0  # transactions committed (for tests and benchmarks)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    def submit(self, write: _W) -> asyncio.Future[None]:
        """Queue a write; the future resolves once it is committed (in submission order)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed or self._task is None:
            fut.set_exception(Unavailable("the store is closed: the control plane is shutting down"))
            return fut
        self.backlog += len(write)
        self._queue.append((write, fut))
        self._wake.set()
        return fut

    async def close(self, timeout_seconds: float = 30.0) -> None:
        """Commit what is queued (within the timeout), then stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=timeout_seconds)
        if not done:
            log.error("%s: %d rows not committed within %.0fs of shutdown", self._name, self.backlog, timeout_seconds)
            self._task.cancel()
            await asyncio.wait([self._task])
        self._fail_queued(Unavailable("the store closed before this write was committed"))

    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                group: list[tuple[_W, asyncio.Future[None]]] = []
                rows = 0
                # Group commit: everything already waiting goes into this transaction.
                while self._queue and (not group or rows + len(self._queue[0][0]) <= self._max_rows):
                    item = self._queue.popleft()
                    group.append(item)
                    rows += len(item[0])
                error: BaseException | None = None
                try:
                    await self._commit([write for write, _ in group])
                    self.commits += 1
                except asyncio.CancelledError:
                    self._resolve(group, rows, Unavailable("the store closed during this commit"))
                    raise
                except MaosError as exc:
                    error = exc
                except Exception as exc:
                    log.exception("%s: a group commit of %d rows failed", self._name, rows)
                    error = exc
                self._resolve(group, rows, error)
        finally:
            self._fail_queued(Unavailable("the store is closed: the control plane is shutting down"))

    def _resolve(self, group: list[tuple[_W, asyncio.Future[None]]], rows: int, error: BaseException | None) -> None:
        self.backlog -= rows
        for _, fut in group:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            elif isinstance(error, MaosError):
                fut.set_exception(error)
            else:
                fut.set_exception(Unavailable(f"the store could not commit: {error}"))

    def _fail_queued(self, error: MaosError) -> None:
        while self._queue:
            write, fut = self._queue.popleft()
            self.backlog -= len(write)
            if not fut.done():
                fut.set_exception(error)
