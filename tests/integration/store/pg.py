"""A PostgreSQL schema of a test's own in the `test` database at 127.0.0.1:5432
(or $MAOS_TEST_POSTGRES_URL), dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit

import asyncpg

from tests.support.tcp_proxy import TcpProxy

POSTGRES_URL = os.environ.get("MAOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_PG = urlsplit(POSTGRES_URL)
PG_HOST, PG_PORT = _PG.hostname or "127.0.0.1", _PG.port or 5432


def proxied_url(port: int, schema: str) -> str:
    """The test database's URL with a proxy's port (on 127.0.0.1) in place of PostgreSQL's."""
    user = f"{_PG.username}@" if _PG.username else ""
    return f"postgresql://{user}127.0.0.1:{port}{_PG.path}?schema={schema}"


@asynccontextmanager
async def pg_proxy() -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the test database, to cut and restore the wire."""
    proxy = TcpProxy(PG_HOST, PG_PORT)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


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
