"""Messages through the real control plane: a SIGKILL loses nothing acknowledged, agents vote."""

from __future__ import annotations

import threading
import time

from maos.client import Client
from maos.errors import MaosError
from maos.v1 import common_pb2, tasks_pb2

from tests.integration.conftest import Cluster
from tests.support.api import result_of


def test_sigkill_with_messages_in_flight_loses_nothing_acknowledged(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    cp = c.start_controlplane()
    c.add_host(workers=1)
    receiver = c.api.submit("a long-lived receiver", "sleeper", {"seconds": 60})
    acknowledged: list[str] = []
    stop = threading.Event()

    def send_until_killed() -> None:
        with Client(cp.endpoint, timeout=2) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                try:
                    reply = client.messages.send(receiver.id, {"n": i})
                except MaosError:
                    return  # the control plane died under us: this send was never acknowledged
                acknowledged.extend(reply.message_ids)

    sender = threading.Thread(target=send_until_killed)
    sender.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 300:
        assert time.monotonic() < deadline, c.logs()
        time.sleep(0.01)
    port = cp.endpoint.rpartition(":")[2]
    cp.kill()
    sender.join(10)
    stop.set()
    c.start_controlplane(listen=f"127.0.0.1:{port}")
    received: set[str] = set()
    with Client(c.endpoint) as client:
        while True:
            batch = client.messages.receive(f"task:{receiver.id}", max=1000, wait=0.5)
            if not batch:
                break
            received.update(m.id for m in batch)
            client.messages.ack(f"task:{receiver.id}", [m.id for m in batch])
    assert set(acknowledged) <= received, f"{len(set(acknowledged) - received)} acknowledged messages lost"


def test_agents_of_a_tree_vote_and_agree(fresh_cluster: Cluster) -> None:
    c = fresh_cluster
    c.start_controlplane()
    c.add_host(workers=2)
    nodes = [
        tasks_pb2.WorkflowNode(
            key=f"voter-{choice}",
            spec=common_pb2.TaskSpec(
                description="vote",
                agent_type="voter",
                input=common_pb2.Payload(
                    data=f'{{"topic": "plan", "choice": "{choice}", "quorum": 2}}'.encode(),
                    content_type="application/json",
                ),
            ),
        )
        for choice in ("alpha", "beta")
    ]
    reply = c.api.tasks.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(root=common_pb2.TaskSpec(description="decide"), nodes=nodes), timeout=10
    )
    root = c.api.wait_one(reply.root.id, timeout=90)
    assert root.status == common_pb2.TASK_STATUS_COMPLETED, (root.error, c.logs())
    outcomes = [result_of(c.api.get(task_id)) for task_id in reply.task_ids.values()]
    assert outcomes[0] == outcomes[1]  # everyone receives the same decision
    assert outcomes[0] == {"value": "alpha", "voters": 2}  # a 1-1 tie goes to the smallest JSON value
