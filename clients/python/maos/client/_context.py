"""TaskContext: what a Python agent function receives as its first argument.

    def run(ctx: TaskContext, input: Any) -> Any:
        for i, row in enumerate(rows):
            if ctx.cancelled:          # cooperative cancellation
                return None
            ctx.progress(i / len(rows), "scanning")
        ctx.log("done")                # lands in the task's log
        return {"rows": len(rows)}

An agent that may be retried can save its progress with `ctx.checkpoint(data)`; the
next attempt of the same task reads it back with `ctx.restore()` (None on a first run):

    def crawl(ctx: TaskContext, urls: list[str]) -> int:
        done = ctx.restore() or 0
        for i in range(done, len(urls)):
            fetch(urls[i])
            ctx.checkpoint(i + 1)
        return len(urls)

Agents grow the task graph at run time: `ctx.spawn(...)` submits a child task
(parent = this task) and `ctx.wait(ids)` blocks until the children are final
and returns their results; `spawn_async` / `wait_async` do the same in async
agents:

    def fan_out(ctx: TaskContext, data: Any) -> int:
        ids = ctx.spawn_many([{"description": f"part {i}", "agent_type": "worker", "input": i} for i in range(4)])
        return sum(ctx.wait(ids))

The worker process builds one per task attempt and connects it to the worker
runtime through a small `ContextRuntime` object. This module must stay light:
agent workers import it, so it never imports grpc or the rest of the SDK at
import time; the first spawn or wait in a worker process imports the SDK and
opens one client that later tasks of that process reuse.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

    from maos.v1 import common_pb2

    from ._async_client import AsyncClient
    from ._context_messages import TaskMessages, VoteOutcome
    from ._context_state import TaskState
    from ._sync_client import Client

__all__ = ["PROGRESS_MIN_INTERVAL_SECONDS", "ContextRuntime", "TaskContext"]

# A chatty agent must not flood the host stream: at most ~10 progress events per second per task.
PROGRESS_MIN_INTERVAL_SECONDS = 0.1


class ContextRuntime(Protocol):
    """What a TaskContext needs from the process running it (the agent worker).

    Both methods may be called from any thread and must not block.
    """

    def send_progress(self, ctx: TaskContext, fraction: float, message: str) -> None:
        """Deliver one progress event for `ctx`'s task."""

    def schedule_progress_flush(self, ctx: TaskContext, at: float) -> None:
        """Call `ctx.flush_progress()` at time.monotonic() >= `at` (a held-back event is waiting)."""


class TaskContext:
    """One task attempt as seen by the agent code that runs it.

    Attributes: task_id, attempt, root_id, parent_id, description,
    agent_type, input (the decoded JSON input), dependencies (one dict per
    dependency: task_id, key, status, result, description), labels, endpoint
    (the control plane address).

    Waiting on children does not deadlock a full pool: while an agent waits
    (`wait`, `wait_async`, `spawn_and_wait`, or `maosctl task wait` from a
    command agent), the control plane lends its worker slot to other tasks.
    A waiting parent lends its slot; the host may run one extra worker
    process per waiting parent, so a deep recursion costs one process per
    level of blocked parents (and a wide tree of blocked parents one per
    parent). Spawn from agents whose profile has batch_size 1 (the default),
    so no task queues behind a waiting parent in its worker. Only WaitTasks
    calls lend the slot (the SDK sends the caller's MAOS_TASK_ID/MAOS_ATTEMPT,
    which the worker sets per task): polling GetTask or submit_task(wait=...)
    from an agent holds the slot and can deadlock a full pool.
    """

    __slots__ = (
        "_cancelled",
        "_last_sent",
        "_lock",
        "_messages",
        "_pending",
        "_runtime",
        "_state",
        "_waiting",
        "agent_type",
        "attempt",
        "dependencies",
        "description",
        "endpoint",
        "input",
        "labels",
        "parent_id",
        "root_id",
        "task_id",
    )

    def __init__(
        self,
        *,
        task_id: str,
        attempt: int = 1,
        root_id: str = "",
        parent_id: str = "",
        description: str = "",
        agent_type: str = "",
        input: Any = None,
        dependencies: list[dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None,
        endpoint: str = "",
        runtime: ContextRuntime | None = None,
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.root_id = root_id or task_id
        self.parent_id = parent_id
        self.description = description
        self.agent_type = agent_type
        self.input = input
        self.dependencies: list[dict[str, Any]] = dependencies if dependencies is not None else []
        self.labels: dict[str, str] = labels if labels is not None else {}
        self.endpoint = endpoint
        self._runtime = runtime
        self._state: Any = None
        self._messages: Any = None
        self._cancelled = False
        self._last_sent = -1e18
        self._pending: tuple[float, str] | None = None
        # Created on first use: most tasks never report progress.
        self._lock: threading.Lock | None = None
        # The client of a blocking wait in progress, closed by a cancel so the wait ends at once.
        self._waiting: Client | None = None

    def __repr__(self) -> str:
        return f"TaskContext(task_id={self.task_id!r}, attempt={self.attempt}, agent_type={self.agent_type!r})"

    @property
    def cancelled(self) -> bool:
        """True once the task was cancelled or timed out; a long-running agent should check it and return."""
        return self._cancelled

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (`fraction` in 0..1, clamped). Rate-limited to ~10/s; the latest is always delivered."""
        runtime = self._runtime
        if runtime is None:
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        if self._lock is None:
            self._lock = threading.Lock()
        now = time.monotonic()
        with self._lock:
            if now - self._last_sent >= PROGRESS_MIN_INTERVAL_SECONDS:
                self._last_sent = now
                self._pending = None
                send, schedule_at = True, 0.0
            else:
                # Hold the newest value back; the runtime flushes it when the interval has passed.
                first_held = self._pending is None
                self._pending = (fraction, message)
                send, schedule_at = False, (self._last_sent + PROGRESS_MIN_INTERVAL_SECONDS if first_held else 0.0)
        # The runtime is called outside our lock, so its own locks never nest inside ours.
        if send:
            runtime.send_progress(self, fraction, message)
        elif schedule_at:
            runtime.schedule_progress_flush(self, schedule_at)

    def flush_progress(self) -> None:
        """Deliver a held-back progress event now, if there is one (called by the runtime)."""
        runtime = self._runtime
        if runtime is None or self._lock is None:
            return
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                self._last_sent = time.monotonic()
        if pending is not None:
            runtime.send_progress(self, pending[0], pending[1])

    def log(self, message: str) -> None:
        """Append a line to the task's log (the worker captures stderr per task)."""
        stream = sys.stderr
        stream.write(message if message.endswith("\n") else message + "\n")
        stream.flush()

    # ---- child tasks ----

    @property
    def messages(self) -> TaskMessages:
        """Messages: `ctx.messages.send/broadcast/publish/receive/subscribe` (and *_async)."""
        if self._messages is None:
            from ._context_messages import TaskMessages

            self._messages = TaskMessages(
                task_id=self.task_id, attempt=self.attempt, root_id=self.root_id, endpoint=self.endpoint
            )
        messages: TaskMessages = self._messages
        return messages

    def vote(self, topic: str, value: Any, quorum: int, timeout: float = 60.0) -> VoteOutcome:
        """Vote with the other agents of this tree; every voter gets the same outcome
        (the majority value; ties go to the smallest JSON-serialised value)."""
        return self.messages.vote(topic, value, quorum, timeout=timeout)

    async def vote_async(
        self,
        topic: str,
        value: Any,
        quorum: int,
        timeout: float = 60.0,  # noqa: ASYNC109 - the vote's deadline
    ) -> VoteOutcome:
        """`vote` for async agents."""
        return await self.messages.vote_async(topic, value, quorum, timeout=timeout)

    @property
    def state(self) -> TaskState:
        """Shared state of this task's tree (`ctx.state.get/put/cas/delete/list/watch`)."""
        if self._state is None:
            from ._context_state import TaskState

            self._state = TaskState(
                task_id=self.task_id, attempt=self.attempt, root_id=self.root_id, endpoint=self.endpoint
            )
        state: TaskState = self._state
        return state

    def spawn(
        self,
        description: str,
        *,
        agent_type: str | None = None,
        input: Any = None,
        priority: str | int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        labels: Mapping[str, str] | None = None,
        depends_on: Iterable[str] = (),
    ) -> str:
        """Submit a child task of this one and return its id (it runs wherever the control plane places it).

        `agent_type` None lets the control plane choose; `timeout` is the
        child's own run-time limit in seconds. Raises maos.errors on a bad spec
        or an unreachable control plane.
        """
        task = _client(self.endpoint).submit_task(
            description,
            agent_type=agent_type,
            input=input,
            priority=priority,
            timeout=timeout,
            max_retries=max_retries,
            labels=labels,
            depends_on=depends_on,
            parent_id=self.task_id,
        )
        return task.id

    def spawn_many(self, specs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Submit many children in one SubmitTasks call; their ids in order.

        Each spec is a dict of `spawn`'s arguments (`description` required);
        the parent is always this task.
        """
        tasks = _client(self.endpoint).submit_tasks([self._child_spec(spec) for spec in specs])
        return [task.id for task in tasks]

    def wait(self, ids: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Block until every task in `ids` is final; their decoded results, in the order of `ids`.

        Raises maos.errors.FailedPrecondition (naming the child, its status and
        error) if any did not complete, DeadlineExceeded if `timeout` seconds
        pass first. This task's worker slot is lent to other tasks meanwhile.
        Cancelling this task ends the wait at once (asyncio.CancelledError).
        In an async agent use `wait_async`.
        """
        wanted = _ids(ids)
        if not wanted:
            return []
        client = _client(self.endpoint)
        self._waiting = client
        try:
            if self._cancelled:
                raise _cancelled_while_waiting()
            tasks = client.wait_tasks(wanted, timeout=timeout, include_result=True)
        except Exception as exc:
            if self._cancelled:
                raise _cancelled_while_waiting() from exc
            raise
        finally:
            self._waiting = None
        return _child_results(wanted, tasks, timeout)

    def spawn_and_wait(self, description: str, *, wait_timeout: float | None = None, **options: Any) -> Any:
        """`spawn` one child (same arguments) and `wait` for it; its result."""
        return self.wait([self.spawn(description, **options)], timeout=wait_timeout)[0]

    async def spawn_async(
        self,
        description: str,
        *,
        agent_type: str | None = None,
        input: Any = None,
        priority: str | int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the child's run-time limit, not a wait
        max_retries: int | None = None,
        labels: Mapping[str, str] | None = None,
        depends_on: Iterable[str] = (),
    ) -> str:
        """`spawn` for async agents."""
        task = await _async_client(self.endpoint).submit_task(
            description,
            agent_type=agent_type,
            input=input,
            priority=priority,
            timeout=timeout,
            max_retries=max_retries,
            labels=labels,
            depends_on=depends_on,
            parent_id=self.task_id,
        )
        return task.id

    async def spawn_many_async(self, specs: Iterable[Mapping[str, Any]]) -> list[str]:
        """`spawn_many` for async agents."""
        tasks = await _async_client(self.endpoint).submit_tasks([self._child_spec(spec) for spec in specs])
        return [task.id for task in tasks]

    async def wait_async(
        self,
        ids: Sequence[str],
        timeout: float | None = None,  # noqa: ASYNC109 - the server bounds the wait, like AsyncClient.wait_tasks
    ) -> list[Any]:
        """`wait` for async agents (cancelling the agent cancels the wait)."""
        wanted = _ids(ids)
        if not wanted:
            return []
        tasks = await _async_client(self.endpoint).wait_tasks(wanted, timeout=timeout, include_result=True)
        return _child_results(wanted, tasks, timeout)

    # ---- this task's own checkpoint ----

    def checkpoint(self, data: Any) -> None:
        """Save `data` (any JSON value, at most 1 MiB) as this task's checkpoint: when this
        attempt fails and the task is retried, the next attempt gets it back from `restore()`.

        Durable: kept in the tree's shared state under the reserved key
        `_maos/checkpoint/<task id>`. Each call replaces the previous checkpoint.
        """
        from ._agent_checkpoint import checkpoint_key, encode_checkpoint
        from ._state_client import RawJson

        value = RawJson(encode_checkpoint(self.task_id, self.attempt, data))
        self.state.put(checkpoint_key(self.task_id), value)

    def restore(self) -> Any:
        """The data of this task's last `checkpoint()` (saved by any attempt), None if there is none."""
        from ._agent_checkpoint import checkpoint_key, decode_checkpoint

        entry = self.state.get(checkpoint_key(self.task_id))
        return None if entry is None else decode_checkpoint(entry.value)

    async def checkpoint_async(self, data: Any) -> None:
        """`checkpoint` for async agents."""
        from ._agent_checkpoint import checkpoint_key, encode_checkpoint
        from ._state_client import RawJson

        value = RawJson(encode_checkpoint(self.task_id, self.attempt, data))
        await self.state.put_async(checkpoint_key(self.task_id), value)

    async def restore_async(self) -> Any:
        """`restore` for async agents."""
        from ._agent_checkpoint import checkpoint_key, decode_checkpoint

        entry = await self.state.get_async(checkpoint_key(self.task_id))
        return None if entry is None else decode_checkpoint(entry.value)

    def _child_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(spec, Mapping):
            raise TypeError(f"each child spec must be a dict of spawn() arguments, got {type(spec).__name__}")
        parent = spec.get("parent_id")
        if parent not in (None, "", self.task_id):
            from maos.errors import InvalidArgument

            raise InvalidArgument(f"a child spawned by task {self.task_id} cannot name parent_id {parent!r}")
        return {**spec, "parent_id": self.task_id}

    # ---- for the worker runtime ----

    def _cancel(self) -> None:
        """Mark the task cancelled (cooperative: agent code polls `cancelled`); end a blocking wait."""
        self._cancelled = True
        client = self._waiting
        if client is not None:
            _discard_client(client)

    def _close(self) -> None:
        """The attempt is over: deliver the last held-back progress, then detach from the runtime."""
        self.flush_progress()
        if self._messages is not None:
            self._messages.flush()
        self._runtime = None


# One SDK client per endpoint per process (per event loop for async), made on first use: a worker
# process runs many tasks, and reconnecting for each would cost more than the task.
_clients_lock = threading.Lock()
_clients: dict[str, Client] = {}
_async_clients: dict[str, tuple[asyncio.AbstractEventLoop, AsyncClient]] = {}


def _client(endpoint: str) -> Client:
    client = _clients.get(endpoint)
    if client is None:
        from ._sync_client import Client

        with _clients_lock:
            client = _clients.get(endpoint)
            if client is None:
                client = _clients[endpoint] = Client(endpoint or None)
    return client


def _discard_client(client: Client) -> None:
    """Close a client (cancelling its calls in flight) and make the next use open a new one."""
    with _clients_lock:
        for endpoint, known in list(_clients.items()):
            if known is client:
                del _clients[endpoint]
    client.close()


def _async_client(endpoint: str) -> AsyncClient:
    import asyncio

    loop = asyncio.get_running_loop()
    entry = _async_clients.get(endpoint)
    if entry is None or entry[0] is not loop:
        from ._async_client import AsyncClient

        # A grpc.aio channel belongs to the loop it was opened on.
        entry = _async_clients[endpoint] = (loop, AsyncClient(endpoint or None))
    return entry[1]


def _ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise TypeError("wait() takes a list of task ids; for one id write wait([task_id])")
    return list(ids)


def _cancelled_while_waiting() -> BaseException:
    import asyncio

    return asyncio.CancelledError("the task was cancelled while waiting on its children")


def _child_results(ids: list[str], tasks: Sequence[common_pb2.Task], timeout: float | None) -> list[Any]:
    from maos.errors import DeadlineExceeded, FailedPrecondition
    from maos.v1 import common_pb2

    from ._enums import is_final, status_name
    from ._specs import task_result

    by_id = {task.id: task for task in tasks}
    missing = [task_id for task_id in ids if task_id not in by_id]
    if missing:
        raise FailedPrecondition(f"the control plane did not report on task(s) {', '.join(missing)}")
    unfinished = [by_id[task_id] for task_id in ids if not is_final(by_id[task_id].status)]
    if unfinished:
        listed = ", ".join(f"{t.id} ({status_name(t.status)})" for t in unfinished[:5])
        more = f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else ""
        after = f" after {timeout:g}s" if timeout is not None else ""
        raise DeadlineExceeded(f"child tasks still not finished{after}: {listed}{more}")
    failed = [by_id[task_id] for task_id in ids if by_id[task_id].status != common_pb2.TASK_STATUS_COMPLETED]
    if failed:
        first = failed[0]
        message = f"child task {first.id} {status_name(first.status)}"
        if first.error.kind or first.error.message:
            message += f": {first.error.message or first.error.kind}"
            if first.error.kind and first.error.message:
                message += f" ({first.error.kind})"
        if len(failed) > 1:
            message += f"; {len(failed) - 1} more child task(s) did not complete either"
        raise FailedPrecondition(message)
    return [task_result(by_id[task_id]) for task_id in ids]
