"""`maosctl task ...`: submit, show, list, results, cancel, purge, wait, progress."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from typing import Any

import click
from maos.errors import FailedPrecondition
from maos.v1 import common_pb2

from .._async_client import AsyncClient
from .._enums import STATUS, is_final, status_name
from .._specs import SpecOptions, task_result
from ._common import CliState, format_option, pass_state
from ._detail_views import attempts_table, attempts_worth_showing
from ._output import pretty_value, to_json
from ._plan_tree import execution_plan_dict, render_execution_plan
from ._progress import follow_progress
from ._progress_view import ProgressView
from ._spec_options import spec_options
from ._subtree import fetch_subtree
from ._terminal import is_tty
from ._views import error_line, task_dict, task_fields, task_table
from ._wait import wait_with_status

_COMPLETED = common_pb2.TASK_STATUS_COMPLETED


@click.group("task")
def task_group() -> None:
    """Submit tasks and follow them."""


def print_outcome(state: CliState, task: common_pb2.Task) -> None:
    """Print a finished task (result, or the error on stderr) and exit non-zero unless COMPLETED."""
    if state.json:
        click.echo(to_json(task_dict(task)))
    elif task.status == _COMPLETED:
        click.echo(pretty_value(task_result(task)))
    else:
        reason = error_line(task) or "no reason given"
        click.echo(f"error: task {task.id} {status_name(task.status)}: {reason}", err=True)
        if task.log:
            click.echo(f"agent log (tail):\n{task.log.rstrip()}", err=True)
    if task.status != _COMPLETED:
        raise click.exceptions.Exit(1)


@task_group.command("submit")
@click.argument("description")
@spec_options()
@click.option("--wait", is_flag=True, help="Wait for the task and print its result; exit 0 only if it completed.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Give up waiting after this long."
)
@format_option
@pass_state
def submit(state: CliState, description: str, spec: SpecOptions, wait: bool, wait_timeout: float | None) -> None:
    """Submit a task described by DESCRIPTION; prints its id (or, with --wait, its result)."""
    client = state.client()
    task = client.submit_task(description, **spec)
    if wait:
        print_outcome(state, wait_with_status(client, task.id, wait_timeout, sys.stderr))
        return
    if state.json:
        click.echo(to_json(task_dict(task)))
        return
    click.echo(task.id)
    if is_tty(sys.stderr):
        click.echo(f"follow it: maosctl task progress {task.id} --follow", err=True)


@task_group.command("show")
@click.argument("task_id", metavar="ID")
@click.option(
    "--execution-plan",
    is_flag=True,
    help="Draw the task's subtasks as a tree: state, agent, duration and dependencies of each.",
)
@format_option
@pass_state
def show(state: CliState, task_id: str, execution_plan: bool) -> None:
    """Show one task: spec, placement, timing, attempts, result or error."""
    client = state.client()
    task = client.get_task(task_id)
    if execution_plan:
        tasks = fetch_subtree(client, task)
        state.emit(execution_plan_dict(task, tasks), lambda: render_execution_plan(task, tasks, _now()))
        return
    if state.json:
        click.echo(to_json(task_dict(task)))
        return
    click.echo(task_fields(task))
    if attempts_worth_showing(task):
        click.echo("attempts:\n" + _indent(attempts_table(task.attempts)))
    result = task_result(task)
    if result is not None:
        click.echo("result:\n" + _indent(pretty_value(result)))
    if task.log and task.status != _COMPLETED:
        click.echo("log (tail):\n" + _indent(task.log.rstrip()))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@task_group.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="S",
    help=f"Only tasks in this status (repeatable): {', '.join(STATUS.names)}.",
)
@click.option("--root", "root_id", metavar="ID", help="Only tasks under this root (a workflow).")
@click.option("--parent", "parent_id", metavar="ID", help="Only direct subtasks of this task.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most N tasks.")
@format_option
@pass_state
def list_(state: CliState, statuses: tuple[str, ...], root_id: str | None, parent_id: str | None, limit: int) -> None:
    """List tasks, newest first as the control plane orders them."""
    tasks = list(state.client().list_tasks(statuses=statuses, root_id=root_id, parent_id=parent_id, limit=limit))
    state.emit([task_dict(t, include_payloads=False) for t in tasks], lambda: task_table(tasks))


@task_group.command("results")
@click.argument("task_id", metavar="ID")
@format_option
@pass_state
def results(state: CliState, task_id: str) -> None:
    """Print a task's decoded result; for a workflow root, each subtask's too."""
    client = state.client()
    task = client.get_task(task_id)
    children: list[common_pb2.Task] = []
    if task.group or not task.HasField("result"):
        children = list(client.list_tasks(parent_id=task_id, include_result=True, page_size=1000))
        # Listed newest first; results read best in the order the subtasks were created.
        children.sort(key=lambda t: (t.created_at.seconds, t.created_at.nanos, t.id))
    if not is_final(task.status) and not children:
        raise FailedPrecondition(
            f"task {task_id} is {status_name(task.status)} and has no result yet; "
            f"follow it with `maosctl task progress {task_id} --follow`"
        )
    if state.json:
        document: dict[str, Any] = _result_dict(task)
        document["children"] = [_result_dict(c) for c in children]
        click.echo(to_json(document))
    else:
        click.echo(_result_text(task))
        for child in children:
            click.echo("")
            click.echo(_result_text(child))
    if is_final(task.status) and task.status != _COMPLETED:
        raise click.exceptions.Exit(1)


def _result_dict(task: common_pb2.Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "description": task.spec.description,
        "status": status_name(task.status),
        "result": task_result(task),
        "error": ({"kind": task.error.kind, "message": task.error.message} if error_line(task) else None),
    }


def _result_text(task: common_pb2.Task) -> str:
    head = f"── {task.spec.description}  ({task.id}, {status_name(task.status)})"
    error = error_line(task)
    if error is not None:
        return f"{head}\nerror: {error}"
    return f"{head}\n{pretty_value(task_result(task))}"


@task_group.command("cancel")
@click.argument("task_id", metavar="ID")
@click.option("--reason", default="", help="Recorded with the cancellation.")
@format_option
@pass_state
def cancel(state: CliState, task_id: str, reason: str) -> None:
    """Cancel a task and its whole subtree (idempotent)."""
    task = state.client().cancel_task(task_id, reason)
    state.emit(task_dict(task), lambda: f"{task.id}: {status_name(task.status)}")


@task_group.command("purge")
@click.argument("root_ids", metavar="ROOT_ID...", nargs=-1, required=True)
@format_option
@pass_state
def purge(state: CliState, root_ids: tuple[str, ...]) -> None:
    """Delete finished task trees: every task, event and attempt under each ROOT_ID (all or none)."""
    reply = state.client().purge_tasks(root_ids)
    state.emit(
        {"roots": reply.roots, "tasks": reply.tasks},
        lambda: f"purged {reply.roots} task tree(s), {reply.tasks} task(s)",
    )


@task_group.command("wait")
@click.argument("task_id", metavar="ID")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Give up after this long.")
@format_option
@pass_state
def wait(state: CliState, task_id: str, timeout: float | None) -> None:
    """Wait for a task to finish and print its result; exit 0 only if it completed."""
    print_outcome(state, wait_with_status(state.client(), task_id, timeout, sys.stderr))


@task_group.command("progress")
@click.argument("task_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep the display live until the task finishes.")
@format_option
@pass_state
def progress(state: CliState, task_id: str, follow: bool) -> None:
    """Show a task and its subtasks: counts by state, a progress bar, the running ones."""
    if state.json:
        # JSON has no live form: one snapshot document of the root and its subtasks.
        client = state.client()
        root = client.get_task(task_id)
        tasks = [t for t in client.list_tasks(root_id=task_id, page_size=1000) if t.id != task_id]
        document = {"root": task_dict(root), "subtasks": [task_dict(t, include_payloads=False) for t in tasks]}
        click.echo(to_json(document))
        return

    async def show_progress() -> ProgressView:
        async with AsyncClient(state.endpoint) as client:
            return await follow_progress(client, task_id, sys.stdout, follow=follow)

    view = asyncio.run(show_progress())
    if view.root_final and view.root.status != _COMPLETED:
        raise click.exceptions.Exit(1)
