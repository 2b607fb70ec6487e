"""The pure core: state machine, leases, credit-based dispatch, dependencies, recovery."""

from __future__ import annotations

import random

import pytest
from maos.controlplane.core import (
    AttemptResult,
    CoreLimits,
    DependencyPolicy,
    Orchestrator,
    Outcome,
    Priority,
    TaskRecord,
    TaskStatus,
)

T0 = 1_000.0


def make(task_id: str, **kw: object) -> TaskRecord:
    fields: dict[str, object] = {
        "root_id": task_id,
        "parent_id": "",
        "spec": None,
        "agent_type": "echo",
        "priority": Priority.MEDIUM,
        "created_at": T0,
    }
    fields.update(kw)
    return TaskRecord(id=task_id, **fields)  # type: ignore[arg-type]


def core(prefetch: int = 0, **kw: object) -> Orchestrator:
    limits = CoreLimits(prefetch_min=prefetch, prefetch_max=max(prefetch, 64), **kw)  # type: ignore[arg-type]
    return Orchestrator(limits, rng=random.Random(1))


def ok(task_id: str, attempt: int = 1, data: bytes = b'"ok"') -> AttemptResult:
    return AttemptResult(task_id, attempt, Outcome.SUCCEEDED, result=data, result_type="application/json")


def failed(task_id: str, attempt: int = 1, kind: str = "exception") -> AttemptResult:
    return AttemptResult(task_id, attempt, Outcome.FAILED, error_kind=kind, error_message="boom")


def assigned(o: Orchestrator) -> list[tuple[str, str, int]]:
    return [(h, r.id, r.attempt) for h, r in o.take().assignments]


def test_submitted_task_is_queued_with_first_event() -> None:
    o = core()
    o.submit([make("a")], T0)
    d = o.take()
    assert o.tasks["a"].status == TaskStatus.QUEUED
    assert [(e.task_id, e.seq, e.status) for e in d.events] == [("a", 1, TaskStatus.QUEUED)]
    assert [r.id for r in d.inserted] == ["a"]


def test_dispatch_never_exceeds_free_slots_plus_prefetch() -> None:
    o = core(prefetch=1)
    o.host_connected("h1", 2, ["echo"], [], T0)
    o.submit([make(f"t{i}") for i in range(10)], T0)
    o.dispatch(T0)
    assert len(assigned(o)) == 3
    o.dispatch(T0)
    assert assigned(o) == []
    o.on_result("h1", ok("t0"), T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["t3"]


def test_prefetch_grows_for_short_tasks_and_shrinks_for_long_ones() -> None:
    o = core(prefetch=2, prefetch_window_seconds=0.05)
    o.host_connected("h1", 2, ["echo"], [], T0)
    o.submit([make(f"t{i}") for i in range(200)], T0)
    o.dispatch(T0)
    assert len(assigned(o)) == 4  # nothing learned yet: slots + the minimum
    for i in range(4):
        o.on_result("h1", AttemptResult(f"t{i}", 1, Outcome.SUCCEEDED, duration_seconds=0.001), T0)
    assert o.hosts["h1"].prefetch == 64  # 0.05 s of 1 ms tasks per slot, capped
    o.dispatch(T0)
    busy = [t for _, t, _ in assigned(o)]
    for t in busy[:30]:
        o.on_result("h1", AttemptResult(t, 1, Outcome.SUCCEEDED, duration_seconds=5.0), T0)
    assert o.hosts["h1"].prefetch == 2  # long tasks: back to the minimum


def test_free_slots_everywhere_are_filled_before_prefetch() -> None:
    o = core(prefetch=5)
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.host_connected("h2", 1, ["echo"], [], T0)
    o.submit([make(f"t{i}") for i in range(2)], T0)
    o.dispatch(T0)
    assert sorted(h for h, _, _ in assigned(o)) == ["h1", "h2"]


def test_priority_is_strict_and_fifo_within_a_level() -> None:
    o = core()
    o.submit(
        [
            make("low", priority=Priority.LOW),
            make("m1"),
            make("crit", priority=Priority.CRITICAL),
            make("m2"),
            make("high", priority=Priority.HIGH),
        ],
        T0,
    )
    o.host_connected("h1", 5, ["echo"], [], T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["crit", "high", "m1", "m2", "low"]


def test_hosts_only_get_agent_types_they_serve() -> None:
    o = core()
    o.submit([make("a", agent_type="analyst"), make("e")], T0)
    o.host_connected("h1", 4, ["echo"], [], T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["e"]
    assert o.tasks["a"].status == TaskStatus.QUEUED


def test_a_task_is_running_only_once_an_agent_started_it() -> None:
    o = core(prefetch=4)
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a"), make("b")], T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["a", "b"]
    assert o.tasks["b"].status == TaskStatus.QUEUED and o.tasks["b"].host_id == "h1"  # prefetched, placed
    o.on_started("h1", "a", 1, "h1-w0", T0)
    d = o.take()
    assert o.tasks["a"].status == TaskStatus.RUNNING and o.tasks["a"].agent_id == "h1-w0"
    assert [(e.task_id, e.status) for e in d.events] == [("a", TaskStatus.RUNNING)]


def test_result_of_current_lease_completes_the_task_once() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a")], T0)
    o.dispatch(T0)
    o.take()
    o.on_result("h1", ok("a"), T0 + 1)
    d = o.take()
    rec = o.tasks["a"]
    assert rec.status == TaskStatus.COMPLETED and rec.result == b'"ok"'
    assert d.acks == [("h1", "a", 1)] and [r.id for r in d.finished] == ["a"]
    o.on_result("h1", AttemptResult("a", 1, Outcome.SUCCEEDED, result=b'"again"'), T0 + 2)
    d = o.take()
    assert rec.result == b'"ok"' and d.finished == [] and d.acks == [("h1", "a", 1)]


def test_lost_host_requeues_with_next_attempt_and_drops_its_late_result() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.host_connected("h2", 1, ["echo"], [], T0)
    o.submit([make("a")], T0)
    o.dispatch(T0)
    [(first_host, _, attempt)] = assigned(o)
    other = "h2" if first_host == "h1" else "h1"
    o.host_disconnected(first_host, T0 + 1, "stream closed")
    o.dispatch(T0 + 1)
    assert assigned(o) == [(other, "a", 2)]
    o.on_result(first_host, ok("a", attempt, b'"stale"'), T0 + 2)
    assert not o.tasks["a"].final and o.lease_of("a") == (other, 2)
    o.on_result(other, ok("a", 2, b'"fresh"'), T0 + 3)
    assert o.tasks["a"].status == TaskStatus.COMPLETED and o.tasks["a"].result == b'"fresh"'


def test_missed_heartbeats_expire_a_host() -> None:
    o = core(heartbeat_interval_seconds=1.0, missed_heartbeats=3)
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a")], T0)
    o.dispatch(T0)
    o.take()
    o.tick(T0 + 2.9)
    assert o.hosts["h1"].connected
    o.host_heartbeat("h1", T0 + 2.9)
    o.tick(T0 + 5.8)
    assert o.hosts["h1"].connected
    o.tick(T0 + 6.0)
    d = o.take()
    assert not o.hosts["h1"].connected and d.lost_hosts == ["h1"]
    assert o.tasks["a"].status == TaskStatus.QUEUED


def test_failure_retries_then_fails_with_the_error() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a", max_retries=1)], T0)
    o.dispatch(T0)
    o.on_result("h1", failed("a", 1), T0)
    assert o.tasks["a"].status == TaskStatus.QUEUED
    o.dispatch(T0)
    assert assigned(o)[-1] == ("h1", "a", 2)
    o.on_result("h1", failed("a", 2), T0)
    rec = o.tasks["a"]
    assert rec.status == TaskStatus.FAILED and rec.error_kind == "exception" and rec.failures == 2


def test_retry_backoff_waits_until_due() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a", max_retries=2, retry_initial_seconds=10.0)], T0)
    o.dispatch(T0)
    o.on_result("h1", failed("a"), T0)
    o.dispatch(T0)
    assert [a for a in assigned(o) if a[2] == 2] == []
    due = o.next_wakeup()
    assert due is not None and T0 + 5 <= due <= T0 + 10
    o.host_heartbeat("h1", due)
    o.tick(due)
    o.dispatch(due)
    assert assigned(o) == [("h1", "a", 2)]


def test_non_retryable_error_fails_at_once() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a", max_retries=3, non_retryable=frozenset({"bad_input"}))], T0)
    o.dispatch(T0)
    o.on_result("h1", failed("a", kind="bad_input"), T0)
    assert o.tasks["a"].status == TaskStatus.FAILED


def test_timeout_outcome_is_timed_out() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a")], T0)
    o.dispatch(T0)
    o.on_result("h1", AttemptResult("a", 1, Outcome.TIMED_OUT, error_kind="timeout"), T0)
    assert o.tasks["a"].status == TaskStatus.TIMED_OUT


def test_cancel_subtree_tells_the_host_and_keeps_the_slot_until_it_answers() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("root"), make("child", parent_id="root", root_id="root")], T0)
    o.dispatch(T0)
    [(_, running, _)] = assigned(o)
    o.cancel("root", "user asked", T0)
    d = o.take()
    assert o.tasks["root"].status == TaskStatus.CANCELLED
    assert o.tasks["child"].status == TaskStatus.CANCELLED
    assert d.cancels == [("h1", running, 1, "user asked")]
    assert o.hosts["h1"].credit == 0  # still busy until the host reports
    o.on_result("h1", AttemptResult(running, 1, Outcome.CANCELLED), T0)
    assert o.hosts["h1"].credit == 1 and o.tasks[running].status == TaskStatus.CANCELLED
    o.cancel("root", "again", T0)  # idempotent
    assert o.take().cancels == []


def test_dependents_queue_when_dependencies_complete() -> None:
    o = core()
    o.host_connected("h1", 4, ["echo"], [], T0)
    o.submit([make("a"), make("b"), make("c", depends_on=("a", "b"))], T0)
    assert o.tasks["c"].status == TaskStatus.PENDING
    o.dispatch(T0)
    o.take()
    o.on_result("h1", ok("a"), T0)
    assert o.tasks["c"].status == TaskStatus.PENDING
    o.on_result("h1", ok("b"), T0)
    assert o.tasks["c"].status == TaskStatus.QUEUED


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (DependencyPolicy.FAIL, TaskStatus.FAILED),
        (DependencyPolicy.SKIP, TaskStatus.CANCELLED),
        (DependencyPolicy.CONTINUE, TaskStatus.QUEUED),
    ],
)
def test_failed_dependency_applies_the_policy(policy: DependencyPolicy, expected: TaskStatus) -> None:
    o = core()
    o.host_connected("h1", 4, ["echo"], [], T0)
    o.submit([make("a", workflow_key="fetch"), make("b", depends_on=("a",), dependency_policy=policy)], T0)
    o.dispatch(T0)
    o.on_result("h1", failed("a"), T0)
    b = o.tasks["b"]
    assert b.status == expected
    if expected == TaskStatus.FAILED:
        assert "dependency 'fetch' failed" in b.error_message


def test_long_failed_chain_settles_without_recursion() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    chain = [make("n0")] + [make(f"n{i}", depends_on=(f"n{i - 1}",)) for i in range(1, 5000)]
    o.submit(chain, T0)
    o.dispatch(T0)
    o.on_result("h1", failed("n0"), T0)
    assert all(o.tasks[f"n{i}"].status == TaskStatus.FAILED for i in range(5000))


def test_group_root_completes_with_its_sink_result() -> None:
    o = core()
    o.host_connected("h1", 4, ["echo"], [], T0)
    kids = [make(f"s{i}", parent_id="g", root_id="g", workflow_key=f"s{i}") for i in range(2)]
    synth = make("syn", parent_id="g", root_id="g", workflow_key="synthesis", depends_on=("s0", "s1"))
    o.submit([make("g", group=True, agent_type=""), *kids, synth], T0)
    assert o.tasks["g"].status == TaskStatus.RUNNING
    o.dispatch(T0)
    o.on_result("h1", ok("s0"), T0)
    o.on_result("h1", ok("s1"), T0)
    o.dispatch(T0)
    o.on_result("h1", ok("syn", data=b'{"report":1}'), T0)
    g = o.tasks["g"]
    assert g.status == TaskStatus.COMPLETED and g.result == b'{"report":1}'


def test_group_root_fails_naming_the_failed_subtask() -> None:
    o = core()
    o.host_connected("h1", 4, ["echo"], [], T0)
    o.submit([make("g", group=True), make("s", parent_id="g", root_id="g", workflow_key="shard-1")], T0)
    o.dispatch(T0)
    o.on_result("h1", failed("s"), T0)
    assert o.tasks["g"].status == TaskStatus.FAILED
    assert "shard-1 (failed)" in o.tasks["g"].error_message


def test_restore_keeps_running_leases_until_the_host_reconnects() -> None:
    stored = [make("q"), make("r")]
    stored[0].status = TaskStatus.QUEUED
    stored[1].status, stored[1].attempt, stored[1].host_id = TaskStatus.RUNNING, 1, "h1"
    o = core()
    o.restore(stored, T0)
    o.host_connected("h1", 2, ["echo"], [("r", 1)], T0 + 0.5)
    o.dispatch(T0 + 0.5)
    assert assigned(o) == [("h1", "q", 1)]
    assert o.lease_of("r") == ("h1", 1)
    o.on_result("h1", ok("r"), T0 + 1)
    assert o.tasks["r"].status == TaskStatus.COMPLETED


def test_restore_requeues_running_tasks_of_a_host_that_never_returns() -> None:
    stored = make("r")
    stored.status, stored.attempt, stored.host_id = TaskStatus.RUNNING, 1, "gone"
    o = core()
    o.restore([stored], T0)
    o.tick(T0 + 3.5)
    assert o.tasks["r"].status == TaskStatus.QUEUED
    o.host_connected("h2", 1, ["echo"], [], T0 + 4)
    o.dispatch(T0 + 4)
    assert assigned(o) == [("h2", "r", 2)]


def test_reconnecting_host_adopts_an_undurable_dispatch_and_drops_stale_leases() -> None:
    o = core()
    queued = make("q")
    queued.status = TaskStatus.QUEUED
    done = make("d")
    done.status = TaskStatus.COMPLETED
    o.restore([queued, done], T0)
    o.host_connected("h1", 2, ["echo"], [("q", 1), ("d", 1)], T0)
    d = o.take()
    assert o.lease_of("q") == ("h1", 1) and o.tasks["q"].host_id == "h1"
    assert [(h, t) for h, t, _, _ in d.cancels] == [("h1", "d")]


def test_host_reconnect_without_a_lease_requeues_it() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a")], T0)
    o.dispatch(T0)
    o.host_connected("h1", 1, ["echo"], [], T0 + 1)  # restarted host: holds nothing
    assert o.tasks["a"].status == TaskStatus.QUEUED


def test_enum_values_match_the_api_contract() -> None:
    from maos.v1 import common_pb2, hosts_pb2

    for status in TaskStatus:
        assert common_pb2.TaskStatus.Value(f"TASK_STATUS_{status.name}") == status
    for prio in Priority:
        assert common_pb2.Priority.Value(f"PRIORITY_{prio.name}") == prio
    for outcome in Outcome:
        assert hosts_pb2.Outcome.Value(f"OUTCOME_{outcome.name}") == outcome
    for policy in DependencyPolicy:
        assert common_pb2.DependencyFailurePolicy.Value(f"DEPENDENCY_FAILURE_POLICY_{policy.name}") == policy


def test_aging_promotes_a_starving_task_one_level_at_a_time() -> None:
    o = core(max_queue_time_seconds=300.0)
    o.submit([make("low", priority=Priority.LOW)], T0)
    o.tick(T0 + 299)
    assert o.tasks["low"].priority == Priority.LOW
    o.tick(T0 + 300)
    assert o.tasks["low"].priority == Priority.MEDIUM
    o.tick(T0 + 301)
    assert o.tasks["low"].priority == Priority.MEDIUM  # its clock restarted at the promotion
    o.submit([make("m", priority=Priority.MEDIUM)], T0 + 350)
    o.tick(T0 + 600)
    assert o.tasks["low"].priority == Priority.HIGH and o.tasks["m"].priority == Priority.MEDIUM
    o.host_connected("h1", 1, ["echo"], [], T0 + 600)
    o.dispatch(T0 + 600)
    assert [t for _, t, _ in assigned(o)] == ["low"]


def test_priority_change_moves_a_queued_task() -> None:
    o = core()
    o.submit([make("a"), make("b")], T0)
    o.set_priority("b", Priority.CRITICAL, T0)
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["b"]


def test_queue_timeout_times_out_a_task_no_host_started() -> None:
    o = core()
    o.submit([make("a", queue_timeout_seconds=5.0, agent_type="nobody-serves-this")], T0)
    assert o.next_wakeup() == T0 + 5.0
    o.tick(T0 + 5.0)
    rec = o.tasks["a"]
    assert rec.status == TaskStatus.TIMED_OUT and rec.error_kind == "queue_timeout"


def test_a_waiting_parent_lends_its_slot_to_its_children() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("parent")], T0)
    o.dispatch(T0)
    o.on_started("h1", "parent", 1, "w0", T0)
    o.submit([make("child", parent_id="parent", root_id="parent")], T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["parent"]  # the only slot is busy
    assert o.lend_slot("parent", 1, True)
    o.dispatch(T0)
    d = o.take()
    assert [r.id for _, r in d.assignments] == ["child"]
    assert d.slots_lent == [("h1", "parent", 1, True)]
    o.on_result("h1", ok("child"), T0)
    assert o.lend_slot("parent", 1, False)
    assert o.take().slots_lent == [("h1", "parent", 1, False)]
    assert o.hosts["h1"].free_slots == 0
    assert not o.lend_slot("parent", 7, True)  # not the current lease


def test_attempts_are_recorded_with_host_agent_and_error() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("a", max_retries=1)], T0)
    o.dispatch(T0)
    o.on_started("h1", "a", 1, "w0", T0 + 1)
    o.on_result("h1", failed("a"), T0 + 2)
    d = o.take()
    first = d.attempts[("a", 1)]
    assert (first.host_id, first.agent_id, first.status, first.error_kind) == (
        "h1",
        "w0",
        TaskStatus.FAILED,
        "exception",
    )
    assert first.dispatched_at == T0 and first.started_at == T0 + 1 and first.finished_at == T0 + 2


def test_spawned_children_run_depth_first_within_their_priority() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("parent"), make("queued-before"), make("urgent", priority=Priority.CRITICAL)], T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["urgent"]
    o.on_result("h1", ok("urgent"), T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["parent"]
    o.on_started("h1", "parent", 1, "w0", T0)
    o.submit([make(c, parent_id="parent", root_id="parent") for c in ("c1", "c2")], T0)
    o.lend_slot("parent", 1, True)
    o.dispatch(T0)
    # The newest spawned child first, ahead of older FIFO work of the same level.
    assert [t for _, t, _ in assigned(o)] == ["c2"]
    o.on_result("h1", ok("c2"), T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["c1"]
    o.on_result("h1", ok("c1"), T0)
    o.lend_slot("parent", 1, False)
    o.on_result("h1", ok("parent"), T0)
    o.dispatch(T0)
    assert [t for _, t, _ in assigned(o)] == ["queued-before"]
