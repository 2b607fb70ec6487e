"""Purging finished task trees from the core: all or none, only finished trees."""

from __future__ import annotations

import pytest
from maos.controlplane.core import TaskStatus
from maos.errors import FailedPrecondition

from tests.unit.controlplane.test_orchestrator import T0, core, make, ok


def test_forget_trees_drops_every_task_of_finished_trees_and_nothing_else() -> None:
    o = core()
    o.host_connected("h1", 4, ["echo"], [], T0)
    o.submit([make("r", group=True), make("a", root_id="r", parent_id="r"), make("other")], T0)
    o.dispatch(T0)
    o.take()
    o.on_result("h1", ok("a"), T0 + 1)
    o.on_result("h1", ok("other"), T0 + 1)
    assert o.tasks["r"].status == TaskStatus.COMPLETED

    forgotten = o.forget_trees(["r"])

    assert sorted(rec.id for rec in forgotten) == ["a", "r"]
    assert set(o.tasks) == {"other"}


def test_a_tree_with_an_unfinished_task_is_refused_and_nothing_is_forgotten() -> None:
    o = core()
    o.submit([make("done"), make("r", group=True), make("a", root_id="r", parent_id="r")], T0)
    o.cancel("done", "", T0)

    with pytest.raises(FailedPrecondition, match=r"task tree r is not finished: task r is running"):
        o.forget_trees(["done", "r"])

    assert set(o.tasks) == {"done", "r", "a"}


def test_a_cancelled_task_whose_agent_still_holds_the_lease_is_refused() -> None:
    o = core()
    o.host_connected("h1", 1, ["echo"], [], T0)
    o.submit([make("t")], T0)
    o.dispatch(T0)
    o.cancel("t", "stop", T0)
    assert o.tasks["t"].final

    with pytest.raises(FailedPrecondition, match="still being stopped"):
        o.forget_trees(["t"])

    o.on_result("h1", ok("t"), T0 + 1)  # the host reports back: the lease ends
    assert [rec.id for rec in o.forget_trees(["t"])] == ["t"]
