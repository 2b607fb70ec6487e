"""An agent's own checkpoint: `ctx.checkpoint(data)` in attempt 1, `ctx.restore()` in the retry;
and the same for command agents through `maosctl checkpoint save/load`."""

from __future__ import annotations

from typing import Any

from maos.client import task_result
from maos.v1 import common_pb2

from .conftest import Plane


def test_a_retried_attempt_restores_what_the_failed_one_checkpointed(planes: Any) -> None:
    plane: Plane = planes("cp")
    plane.add_host(workers=1)
    client = plane.client()
    retried = client.submit_task(
        "checkpoints, fails, retries", agent_type="checkpointer", max_retries=1, retry_initial_seconds=0.1
    )
    too_big = client.submit_task("checkpoints 2 MiB", agent_type="checkpointer", input={"big": 2 * 1024 * 1024})
    done = {t.id: t for t in client.wait_tasks([retried.id, too_big.id], timeout=60)}

    first = done[retried.id]
    assert first.status == common_pb2.TASK_STATUS_COMPLETED, plane.logs()
    assert task_result(first) == {"attempt": 2, "restored": {"step": 3, "first_restore": None, "saved_by": 1}}
    # Durable, in the tree's shared state under the reserved key.
    stored = client.state.get(f"_maos/checkpoint/{retried.id}", namespace=f"tree:{retried.id}")
    assert stored is not None and stored.value["attempt"] == 1

    big = done[too_big.id]
    assert big.status == common_pb2.TASK_STATUS_FAILED
    assert "the limit is 1,048,576 bytes (1 MiB)" in big.error.message


def test_command_agents_save_and_load_their_checkpoint_with_maosctl(planes: Any) -> None:
    plane: Plane = planes("cp")
    task = plane.client().submit_task("a command agent's task (no host: it stays queued)", agent_type="echo")
    inside = {"MAOS_TASK_ID": task.id, "MAOS_ATTEMPT": "1"}
    missing = plane.maosctl("checkpoint", "load", env=inside)
    assert missing.returncode == 1 and missing.stderr == f"error: task {task.id} has no checkpoint yet\n"
    saved = plane.maosctl("checkpoint", "save", '{"page": 7}', env=inside)
    assert saved.returncode == 0, saved.stderr
    loaded = plane.maosctl("checkpoint", "load", env={**inside, "MAOS_ATTEMPT": "2"})
    assert loaded.returncode == 0 and loaded.stdout.strip() == '{"page":7}'
    outside = plane.maosctl("checkpoint", "save", "1")
    assert outside.returncode == 1 and "MAOS_TASK_ID is not set" in outside.stderr
