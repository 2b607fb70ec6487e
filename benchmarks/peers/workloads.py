"""The work every system runs: the same plain functions, imported by name in every system's workers."""

from __future__ import annotations

from collections.abc import Iterable


def noop(x: int) -> int:
    """The no-op: returns its argument, so only the orchestration is measured."""
    return x


def total(values: Iterable[int]) -> int:
    """The fan-in reducer: the sum of the fanned-out results."""
    return sum(values)


def total_of(*values: int) -> int:
    """`total` for systems that pass each upstream result as its own argument (Ray resolves top-level refs only)."""
    return sum(values)


def burn(iterations: int) -> int:
    """CPU-bound pure Python that holds the GIL throughout, so only separate processes run it in parallel."""
    acc = 0
    for i in range(iterations):
        acc = (acc * 31 + i) % 1_000_003
    return acc
