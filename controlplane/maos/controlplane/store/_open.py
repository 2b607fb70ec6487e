"""Choosing the store from `--store URL`: SQLite in the data directory (default) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from maos.errors import InvalidArgument

from ._pg_config import PostgresOptions, is_postgres_url
from ._postgres import PostgresStore
from ._protocol import Store
from ._sqlite import SqliteStore

SQLITE_FILE = "maos.db"


def open_store(
    url: str | None,
    data_dir: Path,
    *,
    sqlite_synchronous: str = "NORMAL",
    postgres: PostgresOptions | None = None,
) -> Store:
    """The store a URL names, not yet opened (call `await store.open()`).

    None, "" or "sqlite" keep the tasks in `data_dir/maos.db`;
    "postgresql://user@host:port/db[?schema=NAME]" uses PostgreSQL.
    InvalidArgument for anything else.
    """
    text = (url or "").strip()
    if text in ("", "sqlite", "sqlite:"):
        return SqliteStore(data_dir / SQLITE_FILE, synchronous=sqlite_synchronous)
    if is_postgres_url(text):
        return PostgresStore(text, postgres)
    raise InvalidArgument(
        f"--store {text.split('@')[-1]!r} is not a store: use sqlite (the default, in --data-dir) "
        "or postgresql://user@host:port/database"
    )
