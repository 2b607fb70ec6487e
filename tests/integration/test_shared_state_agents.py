"""Agents in real worker processes share state through the control plane, on both backends."""

from __future__ import annotations

import uuid

import pytest
from maos.client import Client
from maos.v1 import common_pb2, tasks_pb2

from tests.integration.conftest import Cluster

AGENTS = 8
TIMES = 150  # 8 x 1,000 runs at the service level (tests/integration/state); real agents keep it quick


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_cas_race_from_eight_agents_counts_exactly(fresh_cluster: Cluster, backend: str) -> None:
    c = fresh_cluster
    state = "sqlite" if backend == "sqlite" else f"redis://127.0.0.1:6379/{uuid.uuid4().int % 8 + 8}"
    c.start_controlplane(extra=["--state", state])
    c.add_host(workers=2)
    nodes = [
        tasks_pb2.WorkflowNode(
            key=f"agent-{i}",
            spec=common_pb2.TaskSpec(
                description=f"increment {TIMES} times",
                agent_type="counter",
                input=common_pb2.Payload(data=f'{{"times": {TIMES}}}'.encode(), content_type="application/json"),
            ),
        )
        for i in range(AGENTS)
    ]
    reply = c.api.tasks.SubmitWorkflow(
        tasks_pb2.SubmitWorkflowRequest(root=common_pb2.TaskSpec(description="race"), nodes=nodes), timeout=10
    )
    root = c.api.wait_one(reply.root.id, timeout=120)
    assert root.status == common_pb2.TASK_STATUS_COMPLETED, (root.error, c.logs())
    with Client(c.endpoint) as client:
        counter = client.state.get("counter", namespace=f"tree:{reply.root.id}")
    assert counter is not None
    assert counter.value == AGENTS * TIMES and counter.version == AGENTS * TIMES
