"""Durable storage behind one protocol: SQLite (embedded default) or PostgreSQL (production)."""

from ._open import open_store as open_store
from ._pg_config import PostgresOptions as PostgresOptions
from ._pg_config import PostgresTarget as PostgresTarget
from ._pg_config import is_postgres_url as is_postgres_url
from ._pg_config import parse_postgres_url as parse_postgres_url
from ._postgres import CONNECTION_ERRORS as CONNECTION_ERRORS
from ._postgres import NotLeader as NotLeader
from ._postgres import PostgresStore as PostgresStore
from ._protocol import NamedBlob as NamedBlob
from ._protocol import Store as Store
from ._protocol import TaskQuery as TaskQuery
from ._protocol import WriteBatch as WriteBatch
from ._rows import attempt_row as attempt_row
from ._rows import event_row as event_row
from ._rows import full_row as full_row
from ._rows import mutable_row as mutable_row
from ._rows import record_from_spec as record_from_spec
from ._sqlite import SqliteStore as SqliteStore

__all__ = [
    "CONNECTION_ERRORS",
    "NamedBlob",
    "NotLeader",
    "PostgresOptions",
    "PostgresStore",
    "PostgresTarget",
    "SqliteStore",
    "Store",
    "TaskQuery",
    "WriteBatch",
    "attempt_row",
    "event_row",
    "full_row",
    "is_postgres_url",
    "mutable_row",
    "open_store",
    "parse_postgres_url",
    "record_from_spec",
]
