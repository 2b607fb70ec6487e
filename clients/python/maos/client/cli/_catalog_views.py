"""How templates and batches look as tables and JSON documents (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maos.errors import MaosError
from maos.v1 import common_pb2, templates_pb2

from .._enums import STATUS, batch_state_name, is_final, parse_status, priority_name, status_name, task_type_name
from .._specs import payload_value_or_bytes
from ._output import iso, pretty_value, progress_bar, render_fields, render_table

_SUBMITTED = templates_pb2.BATCH_STATE_SUBMITTED


def _spec_summary(spec: common_pb2.TaskSpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "type": task_type_name(spec.type),
        "agent_type": spec.agent_type or None,
        "priority": priority_name(spec.priority),
        "labels": dict(sorted(spec.labels.items())),
        "input": payload_value_or_bytes(spec.input) if spec.HasField("input") else None,
    }


# ---- templates -------------------------------------------------------------


def template_dict(template: templates_pb2.Template) -> dict[str, Any]:
    """The JSON view of a template."""
    return {
        "name": template.name,
        "description": template.description or None,
        "parameters": list(template.parameters),
        "source_task_id": template.source_task_id or None,
        "created_at": iso(template.created_at, template.HasField("created_at")),
        "spec": _spec_summary(template.spec),
    }


def template_table(templates: Sequence[templates_pb2.Template]) -> str:
    """The `template list` table."""
    rows = [
        (
            t.name,
            ", ".join(t.parameters) or None,
            t.spec.agent_type or None,
            t.source_task_id or None,
            iso(t.created_at, t.HasField("created_at")),
            t.description or t.spec.description,
        )
        for t in templates
    ]
    headers = ("name", "parameters", "agent type", "source task", "created", "description")
    return render_table(headers, rows, max_widths={1: 40, 5: 60}, empty="no templates")


def template_fields(template: templates_pb2.Template) -> str:
    """The `template show` block: the template, then the spec it submits."""
    spec = template.spec
    block = render_fields(
        [
            ("name", template.name),
            ("description", template.description or None),
            ("parameters", ", ".join(template.parameters) or "(none)"),
            ("source task", template.source_task_id or None),
            ("created", iso(template.created_at, template.HasField("created_at"))),
            ("task", spec.description),
            ("type", task_type_name(spec.type)),
            ("agent type", spec.agent_type or None),
            ("priority", priority_name(spec.priority)),
            ("labels", ", ".join(f"{k}={v}" for k, v in sorted(spec.labels.items())) or None),
        ]
    )
    if spec.HasField("input"):
        block += "\ninput:\n" + "\n".join(
            "  " + line for line in pretty_value(_spec_summary(spec)["input"]).splitlines()
        )
    return block


def template_created_text(template: templates_pb2.Template) -> str:
    """What `template create` prints: the name, its parameters and how to submit it."""
    if not template.parameters:
        return f"template {template.name}: no parameters\nsubmit it: maosctl task submit-from-template {template.name}"
    example = ", ".join(f'"{p}": "…"' for p in template.parameters)
    return (
        f"template {template.name}: parameters {', '.join(template.parameters)}\n"
        f"submit it: maosctl task submit-from-template {template.name} --params '{{{example}}}'"
    )


# ---- batches ---------------------------------------------------------------


def batch_counts(batch: templates_pb2.Batch) -> list[tuple[str, int]]:
    """Task counts by lower-case status name, in lifecycle order (names this client does not know last)."""
    order = {name: i for i, name in enumerate(STATUS.names)}
    counts: dict[str, int] = {}
    for key, count in batch.tasks_by_status.items():
        try:
            name = status_name(parse_status(key.removeprefix("TASK_STATUS_")))
        except MaosError:
            name = key.lower()
        counts[name] = counts.get(name, 0) + count
    return sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _size(batch: templates_pb2.Batch) -> int:
    return len(batch.task_ids) if batch.state == _SUBMITTED else len(batch.specs)


def _finished(counts: Sequence[tuple[str, int]]) -> int:
    return sum(n for name, n in counts if _is_final_name(name))


def _is_final_name(name: str) -> bool:
    try:
        return is_final(parse_status(name))
    except MaosError:
        return False


def batch_dict(batch: templates_pb2.Batch) -> dict[str, Any]:
    """The JSON view of a batch."""
    counts = batch_counts(batch)
    return {
        "name": batch.name,
        "state": batch_state_name(batch.state),
        "tasks": _size(batch),
        "task_ids": list(batch.task_ids),
        "tasks_by_status": dict(counts),
        "finished": _finished(counts),
        "created_at": iso(batch.created_at, batch.HasField("created_at")),
        "submitted_at": iso(batch.submitted_at, batch.HasField("submitted_at")),
        "specs": [_spec_summary(spec) for spec in batch.specs],
    }


def batch_table(batches: Sequence[templates_pb2.Batch]) -> str:
    """The `batch list` table."""
    rows = []
    for b in batches:
        counts = batch_counts(b)
        done = f"{_finished(counts)}/{_size(b)}" if b.state == _SUBMITTED else None
        rows.append(
            (
                b.name,
                batch_state_name(b.state),
                _size(b),
                done,
                iso(b.created_at, b.HasField("created_at")),
                iso(b.submitted_at, b.HasField("submitted_at")),
            )
        )
    headers = ("name", "state", "tasks", "done", "created", "submitted")
    return render_table(headers, rows, right=(2, 3), empty="no batches")


def batch_status_text(batch: templates_pb2.Batch, width: int = 40) -> str:
    """The `batch status` view: a headline, a bar of finished tasks, counts by status."""
    total = _size(batch)
    head = f"batch {batch.name}  {batch_state_name(batch.state)}  {total} task{'' if total == 1 else 's'}"
    if batch.state != _SUBMITTED:
        return f"{head}\nnot submitted yet: maosctl batch submit {batch.name}"
    counts = batch_counts(batch)
    finished = _finished(counts)
    fraction = finished / total if total else 1.0
    bar = f"{progress_bar(fraction, width)} {fraction:4.0%}  {finished}/{total} done"
    # The server reports every status; a person needs the ones that hold tasks.
    table = render_table(
        ("status", "tasks"), [(n, c) for n, c in counts if c], right=(1,), empty="no status counts yet"
    )
    return f"{head}\n{bar}\n{table}"


def batch_submitted_text(batch: templates_pb2.Batch) -> str:
    """What `batch submit` prints: one row per task, in the order they were added."""
    rows = [
        (i, task_id, spec.description)
        for i, (task_id, spec) in enumerate(zip(batch.task_ids, batch.specs, strict=False), start=1)
    ]
    table = render_table(("#", "task id", "description"), rows, right=(0,), max_widths={2: 60}, empty="no tasks")
    return f"batch {batch.name}: submitted {len(batch.task_ids)} tasks\n{table}"
