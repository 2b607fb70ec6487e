"""A watch: the logged changes after a revision, then live ones, every revision once, in order.

Subscribes to the hub before reading the log, so nothing falls between the
two. Revisions of a namespace have no gaps, which makes the merge simple: a
change at or below the last revision handled is a duplicate; one above the
next expected revision means something is still to come from the log (live
changes arrive in the order writers finished, not always in revision order,
and a watcher that overflowed its mailbox lost some), so the log is read up to
date first. Only when the log no longer holds a needed revision does the
watch fail, naming the revision to resume from.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from maos.errors import FailedPrecondition

from ._hub import StateHub
from ._model import StateBackend, StateChange

LOG_PAGE = 1_000


def matches(change: StateChange, key: str, prefix: str) -> bool:
    """Whether a watch of `key` (exact, when set) or of `prefix` wants this change."""
    return change.entry.key == key if key else change.entry.key.startswith(prefix)


async def watch_changes(
    backend: StateBackend,
    hub: StateHub,
    namespace: str,
    *,
    key: str = "",
    prefix: str = "",
    after_revision: int = 0,
) -> AsyncGenerator[StateChange, None]:
    """Every committed change of `key` (or of keys under `prefix`) with a revision above
    `after_revision`, in revision order, as long as the caller iterates.

    `after_revision` 0 starts from the oldest change still logged. A resume point
    older than the log raises FailedPrecondition.
    """
    watcher = hub.subscribe(namespace)
    try:
        last = after_revision
        tolerate_gap = after_revision == 0
        while True:
            async for change in _from_log(backend, namespace, last, tolerate_gap):
                last = change.revision
                if matches(change, key, prefix):
                    yield change
            tolerate_gap = False
            while True:
                if watcher.overflowed and watcher.queue.empty():
                    watcher.overflowed = False  # read what was missed from the log, then go on live
                    break
                change = await watcher.queue.get()
                watcher.took(change)
                if change.revision <= last:
                    continue
                if change.revision > last + 1:
                    async for missed in _from_log(backend, namespace, last, False):
                        last = missed.revision
                        if matches(missed, key, prefix):
                            yield missed
                    if change.revision <= last:
                        continue
                last = change.revision
                if matches(change, key, prefix):
                    yield change
    finally:
        hub.unsubscribe(watcher)


async def _from_log(
    backend: StateBackend, namespace: str, after: int, tolerate_gap: bool
) -> AsyncGenerator[StateChange, None]:
    while True:
        page = await backend.changes(namespace, after, LOG_PAGE)
        if page and page[0].revision > after + 1 and not tolerate_gap:
            raise FailedPrecondition(
                f"the changes of namespace {namespace} after revision {after} are no longer in the change log "
                f"(it keeps the last {backend.limits.change_log_size:,} per namespace; the oldest kept is "
                f"revision {page[0].revision}): list the keys for their current values and watch again"
            )
        tolerate_gap = False
        for change in page:
            yield change
        if len(page) < LOG_PAGE:
            return
        after = page[-1].revision
