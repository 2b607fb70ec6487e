"""Agent recommendations for a task description (`maosctl task analyze "..." --recommend-agents`).

Pure functions: `trees_from_tasks` turns finished tasks (as ListTasks returns
them) into samples; `recommend` answers from a model learned on them with
scikit-learn, or from the performance guide's complexity indicators when the
history is smaller than MIN_HISTORY trees or nothing in it resembles the
description (MIN_SIMILARITY).
"""

from ._heuristics import heuristic_recommendation as heuristic_recommendation
from ._heuristics import indicators as indicators
from ._history import TreeSample as TreeSample
from ._history import tree_sample as tree_sample
from ._history import trees_from_tasks as trees_from_tasks
from ._recommend import MIN_HISTORY as MIN_HISTORY
from ._recommend import MIN_SIMILARITY as MIN_SIMILARITY
from ._recommend import recommend as recommend

__all__ = [
    "MIN_HISTORY",
    "MIN_SIMILARITY",
    "TreeSample",
    "heuristic_recommendation",
    "indicators",
    "recommend",
    "tree_sample",
    "trees_from_tasks",
]
