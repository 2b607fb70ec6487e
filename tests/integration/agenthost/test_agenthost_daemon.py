"""The agent host daemon over a real gRPC stream, against a small scripted fake control plane.

Covers the protocol: Register (with leases), Registered, assignments in,
TaskStarted / TaskResult / Heartbeat up, ResultAck, resending unacknowledged
results after a reconnect, cancel, drain and shutdown.
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import orjson
from maos.agenthost import AgentHost
from maos.v1 import common_pb2, hosts_pb2, hosts_pb2_grpc
from maos.wire import json_payload

from tests.integration.agenthost.agenthost_support import FakeControlPlane, all_profiles, assignment, config


async def test_register_run_report_heartbeat(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    async with AgentHost(config(endpoint), profiles=all_profiles()) as host:
        await cp.wait_until(lambda: bool(cp.registers))
        reg = cp.registers[0]
        assert reg.host_id == "host-under-test"
        assert reg.slots == 1
        assert reg.cpu_count >= 1
        assert reg.memory_bytes > 0
        assert {"echo", "analyst", "coordinator", "shell"} <= {t.name for t in reg.agent_types}
        assert {t.runner for t in reg.agent_types if t.name == "shell"} == {"command"}
        assert list(reg.running) == []

        dep = hosts_pb2.DependencyResult(
            task_id="d0", key="k", status=common_pb2.TASK_STATUS_COMPLETED, result=json_payload({"v": 2})
        )
        cp.send(assignment=assignment("t1", "echo", {"x": [1, "two"]}))
        cp.send(assignment=assignment("t2", "context_view", "in", dependencies=[dep], labels={"l": "v"}))
        await cp.wait_until(lambda: cp.result("t1") is not None and cp.result("t2") is not None)
        r1 = cp.result("t1")
        assert r1 is not None
        assert r1.outcome == hosts_pb2.OUTCOME_SUCCEEDED
        assert r1.result.content_type == "application/json"
        assert orjson.loads(r1.result.data) == {"x": [1, "two"]}
        assert r1.agent_id == "host-under-test-w0"
        assert r1.duration_seconds > 0
        r2 = cp.result("t2")
        assert r2 is not None
        view = orjson.loads(r2.result.data)
        assert view["dependencies"] == [
            {"task_id": "d0", "key": "k", "status": "COMPLETED", "result": {"v": 2}, "description": ""}
        ]
        assert view["labels"] == {"l": "v"}
        assert view["endpoint"] == endpoint
        started = [s.task_id for s in cp.of_kind("started")]
        assert started == ["t1", "t2"]

        # The first heartbeat goes out on registration; later ones reflect the finished tasks.
        await cp.wait_until(lambda: any(h.agents[0].tasks_completed == 2 for h in cp.of_kind("heartbeat")))
        hb = cp.of_kind("heartbeat")[-1]
        assert hb.free_slots == 1
        (agent,) = hb.agents
        assert agent.id == "host-under-test-w0"
        assert agent.pid > 0
        assert agent.status == hosts_pb2.AGENT_STATUS_IDLE
        assert agent.tasks_completed == 2
        assert agent.started_at.seconds > 0
        assert host.connected


async def test_unacked_results_are_resent_after_a_reconnect(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    cp.auto_ack = False
    async with AgentHost(config(endpoint), profiles=all_profiles()):
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("r1", "echo", 1))
        await cp.wait_until(lambda: cp.result("r1") is not None)
        cp.drop()
        # A new session: Register again, then the unacknowledged result once more.
        await cp.wait_until(lambda: len(cp.registers) == 2 and len([r for r in cp.of_kind("result")]) == 2)
        assert [r.task_id for r in cp.of_kind("result")] == ["r1", "r1"]
        # Acknowledge it; after the next reconnect nothing is resent.
        cp.send(result_ack=hosts_pb2.ResultAck(leases=[hosts_pb2.Lease(task_id="r1", attempt=1)]))
        await asyncio.sleep(0.2)
        cp.drop()
        await cp.wait_until(lambda: len(cp.registers) == 3)
        await asyncio.sleep(0.3)
        assert len(cp.of_kind("result")) == 2


async def test_running_tasks_survive_a_disconnect(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    async with AgentHost(config(endpoint), profiles=all_profiles()):
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("s1", "sleeper", 0.8))
        await cp.wait_until(lambda: bool(cp.of_kind("started")))
        cp.drop()
        await cp.wait_until(lambda: len(cp.registers) == 2)
        # Still held (running) when it registered again.
        assert [(lease.task_id, lease.attempt) for lease in cp.registers[1].running] == [("s1", 1)]
        await cp.wait_until(lambda: cp.result("s1") is not None)
        result = cp.result("s1")
        assert result is not None
        assert result.outcome == hosts_pb2.OUTCOME_SUCCEEDED


async def test_cancel_and_drain(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    async with AgentHost(config(endpoint), profiles=all_profiles()) as host:
        await cp.wait_until(lambda: bool(cp.registers))
        cp.send(assignment=assignment("w1", "waiter"))
        await cp.wait_until(lambda: bool(cp.of_kind("started")))
        cp.send(cancel=hosts_pb2.CancelAssignment(task_id="w1", attempt=1, reason="user asked"))
        cp.send(cancel=hosts_pb2.CancelAssignment(task_id="unknown", attempt=1))
        await cp.wait_until(lambda: cp.result("w1") is not None)
        result = cp.result("w1")
        assert result is not None
        assert result.outcome == hosts_pb2.OUTCOME_CANCELLED
        assert result.error.message == "user asked"

        cp.send(drain=hosts_pb2.Drain(reason="maintenance"))
        await cp.wait_until(lambda: host.draining)
        n = len(cp.of_kind("heartbeat"))
        await cp.wait_until(lambda: len(cp.of_kind("heartbeat")) > n)
        hb = cp.of_kind("heartbeat")[-1]
        assert hb.free_slots == 0
        assert hb.agents[0].status == hosts_pb2.AGENT_STATUS_DRAINING


async def test_shutdown_reports_unfinished_work_then_closes(fake_cp: tuple[FakeControlPlane, str]) -> None:
    cp, endpoint = fake_cp
    host = AgentHost(config(endpoint, shutdown_grace_seconds=0.3), profiles=all_profiles())
    await host.start()
    await cp.wait_until(lambda: bool(cp.registers))
    cp.send(assignment=assignment("long", "sleeper", 30, timeout_seconds=60))
    await cp.wait_until(lambda: bool(cp.of_kind("started")))
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.gather(host.shutdown(), host.shutdown())  # idempotent
    assert loop.time() - began < 4.0
    result = cp.result("long")
    assert result is not None
    assert result.outcome == hosts_pb2.OUTCOME_CANCELLED
    assert result.error.kind == "host_shutdown"
    assert not host.connected
    await host.shutdown()


async def test_host_keeps_retrying_until_the_control_plane_appears() -> None:
    # Reserve a port, start the host against it with nothing listening, then start the server there.
    server = grpc.aio.server()
    cp = FakeControlPlane()
    hosts_pb2_grpc.add_HostServiceServicer_to_server(cp, server)
    port = server.add_insecure_port("127.0.0.1:0")
    endpoint = f"127.0.0.1:{port}"
    async with AgentHost(config(endpoint), profiles=all_profiles()) as host:
        await asyncio.sleep(0.3)
        assert not host.connected
        await server.start()
        try:
            await cp.wait_until(lambda: bool(cp.registers))
        finally:
            await server.stop(grace=None)


async def test_assignments_during_shutdown_are_left_to_the_control_plane(
    fake_cp: tuple[FakeControlPlane, str],
) -> None:
    cp, endpoint = fake_cp
    host = AgentHost(config(endpoint, shutdown_grace_seconds=2.0), profiles=all_profiles())
    await host.start()
    await cp.wait_until(lambda: bool(cp.registers))
    cp.send(assignment=assignment("busy", "sleeper", 0.5))
    await cp.wait_until(lambda: bool(cp.of_kind("started")))
    stopping = asyncio.create_task(host.shutdown())
    await asyncio.sleep(0.1)
    cp.send(assignment=assignment("late", "echo", 1))
    await stopping
    # The running task finished inside the grace; the late one was neither run nor given back
    # (a CANCELLED result would make the control plane requeue it, maybe straight back to this host).
    busy = cp.result("busy")
    assert busy is not None
    assert busy.outcome == hosts_pb2.OUTCOME_SUCCEEDED
    assert cp.result("late") is None
    assert [s.task_id for s in cp.of_kind("started")] == ["busy"]
