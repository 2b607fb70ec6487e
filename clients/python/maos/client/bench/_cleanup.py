"""Removing what a bench run created: its state keys, then its task trees (cancelled if
still running, then purged). Messages were acknowledged as they were received."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from maos.errors import FailedPrecondition

from .._enums import is_final
from .._sync_client import Client
from ._context import Created

_CHUNK = 1000  # PurgeTasks and WaitTasks take at most this many ids per call
_RETRY_SECONDS = 0.1


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK)]


def _purge(client: Client, roots: list[str], deadline: float) -> tuple[int, int]:
    """PurgeTasks, retrying while a cancelled agent is still being stopped (and only then)."""
    while True:
        try:
            reply = client.purge_tasks(roots)
            return reply.roots, reply.tasks
        except FailedPrecondition as exc:
            if "still being stopped" not in exc.message or time.monotonic() > deadline:
                raise
        time.sleep(_RETRY_SECONDS)


def clean_up(client: Client, created: Created, timeout_seconds: float) -> dict[str, Any]:
    """Delete every key and task tree in `created`; the counts of what went."""
    deadline = time.monotonic() + timeout_seconds
    keys = 0
    for namespace, key in list(created.keys):
        keys += client.state.delete(key, namespace=namespace)
        del created.keys[(namespace, key)]
    roots = list(created.roots)
    current = [t for chunk in _chunks(roots) for t in client.wait_tasks(chunk, timeout=0, include_result=False)]
    unfinished = [t.id for t in current if not is_final(t.status)]
    for task_id in unfinished:
        client.cancel_task(task_id, "maosctl bench cleanup")
    for chunk in _chunks(unfinished):
        client.wait_tasks(chunk, timeout=max(deadline - time.monotonic(), 0.0), include_result=False)
    trees = tasks = 0
    for chunk in _chunks(roots):
        done_trees, done_tasks = _purge(client, chunk, deadline)
        trees += done_trees
        tasks += done_tasks
        for root in chunk:
            del created.roots[root]
    return {
        "trees_purged": trees,
        "tasks_purged": tasks,
        "keys_deleted": keys,
        "messages_acknowledged": created.messages_acked,
    }
