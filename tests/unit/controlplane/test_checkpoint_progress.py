"""A checkpoint call's progress stream: every phase reaches the caller, however fast the work."""

from __future__ import annotations

from typing import cast

from maos.controlplane.api._checkpoints import CheckpointServicer
from maos.controlplane.checkpoints import CheckpointManager, Progress, ProgressFn


async def test_phases_reported_between_two_sends_all_reach_the_watcher_newest_of_each() -> None:
    servicer = CheckpointServicer(cast(CheckpointManager, None))  # _stream needs no manager

    async def restore(report: ProgressFn) -> str:
        # A small restore: every report lands in one loop turn, and the work ends right after.
        report(Progress("reading", "reading", 0, 10))
        report(Progress("reading", "reading", 10, 10))
        report(Progress("verifying", "verifying checksums"))
        report(Progress("restoring", "restoring"))
        return "restored"

    out = [item async for item in servicer._stream(restore, finish_if_abandoned=False, what="restore")]
    assert out[-1] == "restored"
    progress = [p for p in out[:-1] if isinstance(p, Progress)]
    assert [(p.phase, p.done) for p in progress] == [("reading", 10), ("verifying", 0), ("restoring", 0)]
