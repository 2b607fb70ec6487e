"""Ready queue: strict priority order, FIFO within a level, per agent type.

Tasks spawned by a running agent (dynamic subtasks) go in a second lane per
level that is served first and newest first: a tree of agents waiting on their
children then completes depth-first, so few parents are blocked at once (each
blocked parent costs its host an extra worker process). Aging applies to the
FIFO lane only.

Entries are removed lazily: an entry whose task is no longer QUEUED (or was
re-queued, bumping its token) is skipped when it reaches the head, so cancel
and priority changes stay O(1).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ._model import Priority

_LEVELS = tuple(Priority)

# (enqueue order, task id, queue token)
Entry = tuple[int, str, int]


class ReadyQueue:
    """Queued task ids by agent type and priority."""

    def __init__(self) -> None:
        self._by_type: dict[str, dict[Priority, deque[Entry]]] = {}
        self._spawned: dict[str, dict[Priority, list[Entry]]] = {}  # stacks: newest on top
        self._order = 0
        self._live = 0

    def __len__(self) -> int:
        """Entries held, including ones that will be skipped as stale."""
        return self._live

    def push(self, agent_type: str, priority: Priority, task_id: str, token: int, *, spawned: bool = False) -> None:
        levels = self._by_type.get(agent_type)
        if levels is None:
            levels = {p: deque() for p in _LEVELS}
            self._by_type[agent_type] = levels
            self._spawned[agent_type] = {p: [] for p in _LEVELS}
        self._order += 1
        if spawned:
            self._spawned[agent_type][priority].append((self._order, task_id, token))
        else:
            levels[priority].append((self._order, task_id, token))
        self._live += 1

    def depth_by_priority(self) -> dict[Priority, int]:
        depth = dict.fromkeys(_LEVELS, 0)
        for lanes in (self._by_type, self._spawned):
            for levels in lanes.values():
                for p, entries in levels.items():
                    depth[p] += len(entries)
        return depth

    def agent_types(self) -> Iterable[str]:
        return self._by_type.keys()

    def pop_aged(self, level: Priority, is_aged: Callable[[str, int], bool | None]) -> list[str]:
        """Remove and return the tasks at the head of `level` (every agent type) that have
        waited long enough. `is_aged` answers True (aged), False (not yet: stop, as the
        rest of the level is younger) or None (stale entry: drop it)."""
        out: list[str] = []
        for levels in self._by_type.values():
            entries = levels[level]
            while entries:
                verdict = is_aged(entries[0][1], entries[0][2])
                if verdict is False:
                    break
                _, task_id, _ = entries.popleft()
                self._live -= 1
                if verdict:
                    out.append(task_id)
        return out

    def pop(self, agent_types: Iterable[str], is_live: Callable[[str, int], bool]) -> str | None:
        """The most urgent, oldest live task among `agent_types`, or None."""
        types = [t for t in agent_types if t in self._by_type]
        candidates = [self._by_type[t] for t in types]
        stacks = [self._spawned[t] for t in types]
        for level in _LEVELS:
            newest: list[Entry] | None = None
            for lanes in stacks:
                stack = lanes[level]
                while stack and not is_live(stack[-1][1], stack[-1][2]):
                    stack.pop()
                    self._live -= 1
                if stack and (newest is None or stack[-1][0] > newest[-1][0]):
                    newest = stack
            if newest is not None:
                self._live -= 1
                return newest.pop()[1]
            best: deque[Entry] | None = None
            best_order = 0
            for levels in candidates:
                entries = levels[level]
                while entries and not is_live(entries[0][1], entries[0][2]):
                    entries.popleft()
                    self._live -= 1
                if entries and (best is None or entries[0][0] < best_order):
                    best, best_order = entries, entries[0][0]
            if best is not None:
                _, task_id, _ = best.popleft()
                self._live -= 1
                return task_id
        return None
