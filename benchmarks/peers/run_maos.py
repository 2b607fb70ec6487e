"""MAOS on the peer workloads: a real control plane and one agent host with N worker processes (maos.testing).

The workloads are Python agents (benchmarks/peers/maos_agents.py) declared in
an agent profiles file written for the run. Submission uses each call's batch
form as a MAOS client would: SubmitTasks for many tasks, one SubmitWorkflow
for the fan-out/fan-in, SubmitTask with wait_seconds for a round trip.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from maos.testing import start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2, tasks_pb2, tasks_pb2_grpc

from benchmarks.peers import common

AGENTS = """\
agent_types:
  peers-noop:
    description: The peer benchmark's no-op.
    runner: {python: "benchmarks.peers.maos_agents:noop"}
    timeout: 60
    batch_size: 64   # as the built-in echo: tiny tasks travel to a worker in batches
  peers-total:
    description: The peer benchmark's fan-in reducer.
    runner: {python: "benchmarks.peers.maos_agents:total"}
    timeout: 60
  peers-burn:
    description: The peer benchmark's CPU-bound function.
    runner: {python: "benchmarks.peers.maos_agents:burn"}
    timeout: 600
"""

SUBMIT_BATCH = 500
WAIT_BATCH = 5_000


class MaosCluster:
    """The workloads over the gRPC TaskService of a running control plane."""

    def __init__(self, endpoint: str) -> None:
        self._channel = grpc.insecure_channel(endpoint)
        self._stub = tasks_pb2_grpc.TaskServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def noop_many(self, n: int) -> list[int]:
        return self._run_many([("peers-noop", i) for i in range(n)])

    def noop_one(self, x: int) -> int:
        response = self._stub.SubmitTask(
            tasks_pb2.SubmitTaskRequest(spec=_spec("peers-noop", x), wait_seconds=common.TIMEOUT_S),
            timeout=common.TIMEOUT_S + 5,
        )
        if response.task.status != common_pb2.TASK_STATUS_COMPLETED:
            raise RuntimeError(f"round-trip task ended {common_pb2.TaskStatus.Name(response.task.status)}")
        return int(json.loads(response.task.result.data))

    def fan_in(self, width: int) -> int:
        keys = [f"noop-{i}" for i in range(width)]
        nodes = [tasks_pb2.WorkflowNode(key=key, spec=_spec("peers-noop", i)) for i, key in enumerate(keys)]
        reducer = _spec("peers-total", None)
        reducer.depends_on.extend(keys)
        nodes.append(tasks_pb2.WorkflowNode(key="total", spec=reducer))
        request = tasks_pb2.SubmitWorkflowRequest(root=common_pb2.TaskSpec(description="peers fan-in"), nodes=nodes)
        response = self._stub.SubmitWorkflow(request, timeout=common.TIMEOUT_S)
        return self._results([response.task_ids["total"]])[0]

    def cpu_many(self, tasks: int, iterations: int) -> list[int]:
        return self._run_many([("peers-burn", iterations)] * tasks)

    def _run_many(self, calls: list[tuple[str, int]]) -> list[int]:
        ids: list[str] = []
        for batch in common.chunks(calls, SUBMIT_BATCH):
            request = tasks_pb2.SubmitTasksRequest(specs=[_spec(agent, x) for agent, x in batch])
            ids += [t.id for t in self._stub.SubmitTasks(request, timeout=common.TIMEOUT_S).tasks]
        return self._results(ids)

    def _results(self, ids: list[str]) -> list[int]:
        results: list[int] = []
        for batch in common.chunks(ids, WAIT_BATCH):
            request = tasks_pb2.WaitTasksRequest(ids=batch, timeout_seconds=common.TIMEOUT_S, include_result=True)
            response = self._stub.WaitTasks(request, timeout=common.TIMEOUT_S + 5)
            if response.timed_out:
                raise TimeoutError(f"tasks not final after {common.TIMEOUT_S:.0f} s")
            for task in response.tasks:
                if task.status != common_pb2.TASK_STATUS_COMPLETED:
                    status = common_pb2.TaskStatus.Name(task.status)
                    raise RuntimeError(f"task {task.id} ended {status}: {task.error.message}")
                results.append(int(json.loads(task.result.data)))
        return results


def _spec(agent_type: str, value: int | None) -> common_pb2.TaskSpec:
    data = json.dumps(value).encode()
    return common_pb2.TaskSpec(
        description=agent_type,
        agent_type=agent_type,
        input=common_pb2.Payload(data=data, content_type="application/json"),
    )


@contextmanager
def start(workers: int) -> Iterator[MaosCluster]:
    """A control plane (SQLite store, the embedded default) and one agent host with `workers` workers."""
    with tempfile.TemporaryDirectory(prefix="maos-peers-") as tmp:
        root = Path(tmp)
        agents = root / "agents.yaml"
        agents.write_text(AGENTS, encoding="utf-8")
        cp = start_controlplane(root / "cp", agents=agents)
        try:
            host = start_agenthost(cp.endpoint, root, workers=workers, agents=agents)
            try:
                wait_for_hosts(cp.endpoint, 1)
                cluster = MaosCluster(cp.endpoint)
                try:
                    yield cluster
                finally:
                    cluster.close()
            finally:
                host.stop()
        finally:
            cp.stop()


def open_system() -> tuple[str, common.Start]:
    return importlib.metadata.version("maos"), start


if __name__ == "__main__":
    common.runner_main("maos", open_system)
