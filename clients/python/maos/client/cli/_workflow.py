"""`maosctl workflow submit FILE`: a graph of tasks from a YAML or JSON file in one request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from maos.v1 import common_pb2

from ._common import CliState, format_option, pass_state
from ._follow import exit_unless_completed, wait_for_tree
from ._output import render_table, to_json
from ._views import task_dict
from ._workflow_file import read_workflow_file


@click.group("workflow")
def workflow_group() -> None:
    """Graphs of tasks: nodes with dependencies, submitted in one request."""


def ids_text(root_id: str, task_ids: Mapping[str, str]) -> str:
    """The root id, then the node -> task id table, in the file's order."""
    table = render_table(("node", "task id"), list(task_ids.items()))
    return f"root: {root_id}\n{table}"


def _in_file_order(keys: Sequence[str], task_ids: Mapping[str, str]) -> dict[str, str]:
    ordered = {key: task_ids[key] for key in keys if key in task_ids}
    ordered.update((key, task_id) for key, task_id in task_ids.items() if key not in ordered)
    return ordered


def tree_document(
    root_id: str, task_ids: Mapping[str, str], root: common_pb2.Task, tasks: Sequence[common_pb2.Task]
) -> dict[str, Any]:
    """The --wait --format json document: the ids, the finished root and every task keyed by node."""
    by_id = {t.id: t for t in tasks}
    return {
        "root_id": root_id,
        "task_ids": dict(task_ids),
        "root": task_dict(root),
        "tasks": {key: task_dict(by_id[task_id]) for key, task_id in task_ids.items() if task_id in by_id},
    }


@workflow_group.command("submit")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--wait", is_flag=True, help="Follow the workflow live and print its result; exit 0 only if it completed."
)
@format_option
@pass_state
def submit(state: CliState, file: Path, wait: bool) -> None:
    """Submit the workflow in FILE (YAML or JSON); prints the root id and each node's task id.

    FILE has a `description` (the root), optional `priority` and `labels`, and
    `nodes`: a list of mappings with an `id`, or a mapping id -> node. Node
    fields: description, agent_type, type, input, depends_on, priority,
    timeout, queue_timeout, max_retries, retry (initial, backoff, max,
    non_retryable), on_dependency_failure (fail, skip, continue),
    required_capabilities, labels.
    """
    workflow = read_workflow_file(file)
    client = state.client()
    root, ids = client.submit_workflow(
        workflow.nodes,
        workflow.description,
        priority=workflow.priority,
        labels=workflow.labels,
        idempotency_key=workflow.idempotency_key,
    )
    task_ids = _in_file_order(list(workflow.nodes), ids)
    if not wait:
        state.emit({"root_id": root.id, "task_ids": task_ids}, lambda: ids_text(root.id, task_ids))
        return
    if not state.json:
        click.echo(ids_text(root.id, task_ids))
    final, tasks = wait_for_tree(state, root.id, {task_id: key for key, task_id in task_ids.items()})
    if state.json:
        click.echo(to_json(tree_document(root.id, task_ids, final, tasks)))
    exit_unless_completed(final)
