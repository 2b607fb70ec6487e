"""Shared state: a key-value store of JSON values by namespace, behind one protocol.

SQLite (embedded, in the task store's file) is the default; with a PostgreSQL
task store it lives in PostgreSQL instead. `--state redis://...` keeps it there
and adds Redis as a write-through, read-through cache in front, never the only
copy. The gRPC servicer is maos.controlplane.api._state.
"""

from ._access import GlobalAccess as GlobalAccess
from ._access import StateCaller as StateCaller
from ._access import resolve_namespace as resolve_namespace
from ._hub import StateHub as StateHub
from ._model import DeleteOutcome as DeleteOutcome
from ._model import StaleVersion as StaleVersion
from ._model import StateBackend as StateBackend
from ._model import StateChange as StateChange
from ._model import StateEntry as StateEntry
from ._model import StateLimits as StateLimits
from ._open import DEFAULT_STATE_URL as DEFAULT_STATE_URL
from ._open import open_state_backend as open_state_backend
from ._open import state_backend_for as state_backend_for
from ._postgres import PostgresStateBackend as PostgresStateBackend
from ._redis import RedisStateBackend as RedisStateBackend
from ._sqlite import SqliteStateBackend as SqliteStateBackend
from ._validation import GLOBAL_NAMESPACE as GLOBAL_NAMESPACE
from ._validation import tree_namespace as tree_namespace
from ._watch import watch_changes as watch_changes

__all__ = [
    "DEFAULT_STATE_URL",
    "GLOBAL_NAMESPACE",
    "DeleteOutcome",
    "GlobalAccess",
    "PostgresStateBackend",
    "RedisStateBackend",
    "SqliteStateBackend",
    "StaleVersion",
    "StateBackend",
    "StateCaller",
    "StateChange",
    "StateEntry",
    "StateHub",
    "StateLimits",
    "open_state_backend",
    "resolve_namespace",
    "state_backend_for",
    "tree_namespace",
    "watch_changes",
]
