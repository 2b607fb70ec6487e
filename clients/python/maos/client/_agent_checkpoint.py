"""Agent-level checkpoints: what `ctx.checkpoint(data)` saves and `ctx.restore()` reads back.

A task's checkpoint is one shared-state key of its own tree's namespace,
`_maos/checkpoint/<task id>` (keys under `_maos/` are reserved for MAOS), so it is
durable wherever shared state is (the control plane's SQLite file or Redis), it
survives host and control-plane restarts, and control-plane checkpoints carry it.
The value is {"attempt": n, "saved_at": epoch seconds, "data": ...}; a retried
attempt of the same task reads it back. Like this module's callers, it imports
nothing heavy.
"""

from __future__ import annotations

import time
from typing import Any

KEY_PREFIX = "_maos/checkpoint/"
MAX_CHECKPOINT_BYTES = 1024 * 1024  # the default size limit of a shared-state value


def checkpoint_key(task_id: str) -> str:
    return KEY_PREFIX + task_id


def encode_checkpoint(task_id: str, attempt: int, data: Any) -> bytes:
    """The stored value; InvalidArgument (one clear line) when `data` is not JSON or too big."""
    import orjson
    from maos.errors import InvalidArgument

    try:
        value = orjson.dumps({"attempt": attempt, "saved_at": time.time(), "data": data})
    except TypeError as exc:
        raise InvalidArgument(f"task {task_id}: checkpoint data must be JSON-serialisable ({exc})") from None
    if len(value) > MAX_CHECKPOINT_BYTES:
        raise InvalidArgument(
            f"task {task_id}: checkpoint data is {len(value):,} bytes as JSON; the limit is "
            f"{MAX_CHECKPOINT_BYTES:,} bytes (1 MiB): save a cursor or summary and keep bulk data elsewhere"
        )
    return value


def decode_checkpoint(value: Any) -> Any:
    """The saved data from the stored value (None when nothing was saved)."""
    if isinstance(value, dict) and "data" in value:
        return value["data"]
    return None
