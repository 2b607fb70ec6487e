"""Agents that spawn children and wait on them, through a real host, a real gRPC stream and the SDK.

The fake control plane (agenthost_support.FakeTasks) lends a waiting caller's
slot exactly when the SDK's WaitTasks carries the caller metadata, so these
tests show the host's side end to end: the task env in the worker, the SDK
metadata, SlotLent on the stream, extra workers, and their retirement.
"""

from __future__ import annotations

import asyncio

import orjson
from maos.agenthost import AgentHost
from maos.v1 import hosts_pb2

from tests.integration.agenthost.agenthost_support import REPO_ROOT, FakeControlPlane, all_profiles, assignment, config

# The recursive agent lives in the cluster tests' module (tests.integration.agent_functions).
PYTHON_PATH = (str(REPO_ROOT / "tests" / "integration" / "agenthost"), str(REPO_ROOT))


async def test_recursive_spawn_on_one_worker_does_not_deadlock(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    assert cp.tasks is not None
    async with AgentHost(config(endpoint, workers=1, python_path=PYTHON_PATH), profiles=all_profiles()) as host:
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("root", "recursive", {"depth": 3}))
        await cp.wait_until(lambda: cp.result("root") is not None, within=60)
        result = cp.result("root")
        assert result is not None
        assert result.outcome == hosts_pb2.OUTCOME_SUCCEEDED, (result.error, result.log)
        assert orjson.loads(result.result.data) == 8

        # 14 children, each spawned by its parent, all in the root's tree.
        specs = cp.tasks.specs
        assert len(specs) == 14
        parents = {spec.parent_id for spec in specs.values()}
        assert "root" in parents
        assert parents <= {"root", *specs}
        # Every wait came from an agent that named itself (env -> SDK caller metadata) and waited on
        # its own children; each lent its slot for the wait and took it back.
        waiters = {task_id for _, task_id, _ in cp.tasks.waits}
        assert waiters == parents
        for ids, task_id, attempt in cp.tasks.waits:
            assert attempt == "1"
            assert {specs[i].parent_id for i in ids} == {task_id}
        lent = [s for s in cp.sent_items("slot_lent")]
        assert sorted(s.task_id for s in lent if s.lent) == sorted(s.task_id for s in lent if not s.lent)
        assert len([s for s in lent if s.lent]) == 7
        # Blocked parents needed extra workers; once all is done they are stopped again.
        assert any(r.agent_id.startswith("host-under-test-x") for r in cp.of_kind("result"))
        await cp.wait_until(lambda: len(host.pool.workers()) == 1, within=10)
        assert host.pool.capacity == 1


async def test_a_failed_child_fails_the_wait_with_its_id_and_error(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    async with AgentHost(config(endpoint, workers=1), profiles=all_profiles()):
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("p", "spawn_failing_child"))
        await cp.wait_until(lambda: cp.result("p") is not None, within=30)
        result = cp.result("p")
        assert result is not None
        assert result.outcome == hosts_pb2.OUTCOME_FAILED
        assert result.error.message == "FailedPrecondition: child task c1 failed: ValueError: boom on 3 (exception)"


async def test_heartbeat_free_slots_count_lent_slots(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    async with AgentHost(config(endpoint, workers=1), profiles=all_profiles()) as host:
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("p", "cooperative"))
        await cp.wait_until(lambda: bool(cp.of_kind("started")))
        cp.send(slot_lent=hosts_pb2.SlotLent(task_id="p", attempt=1, lent=True))
        cp.send(slot_lent=hosts_pb2.SlotLent(task_id="unknown", attempt=1, lent=True))  # ignored
        await cp.wait_until(lambda: host.pool.capacity == 2)
        n = len(cp.of_kind("heartbeat"))
        await cp.wait_until(lambda: len(cp.of_kind("heartbeat")) > n)
        assert cp.of_kind("heartbeat")[-1].free_slots == 1
        cp.send(slot_lent=hosts_pb2.SlotLent(task_id="p", attempt=1, lent=False))
        await cp.wait_until(lambda: host.pool.capacity == 1)
        n = len(cp.of_kind("heartbeat"))
        await cp.wait_until(lambda: len(cp.of_kind("heartbeat")) > n)
        assert cp.of_kind("heartbeat")[-1].free_slots == 0
        cp.send(cancel=hosts_pb2.CancelAssignment(task_id="p", attempt=1))
        await cp.wait_until(lambda: cp.result("p") is not None)


async def test_a_command_agent_spawns_and_waits_with_maosctl(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    assert cp.tasks is not None
    async with AgentHost(config(endpoint, workers=1), profiles=all_profiles()):
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("cmd", "maosctl_parent"))
        await cp.wait_until(lambda: cp.result("cmd") is not None, within=60)
        result = cp.result("cmd")
        assert result is not None
        assert result.outcome == hosts_pb2.OUTCOME_SUCCEEDED, (result.error, result.log)
        assert orjson.loads(result.result.data) == {"x": 7}
        assert cp.tasks.specs["c1"].parent_id == "cmd"
        assert cp.tasks.waits == [(("c1",), "cmd", "1")]  # `maosctl task wait` named its caller


async def test_async_agents_spawn_and_wait(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    assert cp.tasks is not None
    async with AgentHost(config(endpoint, workers=1), profiles=all_profiles()):
        await cp.wait_until(lambda: bool(cp.registers))
        for i in range(2):  # the second task reuses the worker's client on the same loop
            cp.send(assignment=assignment(f"a{i}", "async_spawner", i))
            await cp.wait_until(lambda i=i: cp.result(f"a{i}") is not None, within=30)  # type: ignore[misc]
            result = cp.result(f"a{i}")
            assert result is not None
            assert result.outcome == hosts_pb2.OUTCOME_SUCCEEDED, (result.error, result.log)
            assert orjson.loads(result.result.data) == [{"double": 2 * i}, {"double": 2 * i + 2}]
        await asyncio.sleep(0)
        assert [(ids, caller) for ids, caller, _ in cp.tasks.waits] == [(("c1", "c2"), "a0"), (("c3", "c4"), "a1")]


async def test_cancelling_a_waiting_parent_ends_its_wait_at_once(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    async with AgentHost(config(endpoint, workers=1, kill_grace_seconds=5.0), profiles=all_profiles()) as host:
        await cp.wait_until(lambda: bool(cp.registers))
        (worker,) = host.pool.workers()
        cp.send(assignment=assignment("p", "waits_on_a_slow_child"))
        await cp.wait_until(lambda: any(s.task_id == "c1" for s in cp.of_kind("started")))
        cp.send(cancel=hosts_pb2.CancelAssignment(task_id="p", attempt=1, reason="stop"))
        started = asyncio.get_running_loop().time()
        await cp.wait_until(lambda: cp.result("p") is not None)
        result = cp.result("p")
        assert result is not None
        assert result.outcome == hosts_pb2.OUTCOME_CANCELLED
        # Well within the 5 s kill grace: the blocked gRPC call was cancelled, the worker was not killed.
        assert asyncio.get_running_loop().time() - started < 2.0
        assert host.pool.workers()[0].pid == worker.pid
        # The lent slot went back when the wait ended; the child still runs (cancelling the subtree is
        # the control plane's job).
        assert [s.lent for s in cp.sent_items("slot_lent")] == [True, False]
        assert cp.result("c1") is None
