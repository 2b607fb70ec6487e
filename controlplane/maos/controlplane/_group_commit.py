"""SQLite plumbing shared by the control plane's stores: connections and group commits.

The task store, the message store and the state backend all live in one SQLite
file. Each hands its writes to a `GroupCommitWriter`: a thread that takes
everything already queued into one transaction, so many small writes cost one
commit, and resolves the callers' futures on their event loop afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Generic, TypeVar

from maos.errors import Unavailable

log = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 20_000
_W = TypeVar("_W", bound=Sized)


def connect(path: Path, synchronous: str = "NORMAL", *, rows: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode. synchronous=NORMAL survives a process kill (SIGKILL)
    without losing a commit; only an OS crash or power loss can drop the newest ones."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    if rows:
        conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


class GroupCommitWriter(Generic[_W]):
    """One writer thread and connection; `commit(conn, writes)` runs one transaction
    over every write queued at the time, in order."""

    def __init__(
        self,
        path: Path,
        commit: Callable[[sqlite3.Connection, list[_W]], None],
        *,
        synchronous: str = "NORMAL",
        name: str,
        max_rows: int = MAX_ROWS_PER_COMMIT,
    ) -> None:
        self._path = path
        self._commit = commit
        self._synchronous = synchronous
        self._name = name
        self._max_rows = max_rows
        self._queue: queue.SimpleQueue[tuple[_W, asyncio.Future[None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.backlog = 0  # rows handed over and not yet committed
        self.commits = 0  # transactions committed (for tests and benchmarks)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, write: _W) -> asyncio.Future[None]:
        """Queue a write; the future resolves once it is committed (in submission order)."""
        assert self._loop is not None, f"{self._name} not started"
        fut: asyncio.Future[None] = self._loop.create_future()
        if self._closed:
            fut.set_exception(Unavailable("the store is closed: the control plane is shutting down"))
            return fut
        self.backlog += len(write)
        self._queue.put((write, fut))
        return fut

    async def close(self) -> None:
        """Commit what is queued, then stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join, 30)

    def _run(self) -> None:
        conn = connect(self._path, self._synchronous)
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            group = [item]
            rows = len(item[0])
            # Group commit: everything already waiting goes into this transaction.
            while rows < self._max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                rows += len(nxt[0])
            error: BaseException | None = None
            try:
                self._commit(conn, [write for write, _ in group])
                self.commits += 1
            except Exception as exc:
                log.exception("%s: a group commit of %d rows failed", self._name, rows)
                error = exc
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._resolve, [f for _, f in group], rows, error)
            except RuntimeError:
                break  # the loop is gone (interpreter shutdown): nobody is waiting
        conn.close()

    def _resolve(self, futures: list[asyncio.Future[None]], rows: int, error: BaseException | None) -> None:
        self.backlog -= rows
        for fut in futures:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(Unavailable(f"the store could not commit: {error}"))
