"""TaskContext.spawn / spawn_many / wait (sync and async) against a fake SDK client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from maos.client import _context
from maos.client._context import TaskContext
from maos.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, MaosError
from maos.v1 import common_pb2
from maos.wire import json_payload

ENDPOINT = "fake:1"
COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def done(task_id: str, value: Any) -> common_pb2.Task:
    return common_pb2.Task(id=task_id, status=COMPLETED, result=json_payload(value))


class FakeClient:
    """Records calls; answers waits from `answers`; a blocking wait ends only when closed."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []
        self.waits: list[tuple[list[str], float | None]] = []
        self.answers: dict[str, common_pb2.Task] = {}
        self.block = False
        self.closed = threading.Event()
        self.waiting = threading.Event()

    def _submit(self, description: str, **options: Any) -> common_pb2.Task:
        self.submitted.append({"description": description, **options})
        return common_pb2.Task(id=f"c{len(self.submitted)}", parent_id=options.get("parent_id") or "")

    def submit_task(self, description: str, **options: Any) -> common_pb2.Task:
        return self._submit(description, **options)

    def submit_tasks(self, specs: Iterable[dict[str, Any]]) -> list[common_pb2.Task]:
        return [self._submit(**spec) for spec in specs]

    def wait_tasks(self, ids: Iterable[str], *, timeout: float | None = None, include_result: bool = True) -> Any:
        ids = list(ids)
        assert include_result
        self.waits.append((ids, timeout))
        if self.block:
            self.waiting.set()
            assert self.closed.wait(10)
            raise MaosError("cancelled (CANCELLED)")
        return [self.answers[i] for i in reversed(ids)]  # any order: results follow the ids

    def close(self) -> None:
        self.closed.set()


class FakeAsyncClient:
    def __init__(self, sync: FakeClient) -> None:
        self.sync = sync

    async def submit_task(self, description: str, **options: Any) -> common_pb2.Task:
        return self.sync.submit_task(description, **options)

    async def submit_tasks(self, specs: Iterable[dict[str, Any]]) -> list[common_pb2.Task]:
        return self.sync.submit_tasks(specs)

    async def wait_tasks(
        self,
        ids: Iterable[str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors AsyncClient.wait_tasks
        include_result: bool = True,
    ) -> Any:
        await asyncio.sleep(0)
        return self.sync.wait_tasks(ids, timeout=timeout, include_result=include_result)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClient]:
    fake = FakeClient()
    monkeypatch.setitem(_context._clients, ENDPOINT, fake)  # type: ignore[arg-type]
    yield fake
    _context._async_clients.pop(ENDPOINT, None)


def context() -> TaskContext:
    return TaskContext(task_id="parent", attempt=2, agent_type="tree", endpoint=ENDPOINT)


def test_spawn_submits_a_child_of_this_task(client: FakeClient) -> None:
    ctx = context()
    child = ctx.spawn("sub", agent_type="tree", input={"d": 1}, priority="high", timeout=5, labels={"k": "v"})
    assert child == "c1"
    (call,) = client.submitted
    assert call["parent_id"] == "parent"
    assert (call["description"], call["agent_type"], call["input"], call["priority"]) == (
        "sub",
        "tree",
        {"d": 1},
        "high",
    )
    assert (call["timeout"], call["labels"], call["max_retries"], list(call["depends_on"])) == (5, {"k": "v"}, None, [])


def test_spawn_many_sets_the_parent_on_every_child(client: FakeClient) -> None:
    ctx = context()
    ids = ctx.spawn_many([{"description": "a"}, {"description": "b", "input": 2, "parent_id": "parent"}])
    assert ids == ["c1", "c2"]
    assert [c["parent_id"] for c in client.submitted] == ["parent", "parent"]
    with pytest.raises(InvalidArgument, match="cannot name parent_id 'elsewhere'"):
        ctx.spawn_many([{"description": "c", "parent_id": "elsewhere"}])
    with pytest.raises(TypeError, match="dict of spawn"):
        ctx.spawn_many(["just a string"])  # type: ignore[list-item]


def test_wait_returns_results_in_the_order_asked(client: FakeClient) -> None:
    client.answers = {"c1": done("c1", 1), "c2": done("c2", {"two": 2}), "c3": done("c3", None)}
    ctx = context()
    assert ctx.wait(["c1", "c2", "c3"], timeout=7) == [1, {"two": 2}, None]
    assert client.waits == [(["c1", "c2", "c3"], 7)]
    assert ctx.wait([]) == []
    with pytest.raises(TypeError, match=r"wait\(\[task_id\]\)"):
        ctx.wait("c1")


def test_a_child_that_did_not_complete_fails_the_wait(client: FakeClient) -> None:
    failed = common_pb2.Task(
        id="c2",
        status=common_pb2.TASK_STATUS_FAILED,
        error=common_pb2.TaskError(kind="exception", message="ValueError: boom"),
    )
    cancelled = common_pb2.Task(id="c3", status=common_pb2.TASK_STATUS_CANCELLED)
    client.answers = {"c1": done("c1", 1), "c2": failed, "c3": cancelled}
    with pytest.raises(FailedPrecondition) as info:
        context().wait(["c1", "c2", "c3"])
    assert str(info.value) == (
        "child task c2 failed: ValueError: boom (exception); 1 more child task(s) did not complete either"
    )


def test_children_still_running_when_the_wait_times_out(client: FakeClient) -> None:
    client.answers = {"c1": done("c1", 1), "c2": common_pb2.Task(id="c2", status=common_pb2.TASK_STATUS_RUNNING)}
    with pytest.raises(DeadlineExceeded, match=r"not finished after 0\.5s: c2 \(running\)"):
        context().wait(["c1", "c2"], timeout=0.5)


def test_cancelling_the_task_ends_a_blocking_wait(client: FakeClient) -> None:
    client.block = True
    ctx = context()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            ctx.wait(["c1"])
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert client.waiting.wait(10)
    ctx._cancel()  # what the worker does when the host cancels the task
    thread.join(10)
    assert client.closed.is_set()
    assert len(raised) == 1
    assert isinstance(raised[0], asyncio.CancelledError)
    # The closed client is dropped; the next spawn or wait in this process opens a new one.
    assert _context._clients.get(ENDPOINT) is not client


def test_a_cancelled_task_does_not_start_a_wait(client: FakeClient) -> None:
    ctx = context()
    ctx._cancel()
    with pytest.raises(asyncio.CancelledError):
        ctx.wait(["c1"])
    assert client.waits == []


async def test_async_spawn_and_wait(client: FakeClient) -> None:
    _context._async_clients[ENDPOINT] = (asyncio.get_running_loop(), FakeAsyncClient(client))  # type: ignore[assignment]
    client.answers = {"c1": done("c1", "one"), "c2": done("c2", "two")}
    ctx = context()
    first = await ctx.spawn_async("a", agent_type="tree")
    rest = await ctx.spawn_many_async([{"description": "b"}])
    assert [first, *rest] == ["c1", "c2"]
    assert [c["parent_id"] for c in client.submitted] == ["parent", "parent"]
    assert await ctx.wait_async([first, *rest], timeout=3) == ["one", "two"]


def test_one_client_per_endpoint_per_process() -> None:
    endpoint = "127.0.0.1:9"  # nothing listens; a client connects only on its first call
    try:
        first = _context._client(endpoint)
        assert _context._client(endpoint) is first
        assert first.endpoint == endpoint
    finally:
        _context._discard_client(_context._clients[endpoint])
    assert endpoint not in _context._clients
