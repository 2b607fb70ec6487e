"""The store suite runs against both backends: SQLite in tmp_path, PostgreSQL in a fresh schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from maos.controlplane.store import PostgresOptions, PostgresStore, SqliteStore, Store

from tests.integration.store.pg import fresh_schema, schema_url

BACKENDS = ["sqlite", "postgresql"]
# Small pools: tests run side by side on one server with max_connections = 100.
TEST_POOL = PostgresOptions(pool_size=2, max_overflow=2)


@asynccontextmanager
async def open_store(kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened, empty store of `kind`; its data is removed on exit."""
    if kind == "sqlite":
        sqlite = SqliteStore(tmp_path / "maos.db")
        await sqlite.open()
        try:
            yield sqlite
        finally:
            await sqlite.close()
        return
    async with fresh_schema() as schema:
        pg = PostgresStore(schema_url(schema), TEST_POOL)
        await pg.open()
        try:
            yield pg
        finally:
            await pg.close()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request.param, tmp_path) as s:
        yield s
