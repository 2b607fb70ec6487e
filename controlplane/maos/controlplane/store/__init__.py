"""Durable storage behind one protocol: SQLite (embedded default)."""

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
    "NamedBlob",
    "SqliteStore",
    "Store",
    "TaskQuery",
    "WriteBatch",
    "attempt_row",
    "event_row",
    "full_row",
    "mutable_row",
    "record_from_spec",
]
