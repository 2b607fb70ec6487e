"""The guide's complexity indicators, for when there is too little history to learn from.

Calibrated on the guide's own example ("Create a comprehensive e-commerce
platform with user management, product catalog, shopping cart, payment
processing, and admin dashboard": complexity 8.5/10, 6 agents, 45-60 minutes):

- components: the parts the description enumerates (split on commas,
  semicolons and "and"); each part is a parallel stream;
- scope words ("comprehensive", "platform", "end-to-end", ...) and
  technical-risk words ("payment", "security", "migration", ...);
- length, up to 40 words.

complexity = 1 + 1.25 x (components - 1) + 0.75 x scope + 0.25 x risk + min(words / 40, 1),
clamped to 1..10 and rounded to a half. Agents: one per component plus one
synthesis agent when there are two or more, capped by the guide's
min(complexity + 2, 8). Parallel efficiency: the guide's streams x 0.8
(coordination overhead). Duration: sequential effort of 2.5 x complexity^2
minutes divided by that speedup, to 4/3 of it. These are guesses about an
unknown cluster; the learned model replaces them once there is history.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

STREAM_EFFICIENCY = 0.8  # the guide's estimated_speedup = len(subtasks) * 0.8
MAX_AGENTS = 8  # the guide's agent selector: min(complexity + 2, 8)

SCOPE_WORDS = frozenset(
    {
        "architecture",
        "complete",
        "comprehensive",
        "distributed",
        "end-to-end",
        "enterprise",
        "entire",
        "full",
        "platform",
        "production",
        "scalable",
        "system",
    }
)
RISK_WORDS = frozenset(
    {
        "api",
        "authentication",
        "compliance",
        "concurrency",
        "dashboard",
        "database",
        "encryption",
        "integration",
        "migration",
        "payment",
        "payments",
        "real-time",
        "realtime",
        "security",
    }
)
# Guide-style roles by keyword; the first role with the most hits wins.
ROLE_WORDS: dict[str, frozenset[str]] = {
    "researcher": frozenset(
        {"research", "investigate", "survey", "study", "explore", "market", "competitors", "literature", "review"}
    ),
    "coder": frozenset(
        {"create", "build", "implement", "develop", "code", "program", "platform", "api", "app", "website", "refactor"}
    ),
    "analyst": frozenset(
        {"analyse", "analyze", "analysis", "statistics", "data", "metrics", "csv", "trend", "trends", "shard"}
    ),
    "tester": frozenset({"test", "tests", "testing", "verify", "qa", "validate"}),
}
# The role of each TaskType (common_pb2 numbers): an explicit type beats the keywords.
ROLE_BY_TASK_TYPE = {1: "researcher", 2: "coder", 3: "analyst", 4: "tester", 5: "coordinator"}
SYNTHESIS_ROLE = "coordinator"

_WORD = re.compile(r"[a-z][a-z0-9-]*")
_PARTS = re.compile(r"[,;]|\band\b|&", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Indicators:
    """What the heuristics read from a description."""

    components: int
    scope: int
    risk: int
    words: int
    role: str


def components(description: str) -> int:
    """How many parts the description enumerates (1 when it lists none)."""
    parts = [p for p in _PARTS.split(description) if _WORD.search(p.lower())]
    return max(len(parts), 1)


def indicators(description: str, task_type: int = 0) -> Indicators:
    """The complexity indicators of a description (and its task type, if given)."""
    words = _WORD.findall(description.lower())
    vocabulary = set(words)
    hits = {role: len(vocabulary & keys) for role, keys in ROLE_WORDS.items()}
    best = max(hits.values(), default=0)
    role = ROLE_BY_TASK_TYPE.get(task_type) or next((r for r, n in hits.items() if n == best and n > 0), "generalist")
    return Indicators(
        components=components(description),
        scope=len(vocabulary & SCOPE_WORDS),
        risk=len(vocabulary & RISK_WORDS),
        words=len(words),
        role=role,
    )


def _half(value: float) -> float:
    return round(value * 2) / 2


def complexity(ind: Indicators) -> float:
    """The 1..10 complexity score of the module docstring."""
    raw = 1 + 1.25 * (ind.components - 1) + 0.75 * ind.scope + 0.25 * ind.risk + min(ind.words / 40, 1.0)
    return _half(min(max(raw, 1.0), 10.0))


def heuristic_recommendation(description: str, task_type: int = 0) -> dict[str, object]:
    """Complexity, agents (count and roles), duration range and parallel efficiency by the indicators."""
    ind = indicators(description, task_type)
    score = complexity(ind)
    cap = min(math.ceil(score) + 2, MAX_AGENTS)
    streams = min(ind.components, cap - 1) if ind.components > 1 else 1
    agents = streams + 1 if streams > 1 else 1
    speedup = round(streams * STREAM_EFFICIENCY, 2) if streams > 1 else 1.0
    effort_minutes = 2.5 * score * score
    low = effort_minutes / speedup * 60
    types = [{"type": ind.role, "count": streams}]
    if streams > 1:
        types.append({"type": SYNTHESIS_ROLE, "count": 1})
    return {
        "complexity": score,
        "recommended_agents": agents,
        "agent_types": types,
        "parallel_streams": streams,
        "estimated_duration_seconds": {"low": round(low), "high": round(low * 4 / 3)},
        "parallel_efficiency": speedup,
        "indicators": {
            "components": ind.components,
            "scope_words": ind.scope,
            "risk_words": ind.risk,
            "words": ind.words,
            "role": ind.role,
        },
    }
