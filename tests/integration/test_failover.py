"""Active/standby on PostgreSQL: two real control planes on one schema; SIGKILL the leader
and the standby takes over, with every acknowledged task completing exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import grpc
import pytest
from maos.controlplane._leadership import LEASE_SECONDS
from maos.testing import ControlPlaneProcess, Daemon, start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2, hosts_pb2_grpc

from tests.integration.conftest import TEST_AGENTS
from tests.integration.store.pg import POSTGRES_URL, fresh_schema_sync, schema_url
from tests.support.api import RawApi

COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def _role(cp_dir: Path) -> str:
    return str(json.loads((cp_dir / "ready.json").read_text())["role"])


def _completions(schema: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            rows = await conn.fetch("SELECT task_id, COUNT(*) AS n FROM task_events WHERE status = 4 GROUP BY task_id")
        finally:
            await conn.close()
        return {r["task_id"]: int(r["n"]) for r in rows}

    return asyncio.run(run())


def _refusal(endpoint: str) -> grpc.RpcError:
    api = RawApi(endpoint)
    try:
        api.submit("refused by a standby")
    except grpc.RpcError as exc:
        return exc
    finally:
        api.close()
    raise AssertionError(f"{endpoint} accepted a task though it is a standby")


def _answer(api: RawApi, task_id: str) -> grpc.StatusCode:
    try:
        api.get(task_id)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.slow
def test_sigkill_the_leader_and_the_standby_takes_over(tmp_path: Path) -> None:
    daemons: list[Daemon] = []
    with fresh_schema_sync() as schema:
        args = ["--store", schema_url(schema), "--store-pool-size", "2", "--heartbeat-interval", "0.5"]

        def control_plane(name: str) -> ControlPlaneProcess:
            cp = start_controlplane(tmp_path / name, agents=TEST_AGENTS, extra=args)
            daemons.append(cp)
            return cp

        try:
            leader = control_plane("cp1")
            standby = control_plane("cp2")
            assert (_role(tmp_path / "cp1"), _role(tmp_path / "cp2")) == ("leader", "standby")

            # The standby refuses clients and hosts alike, naming the leader.
            refused = _refusal(standby.endpoint)
            assert refused.code() == grpc.StatusCode.UNAVAILABLE
            assert leader.endpoint in (refused.details() or "")
            with grpc.insecure_channel(standby.endpoint) as channel:
                stream = hosts_pb2_grpc.HostServiceStub(channel).Connect(iter(()), timeout=10)
                with pytest.raises(grpc.RpcError) as caught:
                    next(stream)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

            host = start_agenthost(leader.endpoint, tmp_path / "hosts", workers=2, agents=TEST_AGENTS, host_id="h1")
            daemons.append(host)
            wait_for_hosts(leader.endpoint, 1)
            api = RawApi(leader.endpoint)
            specs = [
                common_pb2.TaskSpec(
                    description=f"task {i}", agent_type="sleeper", input=common_pb2.Payload(data=b'{"seconds": 0.02}')
                )
                for i in range(200)
            ]
            ids = [t.id for t in api.submit_many(specs)]  # acknowledged: durable in PostgreSQL
            deadline = time.monotonic() + 30
            while sum(api.get(i).status == COMPLETED for i in ids[::20]) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            api.close()

            # The leader's machine dies: the control plane and its host with it.
            leader.kill()
            killed_at = time.monotonic()
            host.kill()
            new_api = RawApi(standby.endpoint)
            while (code := _answer(new_api, ids[0])) is not grpc.StatusCode.OK:
                assert code is grpc.StatusCode.UNAVAILABLE, code
                assert time.monotonic() - killed_at < 60, "the standby never took over"
                time.sleep(0.02)
            took_over = time.monotonic() - killed_at
            print(f"\nfailover: the standby served {took_over:.2f}s after the leader's SIGKILL")
            # The dead leader's lock went with its connection, not by the lease running out.
            assert took_over < LEASE_SECONDS
            while _role(tmp_path / "cp2") != "leader":  # rewritten just after the gate opens
                assert time.monotonic() - killed_at < 60
                time.sleep(0.02)

            daemons.append(
                start_agenthost(standby.endpoint, tmp_path / "hosts", workers=2, agents=TEST_AGENTS, host_id="h2")
            )
            tasks = new_api.wait(ids, timeout=120)
            assert all(t.status == COMPLETED for t in tasks)
            new_api.close()
            completions = _completions(schema)
            assert set(completions) == set(ids)
            assert set(completions.values()) == {1}  # every result recorded once
        finally:
            for daemon in reversed(daemons):
                daemon.stop()


def _terminate_lock_session(application_name: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            return int(
                await conn.fetchval(
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                    application_name,
                )
            )
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.mark.slow
def test_a_leader_that_loses_its_lock_stops_and_the_standby_leads(tmp_path: Path) -> None:
    daemons: list[Daemon] = []
    with fresh_schema_sync() as schema:
        base = ["--store", schema_url(schema), "--store-pool-size", "1"]
        try:
            first = start_controlplane(tmp_path / "cp1", extra=[*base, "--store-application-name", f"{schema}-1"])
            daemons.append(first)
            second = start_controlplane(tmp_path / "cp2", extra=[*base, "--store-application-name", f"{schema}-2"])
            daemons.append(second)
            assert _role(tmp_path / "cp2") == "standby"
            # The leader's lock connection dies (a network cut, an operator's pg_terminate_backend).
            assert _terminate_lock_session(f"{schema}-1-leader") == 1
            first.process.wait(timeout=30)
            assert first.exit_code() == 1  # non-zero: its supervisor restarts it as a standby
            assert "lost the leadership lock" in first.log_text()
            api = RawApi(second.endpoint)
            deadline = time.monotonic() + 30
            while _answer_submit(api) is not grpc.StatusCode.OK:
                assert time.monotonic() < deadline, second.log_text()[-2000:]
                time.sleep(0.05)
            api.close()
            while _role(tmp_path / "cp2") != "leader":  # rewritten just after the gate opens
                assert time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            for daemon in reversed(daemons):
                daemon.stop()


def _answer_submit(api: RawApi) -> grpc.StatusCode:
    try:
        api.submit("after the takeover")
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.slow
def test_hosts_and_clients_with_both_endpoints_follow_the_leader_through_a_sigkill(tmp_path: Path) -> None:
    """The issue's run: 2,000 tasks on PostgreSQL, the leader SIGKILLed midway; the host and the
    client, both given both endpoints, move to the new leader by themselves, and every task
    completes with its result recorded once."""
    from maos.client import AsyncClient, Client
    from maos.errors import Unavailable

    daemons: list[Daemon] = []
    with fresh_schema_sync() as schema:
        args = ["--store", schema_url(schema), "--store-pool-size", "2", "--heartbeat-interval", "0.5"]
        try:
            first = start_controlplane(tmp_path / "cp1", agents=TEST_AGENTS, extra=args)
            daemons.append(first)
            second = start_controlplane(tmp_path / "cp2", agents=TEST_AGENTS, extra=args)
            daemons.append(second)
            both = f"{first.endpoint},{second.endpoint}"
            daemons.append(start_agenthost(both, tmp_path / "hosts", workers=2, agents=TEST_AGENTS, host_id="h"))
            wait_for_hosts(first.endpoint, 1)
            client = Client(both, timeout=30)
            ids = [
                t.id for t in client.submit_tasks([{"description": f"n{i}", "agent_type": "echo"} for i in range(2000)])
            ]
            while sum(client.get_task(i).status == COMPLETED for i in ids[:200:20]) < 3:
                time.sleep(0.01)
            first.kill()
            killed_at = time.monotonic()
            # The client's next call lands on the new leader (after its refusals while it was a standby).
            # A call cut mid-flight by the kill may or may not have arrived, so the client does not retry
            # it by itself: a user resends with an idempotency key, which makes the resend safe.
            late = None
            while late is None:
                try:
                    late = client.submit_task("after the failover", agent_type="echo", idempotency_key="late-1")
                except Unavailable:
                    assert time.monotonic() - killed_at < 30
                    time.sleep(0.05)
            finished = client.wait_tasks([late.id], timeout=60)
            resumed = time.monotonic() - killed_at
            print(f"\nfailover: a task submitted after the SIGKILL completed {resumed:.2f}s later")
            assert finished[0].status == COMPLETED
            assert resumed < 5.0 * 3  # the issue asks for 5 s on a quiet machine; this one is shared
            tasks = client.wait_tasks(ids, timeout=120)
            assert all(t.status == COMPLETED for t in tasks), {t.status for t in tasks}
            client.close()

            async def status_through_both() -> int:
                async with AsyncClient(both) as aclient:  # its first address is dead: the call moves on
                    return sum((await aclient.status()).tasks_by_status.values())

            assert asyncio.run(status_through_both()) >= len(ids)
            completions = _completions(schema)
            assert set(ids) <= set(completions)
            assert set(completions.values()) == {1}  # every result recorded once
        finally:
            for daemon in reversed(daemons):
                daemon.stop()
