"""A PostgreSQL schema of a test's own in the `test` database at 127.0.0.1:5432
(or $MAOS_TEST_POSTGRES_URL), dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg

POSTGRES_URL = os.environ.get("MAOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}?schema={schema}"


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema's name; the store creates its tables in it."""
    schema = f"maos_t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    try:
        yield schema
    finally:
        await drop_schema(schema)


@contextmanager
def fresh_schema_sync() -> Iterator[str]:
    """`fresh_schema` for synchronous tests (clusters of real processes)."""
    schema = f"maos_t_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        asyncio.run(drop_schema(schema))
