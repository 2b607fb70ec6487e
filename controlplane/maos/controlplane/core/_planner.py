"""Decomposition templates: turn one task into a workflow of parallel streams + synthesis.

Pure: takes plain values, returns plain node descriptions; the edge validates
and submits them like any workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maos.errors import InvalidArgument

PARALLEL_SYNTHESIS = "parallel-synthesis"
TEMPLATES = (PARALLEL_SYNTHESIS,)
# The guide's estimate: each parallel stream is worth 0.8 of an agent once
# coordination overhead is paid.
STREAM_EFFICIENCY = 0.8


@dataclass(frozen=True, slots=True)
class PlannedNode:
    key: str
    description: str
    input: dict[str, Any]
    depends_on: tuple[str, ...]
    synthesis: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    template: str
    nodes: list[PlannedNode] = field(default_factory=list)
    parallel_streams: int = 0
    estimated_speedup: float = 1.0
    synthesis_key: str = "synthesis"


def plan_parallel_synthesis(
    description: str,
    *,
    aspects: list[str],
    shards: list[str],
    base_input: dict[str, Any],
    max_agents: int = 0,
    template: str = PARALLEL_SYNTHESIS,
) -> Plan:
    """One stream per aspect (or data shard) and a synthesis depending on all of them.

    With `max_agents` k below the number of streams, the streams form k chains
    (each waits for the previous one of its chain), so at most k run at once.
    """
    if template not in TEMPLATES:
        raise InvalidArgument(f"unknown planner template {template!r}; known: {', '.join(TEMPLATES)}")
    if aspects and shards:
        raise InvalidArgument("give aspects or shards, not both")
    items = aspects or shards
    if not items:
        raise InvalidArgument("the parallel-synthesis template needs at least one aspect or shard")
    if any(not str(item).strip() for item in items):
        raise InvalidArgument("an aspect or shard is empty")
    if max_agents < 0:
        raise InvalidArgument("max_agents must not be negative")
    streams = min(len(items), max_agents) if max_agents else len(items)
    kind = "shard" if shards else "stream"
    nodes: list[PlannedNode] = []
    for i, item in enumerate(items):
        key = f"{kind}-{i + 1}"
        previous = i - streams
        depends = (f"{kind}-{previous + 1}",) if previous >= 0 else ()
        if shards:
            text = f"{description} — shard {i + 1} of {len(items)}: {item}"
            node_input = {**base_input, "path": item}
        else:
            text = f"{description} — focusing on {item}"
            node_input = {**base_input, "aspect": item}
        nodes.append(PlannedNode(key, text, node_input, depends))
    stream_keys = tuple(n.key for n in nodes)
    nodes.append(
        PlannedNode(
            "synthesis",
            f"Synthesise the findings of {len(items)} {kind}s: {description}",
            dict(base_input),
            stream_keys,
            synthesis=True,
        )
    )
    speedup = max(1.0, streams * STREAM_EFFICIENCY) if streams > 1 else 1.0
    return Plan(template, nodes, streams, round(speedup, 2))
