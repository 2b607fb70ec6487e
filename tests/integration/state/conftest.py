"""Every shared-state backend, each on its own storage: SQLite in tmp_path, PostgreSQL in a
fresh schema (tests/integration/store/pg.py), and Redis as a cache over each of them (as the
leader uses it), under a key prefix of its own at 127.0.0.1:6379 (or $MAOS_TEST_REDIS_URL),
deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from maos.controlplane.state import (
    PostgresStateBackend,
    RedisStateBackend,
    SqliteStateBackend,
    StateBackend,
    StateLimits,
)
from maos.controlplane.store import PostgresOptions, PostgresStore

from tests.integration.store.pg import fresh_schema, schema_url

REDIS_URL = os.environ.get("MAOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["sqlite", "redis", "postgresql", "redis-postgresql"]
# Small pools: tests run side by side on one server with max_connections = 100.
TEST_POOL = PostgresOptions(pool_size=2, max_overflow=2)


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path, limits: StateLimits | None = None) -> AsyncIterator[StateBackend]:
    """An opened backend of `kind` with nothing in it; its data is removed on exit."""
    if kind == "sqlite":
        async with SqliteStateBackend(tmp_path / f"state-{uuid.uuid4().hex[:8]}.db", limits=limits) as sqlite:
            yield sqlite
        return
    if kind == "postgresql":
        async with fresh_schema() as schema:
            store = PostgresStore(schema_url(schema), TEST_POOL)
            await store.open()
            try:
                async with PostgresStateBackend(store, limits=limits) as pg:
                    yield pg
            finally:
                await store.close()
        return
    prefix = redis_prefix()
    try:
        if kind == "redis":
            sqlite = SqliteStateBackend(tmp_path / f"state-{uuid.uuid4().hex[:8]}.db", limits=limits)
            async with RedisStateBackend(REDIS_URL, sqlite, key_prefix=prefix, max_connections=16) as backend:
                yield backend
            return
        async with fresh_schema() as schema:
            store = PostgresStore(schema_url(schema), TEST_POOL)
            await store.open()
            try:
                pg = PostgresStateBackend(store, limits=limits)
                async with RedisStateBackend(REDIS_URL, pg, key_prefix=prefix, max_connections=16) as backend:
                    backend.fence(await leadership_epoch(store), lambda _: None)  # only the leader caches
                    yield backend
            finally:
                await store.close()
    finally:
        await drop_prefix(prefix)


async def leadership_epoch(store: PostgresStore) -> int:
    async with store.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT epoch FROM leadership WHERE id = 1"))


def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"maos-test:{uuid.uuid4().hex}:"


async def drop_prefix(prefix: str) -> int:
    """Delete every Redis key under `prefix` (as eviction, or a restart without persistence, would);
    how many there were."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        names = [name async for name in client.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(names), 500):
            await client.delete(*names[i : i + 500])
        return len(names)
    finally:
        await client.aclose()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateBackend]:
    async with open_backend(request.param, tmp_path) as b:
        yield b
