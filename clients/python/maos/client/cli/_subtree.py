"""Fetching every descendant of a task, for the tree and result views."""

from __future__ import annotations

from collections import deque

from maos.v1 import common_pb2

from .._sync_client import Client

PAGE_SIZE = 1000
MAX_TASKS = 100_000
"""Most descendants fetched for one view; past that the picture would not fit a screen anyway."""


def is_root(task: common_pb2.Task) -> bool:
    """True for a task at the top of its tree (its own root)."""
    return not task.root_id or task.root_id == task.id


def fetch_subtree(client: Client, task: common_pb2.Task, *, include_result: bool = False) -> list[common_pb2.Task]:
    """Every descendant of `task` (not the task itself), paging through ListTasks.

    A root's descendants come from one paged `root_id` listing; for a task
    inside a tree (a subtask that spawned its own) the levels below it are
    listed by `parent_id`, breadth first.
    """
    if is_root(task):
        return [
            t
            for t in client.list_tasks(
                root_id=task.id, page_size=PAGE_SIZE, include_result=include_result, limit=MAX_TASKS
            )
            if t.id != task.id
        ]
    found: list[common_pb2.Task] = []
    seen = {task.id}
    frontier = deque([task.id])
    while frontier and len(found) < MAX_TASKS:
        parent_id = frontier.popleft()
        for child in client.list_tasks(parent_id=parent_id, page_size=PAGE_SIZE, include_result=include_result):
            if child.id not in seen:
                seen.add(child.id)
                found.append(child)
                frontier.append(child.id)
    return found
