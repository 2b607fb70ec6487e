"""The echo agent: returns its input unchanged (the no-op that measures pure orchestration overhead)."""

from __future__ import annotations

from typing import Any

from maos.client._context import TaskContext


def run(ctx: TaskContext, input: Any) -> Any:
    """Return `input` as it came."""
    return input
