"""Group commits on asyncio: one writer task takes every batch already queued into
one transaction, so many small writes cost one round trip and one commit.

The asyncio twin of `_group_commit.GroupCommitWriter` (which runs SQLite on a
thread): batches become durable in the order they were handed over, and each
caller's future resolves once its batch is committed.

Riding out an outage (`outage_limit_seconds`): a commit that fails with one of
the `transient` errors (the database cannot be reached) is not failed: the group
stays at the head of the queue and is committed again, through `replay` (which
must tolerate a first attempt that did commit before the connection dropped),
with backoff, while later writes queue behind it in order. Callers' futures stay
pending meanwhile, so their after-commit work (acknowledgements, events) happens
exactly when the write is durable. If the database stays unreachable past the
limit, every pending write fails with Unavailable and `on_give_up` is told: the
owner (the control plane) then stops and restarts from the database's truth,
rather than hold writes it cannot record for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sized
from typing import Generic, TypeVar

from maos.errors import MaosError, Unavailable

log = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 20_000
FIRST_RETRY_SECONDS = 0.05  # backoff between commit attempts while the database is unreachable
MAX_RETRY_SECONDS = 1.0  # short: recovery after an outage should not wait long on the backoff
CLOSE_WHILE_FAILING_SECONDS = 5.0  # the last chance a retrying writer gets at shutdown
_W = TypeVar("_W", bound=Sized)


class AsyncGroupWriter(Generic[_W]):
    """`commit(writes)` runs one transaction over every write queued at the time, in order."""

    def __init__(
        self,
        commit: Callable[[list[_W]], Awaitable[None]],
        *,
        name: str,
        max_rows: int = MAX_ROWS_PER_COMMIT,
        transient: tuple[type[BaseException], ...] = (),
        replay: Callable[[list[_W]], Awaitable[None]] | None = None,
        outage_limit_seconds: float = 60.0,
        on_outage: Callable[[BaseException | None], None] | None = None,
        on_give_up: Callable[[str], None] | None = None,
    ) -> None:
        """`transient`: errors that mean "retry later", not "this write is wrong" (none by default:
        every failure fails its group at once). `on_outage(error)` hears of the first failure of an
        outage, and `on_outage(None)` of the commit that ends it."""
        self._commit = commit
        self._name = name
        self._max_rows = max_rows
        self._transient = transient
        self._replay = replay or commit
        self._outage_limit = outage_limit_seconds
        self._on_outage = on_outage
        self._on_give_up = on_give_up
        self.failing_since: float | None = None  # monotonic time of the outage's first failed commit
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
        if self.failing_since is not None:
            # The database is unreachable: what is not committed now was never acknowledged; don't linger.
            timeout_seconds = min(timeout_seconds, CLOSE_WHILE_FAILING_SECONDS)
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
                try:
                    error = await self._commit_group(group, rows)
                except asyncio.CancelledError:
                    self._resolve(group, rows, Unavailable("the store closed during this commit"))
                    raise
                self._resolve(group, rows, error)
        finally:
            self._fail_queued(Unavailable("the store is closed: the control plane is shutting down"))

    async def _commit_group(self, group: list[tuple[_W, asyncio.Future[None]]], rows: int) -> BaseException | None:
        """Commit one group, retrying it through an outage; the error that fails it, if any."""
        writes = [write for write, _ in group]
        commit = self._replay if self.failing_since is not None else self._commit
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await commit(writes)
            except self._transient as exc:
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    log.warning("%s: cannot commit (%s); keeping %d rows and retrying", self._name, exc, self.backlog)
                    if self._on_outage is not None:
                        self._on_outage(exc)
                down = time.monotonic() - self.failing_since
                if down >= self._outage_limit:
                    return self._give_up(exc, down)
                # The first attempt may have committed before its connection dropped: replay from now on.
                commit = self._replay
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            except MaosError as exc:
                return exc
            except Exception as exc:
                log.exception("%s: a group commit of %d rows failed", self._name, rows)
                return exc
            self.commits += 1
            if self.failing_since is not None:
                log.warning("%s: committing again after %.1fs", self._name, time.monotonic() - self.failing_since)
                self.failing_since = None
                if self._on_outage is not None:
                    self._on_outage(None)
            return None

    def _give_up(self, exc: BaseException, down: float) -> MaosError:
        reason = f"could not commit for {down:.0f}s ({exc}); {self.backlog} rows were not recorded"
        log.error("%s: %s", self._name, reason)
        error = Unavailable(f"{exc}: not recorded after {down:.0f}s of retrying")
        self._fail_queued(error)
        self.failing_since = None
        if self._on_give_up is not None:
            self._on_give_up(reason)
        return error

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
