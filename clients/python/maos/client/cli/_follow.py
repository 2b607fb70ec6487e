"""`--wait` for commands that submit a whole tree (workflow submit, task plan).

In table mode the tree is followed with the live display of `task progress
--follow`; with --format json nothing is drawn: the root is waited on and
the finished tree comes back for one JSON document.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

import click
from maos.v1 import common_pb2

from .._async_client import AsyncClient
from ._common import CliState
from ._progress import follow_progress
from ._subtree import fetch_subtree


def wait_for_tree(
    state: CliState, root_id: str, names: Mapping[str, str]
) -> tuple[common_pb2.Task, list[common_pb2.Task]]:
    """Wait until the root is final; return it and its descendants (with results).

    `names` maps task ids to the short names the display shows (node keys).
    """
    if state.json:
        client = state.client()
        root = client.wait_task(root_id)
        return root, fetch_subtree(client, root, include_result=True)

    async def follow() -> tuple[common_pb2.Task, list[common_pb2.Task]]:
        async with AsyncClient(state.endpoint) as client:
            view = await follow_progress(client, root_id, sys.stdout, names=names)
            return view.root, list(view.children.values())

    click.echo("")
    return asyncio.run(follow())


def exit_unless_completed(root: common_pb2.Task) -> None:
    """Exit 1 when the waited-on root did not complete (its error is already on screen)."""
    if root.status != common_pb2.TASK_STATUS_COMPLETED:
        raise click.exceptions.Exit(1)
