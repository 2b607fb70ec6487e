"""Waiting on one task from the CLI, with a one-line status on stderr when it is a terminal."""

from __future__ import annotations

import time
from typing import TextIO

from maos.errors import DeadlineExceeded
from maos.v1 import common_pb2

from .._enums import is_final, status_name
from .._sync_client import Client
from ._output import duration
from ._terminal import LiveRegion, is_tty
from ._views import progress_text

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# Each WaitTasks call returns the moment the task is final; the chunk only bounds
# how stale the status line can get.
_STATUS_CHUNK_SECONDS = 1.0


def wait_with_status(client: Client, task_id: str, timeout: float | None, status_out: TextIO) -> common_pb2.Task:
    """Wait for `task_id` to be final; DeadlineExceeded after `timeout` seconds."""
    if not is_tty(status_out):
        return client.wait_task(task_id, timeout=timeout)
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    region = LiveRegion(status_out)
    turn = 0
    try:
        while True:
            chunk = _STATUS_CHUNK_SECONDS
            if deadline is not None:
                chunk = max(min(chunk, deadline - time.monotonic()), 0.0)
            (task,) = client.wait_tasks([task_id], timeout=chunk)
            if is_final(task.status):
                return task
            elapsed = time.monotonic() - started
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(
                    f"task {task_id} is still {status_name(task.status)} after {elapsed:.1f}s of waiting"
                )
            where = f" on {task.placement.host_id}" if task.placement.host_id else ""
            progress = f" {progress_text(task)}" if progress_text(task) else ""
            spin = _SPINNER[turn % len(_SPINNER)]
            turn += 1
            region.update([f"{spin} {task_id}: {status_name(task.status)}{where}{progress}  {duration(elapsed)}"])
    finally:
        region.clear()
