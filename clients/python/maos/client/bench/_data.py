"""Data the analyst agent works on: CSV shards written where the agent hosts can read them."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from maos.errors import FailedPrecondition
from maos.v1 import common_pb2

from .._enums import status_name

_SEED = 6  # the same shard every run, so runs compare


def write_shard(directory: Path, rows: int) -> Path:
    """A CSV of `rows` rows (day, price, qty, score) under `directory`; written once per size."""
    path = (directory / f"bench-shard-{rows}.csv").resolve()
    if path.exists():
        return path
    rng = random.Random(_SEED)
    tmp = path.with_suffix(".tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["day", "price", "qty", "score"])
            for day in range(rows):
                out.writerow([day, round(rng.gauss(100, 15), 3), rng.randint(1, 50), round(rng.random(), 5)])
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FailedPrecondition(f"cannot write the bench's data file {path}: {exc.strerror or exc}") from None
    return path


def require_completed(task: common_pb2.Task, what: str) -> None:
    """FailedPrecondition with the task's own error unless it completed; says what to do when the
    hosts cannot see the bench's data files (the usual cause on a remote cluster)."""
    if task.status == common_pb2.TASK_STATUS_COMPLETED:
        return
    reason = task.error.message or status_name(task.status)
    if "input file not found" in reason:
        raise FailedPrecondition(
            f"{what}: the agent hosts cannot read the bench's data file ({reason}); run maosctl bench on a "
            "machine whose files the hosts see, or pass --data-dir DIR on a filesystem they share"
        )
    raise FailedPrecondition(f"{what}: task {task.id} {status_name(task.status)}: {reason}")
