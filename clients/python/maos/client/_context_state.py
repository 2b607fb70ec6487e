"""TaskState: shared state as a Python agent sees it, `ctx.state`.

    def count(ctx: TaskContext, _input: Any) -> int:
        ctx.state.put("seen/" + ctx.task_id, True)
        return ctx.state.update("counter", lambda n: (n or 0) + 1).value

By default every call uses the namespace of the agent's task tree
(`tree:<root task id>`), shared by every task under the same root; pass
`namespace="global"` where the agent type may use it. Async agents use the
`*_async` methods. Like TaskContext, this module imports neither grpc nor the
SDK until the first call: one channel per endpoint per process (and per event
loop for async calls) is opened then and reused by later tasks.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    import grpc
    import grpc.aio

    from ._state_client import AsyncStateClient, StateClient, StateEvent, StateValue

__all__ = ["TaskState"]


class TaskState:
    """Get, put, compare-and-set, delete, list and watch JSON values, calling as this task."""

    __slots__ = ("_async", "_sync", "attempt", "endpoint", "root_id", "task_id")

    def __init__(self, *, task_id: str, attempt: int = 1, root_id: str = "", endpoint: str = "") -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.root_id = root_id or task_id
        self.endpoint = endpoint
        self._sync: StateClient | None = None
        self._async: tuple[asyncio.AbstractEventLoop, AsyncStateClient] | None = None

    def __repr__(self) -> str:
        return f"TaskState(namespace={self.namespace!r})"

    @property
    def namespace(self) -> str:
        """This task tree's namespace, the default of every call."""
        return f"tree:{self.root_id}"

    def _client(self) -> StateClient:
        if self._sync is None:
            self._sync = _shared_client(self.endpoint).with_caller(self.task_id, self.attempt)
        return self._sync

    def _async_client(self) -> AsyncStateClient:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, _shared_async_client(self.endpoint, loop).with_caller(self.task_id, self.attempt))
        return self._async[1]

    # ---- blocking ----

    def get(self, key: str, *, namespace: str | None = None) -> StateValue | None:
        """The key's value and version (`.value`, `.version`), or None when it does not exist."""
        return self._client().get(key, namespace=namespace)

    def put(self, key: str, value: Any, *, namespace: str | None = None) -> StateValue:
        """Write a JSON value whatever the key's version; returns the new version."""
        return self._client().put(key, value, namespace=namespace)

    def cas(self, key: str, value: Any, expected_version: int, *, namespace: str | None = None) -> StateValue:
        """Write only if the key is at `expected_version` (0: only if absent); FailedPrecondition if stale."""
        return self._client().cas(key, value, expected_version, namespace=namespace)

    def delete(self, key: str, *, expected_version: int = 0, namespace: str | None = None) -> bool:
        """Delete the key (only at `expected_version`, unless 0); False when it did not exist."""
        return self._client().delete(key, expected_version=expected_version, namespace=namespace)

    def list(
        self, prefix: str = "", *, namespace: str | None = None, keys_only: bool = False, limit: int | None = None
    ) -> Generator[StateValue, None, None]:
        """The keys under `prefix`, in order, with their values unless `keys_only`."""
        return self._client().list(prefix, namespace=namespace, keys_only=keys_only, limit=limit)

    def watch(
        self,
        key: str | None = None,
        *,
        prefix: str | None = None,
        after_revision: int = 0,
        namespace: str | None = None,
    ) -> Generator[StateEvent, None, None]:
        """Every committed change of `key` (or under `prefix`) after `after_revision`, in order, then
        live ones; blocks between changes, so stop by breaking out of the loop."""
        return self._client().watch(key, prefix=prefix, after_revision=after_revision, namespace=namespace)

    def update(self, key: str, fn: Callable[[Any], Any], *, namespace: str | None = None) -> StateValue:
        """Set the key to `fn(current value or None)` atomically (compare-and-set, retried when stale)."""
        return self._client().update(key, fn, namespace=namespace)

    # ---- async ----

    async def get_async(self, key: str, *, namespace: str | None = None) -> StateValue | None:
        """`get` for async agents."""
        return await self._async_client().get(key, namespace=namespace)

    async def put_async(self, key: str, value: Any, *, namespace: str | None = None) -> StateValue:
        """`put` for async agents."""
        return await self._async_client().put(key, value, namespace=namespace)

    async def cas_async(
        self, key: str, value: Any, expected_version: int, *, namespace: str | None = None
    ) -> StateValue:
        """`cas` for async agents."""
        return await self._async_client().cas(key, value, expected_version, namespace=namespace)

    async def delete_async(self, key: str, *, expected_version: int = 0, namespace: str | None = None) -> bool:
        """`delete` for async agents."""
        return await self._async_client().delete(key, expected_version=expected_version, namespace=namespace)

    def list_async(
        self, prefix: str = "", *, namespace: str | None = None, keys_only: bool = False, limit: int | None = None
    ) -> AsyncGenerator[StateValue, None]:
        """`list` for async agents: `async for entry in ctx.state.list_async("p/")`."""
        return self._async_client().list(prefix, namespace=namespace, keys_only=keys_only, limit=limit)

    def watch_async(
        self,
        key: str | None = None,
        *,
        prefix: str | None = None,
        after_revision: int = 0,
        namespace: str | None = None,
    ) -> AsyncGenerator[StateEvent, None]:
        """`watch` for async agents: `async for event in ctx.state.watch_async("k")`."""
        return self._async_client().watch(key, prefix=prefix, after_revision=after_revision, namespace=namespace)

    async def update_async(self, key: str, fn: Callable[[Any], Any], *, namespace: str | None = None) -> StateValue:
        """`update` for async agents."""
        return await self._async_client().update(key, fn, namespace=namespace)


# One channel per endpoint per process (per event loop for grpc.aio), opened on first use:
# a worker process runs many tasks, and reconnecting for each would cost more than the call.
_lock = threading.Lock()
_clients: dict[str, tuple[grpc.Channel, StateClient]] = {}
_async_clients: dict[str, tuple[asyncio.AbstractEventLoop, grpc.aio.Channel, AsyncStateClient]] = {}


def _shared_client(endpoint: str) -> StateClient:
    entry = _clients.get(endpoint)
    if entry is None:
        import grpc
        from maos import tracing

        from ._config import CHANNEL_OPTIONS, resolve_endpoint
        from ._state_client import StateClient

        with _lock:
            entry = _clients.get(endpoint)
            if entry is None:
                target = resolve_endpoint(endpoint or None)
                channel = tracing.intercept_channel(grpc.insecure_channel(target, options=CHANNEL_OPTIONS))
                entry = _clients[endpoint] = (channel, StateClient(channel, target))
    return entry[1]


def _shared_async_client(endpoint: str, loop: asyncio.AbstractEventLoop) -> AsyncStateClient:
    entry = _async_clients.get(endpoint)
    if entry is None or entry[0] is not loop:
        import grpc.aio
        from maos import tracing

        from ._config import CHANNEL_OPTIONS, resolve_endpoint
        from ._state_client import AsyncStateClient

        target = resolve_endpoint(endpoint or None)
        # A grpc.aio channel belongs to the loop it was opened on.
        channel = grpc.aio.insecure_channel(
            target, options=CHANNEL_OPTIONS, interceptors=tracing.aio_client_interceptors()
        )
        entry = _async_clients[endpoint] = (loop, channel, AsyncStateClient(channel, target))
    return entry[2]
