"""Fixtures for the agent host's integration tests: a real WorkerPool with real worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc.aio
import pytest
from maos.agenthost import WorkerPool
from maos.v1 import hosts_pb2_grpc, tasks_pb2_grpc

from tests.integration.agenthost.agenthost_support import (
    HERE,
    Collector,
    FakeControlPlane,
    FakeTasks,
    PoolFactory,
    all_profiles,
)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
async def make_pool(collector: Collector) -> AsyncIterator[PoolFactory]:
    pools: list[WorkerPool] = []

    async def factory(size: int = 1, kill_grace: float = 0.5, **kwargs: Any) -> WorkerPool:
        pool = WorkerPool(
            all_profiles(),
            size=size,
            listener=collector,
            host_id="test",
            kill_grace_seconds=kill_grace,
            python_path=[HERE],
            endpoint="127.0.0.1:7700",
            **kwargs,
        )
        await pool.start()
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        await pool.shutdown(grace=1.0)


@pytest.fixture
async def fake_cp() -> AsyncIterator[tuple[FakeControlPlane, str]]:
    """A scripted HostService (and a minimal TaskService, for agents that spawn and wait) on port 0."""
    server = grpc.aio.server()
    cp = FakeControlPlane()
    cp.tasks = FakeTasks(cp)  # type: ignore[abstract]  # only the calls agents make
    hosts_pb2_grpc.add_HostServiceServicer_to_server(cp, server)
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(cp.tasks, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield cp, f"127.0.0.1:{port}"
    await server.stop(grace=None)
