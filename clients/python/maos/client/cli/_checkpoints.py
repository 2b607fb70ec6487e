"""`maosctl checkpoint ...`: checkpoints of the whole control plane, and an agent's own.

    maosctl checkpoint create --label "before the upgrade"
    maosctl checkpoint list
    maosctl checkpoint show ID
    maosctl checkpoint restore ID     # onto an empty control plane
    maosctl checkpoint delete ID

Inside a command agent (MAOS_TASK_ID set by its host), `checkpoint save JSON` and
`checkpoint load` keep the task's own progress, like `ctx.checkpoint()` and
`ctx.restore()` in Python agents.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Any

import click
import orjson
from maos.errors import FailedPrecondition, NotFound
from maos.v1 import checkpoints_pb2

from .._agent_checkpoint import checkpoint_key, decode_checkpoint, encode_checkpoint
from .._checkpoints_client import CheckpointClient
from .._config import ATTEMPT_ENV, TASK_ID_ENV
from .._state_client import RawJson
from ._common import CliState, format_option, pass_state
from ._output import iso, progress_bar, render_fields, render_table, size
from ._state import open_state_client
from ._state_views import compact, parse_value
from ._terminal import LiveRegion, is_tty


def _client(state: CliState) -> CheckpointClient:
    client = CheckpointClient(state.endpoint)
    click.get_current_context().call_on_close(client.close)
    return client


class _ProgressLine:
    """Progress on stderr: one line redrawn in place on a terminal, a line per phase otherwise."""

    def __init__(self) -> None:
        self._tty = is_tty(sys.stderr)
        self._region = LiveRegion(sys.stderr) if self._tty else None
        self._phase = ""

    def __call__(self, p: checkpoints_pb2.CheckpointProgress) -> None:
        if self._region is not None:
            done = f" {progress_bar(p.done / p.total, 24)} {p.done:,}/{p.total:,}" if p.total else ""
            self._region.update([f"{p.phase}: {p.message}{done}"])
        elif p.phase != self._phase:
            click.echo(f"{p.phase}: {p.message}", err=True)
        self._phase = p.phase

    def clear(self) -> None:
        if self._region is not None:
            self._region.clear()


# ------------------------------------------------------------------------ views


def checkpoint_dict(c: checkpoints_pb2.Checkpoint) -> dict[str, Any]:
    if c.problem:
        return {"id": c.id, "location": c.location, "problem": c.problem}
    return {
        "id": c.id,
        "created_at": iso(c.created_at, c.HasField("created_at")),
        "trigger": c.trigger,
        "label": c.label,
        "location": c.location,
        "source": c.source,
        "format_version": c.format_version,
        "maos_version": c.maos_version,
        "raw_bytes": c.raw_bytes,
        "compressed_bytes": c.compressed_bytes,
        "compression_ratio": round(c.compression_ratio, 3),
        "duration_seconds": round(c.duration_seconds, 3),
        "counts": dict(sorted(c.counts.items())),
        "sections": [
            {
                "name": s.name,
                "items": s.items,
                "raw_bytes": s.raw_bytes,
                "compressed_bytes": s.compressed_bytes,
                "sha256": s.sha256,
            }
            for s in c.sections
        ],
    }


def _created(c: checkpoints_pb2.Checkpoint) -> str:
    if not c.HasField("created_at"):
        return "-"
    return c.created_at.ToDatetime(tzinfo=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def checkpoint_table(checkpoints: list[checkpoints_pb2.Checkpoint]) -> str:
    rows = [
        (c.id, "-", "-", "-", "-", "-", "-", f"UNREADABLE: {c.problem}")
        if c.problem
        else (
            c.id,
            _created(c),
            c.trigger,
            f"{c.counts.get('tasks', 0):,}",
            f"{c.counts.get('unfinished_tasks', 0):,}",
            size(c.compressed_bytes),
            f"{c.compression_ratio:.1f}x",
            c.label,
        )
        for c in checkpoints
    ]
    headers = ["id", "created (utc)", "trigger", "tasks", "unfinished", "size", "ratio", "label"]
    return render_table(headers, rows, right=(3, 4, 5, 6), max_widths={7: 60}, empty="(no checkpoints)")


def checkpoint_fields(c: checkpoints_pb2.Checkpoint) -> str:
    counts = c.counts
    head = render_fields(
        [
            ("id", c.id),
            ("created", iso(c.created_at, c.HasField("created_at"))),
            ("trigger", c.trigger),
            ("label", c.label or None),
            ("location", c.location),
            ("taken from", c.source),
            ("format", f"{c.format_version} (MAOS {c.maos_version})"),
            ("tasks", f"{counts.get('tasks', 0):,} ({counts.get('unfinished_tasks', 0):,} unfinished)"),
            ("events / attempts", f"{counts.get('events', 0):,} / {counts.get('attempts', 0):,}"),
            (
                "shared state",
                f"{counts.get('state_entries', 0):,} keys in {counts.get('namespaces', 0):,} namespaces",
            ),
            (
                "messages",
                f"{counts.get('messages', 0):,} undelivered, {counts.get('subscriptions', 0):,} subscriptions",
            ),
            ("hosts / agents", f"{counts.get('hosts', 0):,} / {counts.get('agents', 0):,}"),
            ("size", f"{size(c.raw_bytes)} raw, {size(c.compressed_bytes)} stored ({c.compression_ratio:.2f}x)"),
            ("took", f"{c.duration_seconds:.2f}s"),
        ]
    )
    sections = render_table(
        ["section", "items", "raw", "stored", "sha256"],
        [
            (s.name, f"{s.items:,}", size(s.raw_bytes), size(s.compressed_bytes), s.sha256[:16] + "…")
            for s in c.sections
        ],
        right=(1, 2, 3),
    )
    return f"{head}\n\n{sections}"


def summary_dict(s: checkpoints_pb2.RestoreSummary) -> dict[str, Any]:
    return {
        "checkpoint": s.checkpoint.id,
        "counts": dict(sorted(s.counts.items())),
        "hosts": list(s.hosts),
        "duration_seconds": round(s.duration_seconds, 3),
    }


def summary_text(s: checkpoints_pb2.RestoreSummary) -> str:
    n = s.counts
    hosts = ", ".join(s.hosts) if s.hosts else None
    return render_fields(
        [
            ("restored", s.checkpoint.id),
            ("tasks", f"{n.get('tasks', 0):,} ({n.get('unfinished_tasks', 0):,} unfinished, resuming)"),
            ("re-queued", f"{n.get('requeued', 0):,} (were placed on a host when the checkpoint was taken)"),
            ("shared state", f"{n.get('state_entries', 0):,} keys in {n.get('namespaces', 0):,} namespaces"),
            ("messages", f"{n.get('messages', 0):,} undelivered, {n.get('subscriptions', 0):,} subscriptions"),
            ("templates / batches", f"{n.get('templates', 0):,} / {n.get('batches', 0):,}"),
            ("hosts then", hosts and f"{hosts} (they reconnect by themselves)"),
            ("took", f"{s.duration_seconds:.2f}s"),
        ]
    )


# --------------------------------------------------------------------- commands


@click.group("checkpoint")
def checkpoint_group() -> None:
    """Checkpoints of the control plane (tasks, shared state, messages), and an agent's own.

    Automatic ones: maosctl config set checkpoints.interval 3600
    """


@checkpoint_group.command("create")
@click.option("--label", default="", metavar="TEXT", help="A note kept with the checkpoint.")
@format_option
@pass_state
def create(state: CliState, label: str) -> None:
    """Write a checkpoint now (progress on stderr)."""
    line = _ProgressLine()
    try:
        made = _client(state).create(label, progress=line)
    finally:
        line.clear()
    state.emit(checkpoint_dict(made), lambda: checkpoint_fields(made))


@checkpoint_group.command("list")
@format_option
@pass_state
def list_(state: CliState) -> None:
    """Every checkpoint, oldest first."""
    answer = _client(state).list_response()
    found = list(answer.checkpoints)
    state.emit(
        {"target": answer.target, "checkpoints": [checkpoint_dict(c) for c in found]},
        lambda: checkpoint_table(found),
    )


@checkpoint_group.command("show")
@click.argument("checkpoint_id", metavar="ID")
@format_option
@pass_state
def show(state: CliState, checkpoint_id: str) -> None:
    """What a checkpoint holds: counts, sizes, sections and their checksums."""
    found = _client(state).get(checkpoint_id)
    state.emit(checkpoint_dict(found), lambda: checkpoint_fields(found))


@checkpoint_group.command("restore")
@click.argument("checkpoint_id", metavar="ID")
@format_option
@pass_state
def restore(state: CliState, checkpoint_id: str) -> None:
    """Restore checkpoint ID onto this control plane, which must hold nothing yet.

    Every section is verified first: a damaged checkpoint changes nothing. Tasks
    that were unfinished resume; those running then run again (next attempt).
    """
    line = _ProgressLine()
    try:
        summary = _client(state).restore(checkpoint_id, progress=line)
    finally:
        line.clear()
    state.emit(summary_dict(summary), lambda: summary_text(summary))


@checkpoint_group.command("delete")
@click.argument("checkpoint_id", metavar="ID")
@format_option
@pass_state
def delete(state: CliState, checkpoint_id: str) -> None:
    """Delete checkpoint ID."""
    gone = _client(state).delete(checkpoint_id)
    state.emit(checkpoint_dict(gone), lambda: f"deleted checkpoint {gone.id}")


def _own_task() -> tuple[str, int]:
    task_id = os.environ.get(TASK_ID_ENV, "")
    if not task_id:
        raise FailedPrecondition(
            f"{TASK_ID_ENV} is not set: `maosctl checkpoint save/load` keep a running task's own checkpoint "
            "and work inside a command agent"
        )
    attempt = os.environ.get(ATTEMPT_ENV, "")
    return task_id, int(attempt) if attempt.isdigit() else 1


@checkpoint_group.command("save")
@click.argument("value", metavar="JSON")
@format_option
@pass_state
def save(state: CliState, value: str) -> None:
    """Inside a task: save JSON (`-` reads stdin) as its checkpoint, for a retried attempt to `load`."""
    task_id, attempt = _own_task()
    data = orjson.loads(bytes(parse_value(sys.stdin.read() if value == "-" else value, "JSON")))
    encoded = encode_checkpoint(task_id, attempt, data)
    entry = open_state_client(state.endpoint).put(checkpoint_key(task_id), RawJson(encoded))
    state.emit(
        {"task_id": task_id, "attempt": attempt, "version": entry.version},
        lambda: f"saved the checkpoint of task {task_id} (attempt {attempt})",
    )


@checkpoint_group.command("load")
@pass_state
def load(state: CliState) -> None:
    """Inside a task: print its last saved checkpoint as JSON (exit 1 when there is none)."""
    task_id, _ = _own_task()
    entry = open_state_client(state.endpoint).get(checkpoint_key(task_id))
    if entry is None:
        raise NotFound(f"task {task_id} has no checkpoint yet")
    click.echo(compact(decode_checkpoint(entry.value)))
