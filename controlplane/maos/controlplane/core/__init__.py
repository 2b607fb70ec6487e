"""The control plane's pure core: plain data and decisions, no I/O."""

from ._graph import topological_order as topological_order
from ._model import FINAL_STATUSES as FINAL_STATUSES
from ._model import AttemptRecord as AttemptRecord
from ._model import AttemptResult as AttemptResult
from ._model import DependencyPolicy as DependencyPolicy
from ._model import Outcome as Outcome
from ._model import Priority as Priority
from ._model import TaskEventRecord as TaskEventRecord
from ._model import TaskRecord as TaskRecord
from ._model import TaskStatus as TaskStatus
from ._orchestrator import CoreLimits as CoreLimits
from ._orchestrator import Decisions as Decisions
from ._orchestrator import HostState as HostState
from ._orchestrator import Orchestrator as Orchestrator
from ._planner import TEMPLATES as PLANNER_TEMPLATES
from ._planner import Plan as Plan
from ._planner import PlannedNode as PlannedNode
from ._planner import plan_parallel_synthesis as plan_parallel_synthesis
from ._ready_queue import ReadyQueue as ReadyQueue

__all__ = [
    "FINAL_STATUSES",
    "PLANNER_TEMPLATES",
    "AttemptRecord",
    "AttemptResult",
    "CoreLimits",
    "Decisions",
    "DependencyPolicy",
    "HostState",
    "Orchestrator",
    "Outcome",
    "Plan",
    "PlannedNode",
    "Priority",
    "ReadyQueue",
    "TaskEventRecord",
    "TaskRecord",
    "TaskStatus",
    "plan_parallel_synthesis",
    "topological_order",
]
