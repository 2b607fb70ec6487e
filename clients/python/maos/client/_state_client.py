"""Shared state from Python: StateClient (blocking) and AsyncStateClient over StateService.

    state = StateClient(channel, endpoint)
    state.put("config", {"depth": 3})
    entry = state.get("config")              # StateValue(value={"depth": 3}, version=1, ...) or None
    state.cas("config", {"depth": 4}, expected_version=entry.version)
    state.update("counter", lambda n: (n or 0) + 1)   # compare-and-set, retried on a stale version
    for event in state.watch("counter"):     # every committed version, in order
        ...

Values are JSON: any value orjson encodes, or `RawJson(b"...")` for text that is
already JSON. `namespace=None` means the caller's task tree, which only a caller
running inside a task has (the SDK sends MAOS_TASK_ID as metadata); others name
`tree:<root task id>` or `global`. Errors are maos.errors: InvalidArgument
(bad JSON, a value over the size limit, a malformed namespace),
PermissionDenied (a namespace the caller may not use), FailedPrecondition (a
compare-and-set on a stale version), NotFound never (a missing key is None).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import orjson
from maos.errors import FailedPrecondition, InvalidArgument, NotFound
from maos.v1 import state_pb2, state_pb2_grpc

from ._config import DEFAULT_RPC_TIMEOUT_SECONDS, caller_metadata
from ._errors import from_rpc_error

if TYPE_CHECKING:
    from maos.v1.state_pb2_grpc import StateServiceAsyncStub

__all__ = ["AsyncStateClient", "RawJson", "StateClient", "StateEvent", "StateValue"]

Metadata = Callable[[], Sequence[tuple[str, str]]]
DEFAULT_UPDATE_ATTEMPTS = 1_000


class RawJson(bytes):
    """JSON text that is already encoded: sent as it is (the control plane still checks it)."""


@dataclass(frozen=True, slots=True)
class StateValue:
    """A key's value (decoded JSON) and where it stands: its version and the namespace
    revision of its last change. Writes return it too (with the value that was written)."""

    key: str
    value: Any
    version: int
    revision: int
    namespace: str
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class StateEvent:
    """One committed change seen by a watch; a delete has `deleted` set, value None and version 0."""

    key: str
    value: Any
    version: int
    revision: int
    namespace: str
    deleted: bool = False
    updated_at: dt.datetime | None = None


def encode_value(key: str, value: Any) -> bytes:
    """The JSON bytes for `value`; InvalidArgument when it cannot be encoded."""
    if isinstance(value, RawJson):
        return bytes(value)
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise InvalidArgument(f"the value for key {key!r} cannot be stored as JSON: {exc}") from None


def decode_value(data: bytes) -> Any:
    return orjson.loads(data) if data else None


def _when(entry: state_pb2.StateEntry) -> dt.datetime | None:
    if not entry.HasField("updated_at"):
        return None
    return entry.updated_at.ToDatetime(tzinfo=dt.UTC)


def _value(entry: state_pb2.StateEntry, value: Any = None, decode: bool = True) -> StateValue:
    data = decode_value(entry.value) if decode else value
    return StateValue(entry.key, data, entry.version, entry.revision, entry.namespace, _when(entry))


def _event(change: state_pb2.StateChange) -> StateEvent:
    e = change.entry
    value = None if change.deleted else decode_value(e.value)
    return StateEvent(e.key, value, e.version, e.revision, e.namespace, change.deleted, _when(e))


def _ns(namespace: str | None) -> str:
    return namespace or ""


def _watch_request(
    key: str | None, prefix: str | None, after_revision: int, namespace: str | None
) -> state_pb2.WatchStateRequest:
    if key and prefix:
        raise InvalidArgument("watch one key or the keys under a prefix, not both")
    return state_pb2.WatchStateRequest(
        namespace=_ns(namespace), key=key or "", prefix=prefix or "", after_revision=after_revision
    )


def _stale(exc: FailedPrecondition) -> bool:
    return exc.message.startswith("stale version")


class StateClient:
    """Blocking shared-state client on a grpc.Channel it does not own (the caller closes it).

    `metadata()` is sent with every call; by default it names the task this
    process runs (MAOS_TASK_ID / MAOS_ATTEMPT), so namespace=None means its tree.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        endpoint: str,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
        metadata: Metadata = caller_metadata,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._metadata = metadata
        self._channel = channel
        self._stub = state_pb2_grpc.StateServiceStub(channel)

    def with_caller(self, task_id: str, attempt: int) -> StateClient:
        """The same channel, calling as task `task_id` (attempt `attempt`) whatever the environment says."""
        fixed = (("maos-task-id", task_id), ("maos-attempt", str(attempt)))
        return StateClient(self._channel, self.endpoint, timeout=self.timeout, metadata=lambda: fixed)

    def _md(self) -> tuple[tuple[str, str], ...] | None:
        return tuple(self._metadata()) or None

    def get(self, key: str, *, namespace: str | None = None) -> StateValue | None:
        """The key's value and version, or None when it does not exist."""
        try:
            entry = self._stub.Get(
                state_pb2.GetStateRequest(namespace=_ns(namespace), key=key), timeout=self.timeout, metadata=self._md()
            )
        except grpc.RpcError as exc:
            error = from_rpc_error(exc, self.endpoint)
            if isinstance(error, NotFound):
                return None
            raise error from exc
        return _value(entry)

    def put(self, key: str, value: Any, *, namespace: str | None = None) -> StateValue:
        """Write `value` whatever the key's version; the new version."""
        request = state_pb2.PutStateRequest(namespace=_ns(namespace), key=key, value=encode_value(key, value))
        try:
            entry = self._stub.Put(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        return _value(entry, value, decode=False)

    def cas(self, key: str, value: Any, expected_version: int, *, namespace: str | None = None) -> StateValue:
        """Write only if the key is at `expected_version` (0: only if it does not exist yet);
        FailedPrecondition (message "stale version: ...") otherwise."""
        request = state_pb2.CompareAndSetRequest(
            namespace=_ns(namespace), key=key, value=encode_value(key, value), expected_version=expected_version
        )
        try:
            entry = self._stub.CompareAndSet(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        return _value(entry, value, decode=False)

    def delete(self, key: str, *, expected_version: int = 0, namespace: str | None = None) -> bool:
        """Delete the key (only at `expected_version`, unless 0); False when it did not exist."""
        request = state_pb2.DeleteStateRequest(namespace=_ns(namespace), key=key, expected_version=expected_version)
        try:
            reply = self._stub.Delete(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        return reply.deleted

    def list(
        self,
        prefix: str = "",
        *,
        namespace: str | None = None,
        keys_only: bool = False,
        page_size: int = 100,
        limit: int | None = None,
    ) -> Generator[StateValue, None, None]:
        """The keys under `prefix` in byte order, with values unless `keys_only`; pages fetched lazily."""
        request = state_pb2.ListStateRequest(
            namespace=_ns(namespace), prefix=prefix, page_size=page_size, keys_only=keys_only
        )
        seen = 0
        while True:
            try:
                reply = self._stub.List(request, timeout=self.timeout, metadata=self._md())
            except grpc.RpcError as exc:
                raise from_rpc_error(exc, self.endpoint) from exc
            for entry in reply.entries:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield _value(entry, decode=not keys_only)
            if not reply.next_page_token:
                return
            request.page_token = reply.next_page_token

    def watch(
        self,
        key: str | None = None,
        *,
        prefix: str | None = None,
        after_revision: int = 0,
        namespace: str | None = None,
    ) -> Generator[StateEvent, None, None]:
        """Every committed change of `key` (or of the keys under `prefix`; neither: the whole
        namespace) after `after_revision` (0: from the oldest change still logged), in order,
        then live ones until the iterator is closed. Resume with the last event's revision."""
        call = self._stub.Watch(_watch_request(key, prefix, after_revision, namespace), metadata=self._md())
        try:
            for change in call:
                yield _event(change)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves CallIterator.cancel untyped

    def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        namespace: str | None = None,
        max_attempts: int = DEFAULT_UPDATE_ATTEMPTS,
    ) -> StateValue:
        """Set the key to `fn(current value)` (None when absent) with compare-and-set,
        reading and retrying while another writer got there first."""
        for _ in range(max_attempts):
            current = self.get(key, namespace=namespace)
            version = current.version if current is not None else 0
            try:
                return self.cas(key, fn(current.value if current else None), version, namespace=namespace)
            except FailedPrecondition as exc:
                if not _stale(exc):
                    raise
        raise FailedPrecondition(f"key {key!r} changed under every one of {max_attempts} attempts to update it")


class AsyncStateClient:
    """StateClient for asyncio, on a grpc.aio.Channel it does not own."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        endpoint: str,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
        metadata: Metadata = caller_metadata,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._metadata = metadata
        self._channel = channel
        self._stub: StateServiceAsyncStub = state_pb2_grpc.StateServiceStub(channel)

    def with_caller(self, task_id: str, attempt: int) -> AsyncStateClient:
        """The same channel, calling as task `task_id` (attempt `attempt`)."""
        fixed = (("maos-task-id", task_id), ("maos-attempt", str(attempt)))
        return AsyncStateClient(self._channel, self.endpoint, timeout=self.timeout, metadata=lambda: fixed)

    def _md(self) -> tuple[tuple[str, str], ...] | None:
        return tuple(self._metadata()) or None

    async def get(self, key: str, *, namespace: str | None = None) -> StateValue | None:
        """The key's value and version, or None when it does not exist."""
        request = state_pb2.GetStateRequest(namespace=_ns(namespace), key=key)
        try:
            entry = await self._stub.Get(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            error = from_rpc_error(exc, self.endpoint)
            if isinstance(error, NotFound):
                return None
            raise error from exc
        return _value(entry)

    async def put(self, key: str, value: Any, *, namespace: str | None = None) -> StateValue:
        """Write `value` whatever the key's version; the new version."""
        request = state_pb2.PutStateRequest(namespace=_ns(namespace), key=key, value=encode_value(key, value))
        try:
            entry = await self._stub.Put(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        return _value(entry, value, decode=False)

    async def cas(self, key: str, value: Any, expected_version: int, *, namespace: str | None = None) -> StateValue:
        """Write only if the key is at `expected_version` (0: only if absent); FailedPrecondition otherwise."""
        request = state_pb2.CompareAndSetRequest(
            namespace=_ns(namespace), key=key, value=encode_value(key, value), expected_version=expected_version
        )
        try:
            entry = await self._stub.CompareAndSet(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        return _value(entry, value, decode=False)

    async def delete(self, key: str, *, expected_version: int = 0, namespace: str | None = None) -> bool:
        """Delete the key (only at `expected_version`, unless 0); False when it did not exist."""
        request = state_pb2.DeleteStateRequest(namespace=_ns(namespace), key=key, expected_version=expected_version)
        try:
            reply = await self._stub.Delete(request, timeout=self.timeout, metadata=self._md())
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        return reply.deleted

    async def list(
        self,
        prefix: str = "",
        *,
        namespace: str | None = None,
        keys_only: bool = False,
        page_size: int = 100,
        limit: int | None = None,
    ) -> AsyncGenerator[StateValue, None]:
        """The keys under `prefix` in byte order, with values unless `keys_only`; pages fetched lazily."""
        request = state_pb2.ListStateRequest(
            namespace=_ns(namespace), prefix=prefix, page_size=page_size, keys_only=keys_only
        )
        seen = 0
        while True:
            try:
                reply = await self._stub.List(request, timeout=self.timeout, metadata=self._md())
            except grpc.RpcError as exc:
                raise from_rpc_error(exc, self.endpoint) from exc
            for entry in reply.entries:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield _value(entry, decode=not keys_only)
            if not reply.next_page_token:
                return
            request.page_token = reply.next_page_token

    async def watch(
        self,
        key: str | None = None,
        *,
        prefix: str | None = None,
        after_revision: int = 0,
        namespace: str | None = None,
    ) -> AsyncGenerator[StateEvent, None]:
        """Every committed change of `key` (or under `prefix`) after `after_revision`, in order, then live."""
        call = self._stub.Watch(_watch_request(key, prefix, after_revision, namespace), metadata=self._md())
        try:
            async for change in call:
                yield _event(change)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()

    async def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        namespace: str | None = None,
        max_attempts: int = DEFAULT_UPDATE_ATTEMPTS,
    ) -> StateValue:
        """Set the key to `fn(current value)` with compare-and-set, retrying on a stale version."""
        for _ in range(max_attempts):
            current = await self.get(key, namespace=namespace)
            version = current.version if current is not None else 0
            try:
                return await self.cas(key, fn(current.value if current else None), version, namespace=namespace)
            except FailedPrecondition as exc:
                if not _stale(exc):
                    raise
        raise FailedPrecondition(f"key {key!r} changed under every one of {max_attempts} attempts to update it")
