"""CheckpointService: thin over maos.controlplane.checkpoints.CheckpointManager.

Create and Restore stream progress while the manager works: the newest progress
is kept and sent when the client is ready for it (never a growing buffer), and the
last item carries the result. A client that goes away abandons a create; a restore
that has started always finishes (stopping half-way would leave a half-restored
control plane), and its outcome is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from maos.controlplane._convert import timestamp
from maos.controlplane.checkpoints import CheckpointManager, Listed, Manifest, Progress, ProgressFn, RestoreSummary
from maos.errors import InvalidArgument
from maos.v1 import checkpoints_pb2, checkpoints_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
_T = TypeVar("_T")

log = logging.getLogger(__name__)

CHECKPOINT_SERVICE_NAME: str = checkpoints_pb2.DESCRIPTOR.services_by_name["CheckpointService"].full_name


def checkpoint_to_proto(manifest: Manifest, location: str) -> checkpoints_pb2.Checkpoint:
    return checkpoints_pb2.Checkpoint(
        id=manifest.id,
        created_at=timestamp(manifest.created_at),
        trigger=manifest.trigger,
        label=manifest.label,
        format_version=manifest.format_version,
        maos_version=manifest.maos_version,
        location=location,
        source=manifest.source,
        raw_bytes=manifest.raw_bytes,
        compressed_bytes=manifest.compressed_bytes,
        compression_ratio=manifest.compression_ratio,
        duration_seconds=manifest.duration_seconds,
        counts={k: max(v, 0) for k, v in manifest.counts.items()},
        sections=[
            checkpoints_pb2.CheckpointSection(
                name=s.name, items=s.items, raw_bytes=s.raw_bytes, compressed_bytes=s.compressed_bytes, sha256=s.sha256
            )
            for s in manifest.sections
        ],
    )


def _progress_to_proto(p: Progress) -> checkpoints_pb2.CheckpointProgress:
    return checkpoints_pb2.CheckpointProgress(phase=p.phase, message=p.message, done=p.done, total=p.total)


class _Latest:
    """Progress reports not yet sent: the newest of each run of one phase. A report replaces a
    waiting one of its own phase, never one of another: a watcher sees every phase, however
    quickly they follow each other between two sends."""

    def __init__(self) -> None:
        self.pending: list[Progress] = []
        self.changed = asyncio.Event()

    def __call__(self, progress: Progress) -> None:
        if self.pending and self.pending[-1].phase == progress.phase:
            self.pending[-1] = progress
        else:
            self.pending.append(progress)
        self.changed.set()

    def take(self) -> list[Progress]:
        waiting, self.pending = self.pending, []
        self.changed.clear()
        return waiting


class CheckpointServicer(checkpoints_pb2_grpc.CheckpointServiceServicer):
    def __init__(self, manager: CheckpointManager) -> None:
        self._m = manager
        self._background: set[asyncio.Task[Any]] = set()

    def _location(self, checkpoint_id: str) -> str:
        return self._m.target.location(checkpoint_id)

    async def _stream(
        self, run: Callable[[ProgressFn], Awaitable[_T]], *, finish_if_abandoned: bool, what: str
    ) -> AsyncIterator[Progress | _T]:
        """Progress reports while `run` works, then its result (or its exception)."""
        latest = _Latest()
        task: asyncio.Task[_T] = asyncio.ensure_future(run(latest))
        try:
            while not task.done():
                waiter = asyncio.ensure_future(latest.changed.wait())
                try:
                    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                for progress in latest.take():
                    yield progress
            yield task.result()
        finally:
            if not task.done():
                if finish_if_abandoned:
                    self._background.add(task)
                    task.add_done_callback(lambda t: self._abandoned_done(t, what))
                else:
                    task.cancel()

    def _abandoned_done(self, task: asyncio.Task[Any], what: str) -> None:
        self._background.discard(task)
        if task.cancelled():
            log.warning("%s was cancelled after its caller went away", what)
        elif task.exception() is not None:
            log.error("%s failed after its caller went away: %s", what, task.exception())
        else:
            log.info("%s finished after its caller went away", what)

    async def CreateCheckpoint(
        self, request: checkpoints_pb2.CreateCheckpointRequest, context: Ctx
    ) -> AsyncIterator[checkpoints_pb2.CheckpointProgress]:
        async for item in self._stream(
            lambda report: self._m.create(label=request.label, progress=report),
            finish_if_abandoned=False,
            what="a checkpoint",
        ):
            if isinstance(item, Progress):
                yield _progress_to_proto(item)
            else:
                yield checkpoints_pb2.CheckpointProgress(
                    phase="done",
                    message=f"checkpoint {item.id} written",
                    checkpoint=checkpoint_to_proto(item, self._location(item.id)),
                )

    async def RestoreCheckpoint(
        self, request: checkpoints_pb2.RestoreCheckpointRequest, context: Ctx
    ) -> AsyncIterator[checkpoints_pb2.CheckpointProgress]:
        checkpoint_id = _required_id(request.id)
        async for item in self._stream(
            lambda report: self._m.restore(checkpoint_id, report),
            finish_if_abandoned=True,
            what=f"the restore of checkpoint {checkpoint_id}",
        ):
            if isinstance(item, Progress):
                yield _progress_to_proto(item)
            else:
                yield checkpoints_pb2.CheckpointProgress(
                    phase="done", message=f"checkpoint {checkpoint_id} restored", restored=self._summary(item)
                )

    def _summary(self, s: RestoreSummary) -> checkpoints_pb2.RestoreSummary:
        return checkpoints_pb2.RestoreSummary(
            checkpoint=checkpoint_to_proto(s.checkpoint, self._location(s.checkpoint.id)),
            counts={k: max(v, 0) for k, v in s.counts.items()},
            hosts=s.hosts,
            duration_seconds=s.duration_seconds,
        )

    async def ListCheckpoints(
        self, request: checkpoints_pb2.ListCheckpointsRequest, context: Ctx
    ) -> checkpoints_pb2.ListCheckpointsResponse:
        listed = await self._m.list_checkpoints()
        return checkpoints_pb2.ListCheckpointsResponse(
            checkpoints=[self._listed(c) for c in listed], target=self._m.target.description
        )

    def _listed(self, c: Listed) -> checkpoints_pb2.Checkpoint:
        if c.manifest is None:
            return checkpoints_pb2.Checkpoint(id=c.id, location=self._location(c.id), problem=c.problem)
        return checkpoint_to_proto(c.manifest, self._location(c.id))

    async def GetCheckpoint(
        self, request: checkpoints_pb2.GetCheckpointRequest, context: Ctx
    ) -> checkpoints_pb2.Checkpoint:
        checkpoint_id = _required_id(request.id)
        return checkpoint_to_proto(await self._m.get(checkpoint_id), self._location(checkpoint_id))

    async def DeleteCheckpoint(
        self, request: checkpoints_pb2.DeleteCheckpointRequest, context: Ctx
    ) -> checkpoints_pb2.Checkpoint:
        return self._listed(await self._m.delete(_required_id(request.id)))


def _required_id(checkpoint_id: str) -> str:
    if not checkpoint_id:
        raise InvalidArgument("id is empty: name a checkpoint (see `maosctl checkpoint list`)")
    return checkpoint_id


def add_checkpoint_service(server: grpc.aio.Server, manager: CheckpointManager) -> None:
    """Register CheckpointService on `server` (add CHECKPOINT_SERVICE_NAME to its reflection/health lists)."""
    checkpoints_pb2_grpc.add_CheckpointServiceServicer_to_server(CheckpointServicer(manager), server)
