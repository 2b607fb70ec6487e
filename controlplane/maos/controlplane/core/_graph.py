"""Validation of a submitted task graph: unknown keys, self-edges, cycles, size, depth."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from maos.errors import InvalidArgument


def topological_order(edges: Mapping[str, Sequence[str]], *, max_nodes: int, max_depth: int) -> list[str]:
    """Order node keys so every node follows its dependencies.

    `edges` maps each key to the keys it depends on. Raises InvalidArgument
    naming the offending node for an unknown reference, a self-dependency, a
    cycle, or a graph over the size or depth limits. Kahn's algorithm:
    O(nodes + edges), no recursion, so a 10,000-node chain is fine.
    """
    if len(edges) > max_nodes:
        raise InvalidArgument(f"workflow has {len(edges)} nodes; the limit is {max_nodes}")
    dependents: dict[str, list[str]] = {key: [] for key in edges}
    remaining: dict[str, int] = {}
    for key, deps in edges.items():
        seen: set[str] = set()
        for dep in deps:
            if dep == key:
                raise InvalidArgument(f"node {key!r} depends on itself")
            if dep not in dependents:
                raise InvalidArgument(f"node {key!r} depends on unknown node {dep!r}")
            if dep in seen:
                continue
            seen.add(dep)
            dependents[dep].append(key)
        remaining[key] = len(seen)
    depth = dict.fromkeys(edges, 1)
    # FIFO: independent nodes keep the order they were declared in (dispatch order follows).
    ready = deque(key for key, n in remaining.items() if n == 0)
    order: list[str] = []
    while ready:
        key = ready.popleft()
        order.append(key)
        for child in dependents[key]:
            depth[child] = max(depth[child], depth[key] + 1)
            if depth[child] > max_depth:
                raise InvalidArgument(f"node {child!r} is at depth {depth[child]}; the maximum depth is {max_depth}")
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    if len(order) != len(edges):
        cycle = _find_cycle(edges, {key for key, n in remaining.items() if n > 0})
        raise InvalidArgument(f"dependency cycle among nodes {', '.join(map(repr, cycle[:10]))}")
    return order


def _find_cycle(edges: Mapping[str, Sequence[str]], stuck: set[str]) -> list[str]:
    """The nodes of one cycle, sorted. Every stuck node waits on another stuck node, so
    walking dependencies among them must revisit a node; the walk from there is a cycle."""
    node = min(stuck)
    seen: dict[str, int] = {}
    path: list[str] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(dep for dep in edges[node] if dep in stuck)
    return sorted(path[seen[node] :])
