"""Which namespace a shared-state request may use: pure rules."""

from __future__ import annotations

import pytest
from maos.controlplane.state import GlobalAccess, StateCaller, resolve_namespace
from maos.errors import InvalidArgument, PermissionDenied

AGENT = StateCaller("T1", "R1", "worker")
LIBRARIAN = StateCaller("T2", "R2", "librarian", frozenset({"state.global"}))
OPS = GlobalAccess.OPERATORS


def test_an_agent_defaults_to_its_tree_and_may_name_it() -> None:
    assert resolve_namespace("", AGENT, OPS) == "tree:R1"
    assert resolve_namespace("tree:R1", AGENT, OPS) == "tree:R1"


def test_an_agent_may_not_use_another_tree() -> None:
    with pytest.raises(PermissionDenied, match="task T1 belongs to task tree R1; it may not use namespace tree:R2"):
        resolve_namespace("tree:R2", AGENT, GlobalAccess.ALL)


def test_global_needs_the_capability_or_the_setting() -> None:
    with pytest.raises(PermissionDenied, match=r"task T1 \(agent type worker\) may use it only if .* state.global"):
        resolve_namespace("global", AGENT, OPS)
    assert resolve_namespace("global", LIBRARIAN, OPS) == "global"
    assert resolve_namespace("global", AGENT, GlobalAccess.ALL) == "global"
    assert GlobalAccess("all") is GlobalAccess.ALL


def test_operators_name_any_valid_namespace() -> None:
    assert resolve_namespace("global", None, OPS) == "global"
    assert resolve_namespace("tree:01J9ZK3Q7X", None, OPS) == "tree:01J9ZK3Q7X"
    with pytest.raises(InvalidArgument, match="name a namespace"):
        resolve_namespace("", None, OPS)


@pytest.mark.parametrize("bad", ["tree:", "tree:a b", "tree:{x}", "Global", "R1", "tree:" + "x" * 129])
def test_malformed_namespaces(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="is not valid: use tree:<root task id>"):
        resolve_namespace(bad, None, OPS)
