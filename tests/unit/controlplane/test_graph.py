"""Workflow graph validation: order, unknown references, cycles, limits."""

from __future__ import annotations

import pytest
from maos.controlplane._ids import UlidGenerator, is_task_id
from maos.controlplane.core import topological_order
from maos.errors import InvalidArgument


def order(edges: dict[str, list[str]], max_nodes: int = 100, max_depth: int = 100) -> list[str]:
    return topological_order(edges, max_nodes=max_nodes, max_depth=max_depth)


def test_dependencies_come_first() -> None:
    result = order({"syn": ["a", "b"], "a": [], "b": ["a"]})
    assert result.index("a") < result.index("b") < result.index("syn")


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ({"a": ["zzz"]}, "node 'a' depends on unknown node 'zzz'"),
        ({"a": ["a"]}, "node 'a' depends on itself"),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}, "dependency cycle among nodes 'a', 'b', 'c'"),
    ],
)
def test_bad_graphs_are_rejected_naming_the_node(edges: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        order(edges)


def test_size_and_depth_limits() -> None:
    with pytest.raises(InvalidArgument, match="3 nodes; the limit is 2"):
        order({"a": [], "b": [], "c": []}, max_nodes=2)
    chain = {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(5)}
    with pytest.raises(InvalidArgument, match="maximum depth is 3"):
        order(chain, max_depth=3)


def test_ten_thousand_node_chain_is_fine() -> None:
    chain = {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(10_000)}
    assert order(chain, max_nodes=10_000, max_depth=10_000)[-1] == "n9999"


def test_ids_are_sortable_and_unique() -> None:
    gen = UlidGenerator()
    ids = [gen.new() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(is_task_id(i) for i in ids[:10])
