"""The live display's state: events merged by sequence number, counts, bar, running rows."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp
from maos.client.cli._progress import final_report
from maos.client.cli._progress_view import ProgressView
from maos.v1 import common_pb2
from maos.wire import json_payload

S = common_pb2
T0 = 1_735_689_600


def ts(offset: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((T0 + offset) * 1e9))
    return stamp


def at(offset: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0 + offset, dt.UTC)


def workflow() -> ProgressView:
    root = S.Task(id="r", root_id="r", group=True, status=S.TASK_STATUS_RUNNING, created_at=ts(0), last_seq=2)
    root.spec.description = "demo"
    children = []
    for i in range(1, 5):
        child = S.Task(id=f"c{i}", root_id="r", parent_id="r", status=S.TASK_STATUS_QUEUED, last_seq=2)
        child.spec.description = f"shard {i}"
        children.append(child)
    sink = S.Task(id="c5", root_id="r", parent_id="r", status=S.TASK_STATUS_PENDING, last_seq=1)
    sink.spec.description = "synthesis"
    sink.spec.depends_on.extend(["c1", "c2", "c3", "c4"])
    view = ProgressView(root, names={"c1": "shard-1", "c5": "synthesis"})
    view.apply_snapshot(root, [root, *children, sink])
    return view


def event(task_id: str, seq: int, status: int, offset: float, host: str = "") -> S.TaskEvent:
    return S.TaskEvent(task_id=task_id, seq=seq, status=status, time=ts(offset), host_id=host)  # type: ignore[arg-type]


def test_snapshot_counts_and_bar() -> None:
    view = workflow()
    assert view.counts() == {"pending": 1, "queued": 4, "running": 0, "completed": 0}
    assert view.fraction() == 0.0
    lines = view.render(at(3), width=100)
    assert lines[0].startswith("demo  r  running  3.00s")
    assert "0/5 done" in lines[1]
    assert lines[2] == "pending 1 · queued 4 · running 0 · completed 0"


def test_events_move_tasks_and_show_running_rows() -> None:
    view = workflow()
    change = view.apply_event(event("c1", 3, S.TASK_STATUS_RUNNING, 1.0, host="h1"))
    assert change is not None
    assert change.status == S.TASK_STATUS_RUNNING
    assert view.needs_refresh()  # events carry no agent id; a fetch fills it in
    view.apply_event(event("c2", 3, S.TASK_STATUS_RUNNING, 1.5, host="h1"))
    view.apply_event(event("c2", 4, S.TASK_STATUS_COMPLETED, 2.0, host="h1"))
    assert view.counts()["running"] == 1
    assert view.counts()["completed"] == 1
    lines = view.render(at(3), width=100)
    assert "1/5 done" in lines[1]
    running = [line for line in lines if "shard-1" in line]
    assert len(running) == 1
    assert "h1" in running[0]
    assert "2.00s" in running[0]  # started at 1.0, now 3.0


def test_replayed_events_are_ignored() -> None:
    view = workflow()
    assert view.apply_event(event("c1", 3, S.TASK_STATUS_RUNNING, 1.0)) is not None
    assert view.apply_event(event("c1", 3, S.TASK_STATUS_RUNNING, 1.0)) is None
    assert view.apply_event(event("c1", 2, S.TASK_STATUS_QUEUED, 0.5)) is None
    assert view.children["c1"].status == S.TASK_STATUS_RUNNING


def test_a_stale_snapshot_does_not_undo_newer_events_but_fills_the_agent() -> None:
    view = workflow()
    view.apply_event(event("c1", 3, S.TASK_STATUS_RUNNING, 1.0, host="h1"))
    view.apply_event(event("c1", 4, S.TASK_STATUS_COMPLETED, 2.0, host="h1"))
    stale = S.Task(id="c1", root_id="r", status=S.TASK_STATUS_RUNNING, last_seq=3, started_at=ts(1.0))
    stale.placement.host_id, stale.placement.agent_id = "h1", "a7"
    view.apply_snapshot(None, [stale])
    assert view.children["c1"].status == S.TASK_STATUS_COMPLETED
    assert view.children["c1"].placement.agent_id == "a7"


def test_unknown_subtask_from_an_event_is_added() -> None:
    view = workflow()
    view.apply_event(event("spawned", 1, S.TASK_STATUS_QUEUED, 1.0))
    assert "spawned" in view.children
    assert view.needs_refresh()


def test_root_final_and_sinks_and_report() -> None:
    view = workflow()
    for i, child in enumerate(list(view.children.values()), start=1):
        child.status = S.TASK_STATUS_COMPLETED
        child.result.CopyFrom(json_payload({"n": i}))
    assert view.apply_event(event("r", 3, S.TASK_STATUS_COMPLETED, 9.0)) is not None
    assert view.root_final
    assert view.fraction() == 1.0
    assert [t.id for t in view.sinks()] == ["c5"]
    assert final_report(view) == '── synthesis ──\n{\n  "n": 5\n}'
    view.root.result.CopyFrom(json_payload({"synthesis": "ok"}))
    assert final_report(view) == '{\n  "synthesis": "ok"\n}'


def test_transition_line_for_plain_output() -> None:
    view = workflow()
    change = view.apply_event(event("c1", 3, S.TASK_STATUS_RUNNING, 1.0, host="h1"))
    assert change is not None
    assert view.transition_line(change, at(1.25)) == "[  1.25s] shard-1: running on h1"


def test_transition_notes_that_repeat_the_line_are_dropped() -> None:
    view = workflow()
    for seq, (status, message) in enumerate(
        [
            (S.TASK_STATUS_RUNNING, "dispatched to host h1"),
            (S.TASK_STATUS_COMPLETED, "completed"),
        ],
        start=3,
    ):
        change = view.apply_event(
            S.TaskEvent(task_id="c1", seq=seq, status=status, time=ts(seq), host_id="h1", message=message)
        )
        assert change is not None
        assert "(" not in view.transition_line(change, at(9))
    change = view.apply_event(S.TaskEvent(task_id="c5", seq=2, status=S.TASK_STATUS_QUEUED, message="deps done"))
    assert change is not None
    assert view.transition_line(change, at(9)).endswith("synthesis: queued (deps done)")


def test_many_running_tasks_are_summarised() -> None:
    view = workflow()
    for i in range(1, 5):
        view.apply_event(event(f"c{i}", 3, S.TASK_STATUS_RUNNING, float(i)))
    lines = view.render(at(10), width=100, max_running=2)
    assert lines[-1] == "  … and 2 more running"
