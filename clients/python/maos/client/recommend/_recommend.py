"""`recommend`: the learned model when there is enough relevant history, else the heuristics.

MIN_HISTORY is 20 finished task trees: a forest fitted on fewer mostly
memorises them (the duration of one past run would become "the" estimate),
and below that the guide's indicators are the better guess. MIN_SIMILARITY
is 0.2: when no past tree's description shares that much with this one
(cosine of TF-IDF), history says nothing about how to decompose it, and the
heuristics answer too. The document says which path answered and why, and
how much history there was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._heuristics import heuristic_recommendation
from ._history import TreeSample

MIN_HISTORY = 20
MIN_SIMILARITY = 0.2


def recommend(
    description: str,
    history: Sequence[TreeSample],
    *,
    task_type: int = 0,
    min_history: int = MIN_HISTORY,
    tasks_seen: int | None = None,
) -> dict[str, Any]:
    """The `task analyze "DESCRIPTION" --recommend-agents` document.

    `history` is the finished trees to learn from; `tasks_seen` how many tasks
    they were made of (for the report). Pure: the same inputs give the same answer.
    """
    figures: dict[str, Any] | None = None
    if len(history) >= min_history:
        from ._model import LearnedRecommender  # scikit-learn loads only when it is used

        model = LearnedRecommender(history)
        closest = model.best_similarity(description)
        if closest >= MIN_SIMILARITY:
            figures = model.recommend(description, task_type)
            basis = f"learned (scikit-learn random forest + nearest neighbours) from {len(history)} finished task trees"
        else:
            basis = (
                f"heuristics (the guide's complexity indicators): none of the {len(history)} finished task trees "
                f"resembles this description (best similarity {closest:.2f} < {MIN_SIMILARITY})"
            )
    else:
        basis = (
            f"heuristics (the guide's complexity indicators): {len(history)} finished task trees is fewer than "
            f"the {min_history} needed to learn from history"
        )
    learned = figures is not None
    if figures is None:
        figures = heuristic_recommendation(description, task_type)
    return {
        "description": description,
        "method": "model" if learned else "heuristics",
        "basis": basis,
        "history": {"trees": len(history), "tasks": tasks_seen, "min_trees_for_model": min_history},
        **figures,
    }
