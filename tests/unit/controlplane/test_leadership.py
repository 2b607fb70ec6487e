"""The active/standby decisions, without PostgreSQL: observations in, actions out."""

from __future__ import annotations

from maos.controlplane._leadership import Action, Campaign, Role


def test_a_standby_waits_naming_the_leader_then_leads_when_it_wins() -> None:
    c = Campaign()
    assert c.refusal() is not None and "no leader" in c.refusal()  # type: ignore[operator]
    assert c.on_poll(False, 3, "10.0.0.1:7700") is Action.WAIT
    assert c.role is Role.STANDBY
    assert c.refusal() == "this control plane is a standby; the leader is 10.0.0.1:7700 (epoch 3)"
    assert c.on_poll(True, 4, "10.0.0.2:7700") is Action.LEAD
    assert (c.role, c.epoch, c.refusal()) == (Role.LEADER, 4, None)
    # Later polls (none are made while leading) change nothing.
    assert c.on_poll(False, 5, "elsewhere") is Action.WAIT and c.epoch == 4


def test_a_leader_that_loses_its_lock_connection_stops_serving_and_tries_to_retake_it() -> None:
    c = Campaign()
    c.on_poll(True, 1, "me")
    assert c.on_check(True) is Action.WAIT
    assert c.on_check(False, "connection reset") is Action.RETAKE
    assert c.role is Role.RECONNECTING and "connection reset" in c.reason
    assert "reconnecting" in (c.refusal() or "")
    # Further failures (the termination listener and the check loop both notice) start nothing twice.
    assert c.on_check(False) is Action.WAIT


def test_a_reconnecting_leader_resumes_only_at_its_own_epoch() -> None:
    c = Campaign()
    c.on_poll(True, 5, "me")
    c.on_check(False, "connection reset")
    # The lock is still held (our old session, until PostgreSQL ends it) and nobody took over: try again.
    assert c.on_retake(False, 5, "me") is Action.WAIT and c.role is Role.RECONNECTING
    assert c.on_retake(True, 5, "me") is Action.RESUME
    assert (c.role, c.epoch, c.refusal()) == (Role.LEADER, 5, None)
    assert c.history == [Role.LEADER, Role.RECONNECTING, Role.LEADER]


def test_a_reconnecting_leader_stops_once_when_another_took_over() -> None:
    c = Campaign()
    c.on_poll(True, 5, "me")
    c.on_check(False, "connection reset")
    assert c.on_retake(True, 6, "other:7700") is Action.STOP  # won the lock, but someone led in between
    assert c.role is Role.STOPPED and "other:7700" in c.reason and "lost the leadership lock" in c.reason
    assert "stopped leading" in (c.refusal() or "")
    assert c.on_check(False) is Action.WAIT
    assert c.on_deposed("epoch 7") is Action.WAIT
    assert c.history == [Role.LEADER, Role.RECONNECTING, Role.STOPPED]


def test_a_reconnecting_leader_backs_off_then_gives_up_at_the_limit() -> None:
    c = Campaign(poll_interval_seconds=0.5)
    c.on_poll(True, 1, "me")
    c.on_check(False, "connection refused")
    delays = [c.on_retake_error(down, 60.0) for down in (0.0, 1.0, 2.0, 3.0)]
    assert delays == [0.25, 0.5, 1.0, 1.0]
    assert c.role is Role.RECONNECTING
    assert c.on_retake_error(60.0, 60.0) is None
    assert c.history[-1] is Role.STOPPED and "unreachable after 60s" in c.reason


def test_a_failed_health_check_means_nothing_to_a_standby() -> None:
    c = Campaign()
    assert c.on_check(False) is Action.WAIT
    assert c.role is Role.STANDBY


def test_a_deposed_leader_stops_with_the_reason() -> None:
    c = Campaign()
    c.on_poll(True, 7, "me")
    assert c.on_deposed("leadership epoch 7 is stale, the leader is now other:7700") is Action.STOP
    assert "other:7700" in c.reason


def test_a_standby_backs_off_while_postgresql_is_unreachable_and_resets_on_an_answer() -> None:
    c = Campaign(poll_interval_seconds=0.5, max_backoff_seconds=5.0)
    delays = [c.on_poll_error() for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    c.on_poll(False, 1, "leader:1")
    assert c.errors == 0 and c.on_poll_error() == 1.0
