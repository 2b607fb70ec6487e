"""`maosctl task analyze "DESCRIPTION" --recommend-agents`: fetch the finished history, recommend, render.

The figures come from maos.client.recommend (pure); this module does the
ListTasks paging and the people's view. Used by the `analyze` command.
"""

from __future__ import annotations

from typing import Any

from maos.errors import InvalidArgument

from .._sync_client import Client
from ..bench import BENCH_LABEL
from ..recommend import recommend, trees_from_tasks
from ._output import duration, render_fields, render_table

DEFAULT_HISTORY_TASKS = 20_000
_ID_ALPHABET = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def looks_like_task_id(text: str) -> bool:
    """True for a task id (a ULID: 26 Crockford base32 characters), false for a description."""
    return len(text) == 26 and set(text) <= _ID_ALPHABET


def recommendation(client: Client, description: str, task_type: int, history_tasks: int) -> dict[str, Any]:
    """The recommendation document, learned from up to `history_tasks` of the newest COMPLETED tasks.

    Listing is newest first and subtasks are newer than their root, so a tree
    whose root made it into the window has all its subtasks too.
    """
    if not description.strip():
        raise InvalidArgument('the description is empty: say what the task is, e.g. "Analyse the sales shards"')
    tasks = list(client.list_tasks(statuses=["completed"], page_size=1000, limit=history_tasks))
    trees = trees_from_tasks(tasks, exclude_label=BENCH_LABEL)
    return recommend(description, trees, task_type=task_type, tasks_seen=len(tasks))


def _types(doc: dict[str, Any]) -> str:
    return ", ".join(f"{t['type']} x{t['count']}" for t in doc["agent_types"]) or "-"


def recommendation_text(doc: dict[str, Any]) -> str:
    """The people's view of the recommendation document."""
    span = doc["estimated_duration_seconds"]
    fields = render_fields(
        [
            ("task", doc["description"]),
            ("complexity score", f"{doc['complexity']:.1f}/10"),
            ("recommended agents", f"{doc['recommended_agents']} ({_types(doc)})"),
            ("estimated duration", f"{duration(span['low'])} to {duration(span['high'])}"),
            ("parallel efficiency", f"{doc['parallel_efficiency']:.1f}x (work done per second of wall time)"),
            ("method", doc["basis"]),
        ]
    )
    if doc["method"] == "heuristics":
        ind = doc["indicators"]
        indicators = (
            f"indicators: {ind['components']} component(s), {ind['scope_words']} scope word(s), "
            f"{ind['risk_words']} risk word(s), {ind['words']} words, role {ind['role']}"
        )
        return f"{fields}\n\n{indicators}"
    similar = render_table(
        ("similar finished tree", "similarity", "nodes", "wall"),
        [
            (s["description"], f"{s['similarity']:.2f}", s["nodes"], duration(s["wall_seconds"]))
            for s in doc["similar_trees"]
        ],
        right=(1, 2, 3),
        max_widths={0: 60},
    )
    return f"{fields}\n\n{similar}"
