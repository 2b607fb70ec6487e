"""Choosing the backend from `--state URL`: "sqlite" (embedded, the default) or "redis://...".

With a PostgreSQL task store, the default keeps state in PostgreSQL beside the
tasks instead of in a local file, so it follows a failover. `--state
redis://...` keeps that same durable backend as the authority and puts Redis in
front of it as a cache (see _redis.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from maos.errors import InvalidArgument

from ._model import StateBackend, StateLimits
from ._postgres import PostgresStateBackend
from ._redis import DEFAULT_KEY_PREFIX, DEFAULT_MAX_CONNECTIONS, DEFAULT_TTL_SECONDS, RedisStateBackend
from ._sqlite import SqliteStateBackend

if TYPE_CHECKING:
    from maos.controlplane.store import PostgresStore

DEFAULT_STATE_URL = "sqlite"


def state_backend_for(
    url: str,
    sqlite_path: Path,
    *,
    limits: StateLimits | None = None,
    sqlite_synchronous: str = "NORMAL",
    redis_max_connections: int = DEFAULT_MAX_CONNECTIONS,
    redis_key_prefix: str = DEFAULT_KEY_PREFIX,
    redis_ttl_seconds: float = DEFAULT_TTL_SECONDS,
    postgres: PostgresStore | None = None,
) -> StateBackend:
    """The backend a URL names, not yet opened; InvalidArgument for a URL it does not know.

    "sqlite" (or "") keeps state in `sqlite_path`, the task store's database file,
    or, given `postgres` (the task store, opened), in its PostgreSQL schema;
    "redis://host:port/db" and "rediss://..." (TLS) keep it there too, with Redis
    as a write-through cache in front (entries expire after `redis_ttl_seconds`).
    """
    text = url.strip()
    cached = text.startswith(("redis://", "rediss://", "unix://"))
    if not cached and text not in ("", "sqlite", "sqlite:"):
        raise InvalidArgument(
            f"--state {url!r} is not a state backend: use sqlite (the default) or redis://host:port/db"
        )
    durable: StateBackend
    if postgres is not None:
        durable = PostgresStateBackend(postgres, limits=limits)
    else:
        durable = SqliteStateBackend(sqlite_path, limits=limits, synchronous=sqlite_synchronous)
    if not cached:
        return durable
    try:
        return RedisStateBackend(
            text,
            durable,
            key_prefix=redis_key_prefix,
            max_connections=redis_max_connections,
            ttl_seconds=redis_ttl_seconds,
        )
    except ValueError as exc:
        raise InvalidArgument(f"--state {text}: {exc}") from None


async def open_state_backend(
    url: str,
    sqlite_path: Path,
    *,
    limits: StateLimits | None = None,
    sqlite_synchronous: str = "NORMAL",
    redis_max_connections: int = DEFAULT_MAX_CONNECTIONS,
    redis_key_prefix: str = DEFAULT_KEY_PREFIX,
    redis_ttl_seconds: float = DEFAULT_TTL_SECONDS,
    postgres: PostgresStore | None = None,
) -> StateBackend:
    """`state_backend_for(...)`, opened (a Redis that cannot be reached fails here). Close it with
    `await backend.close()`."""
    backend = state_backend_for(
        url,
        sqlite_path,
        limits=limits,
        sqlite_synchronous=sqlite_synchronous,
        redis_max_connections=redis_max_connections,
        redis_key_prefix=redis_key_prefix,
        redis_ttl_seconds=redis_ttl_seconds,
        postgres=postgres,
    )
    try:
        await backend.open()
    except BaseException:
        await backend.close()
        raise
    return backend
