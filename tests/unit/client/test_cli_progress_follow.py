"""The follower resumes a dropped watch from the root's last sequence number."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

from maos.client.cli import _progress
from maos.client.cli._progress import follow_progress
from maos.errors import Unavailable
from maos.v1 import common_pb2 as S
from maos.wire import json_payload


class FakeClient:
    """Scripted AsyncClient: the first watch drops after one event, the second finishes the tree."""

    def __init__(self) -> None:
        self.root = S.Task(id="r", root_id="r", group=True, status=S.TASK_STATUS_RUNNING, last_seq=2)
        self.root.spec.description = "root"
        self.child = S.Task(id="c", root_id="r", parent_id="r", status=S.TASK_STATUS_QUEUED, last_seq=2)
        self.child.spec.description = "child"
        self.watch_calls: list[int] = []

    async def get_task(self, task_id: str) -> S.Task:
        return self.root if task_id == "r" else self.child

    async def list_tasks(self, **_kwargs: object) -> AsyncIterator[S.Task]:
        for task in (self.root, self.child):
            yield task

    async def watch_task(
        self, task_id: str, *, after_seq: int = 0, include_subtree: bool = False
    ) -> AsyncIterator[S.TaskEvent]:
        assert include_subtree
        self.watch_calls.append(after_seq)
        if len(self.watch_calls) == 1:
            yield S.TaskEvent(task_id="c", seq=3, status=S.TASK_STATUS_RUNNING, host_id="h1")
            yield S.TaskEvent(task_id="r", seq=3, status=S.TASK_STATUS_RUNNING, message="started")
            raise Unavailable("cannot reach the MAOS control plane at test")
        # Meanwhile the child finished (the fetch after the drop sees it) and the root follows.
        self.child.status, self.child.last_seq = S.TASK_STATUS_COMPLETED, 4
        self.root.status, self.root.last_seq = S.TASK_STATUS_COMPLETED, 4
        self.root.result.CopyFrom(json_payload({"child": "ok"}))
        yield S.TaskEvent(task_id="r", seq=4, status=S.TASK_STATUS_COMPLETED)


async def test_a_dropped_watch_resumes_after_the_last_root_sequence(monkeypatch) -> None:
    monkeypatch.setattr(_progress, "REDRAW_SECONDS", 0.01)
    client = FakeClient()
    out = io.StringIO()
    view = await follow_progress(client, "r", out)  # type: ignore[arg-type]
    assert client.watch_calls == [2, 3]  # resumed after seq 3, not from the start
    assert view.root_final
    assert view.children["c"].status == S.TASK_STATUS_COMPLETED
    text = out.getvalue()
    assert "child: running on h1" in text
    assert text.rstrip().endswith('{\n  "child": "ok"\n}')
    assert "\x1b[" not in text  # a StringIO is not a terminal: plain lines


async def test_snapshot_without_follow_prints_once(monkeypatch) -> None:
    client = FakeClient()
    out = io.StringIO()
    view = await follow_progress(client, "r", out, follow=False)  # type: ignore[arg-type]
    assert client.watch_calls == []
    assert not view.root_final
    assert out.getvalue().splitlines()[2] == "pending 0 · queued 1 · running 0 · completed 0"


class FinishesWhileLooking(FakeClient):
    """The root is running at GetTask and final by the ListTasks that follows."""

    def __init__(self) -> None:
        super().__init__()
        self.listings: list[object] = []

    async def list_tasks(self, **kwargs: object) -> AsyncIterator[S.Task]:
        self.listings.append(kwargs.get("include_result"))
        done = S.Task(id="c", root_id="r", parent_id="r", status=S.TASK_STATUS_COMPLETED, last_seq=4)
        done.spec.description = "child"
        if kwargs.get("include_result"):
            done.result.CopyFrom(json_payload("the answer"))
        final_root = S.Task(id="r", root_id="r", group=True, status=S.TASK_STATUS_COMPLETED, last_seq=4)
        final_root.spec.description = "root"
        for task in (final_root, done):
            yield task


async def test_a_tree_that_ends_between_the_first_fetches_still_gets_its_results() -> None:
    client = FinishesWhileLooking()
    out = io.StringIO()
    view = await follow_progress(client, "r", out)  # type: ignore[arg-type]
    assert client.listings == [False, True]
    assert client.watch_calls == []
    assert out.getvalue().rstrip().endswith("── child ──\nthe answer")
    assert view.root_final
