"""Reading a running control plane into checkpoint sections.

Tasks are read a page at a time through the Store protocol (newest first), each
page's events and attempts with it; shared state namespace by namespace through
the StateBackend protocol; message queues as the message store has committed
them. Each page is serialised as soon as it is read, so the event loop is held
for one page at a time and the section sits in memory as JSON bytes only.
The three readers run concurrently. A checkpoint of a busy system is a fuzzy
snapshot: every record is as it was when read, and tasks created after the
scan began are not in it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from google.protobuf import json_format
from maos.controlplane.core import AttemptRecord, TaskRecord
from maos.controlplane.store import TaskQuery

from ._format import RowsWriter
from ._records import (
    ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    STATE_COLUMNS,
    TASK_COLUMNS,
    attempt_row,
    b64,
    event_row,
    message_row,
    state_row,
    task_row,
)

if TYPE_CHECKING:
    from maos.controlplane._library import Library
    from maos.controlplane._runtime import Runtime
    from maos.controlplane.messaging import Messaging
    from maos.controlplane.state import StateBackend

TASK_PAGE = 1000
_T = TypeVar("_T")
STATE_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Sources:
    """What a checkpoint reads from and restores into."""

    runtime: Runtime
    library: Library
    state: StateBackend
    messaging: Messaging

    @property
    def description(self) -> str:
        return f"tasks {self.runtime.store.description}; state {self.state.description}"


@dataclass(slots=True)
class Collected:
    """Sections as JSON bytes, with their item counts, and the checkpoint's counts."""

    sections: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


Tick = Callable[[str, int, int], None]
"""(what, done, total): progress of reading."""


async def collect_tasks(sources: Sources, out: Collected, tick: Tick) -> None:
    store = sources.runtime.store
    total = sum((await store.counts_by_status()).values())
    tasks = RowsWriter("tasks", TASK_COLUMNS)
    events = RowsWriter("events", EVENT_COLUMNS)
    attempts = RowsWriter("attempts", ATTEMPT_COLUMNS)
    unfinished = 0
    # Pipelined: the store's reader threads fetch the next page (and this page's events and
    # attempts) while the loop serialises what has arrived.
    reads: list[asyncio.Future[Any]] = []

    def read(call: Awaitable[_T]) -> asyncio.Future[_T]:
        future = asyncio.ensure_future(call)
        reads.append(future)
        return future

    try:
        upcoming: asyncio.Future[list[TaskRecord]] | None = read(store.list_tasks(TaskQuery(limit=TASK_PAGE)))
        while upcoming is not None:
            page = await upcoming
            if not page:
                break
            more = len(page) == TASK_PAGE
            upcoming = read(store.list_tasks(TaskQuery(limit=TASK_PAGE, before_id=page[-1].id))) if more else None
            tried = [rec.id for rec in page if rec.attempt > 0]
            page_events = read(store.events_of([rec.id for rec in page]))
            page_attempts = read(store.attempts_of(tried) if tried else _no_attempts())
            tasks.add([task_row(rec) for rec in page])
            unfinished += sum(1 for rec in page if not rec.final)
            events.add([event_row(ev) for ev in await page_events])
            attempts.add([attempt_row(a) for a in await page_attempts])
            tick("tasks", tasks.items, max(total, tasks.items))
            reads[:] = [f for f in reads if not f.done()]  # the next page, in flight
    finally:
        for future in reads:  # a failed or abandoned checkpoint leaves no read behind
            future.cancel()
    out.sections["tasks"] = (tasks.finish(), tasks.items)
    out.sections["events"] = (events.finish(), events.items)
    out.sections["attempts"] = (attempts.finish(), attempts.items)
    out.counts.update(tasks=tasks.items, unfinished_tasks=unfinished, events=events.items, attempts=attempts.items)


async def _no_attempts() -> list[AttemptRecord]:
    return []


async def collect_state(sources: Sources, out: Collected, tick: Tick) -> None:
    namespaces = list(await sources.state.namespaces())
    rows = RowsWriter("shared_state", STATE_COLUMNS)
    for i, namespace in enumerate(namespaces, 1):
        after = ""
        while True:
            page = await sources.state.list(namespace, after_key=after, limit=STATE_PAGE)
            rows.add([state_row(e) for e in page])
            if len(page) < STATE_PAGE:
                break
            after = page[-1].key
        tick("shared state namespaces", i, len(namespaces))
    out.sections["shared_state"] = (rows.finish(namespaces=namespaces), rows.items)
    out.counts.update(namespaces=len(namespaces), state_entries=rows.items)


async def collect_messages(sources: Sources, out: Collected, tick: Tick) -> None:
    loaded = await sources.messaging.snapshot()
    rows = RowsWriter("message_queues", MESSAGE_COLUMNS)
    for i in range(0, len(loaded.messages), TASK_PAGE):
        rows.add([message_row(m) for m in loaded.messages[i : i + TASK_PAGE]])
        await asyncio.sleep(0)  # let the loop breathe between pages of a large queue
    subscriptions = [list(s) for s in loaded.subscriptions]
    out.sections["message_queues"] = (
        rows.finish(subscriptions=subscriptions, max_seq=loaded.max_seq),
        rows.items,
    )
    out.counts.update(messages=rows.items, subscriptions=len(subscriptions))
    tick("messages", rows.items, rows.items)


def collect_agents(sources: Sources, out: Collected) -> None:
    """Hosts and their agents as the control plane knows them now. Informational: hosts
    reconnect by themselves after a restore, and their agents with them."""
    rt = sources.runtime
    hosts: list[dict[str, Any]] = []
    agents: list[dict[str, Any]] = []
    for host in rt.orch.hosts.values():
        entry: dict[str, Any] = {
            "id": host.id,
            "slots": host.slots,
            "agent_types": sorted(host.agent_types),
            "connected": host.connected,
            "draining": host.draining,
            "in_flight": [[task_id, attempt] for task_id, attempt in host.in_flight.items()],
            "tasks_completed": host.completed,
            "avg_task_seconds": host.avg_task_seconds,
            "last_heartbeat": host.last_heartbeat,
        }
        session = rt.sessions.get(host.id)
        if session is not None:
            reg = session.register
            entry.update(
                hostname=reg.hostname,
                cpu_count=reg.cpu_count,
                memory_bytes=reg.memory_bytes,
                version=reg.version,
                connected_at=session.connected_at,
            )
            agents += [
                json_format.MessageToDict(a, preserving_proto_field_name=True) for a in session.last_heartbeat.agents
            ]
        hosts.append(entry)
    doc = {"section": "agents", "taken_at": time.time(), "hosts": hosts, "agents": agents}
    out.sections["agents"] = (orjson.dumps(doc), len(hosts) + len(agents))
    out.counts.update(hosts=len(hosts), agents=len(agents))


async def collect_library(sources: Sources, out: Collected) -> None:
    store = sources.runtime.store
    templates, batches, settings = await asyncio.gather(
        store.load_templates(), store.load_batches(), store.load_settings()
    )

    def blobs(items: list[Any]) -> list[dict[str, Any]]:
        return [{"name": b.name, "data": b64(b.data), "created_at": b.created_at} for b in items]

    doc = {"section": "library", "templates": blobs(templates), "batches": blobs(batches), "settings": settings}
    out.sections["library"] = (orjson.dumps(doc), len(templates) + len(batches) + len(settings))
    out.counts.update(templates=len(templates), batches=len(batches), settings=len(settings))
