"""Fixtures for the agent host's integration tests: a real WorkerPool with real worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from maos.agenthost import WorkerPool

from tests.integration.agenthost.agenthost_support import HERE, Collector, PoolFactory, all_profiles


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
