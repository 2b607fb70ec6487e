"""`maosctl task priority | plan | submit-from-template`: the task commands beyond one plain task.

They are registered on the `task` group by maos.client.cli.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from maos.errors import InvalidArgument
from maos.v1 import tasks_pb2

from .._enums import PRIORITY, parse_priority, task_type_name
from .._requests import DEFAULT_PLAN_TEMPLATE
from .._specs import SpecOptions, payload_value_or_bytes
from ._common import CliState, format_option, parse_labels, parse_params, pass_state
from ._detail_views import plan_dict, plan_text
from ._follow import exit_unless_completed, wait_for_tree
from ._output import render_table, to_json
from ._spec_options import spec_options
from ._tasks import print_outcome
from ._terminal import is_tty
from ._views import effective_priority, task_dict
from ._wait import wait_with_status
from ._workflow import tree_document


@click.command("priority")
@click.argument("task_id", metavar="ID")
@click.argument("level", metavar="LEVEL")
@format_option
@pass_state
def priority(state: CliState, task_id: str, level: str) -> None:
    """Change the priority of a queued or pending task to LEVEL: critical, high, medium or low."""
    parse_priority(level)  # an unknown name is refused here, before any RPC
    task = state.client().update_task(task_id, priority=level)
    state.emit(task_dict(task), lambda: f"{task.id}: priority {effective_priority(task)}")


# ---- task plan -------------------------------------------------------------


def _shard_path(shard: str) -> str:
    # The agent host reads the path: a relative one that exists here is made absolute,
    # anything else (a path on another machine) is passed as given.
    path = Path(shard)
    return str(path.resolve()) if not path.is_absolute() and path.exists() else shard


def plan_rows(reply: tasks_pb2.PlanTaskResponse) -> list[tuple[object, ...]]:
    """One row per planned node: key, task id (unless a dry run), agent type, dependencies, description."""
    rows: list[tuple[object, ...]] = []
    for node in reply.nodes:
        spec = node.spec
        rows.append(
            (
                node.key,
                reply.task_ids.get(node.key),
                spec.agent_type or task_type_name(spec.type),
                ", ".join(spec.depends_on) or None,
                spec.description,
            )
        )
    return rows


def plan_text_view(reply: tasks_pb2.PlanTaskResponse) -> str:
    """The `task plan` table: the root id (or the dry-run note), the plan line, the nodes."""
    head = f"root: {reply.root.id}" if reply.HasField("root") and reply.root.id else "dry run: nothing was submitted"
    rows = plan_rows(reply)
    if not reply.task_ids:
        headers: Sequence[str] = ("node", "agent type", "depends on", "description")
        rows = [(r[0], r[2], r[3], r[4]) for r in rows]
    else:
        headers = ("node", "task id", "agent type", "depends on", "description")
    widths = {len(headers) - 1: 60, len(headers) - 2: 40}
    table = render_table(headers, rows, max_widths=widths, empty="(no nodes)")
    return f"{head}\nplan: {plan_text(reply.plan)}\n{table}"


def plan_document(reply: tasks_pb2.PlanTaskResponse) -> dict[str, Any]:
    """The `task plan --format json` document."""
    submitted = reply.HasField("root") and bool(reply.root.id)
    return {
        "dry_run": not submitted,
        "root_id": reply.root.id if submitted else None,
        "plan": plan_dict(reply.plan),
        "nodes": [
            {
                "key": node.key,
                "task_id": reply.task_ids.get(node.key),
                "description": node.spec.description,
                "agent_type": node.spec.agent_type or None,
                "type": task_type_name(node.spec.type),
                "depends_on": list(node.spec.depends_on),
                "input": payload_value_or_bytes(node.spec.input) if node.spec.HasField("input") else None,
            }
            for node in reply.nodes
        ],
    }


@click.command("plan")
@click.argument("description")
@click.option("--aspect", "aspects", multiple=True, metavar="TEXT", help="One parallel stream per aspect (repeatable).")
@click.option(
    "--shard", "shards", multiple=True, metavar="PATH", help="One parallel stream per data shard (repeatable)."
)
@click.option("--template", default=DEFAULT_PLAN_TEMPLATE, show_default=True, help="Planner template.")
@click.option("--stream-agent-type", metavar="NAME", help="Agent type of the streams (default: --agent-type).")
@click.option("--synthesis-agent-type", metavar="NAME", help="Agent type of the synthesis (default coordinator).")
@click.option(
    "--max-agents",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Group the streams into at most N (default: one per aspect or shard).",
)
@click.option("--dry-run", is_flag=True, help="Show the plan; submit nothing.")
@click.option("--wait", is_flag=True, help="Follow the plan live and print its result; exit 0 only if it completed.")
@spec_options(limits=False, graph=False)
@format_option
@pass_state
def plan(
    state: CliState,
    description: str,
    aspects: tuple[str, ...],
    shards: tuple[str, ...],
    template: str,
    stream_agent_type: str | None,
    synthesis_agent_type: str | None,
    max_agents: int,
    dry_run: bool,
    wait: bool,
    spec: SpecOptions,
) -> None:
    """Decompose DESCRIPTION into parallel streams and a synthesis, and submit it.

    Give the streams with --aspect TEXT (each extends the description) or
    --shard PATH (each stream gets input {"path": PATH}). Prints the plan, its
    estimated speedup and the root id.
    """
    if aspects and shards:
        raise InvalidArgument("give --aspect or --shard, not both")
    if not aspects and not shards:
        raise InvalidArgument("give at least one --aspect TEXT or --shard PATH to split the work by")
    if wait and dry_run:
        raise InvalidArgument("--wait needs a submitted plan; drop --dry-run")
    reply = state.client().plan_task(
        description,
        template=template,
        aspects=aspects,
        shards=[_shard_path(s) for s in shards],
        stream_agent_type=stream_agent_type,
        synthesis_agent_type=synthesis_agent_type,
        max_agents=max_agents,
        dry_run=dry_run,
        **spec,
    )
    if not wait:
        state.emit(plan_document(reply), lambda: plan_text_view(reply))
        return
    if not state.json:
        click.echo(plan_text_view(reply))
    task_ids = {node.key: reply.task_ids[node.key] for node in reply.nodes if node.key in reply.task_ids}
    final, tasks = wait_for_tree(state, reply.root.id, {task_id: key for key, task_id in task_ids.items()})
    if state.json:
        click.echo(to_json({**plan_document(reply), **tree_document(reply.root.id, task_ids, final, tasks)}))
    exit_unless_completed(final)


# ---- task submit-from-template ---------------------------------------------


@click.command("submit-from-template")
@click.argument("name")
@click.option("--params", "params_json", metavar="JSON", help='Values of its {placeholders}: a JSON object, {"n": 3}.')
@click.option("--priority", "priority_", metavar="P", help=f"Override its priority: {', '.join(PRIORITY.names)}.")
@click.option("--label", multiple=True, metavar="KEY=VALUE", help="Override or add a label (repeatable).")
@click.option("--parent", metavar="ID", help="Make it a subtask of this task.")
@click.option("--wait", is_flag=True, help="Wait for the task and print its result; exit 0 only if it completed.")
@click.option(
    "--wait-timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Give up waiting after this long."
)
@format_option
@pass_state
def submit_from_template(
    state: CliState,
    name: str,
    params_json: str | None,
    priority_: str | None,
    label: tuple[str, ...],
    parent: str | None,
    wait: bool,
    wait_timeout: float | None,
) -> None:
    """Submit a task from the template NAME, filling its placeholders from --params."""
    params = parse_params(params_json)
    overrides: SpecOptions = {}
    if priority_ is not None:
        parse_priority(priority_)
        overrides["priority"] = priority_
    labels = parse_labels(label)
    if labels:
        overrides["labels"] = labels
    if parent:
        overrides["parent_id"] = parent
    client = state.client()
    task = client.submit_from_template(name, params, **overrides)
    if wait:
        print_outcome(state, wait_with_status(client, task.id, wait_timeout, sys.stderr))
        return
    if state.json:
        click.echo(to_json(task_dict(task)))
        return
    click.echo(task.id)
    if is_tty(sys.stderr):
        click.echo(f"follow it: maosctl task progress {task.id} --follow", err=True)
