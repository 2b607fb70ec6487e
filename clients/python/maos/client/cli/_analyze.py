"""`maosctl task analyze ID --performance`, `task analyze "DESCRIPTION" --recommend-agents` and
`maosctl task compare ID --baseline sequential`.

The figures come from the pure functions in _analysis; these commands fetch
the tree and render. They are registered on the `task` group by maos.client.cli.
"""

from __future__ import annotations

from typing import Any

import click
from maos.errors import InvalidArgument

from .._analysis import analyze as analyze_tree
from .._analysis import compare_sequential
from .._enums import TASK_TYPE, parse_task_type
from ._common import CliState, format_option, pass_state
from ._output import duration, render_fields, render_table
from ._recommend import DEFAULT_HISTORY_TASKS, looks_like_task_id, recommendation, recommendation_text
from ._subtree import fetch_subtree


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def analysis_text(doc: dict[str, Any]) -> str:
    """The people's view of the `task analyze --performance` document."""
    path = doc["critical_path"]
    split = doc["time_split"]
    fields = render_fields(
        [
            ("root", doc["root_id"]),
            ("nodes", doc["nodes"]),
            ("wall time", duration(doc["wall_seconds"])),
            (
                "critical path",
                f"{duration(path['seconds'])} ({_pct(path['share_of_wall'])} of wall): "
                + (" → ".join(n["name"] for n in path["nodes"]) or "-"),
            ),
            ("total work", duration(doc["total_work_seconds"])),
            ("agents used", f"{doc['agents_used']} (distinct agent ids the nodes ran on)"),
            ("parallel efficiency", _pct(doc["parallel_efficiency"])),
            (
                "time split",
                f"waiting on deps {duration(split['waiting_on_dependencies_seconds'])} · "
                f"queued {duration(split['queued_seconds'])} · running {duration(split['running_seconds'])}",
            ),
        ]
    )
    nodes = render_table(
        ("node", "agent", "waiting", "queued", "running"),
        [
            (
                n["name"],
                n["agent_id"],
                duration(n["waiting_seconds"]),
                duration(n["queued_seconds"]),
                duration(n["running_seconds"]),
            )
            for n in split["nodes"]
        ],
        right=(2, 3, 4),
        max_widths={0: 40},
        empty="(no nodes)",
    )
    slowest = render_table(
        ("slowest", "run time"),
        [(n["name"], duration(n["run_seconds"])) for n in doc["slowest"]],
        right=(1,),
        max_widths={0: 40},
    )
    agents = render_table(
        ("agent", "busy", "utilisation"),
        [(a["agent_id"], duration(a["busy_seconds"]), _pct(a["utilisation"])) for a in doc["agents"]],
        right=(1, 2),
    )
    hints = "\n".join(f"  - {h}" for h in doc["suggestions"]) or "  (nothing stands out)"
    return f"{fields}\n\n{nodes}\n\n{slowest}\n\n{agents}\n\nwhat would have helped:\n{hints}"


def compare_text(doc: dict[str, Any]) -> str:
    """The people's view of the `task compare --baseline sequential` document."""
    speedup = "-" if doc["speedup"] is None else f"{doc['speedup']:.2f}x"
    return render_table(
        ("run", "sequential", "speedup", "agents", "efficiency/agent"),
        [
            (
                duration(doc["wall_seconds"]),
                duration(doc["sequential_seconds"]),
                speedup,
                doc["agents_used"],
                _pct(doc["efficiency_per_agent"]),
            )
        ],
        right=(0, 1, 2, 3, 4),
    )


@click.command("analyze")
@click.argument("task_id", metavar="ID|DESCRIPTION")
@click.option("--performance", is_flag=True, help="Where the time went: critical path, efficiency, hints.")
@click.option(
    "--recommend-agents",
    is_flag=True,
    help="Read the argument as a task description: complexity, agents, duration and parallel efficiency, "
    "learned from the finished tasks (the default when the argument is not a task id).",
)
@click.option(
    "--type",
    "task_type",
    type=click.Choice(TASK_TYPE.names, case_sensitive=False),
    help="The described task's type (with --recommend-agents).",
)
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=DEFAULT_HISTORY_TASKS,
    show_default=True,
    metavar="N",
    help="Learn from at most the N newest completed tasks (with --recommend-agents).",
)
@format_option
@pass_state
def analyze(
    state: CliState, task_id: str, performance: bool, recommend_agents: bool, task_type: str | None, history: int
) -> None:
    """Analyse the tree under ID (--performance), or recommend agents for a task DESCRIPTION."""
    if performance and recommend_agents:
        raise InvalidArgument("--performance analyses a task id and --recommend-agents a description: choose one")
    if recommend_agents or (not performance and not looks_like_task_id(task_id)):
        kind = parse_task_type(task_type) if task_type else 0
        recommended = recommendation(state.client(), task_id, kind, history)
        state.emit(recommended, lambda: recommendation_text(recommended))
        return
    if not performance:
        raise InvalidArgument(
            "say what to analyse: --performance (for a task id) or --recommend-agents (for a description)"
        )
    client = state.client()
    root = client.get_task(task_id)
    doc = analyze_tree(root, fetch_subtree(client, root))
    state.emit(doc, lambda: analysis_text(doc))


@click.command("compare")
@click.argument("task_id", metavar="ID")
@click.option(
    "--baseline",
    type=click.Choice(("sequential",)),
    default="sequential",
    show_default=True,
    help="What to compare against: sequential = every node one after another.",
)
@format_option
@pass_state
def compare(state: CliState, task_id: str, baseline: str) -> None:
    """Compare the run of the tree under ID with a baseline: its speedup and efficiency per agent."""
    client = state.client()
    root = client.get_task(task_id)
    doc = compare_sequential(root, fetch_subtree(client, root))
    state.emit(doc, lambda: compare_text(doc))
