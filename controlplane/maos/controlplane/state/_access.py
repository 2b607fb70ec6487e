"""Who may use which namespace: pure rules, no I/O.

Each root task tree has a namespace, `tree:<root task id>`, which its agents
use by default. An agent (a caller identified as running inside a task) may
use only its own tree's namespace, and `global` only when the control plane
allows it (`GlobalAccess.ALL`) or its agent type has the capability
`state.global`. A caller outside any task — an operator at `maosctl`, an
external program — may use every namespace: MAOS has no authentication yet,
so nothing tells one operator from another; when it does, this is where
roles will be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from maos.errors import InvalidArgument, PermissionDenied

from ._validation import GLOBAL_NAMESPACE, check_namespace, tree_namespace, tree_of

GLOBAL_CAPABILITY = "state.global"


class GlobalAccess(StrEnum):
    """Who may use the `global` namespace (control-plane setting `state.global_access`)."""

    OPERATORS = "operators"  # callers outside tasks, and agents whose type has capability state.global
    ALL = "all"  # every caller, agents included


@dataclass(frozen=True, slots=True)
class StateCaller:
    """An agent calling from inside a task: its task, its tree's root and its type's capabilities."""

    task_id: str
    root_id: str
    agent_type: str = ""
    capabilities: frozenset[str] = frozenset()


def resolve_namespace(requested: str, caller: StateCaller | None, global_access: GlobalAccess) -> str:
    """The namespace a request may use: `requested`, or the caller's tree when it is empty.

    InvalidArgument for a malformed namespace or an empty one from outside a task;
    PermissionDenied for another tree's namespace, or `global` without permission.
    """
    if not requested:
        if caller is None:
            raise InvalidArgument(
                "name a namespace: --namespace tree:<root id> or global (only a caller running inside "
                "a task, with MAOS_TASK_ID set, has a default namespace: its task tree's)"
            )
        return tree_namespace(caller.root_id)
    namespace = check_namespace(requested)
    if caller is None:
        return namespace
    if namespace == GLOBAL_NAMESPACE:
        if global_access is GlobalAccess.ALL or GLOBAL_CAPABILITY in caller.capabilities:
            return namespace
        kind = f" (agent type {caller.agent_type})" if caller.agent_type else ""
        raise PermissionDenied(
            f"namespace global is for operators: task {caller.task_id}{kind} may use it only if its agent "
            f"type has the capability {GLOBAL_CAPABILITY}; its own namespace is {tree_namespace(caller.root_id)}"
        )
    root = tree_of(namespace)
    if root != caller.root_id:
        raise PermissionDenied(
            f"task {caller.task_id} belongs to task tree {caller.root_id}; it may not use namespace "
            f"{namespace} of task tree {root} (its own is {tree_namespace(caller.root_id)})"
        )
    return namespace
