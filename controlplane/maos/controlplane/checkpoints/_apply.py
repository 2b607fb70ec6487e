"""Restoring decoded checkpoint sections into an empty control plane.

Everything is decoded and checked before the first write (the caller does that),
so a damaged checkpoint never leaves a half-restored system. Work that was placed
on a host when the checkpoint was taken (RUNNING, or QUEUED with a lease) is
re-queued: those leases belong to hosts of the past, and the tasks run again with
their next attempt (an agent's own checkpoint, kept in shared state, comes back
with `ctx.restore()`). Hosts are not restored; they reconnect by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from maos.controlplane.core import AttemptRecord, TaskEventRecord, TaskRecord, TaskStatus
from maos.controlplane.messaging import Loaded
from maos.controlplane.state import StateEntry
from maos.controlplane.store import NamedBlob, WriteBatch, attempt_row, event_row, full_row
from maos.errors import FailedPrecondition

from ._collect import Sources
from ._format import rows_of
from ._records import (
    ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    STATE_COLUMNS,
    TASK_COLUMNS,
    attempt_from_row,
    event_from_row,
    message_from_row,
    state_from_row,
    task_from_row,
    unb64,
)

WRITE_CHUNK = 2000  # tasks per store batch
STATE_CHUNK = 5000
REQUEUE_KIND = "checkpoint_restore"


@dataclass(slots=True)
class Decoded:
    """A checkpoint as records, checked and ready to write."""

    tasks: list[TaskRecord] = field(default_factory=list)
    events: dict[str, list[TaskEventRecord]] = field(default_factory=dict)
    attempts: dict[str, list[AttemptRecord]] = field(default_factory=dict)
    state: list[StateEntry] = field(default_factory=list)
    messages: Loaded = field(default_factory=lambda: Loaded([], [], 0))
    templates: list[NamedBlob] = field(default_factory=list)
    batches: list[NamedBlob] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)


def decode_all(checkpoint_id: str, docs: dict[str, Any]) -> Decoded:
    """Records from the sections' documents; FailedPrecondition naming the first bad one."""
    where = f"checkpoint {checkpoint_id}"
    out = Decoded()
    try:
        out.tasks = [task_from_row(r) for r in rows_of(docs["tasks"], TASK_COLUMNS, f"{where}, tasks")]
        for r in rows_of(docs["events"], EVENT_COLUMNS, f"{where}, events"):
            ev = event_from_row(r)
            out.events.setdefault(ev.task_id, []).append(ev)
        for r in rows_of(docs["attempts"], ATTEMPT_COLUMNS, f"{where}, attempts"):
            a = attempt_from_row(r)
            out.attempts.setdefault(a.task_id, []).append(a)
        out.state = [state_from_row(r) for r in rows_of(docs["shared_state"], STATE_COLUMNS, f"{where}, state")]
        queues = docs["message_queues"]
        messages = [message_from_row(r) for r in rows_of(queues, MESSAGE_COLUMNS, f"{where}, messages")]
        subscriptions = [(str(m), str(t)) for m, t in queues.get("subscriptions", [])]
        out.messages = Loaded(messages, subscriptions, int(queues.get("max_seq", 0)))
        library = docs["library"]
        out.templates = [_blob(b, f"{where}, template") for b in library.get("templates", [])]
        out.batches = [_blob(b, f"{where}, batch") for b in library.get("batches", [])]
        out.settings = {str(k): str(v) for k, v in dict(library.get("settings", {})).items()}
        out.hosts = [str(h["id"]) for h in docs["agents"].get("hosts", [])]
    except FailedPrecondition:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, DecodeError) as exc:
        raise FailedPrecondition(f"{where} holds a malformed record ({type(exc).__name__}: {exc})") from None
    # What the store would refuse half-way through a restore is refused now, before any write.
    keys = [rec.idempotency_key for rec in out.tasks if rec.idempotency_key]
    if len({rec.id for rec in out.tasks}) != len(out.tasks) or len(set(keys)) != len(keys):
        raise FailedPrecondition(f"{where} holds a task id or idempotency key twice; the checkpoint is corrupt")
    # Parents come before children and dependencies before dependents when ids sort by time.
    out.tasks.sort(key=lambda rec: rec.id)
    return out


def _blob(item: dict[str, Any], where: str) -> NamedBlob:
    return NamedBlob(str(item["name"]), unb64(item["data"], where), float(item["created_at"]))


def requeue_placed(decoded: Decoded, checkpoint_id: str, now: float) -> int:
    """Turn work that held a lease into queued work with a closing event and attempt; returns how many."""
    count = 0
    for rec in decoded.tasks:
        placed = rec.status == TaskStatus.RUNNING or (rec.status == TaskStatus.QUEUED and rec.host_id)
        if rec.final or rec.group or not placed or rec.attempt == 0:
            continue
        why = (
            f"re-queued: the control plane was restored from checkpoint {checkpoint_id} while attempt "
            f"{rec.attempt} was placed on host {rec.host_id or '?'}"
        )
        attempts = decoded.attempts.setdefault(rec.id, [])
        old = next((a for a in attempts if a.number == rec.attempt), None)
        closed = AttemptRecord(
            rec.id,
            rec.attempt,
            rec.host_id,
            rec.agent_id,
            old.dispatched_at if old else rec.dispatched_at,
            old.started_at if old else rec.started_at,
            now,
            TaskStatus.FAILED,
            REQUEUE_KIND,
            why,
        )
        decoded.attempts[rec.id] = [a for a in attempts if a.number != rec.attempt] + [closed]
        rec.status = TaskStatus.QUEUED
        rec.host_id = rec.agent_id = ""
        rec.queued_at = now
        rec.started_at = 0.0
        rec.seq += 1
        event = TaskEventRecord(rec.id, rec.seq, rec.status, rec.attempt, now, "", why, rec.progress, "")
        decoded.events.setdefault(rec.id, []).append(event)
        count += 1
    return count


async def check_empty(sources: Sources) -> None:
    """FailedPrecondition unless there is nothing a restore could collide with."""
    rt = sources.runtime
    counts = await rt.store.counts_by_status()
    found: list[str] = []
    tasks = max(sum(counts.values()), len(rt.orch.tasks))
    if tasks:
        found.append(f"{tasks} tasks")
    templates, batches = await rt.store.load_templates(), await rt.store.load_batches()
    if templates:
        found.append(f"{len(templates)} templates")
    if batches:
        found.append(f"{len(batches)} batches")
    namespaces = await sources.state.namespaces()
    if namespaces:
        found.append(f"shared state in {len(namespaces)} namespaces")
    messages = len((await sources.messaging.snapshot()).messages)
    if messages:
        found.append(f"{messages} undelivered messages")
    if found:
        raise FailedPrecondition(
            f"this control plane already holds {', '.join(found)}: a checkpoint is restored only onto an empty "
            f"one; start a control plane on a fresh --data-dir (or empty database) and restore there"
        )


Step = Callable[[str, int, int], None]


async def write_all(sources: Sources, decoded: Decoded, step: Step) -> dict[str, int]:
    """Write the records: tasks with their events and attempts, the library, shared state and
    messages; then make the running core, library and messaging pick them up."""
    rt = sources.runtime
    store = rt.store
    total = len(decoded.tasks)
    written = 0
    commits: list[asyncio.Future[None]] = []

    def committed(n: int) -> Callable[[asyncio.Future[None]], None]:
        def done(_: asyncio.Future[None]) -> None:
            nonlocal written
            written += n
            step("tasks", written, total)

        return done

    # Every chunk is handed over at once: the store's writer commits while the loop builds the next.
    for i in range(0, total, WRITE_CHUNK):
        chunk = decoded.tasks[i : i + WRITE_CHUNK]
        batch = WriteBatch(inserts=[full_row(rec) for rec in chunk])
        for rec in chunk:
            batch.events += [event_row(ev) for ev in decoded.events.get(rec.id, ())]
            batch.attempts += [attempt_row(a) for a in decoded.attempts.get(rec.id, ())]
        commit = store.write(batch)
        commit.add_done_callback(committed(len(chunk)))
        commits.append(commit)
        await asyncio.sleep(0)  # let the loop serve other work between chunks
    await asyncio.gather(*commits)
    await store.write(
        WriteBatch(templates=decoded.templates, batches=decoded.batches, settings=list(decoded.settings.items()))
    )
    entries = decoded.state
    for i in range(0, len(entries), STATE_CHUNK):
        await sources.state.import_entries(entries[i : i + STATE_CHUNK])
        step("shared state", min(i + STATE_CHUNK, len(entries)), len(entries))
    messages = await sources.messaging.restore(decoded.messages)
    step("messages", messages, messages)
    unfinished = await rt.reload()
    await sources.library.load()
    return {
        "tasks": total,
        "unfinished_tasks": unfinished,
        "events": sum(len(v) for v in decoded.events.values()),
        "attempts": sum(len(v) for v in decoded.attempts.values()),
        "state_entries": len(entries),
        "namespaces": len({e.namespace for e in entries}),
        "messages": messages,
        "subscriptions": len(decoded.messages.subscriptions),
        "templates": len(decoded.templates),
        "batches": len(decoded.batches),
        "settings": len(decoded.settings),
        "hosts_known": len(decoded.hosts),
    }
