"""StateService over real gRPC (an in-process grpc.aio server) on both backends.

The servicer resolves callers through a stand-in lookup: task ids of two trees,
plus an agent whose type has the capability state.global.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest
from maos.client._context_state import TaskState
from maos.client._state_client import AsyncStateClient, RawJson, StateClient, StateEvent
from maos.controlplane.api import _state as state_api
from maos.controlplane.api._errors import ErrorMappingInterceptor
from maos.controlplane.api._state import StateServicer
from maos.controlplane.state import StateCaller, StateHub
from maos.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from maos.v1 import state_pb2, state_pb2_grpc

from .conftest import BACKENDS, open_backend

CALLERS = {
    "T1": StateCaller("T1", "R1", "worker"),
    "T1-child": StateCaller("T1-child", "R1", "worker"),
    "T2": StateCaller("T2", "R2", "worker"),
    "T3": StateCaller("T3", "R3", "librarian", frozenset({"state.global"})),
}


async def lookup(task_id: str) -> StateCaller | None:
    return CALLERS.get(task_id)


@dataclass
class Service:
    endpoint: str
    channel: grpc.aio.Channel
    servicer: StateServicer

    @property
    def stub(self) -> state_pb2_grpc.StateServiceAsyncStub:
        return state_pb2_grpc.StateServiceStub(self.channel)

    def client(self, task_id: str | None = None) -> AsyncStateClient:
        client = AsyncStateClient(self.channel, self.endpoint, metadata=lambda: ())
        return client.with_caller(task_id, 1) if task_id else client


def as_task(task_id: str) -> tuple[tuple[str, str], ...]:
    return (("maos-task-id", task_id), ("maos-attempt", "1"))


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    async with open_backend(request.param, tmp_path) as backend:
        server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
        servicer = StateServicer(backend, lookup)
        state_pb2_grpc.add_StateServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        endpoint = f"127.0.0.1:{port}"
        channel = grpc.aio.insecure_channel(endpoint)
        try:
            yield Service(endpoint, channel, servicer)
        finally:
            await channel.close(None)
            await server.stop(1)


async def status_of(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value.code(), info.value.details() or ""


async def test_namespace_comes_from_the_callers_task_tree(service: Service) -> None:
    agent = service.client("T1")
    written = await agent.put("plan", {"steps": 3})
    assert (written.namespace, written.version, written.value) == ("tree:R1", 1, {"steps": 3})
    # Another task of the same tree shares the namespace; an operator names it.
    sibling = await service.client("T1-child").get("plan")
    assert sibling is not None and sibling.value == {"steps": 3} and sibling.namespace == "tree:R1"
    operator = service.client()
    seen = await operator.get("plan", namespace="tree:R1")
    assert seen is not None and seen.version == 1
    assert await operator.get("plan", namespace="tree:R2") is None
    # The agent may also name its own tree explicitly.
    assert (await agent.put("plan", 4, namespace="tree:R1")).version == 2

    code, details = await status_of(service.stub.Get(state_pb2.GetStateRequest(key="plan")))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("name a namespace: --namespace tree:<root id> or global")
    code, details = await status_of(service.stub.Get(state_pb2.GetStateRequest(namespace="tree:R1", key="nope")))
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, "key 'nope' not found in namespace tree:R1")
    code, details = await status_of(service.stub.Get(state_pb2.GetStateRequest(namespace="tree/R1", key="plan")))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "namespace 'tree/R1' is not valid" in details


async def test_other_trees_and_global_are_denied_to_agents(service: Service) -> None:
    stub = service.stub
    put = state_pb2.PutStateRequest(namespace="tree:R2", key="k", value=b"1")
    code, details = await status_of(stub.Put(put, metadata=as_task("T1")))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "task T1 belongs to task tree R1" in details and "namespace tree:R2 of task tree R2" in details

    to_global = state_pb2.PutStateRequest(namespace="global", key="k", value=b"1")
    code, details = await status_of(stub.Put(to_global, metadata=as_task("T1")))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "namespace global is for operators" in details and "state.global" in details

    code, details = await status_of(stub.Put(to_global, metadata=as_task("ghost")))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "task ghost" in details

    # An agent type with the capability, and operators, may use global; the SDK raises the same errors.
    assert (await service.client("T3").put("k", 1, namespace="global")).namespace == "global"
    assert (await service.client().put("k", 2, namespace="global")).version == 2
    with pytest.raises(PermissionDenied):
        await service.client("T2").get("k", namespace="global")
    watch = service.client("T2").watch("k", namespace="tree:R1")
    with pytest.raises(PermissionDenied, match="task tree R2"):
        await anext(watch)


async def test_stale_cas_and_bad_values_get_precise_statuses(service: Service) -> None:
    stub = service.stub
    md = as_task("T1")
    created = await stub.CompareAndSet(state_pb2.CompareAndSetRequest(key="c", value=b"1"), metadata=md)
    assert (created.version, created.namespace, created.value) == (1, "tree:R1", b"")  # writes answer without value
    stale = state_pb2.CompareAndSetRequest(key="c", value=b"2", expected_version=0)
    code, details = await status_of(stub.CompareAndSet(stale, metadata=md))
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert details.startswith("stale version: key 'c' in namespace tree:R1 already exists at version 1")
    with pytest.raises(FailedPrecondition, match="is at version 1, not 5"):
        await service.client("T1").cas("c", 2, 5)
    delete = state_pb2.DeleteStateRequest(key="c", expected_version=3)
    assert (await status_of(stub.Delete(delete, metadata=md)))[0] is grpc.StatusCode.FAILED_PRECONDITION

    code, details = await status_of(stub.Put(state_pb2.PutStateRequest(key="c", value=b"{oops"), metadata=md))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "the value of key 'c' is not valid JSON" in details
    big = b'"' + b"x" * (1024 * 1024) + b'"'
    code, details = await status_of(stub.Put(state_pb2.PutStateRequest(key="c", value=big), metadata=md))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert "1,048,578 bytes; the limit is 1,048,576 bytes (1 MiB)" in details
    code, details = await status_of(stub.Put(state_pb2.PutStateRequest(key="", value=b"1"), metadata=md))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "key is empty: name the key")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        await service.client("T1").put("c", RawJson(b"NaN"))
    entry = await service.client("T1").get("c")
    assert entry is not None and (entry.value, entry.version) == (1, 1)  # nothing refused was written

    deleted = await stub.Delete(state_pb2.DeleteStateRequest(key="c", expected_version=1), metadata=md)
    assert deleted.deleted and deleted.revision == 2
    again = await stub.Delete(state_pb2.DeleteStateRequest(key="c"), metadata=md)
    assert not again.deleted


async def test_list_pages_through_the_service(service: Service) -> None:
    client = service.client("T1")
    for i in range(7):
        await client.put(f"p/{i}", i)
    await client.put("q", "other")
    got = [e async for e in client.list("p/", page_size=3)]
    assert [(e.key, e.value) for e in got] == [(f"p/{i}", i) for i in range(7)]
    bare = [e async for e in client.list("", keys_only=True, limit=5)]
    assert [e.key for e in bare] == ["p/0", "p/1", "p/2", "p/3", "p/4"] and all(e.value is None for e in bare)
    code, details = await status_of(
        service.stub.List(state_pb2.ListStateRequest(page_size=5000), metadata=as_task("T1"))
    )
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "page_size 5000 is over the maximum of 1000")
    both = state_pb2.WatchStateRequest(key="a", prefix="b")
    code, _ = await status_of(anext(aiter(service.stub.Watch(both, metadata=as_task("T1")))))
    assert code is grpc.StatusCode.INVALID_ARGUMENT


async def test_sync_client_update_and_delete(service: Service) -> None:
    """The blocking StateClient (in a thread, the server runs on this loop)."""

    def work() -> list[object]:
        channel = grpc.insecure_channel(service.endpoint)
        try:
            client = StateClient(channel, service.endpoint, metadata=lambda: as_task("T2"))
            for _ in range(5):
                client.update("n", lambda v: (v or 0) + 1)
            entry = client.get("n")
            listed = [e.key for e in client.list()]
            events = client.watch("n")
            first = next(events)
            events.close()
            return [entry.value if entry else None, listed, first.version, client.delete("n"), client.get("n")]
        finally:
            channel.close()

    assert await asyncio.to_thread(work) == [5, ["n"], 1, True, None]


async def test_watch_sees_every_committed_version_in_order(service: Service) -> None:
    writers, writes = 4, 100
    total = writers * writes
    key_events: list[StateEvent] = []
    prefix_events: list[StateEvent] = []

    async def watch_key() -> None:
        async for event in service.client("T1").watch("shared"):
            key_events.append(event)
            if len(key_events) == total + 1:  # every write, then the delete
                return

    async def watch_prefix() -> None:
        async for event in service.client().watch(prefix="own/", namespace="tree:R1"):
            prefix_events.append(event)
            if len(prefix_events) == total:
                return

    # Started with the writers: the first changes come from the log, the rest live.
    watchers = [asyncio.create_task(watch_key()), asyncio.create_task(watch_prefix())]

    async def writer(n: int) -> None:
        client = service.client("T1")
        for i in range(writes):
            await client.put("shared", {"writer": n, "i": i})
            await client.put(f"own/{n}", i)

    await asyncio.gather(*(writer(n) for n in range(writers)))
    await service.client("T1").delete("shared")
    await asyncio.wait_for(asyncio.gather(*watchers), 30)

    assert [e.version for e in key_events] == [*range(1, total + 1), 0]
    assert key_events[-1].deleted and key_events[-1].value is None
    revisions = [e.revision for e in key_events]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    # Each writer's values arrive in the order it wrote them.
    for n in range(writers):
        assert [e.value["i"] for e in key_events[:-1] if e.value["writer"] == n] == list(range(writes))
    for n in range(writers):
        own = [e for e in prefix_events if e.key == f"own/{n}"]
        assert [(e.version, e.value) for e in own] == [(i + 1, i) for i in range(writes)]
    # A late watcher resuming from a revision gets the rest from the log.
    middle = key_events[total // 2].revision
    late = [e.version async for e in _take(service.client("T1").watch("shared", after_revision=middle), 3)]
    assert late == [total // 2 + 2, total // 2 + 3, total // 2 + 4]


async def _take(events: AsyncIterator[StateEvent], n: int) -> AsyncIterator[StateEvent]:
    count = 0
    async for event in events:
        yield event
        count += 1
        if count == n:
            break
    await events.aclose()  # type: ignore[attr-defined]


async def test_task_context_state(service: Service) -> None:
    """What a Python agent uses: `ctx.state`, async methods here and blocking ones in a thread."""
    state = TaskState(task_id="T1", attempt=1, root_id="R1", endpoint=service.endpoint)
    assert state.namespace == "tree:R1"
    assert (await state.put_async("seen/a", True)).namespace == "tree:R1"
    assert (await state.update_async("n", lambda v: (v or 0) + 1)).value == 1
    assert [e.key async for e in state.list_async("seen/")] == ["seen/a"]
    watch = state.watch_async("n")
    first = await anext(watch)
    await watch.aclose()
    assert (first.version, first.value) == (1, 1)

    def blocking() -> tuple[object, ...]:
        entry = state.get("n")
        changed = state.cas("n", 5, expected_version=1)
        return entry.value if entry else None, changed.version, state.delete("seen/a"), state.get("seen/a")

    assert await asyncio.to_thread(blocking) == (1, 2, True, None)
    with pytest.raises(PermissionDenied):
        await state.get_async("n", namespace="global")


async def test_a_watch_that_falls_behind_in_bytes_reads_the_log_and_misses_nothing(service: Service) -> None:
    service.servicer.hub = StateHub(queue_bytes=300)  # about three values queued at most
    total = 200
    seen: list[StateEvent] = []

    async def watch() -> None:
        async for event in service.client().watch(prefix="big/", namespace="tree:R1"):
            seen.append(event)
            await asyncio.sleep(0)  # a slow reader
            if len(seen) == total:
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    writer = service.client("T1")
    await asyncio.gather(*(writer.put(f"big/{i % 4}", {"i": i, "pad": "x" * 80}) for i in range(total)))
    await asyncio.wait_for(watcher, 30)
    revisions = [e.revision for e in seen]
    assert revisions == sorted(set(revisions)) and len(revisions) == total


async def test_one_client_holds_a_bounded_number_of_state_watches(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_api, "MAX_WATCHES_PER_CALLER", 2)
    await service.client("T1").put("w", 1)
    request = state_pb2.WatchStateRequest(key="w")
    first, second = (
        service.stub.Watch(request, metadata=as_task("T1")),
        service.stub.Watch(request, metadata=as_task("T1")),
    )
    for call in (first, second):
        assert (await call.read()).entry.key == "w"  # open, with the logged change
    third = service.stub.Watch(request, metadata=as_task("T1"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await third.read()
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "already holds 2 state watches" in (refused.value.details() or "")
    other = service.stub.Watch(request, metadata=as_task("T2"))  # another caller is not affected
    first.cancel()
    await asyncio.sleep(0.2)
    again = service.stub.Watch(request, metadata=as_task("T1"))  # a slot came free
    assert (await again.read()).entry.key == "w"
    for call in (second, other, again):
        call.cancel()
