"""StateService: shared key-value state over gRPC, thin over a StateBackend.

The caller is identified by the request metadata `maos-task-id` (the SDK sends
it from MAOS_TASK_ID, which agent hosts set for every task): an empty
namespace then means the caller's task tree, and the rules of
maos.controlplane.state._access decide which namespaces it may use. A request
without that metadata comes from an operator or an outside program, which may
use any namespace (there is no authentication yet).

Committed changes are published to an in-process hub that feeds Watch
streams; a write is committed and published even if its caller goes away
while it is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from maos.controlplane._convert import timestamp
from maos.controlplane.api._context import TASK_ID_METADATA, caller_task_id
from maos.controlplane.state import (
    GlobalAccess,
    StateBackend,
    StateCaller,
    StateChange,
    StateEntry,
    StateHub,
    resolve_namespace,
    watch_changes,
)
from maos.controlplane.state._validation import check_key, check_prefix
from maos.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from maos.v1 import state_pb2, state_pb2_grpc

if TYPE_CHECKING:
    from maos.controlplane._runtime import Runtime

Ctx = grpc.aio.ServicerContext[Any, Any]
CallerLookup = Callable[[str], Awaitable[StateCaller | None]]
"""Task id (from metadata maos-task-id) -> the calling agent's task and tree; None if unknown."""

STATE_SERVICE_NAME: str = state_pb2.DESCRIPTOR.services_by_name["StateService"].full_name
DEFAULT_PAGE_SIZE = 100
MAX_WATCHES_PER_CALLER = 100  # Watch streams one client may hold open (a flood cannot grow memory)
MAX_PAGE_SIZE = 1000

_T = TypeVar("_T")


class StateServicer(state_pb2_grpc.StateServiceServicer):
    """Get, Put, CompareAndSet, Delete, List and Watch on one backend."""

    def __init__(
        self,
        backend: StateBackend,
        lookup_caller: CallerLookup,
        *,
        hub: StateHub | None = None,
        global_access: GlobalAccess = GlobalAccess.OPERATORS,
    ) -> None:
        self.backend = backend
        self.hub = hub if hub is not None else StateHub()
        self._lookup_caller = lookup_caller
        self._global_access = global_access
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._watches_by_caller: dict[str, int] = {}  # task id or peer address -> open Watch streams

    async def _namespace(self, requested: str, context: Ctx) -> str:
        task_id = caller_task_id(context)
        caller: StateCaller | None = None
        if task_id:
            caller = await self._lookup_caller(task_id)
            if caller is None:
                raise PermissionDenied(
                    f"the request says it comes from task {task_id} (metadata {TASK_ID_METADATA}), "
                    "which this control plane does not know"
                )
        return resolve_namespace(requested, caller, self._global_access)

    async def _committed(self, write: Awaitable[_T], publish: Callable[[_T], StateChange | None]) -> _T:
        """Run a write to its end even if the RPC is cancelled, and publish what it changed."""

        async def run() -> _T:
            result = await write
            change = publish(result)
            if change is not None:
                self.hub.publish(change)
            return result

        task = asyncio.ensure_future(run())
        self._in_flight.add(task)
        task.add_done_callback(_forget(self._in_flight))
        return await asyncio.shield(task)

    async def Get(self, request: state_pb2.GetStateRequest, context: Ctx) -> state_pb2.StateEntry:
        namespace = await self._namespace(request.namespace, context)
        check_key(request.key, self.backend.limits)
        entry = await self.backend.get(namespace, request.key)
        if entry is None:
            raise NotFound(f"key {request.key!r} not found in namespace {namespace}")
        return entry_to_proto(entry)

    async def Put(self, request: state_pb2.PutStateRequest, context: Ctx) -> state_pb2.StateEntry:
        namespace = await self._namespace(request.namespace, context)
        change = await self._committed(self.backend.put(namespace, request.key, request.value), _same)
        return entry_to_proto(change.entry, include_value=False)

    async def CompareAndSet(self, request: state_pb2.CompareAndSetRequest, context: Ctx) -> state_pb2.StateEntry:
        namespace = await self._namespace(request.namespace, context)
        write = self.backend.cas(namespace, request.key, request.value, request.expected_version)
        change = await self._committed(write, _same)
        return entry_to_proto(change.entry, include_value=False)

    async def Delete(self, request: state_pb2.DeleteStateRequest, context: Ctx) -> state_pb2.DeleteStateResponse:
        namespace = await self._namespace(request.namespace, context)
        write = self.backend.delete(namespace, request.key, request.expected_version)
        outcome = await self._committed(write, lambda o: o.change)
        return state_pb2.DeleteStateResponse(deleted=outcome.deleted, revision=outcome.revision)

    async def List(self, request: state_pb2.ListStateRequest, context: Ctx) -> state_pb2.ListStateResponse:
        namespace = await self._namespace(request.namespace, context)
        size = request.page_size or DEFAULT_PAGE_SIZE
        if size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size {size} is over the maximum of {MAX_PAGE_SIZE}")
        check_prefix(request.prefix, self.backend.limits)
        entries = await self.backend.list(
            namespace, request.prefix, after_key=request.page_token, limit=size + 1, keys_only=request.keys_only
        )
        more = len(entries) > size
        page = entries[:size]
        return state_pb2.ListStateResponse(
            entries=[entry_to_proto(e, include_value=not request.keys_only) for e in page],
            next_page_token=page[-1].key if more else "",
        )

    async def Watch(self, request: state_pb2.WatchStateRequest, context: Ctx) -> AsyncIterator[state_pb2.StateChange]:
        if request.key and request.prefix:
            raise InvalidArgument("give key (one key) or prefix (keys under it), not both")
        if request.key:
            check_key(request.key, self.backend.limits)
        check_prefix(request.prefix, self.backend.limits)
        namespace = await self._namespace(request.namespace, context)
        caller = caller_task_id(context) or context.peer()
        held = self._watches_by_caller.get(caller, 0)
        if held >= MAX_WATCHES_PER_CALLER:
            raise ResourceExhausted(
                f"this client already holds {held} state watches, the limit; end one (or watch a prefix "
                "that covers several keys) before watching again"
            )
        self._watches_by_caller[caller] = held + 1
        try:
            async with contextlib.aclosing(self._watch(request, namespace)) as changes:  # unsubscribes at once
                async for change in changes:
                    yield change
        finally:
            left = self._watches_by_caller[caller] - 1
            if left:
                self._watches_by_caller[caller] = left
            else:
                del self._watches_by_caller[caller]

    async def _watch(
        self, request: state_pb2.WatchStateRequest, namespace: str
    ) -> AsyncGenerator[state_pb2.StateChange, None]:
        changes = watch_changes(
            self.backend,
            self.hub,
            namespace,
            key=request.key,
            prefix=request.prefix,
            after_revision=request.after_revision,
        )
        async with contextlib.aclosing(changes):
            async for change in changes:
                yield change_to_proto(change)


def entry_to_proto(entry: StateEntry, *, include_value: bool = True) -> state_pb2.StateEntry:
    """A StateEntry message; writes answer without the value, which the caller already has."""
    return state_pb2.StateEntry(
        namespace=entry.namespace,
        key=entry.key,
        value=entry.value if include_value else b"",
        version=entry.version,
        revision=entry.revision,
        updated_at=timestamp(entry.updated_at),
    )


def change_to_proto(change: StateChange) -> state_pb2.StateChange:
    return state_pb2.StateChange(entry=entry_to_proto(change.entry), deleted=change.deleted)


def runtime_caller_lookup(runtime: Runtime, capabilities_of: Callable[[str], Collection[str]]) -> CallerLookup:
    """Resolve a calling task through the runtime (live tasks from memory, others from the store)."""

    async def lookup(task_id: str) -> StateCaller | None:
        try:
            rec = await runtime.get(task_id)
        except NotFound:
            return None
        return StateCaller(rec.id, rec.root_id, rec.agent_type, frozenset(capabilities_of(rec.agent_type)))

    return lookup


def add_state_service(
    server: grpc.aio.Server,
    runtime: Runtime,
    backend: StateBackend,
    *,
    capabilities_of: Callable[[str], Collection[str]] = lambda _agent_type: (),
    global_access: GlobalAccess = GlobalAccess.OPERATORS,
) -> StateServicer:
    """Register StateService on `server`, serving `backend` (opened and closed by the caller).

    `capabilities_of(agent_type)` names an agent type's capabilities (from its
    profile); an agent whose type has `state.global` may use the global namespace.
    Add STATE_SERVICE_NAME to reflection and health alongside the other services.
    """
    servicer = StateServicer(backend, runtime_caller_lookup(runtime, capabilities_of), global_access=global_access)
    state_pb2_grpc.add_StateServiceServicer_to_server(servicer, server)
    return servicer


def _same(change: StateChange) -> StateChange:
    return change


def _forget(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so an error nobody awaited any more is not logged as lost

    return done
