"""`maosctl batch ...`: draft many tasks under a name, submit them together, follow their counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import click
from maos.v1 import common_pb2

from .._enums import is_final, status_name
from .._specs import SpecOptions, task_spec
from ._catalog_views import batch_dict, batch_status_text, batch_submitted_text, batch_table
from ._common import CliState, format_option, pass_state
from ._output import to_json
from ._spec_options import spec_options

_COMPLETED = common_pb2.TASK_STATUS_COMPLETED


@click.group("batch")
def batch_group() -> None:
    """Named drafts of many tasks, submitted together (all or none)."""


@batch_group.command("create")
@click.argument("name")
@format_option
@pass_state
def create(state: CliState, name: str) -> None:
    """Open a batch called NAME; add tasks with `batch add-task`."""
    batch = state.client().create_batch(name)
    state.emit(
        batch_dict(batch), lambda: f"batch {batch.name}: open; add tasks with `maosctl batch add-task {name} ...`"
    )


@batch_group.command("add-task")
@click.argument("name")
@click.argument("description")
@spec_options()
@format_option
@pass_state
def add_task(state: CliState, name: str, description: str, spec: SpecOptions) -> None:
    """Add a task described by DESCRIPTION to the open batch NAME (options as for `task submit`)."""
    batch = state.client().add_to_batch(name, [task_spec(description, **spec)])
    state.emit(
        batch_dict(batch), lambda: f"batch {batch.name}: {len(batch.specs)} task{'' if len(batch.specs) == 1 else 's'}"
    )


@batch_group.command("submit")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait for every task; exit 0 only if all completed.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Give up waiting after this long."
)
@format_option
@pass_state
def submit(state: CliState, name: str, wait: bool, wait_timeout: float | None) -> None:
    """Submit every task of the batch NAME in one all-or-nothing request."""
    client = state.client()
    batch = client.submit_batch(name)
    if not wait:
        state.emit(batch_dict(batch), lambda: batch_submitted_text(batch))
        return
    if not state.json:
        click.echo(batch_submitted_text(batch))
    tasks = client.wait_tasks(list(batch.task_ids), timeout=wait_timeout, include_result=False)
    batch = client.get_batch(name)
    if state.json:
        click.echo(to_json(batch_dict(batch)))
    else:
        click.echo("\n" + batch_status_text(batch))
    problem = wait_problem(name, tasks)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        raise click.exceptions.Exit(1)


def wait_problem(name: str, tasks: Sequence[common_pb2.Task]) -> str | None:
    """Why a waited-on batch is not a success (unfinished or failed tasks), or None when all completed."""
    unfinished = sum(1 for t in tasks if not is_final(t.status))
    if unfinished:
        return (
            f"batch {name}: {unfinished} of {len(tasks)} tasks are still unfinished; see `maosctl batch status {name}`"
        )
    failed = [t for t in tasks if t.status != _COMPLETED]
    if failed:
        kinds = Counter(status_name(t.status) for t in failed)
        detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        return f"batch {name}: {len(failed)} of {len(tasks)} tasks did not complete ({detail}); first: {failed[0].id}"
    return None


@batch_group.command("status")
@click.argument("name")
@format_option
@pass_state
def status(state: CliState, name: str) -> None:
    """Show the batch NAME: its tasks' counts by status and a progress bar."""
    batch = state.client().get_batch(name)
    state.emit(batch_dict(batch), lambda: batch_status_text(batch))


@batch_group.command("list")
@format_option
@pass_state
def list_(state: CliState) -> None:
    """List the batches: state, size, and how many of their tasks are done."""
    batches = state.client().list_batches()
    state.emit([batch_dict(b) for b in batches], lambda: batch_table(batches))
