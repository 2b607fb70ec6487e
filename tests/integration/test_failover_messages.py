"""Messages and shared state follow a failover: two real control planes on one PostgreSQL
schema; messages to a running task's mailbox and state keys go through the leader, the
leader is SIGKILLed, and the new leader answers with every acknowledged one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import pytest
import redis
from maos.client import Client
from maos.errors import MaosError
from maos.testing import Daemon, start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2

from tests.integration.conftest import TEST_AGENTS
from tests.integration.store.pg import fresh_schema_sync, schema_url
from tests.support.api import RawApi

RUNNING = common_pb2.TASK_STATUS_RUNNING
REDIS_URL = os.environ.get("MAOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _generation() -> int:
    """The Redis state cache's last generation number (0: none yet)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.get("maos:state:generation") or 0)
    finally:
        client.close()


def _cached_since(generation: int) -> int:
    """Entries of global keys k/... cached under generations newer than `generation`."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = [n.decode() for n in client.scan_iter(match="maos:state:g*:{global}:k/*", count=1000)]
    finally:
        client.close()
    return sum(1 for n in names if int(n.removeprefix("maos:state:g").split(":", 1)[0]) > generation)


def _code(api: RawApi, task_id: str) -> grpc.StatusCode:
    try:
        api.get(task_id)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _serving(endpoint: str, task_id: str, deadline: float) -> None:
    api = RawApi(endpoint)
    try:
        while (code := _code(api, task_id)) is not grpc.StatusCode.OK:
            assert code is grpc.StatusCode.UNAVAILABLE, code
            assert time.monotonic() < deadline, "the standby never took over"
            time.sleep(0.05)
    finally:
        api.close()


@pytest.mark.slow
@pytest.mark.parametrize("state_kind", ["postgresql", "redis-cache"])
def test_messages_and_state_survive_a_sigkill_of_the_leader(tmp_path: Path, state_kind: str) -> None:
    """With `--state redis://...` too: the cache is only ever a copy, and the new leader reads none
    of what the old one cached."""
    daemons: list[Daemon] = []
    with fresh_schema_sync() as schema:
        args = ["--store", schema_url(schema), "--store-pool-size", "2", "--heartbeat-interval", "0.5"]
        if state_kind == "redis-cache":
            args += ["--state", REDIS_URL]
        generation = _generation()
        try:
            leader = start_controlplane(tmp_path / "cp1", agents=TEST_AGENTS, extra=args)
            daemons.append(leader)
            standby = start_controlplane(tmp_path / "cp2", agents=TEST_AGENTS, extra=args)
            daemons.append(standby)
            # The host knows both control planes: it follows the leadership.
            both = f"{leader.endpoint},{standby.endpoint}"
            # Short graces: stopping it at the end kills the sleeping worker instead of orphaning it.
            graces = ["--shutdown-grace", "0.5", "--kill-grace", "0.5"]
            host = start_agenthost(both, tmp_path / "hosts", workers=1, agents=TEST_AGENTS, host_id="h1", extra=graces)
            daemons.append(host)
            wait_for_hosts(leader.endpoint, 1)

            # A long-running task whose agent never reads its mailbox: messages wait there.
            api = RawApi(leader.endpoint)
            task = api.submit("long runner", agent_type="sleeper", data={"seconds": 300})
            deadline = time.monotonic() + 30
            while api.get(task.id).status != RUNNING:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            tree = f"tree:{task.root_id or task.id}"
            api.close()

            with Client(leader.endpoint) as client:
                # Sent: one batch (one commit) and single sends; every answer is an acknowledgement.
                batch_ids = client.messages.send_many(
                    {"to_task_id": task.id, "payload": {"n": i}, "priority": "low"} for i in range(300)
                )
                single_ids = [
                    client.messages.send(task.id, {"n": 1000 + i}, priority="high").message_ids[0] for i in range(40)
                ]
                # Read and acknowledged before the crash: these must not come back.
                taken = client.messages.receive(f"task:{task.id}", max=10, lease=300)
                assert [m.id for m in taken] == single_ids[:10]  # high priority first
                assert client.messages.ack(f"task:{task.id}", [m.id for m in taken[:5]]) == 5
                gone = {m.id for m in taken[:5]}

                state = client.state
                for i in range(100):
                    state.put(f"k/{i:03d}", {"i": i}, namespace="global")
                counter = None
                for n in range(1, 21):
                    counter = state.cas("counter", n, counter.version if counter is not None else 0, namespace=tree)
                state.put("doomed", True, namespace="global")
                assert state.delete("doomed", namespace="global")
                before = state.get("k/099", namespace="global")
                assert before is not None
                if state_kind == "redis-cache":  # the leader did cache what it wrote (it is fenced, so it may)
                    assert _cached_since(generation) >= 100

            # The leader dies; the host moves to the new leader.
            leader.kill()
            _serving(standby.endpoint, task.id, time.monotonic() + 60)

            with Client(standby.endpoint) as client:
                # Every message acknowledged to its sender and not acknowledged by a reader is there;
                # the leased-but-unacknowledged ones are ready again (leases do not survive).
                got = client.messages.receive(f"task:{task.id}", max=1000)
                expected = [i for i in single_ids if i not in gone] + batch_ids
                assert [m.id for m in got] == expected  # priority order, then the order they were accepted in

                state = client.state
                keys = [e.key for e in state.list("k/", namespace="global", page_size=40)]
                assert keys == [f"k/{i:03d}" for i in range(100)]
                value = state.get("k/042", namespace="global")
                assert value is not None and value.value == {"i": 42}
                final = state.get("counter", namespace=tree)
                assert final is not None and (final.value, final.version) == (20, 20)
                assert state.get("doomed", namespace="global") is None
                # The new leader writes on: revisions continue where the old one stopped.
                again = state.put("k/099", "new leader", namespace="global")
                assert again.version == 2 and again.revision > before.revision
                assert client.messages.send(task.id, "after failover").recipients == 1
        except (AssertionError, MaosError):
            for daemon in daemons:
                print(daemon.log_text()[-3000:])  # shown by pytest on failure
            raise
        finally:
            for daemon in reversed(daemons):
                daemon.stop()
