"""CheckpointClient: create, list, show, restore and delete control-plane checkpoints.

    with CheckpointClient() as checkpoints:          # $MAOS_ENDPOINT or 127.0.0.1:7700
        made = checkpoints.create(label="before the upgrade", progress=print)
        for c in checkpoints.list():
            print(c.id, c.counts["tasks"], f"{c.compression_ratio:.1f}x")
        summary = checkpoints.restore(made.id)      # onto an empty control plane

Create and restore stream progress (maos.v1.CheckpointProgress) to `progress`
while they run and have no deadline of their own unless `timeout` is given.
Errors are maos.errors: NotFound (no such checkpoint), FailedPrecondition (a
corrupt, truncated or incompatible checkpoint, a control plane that is not
empty, a bucket that does not exist), Unavailable (storage unreachable).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import grpc
from maos.v1 import checkpoints_pb2, checkpoints_pb2_grpc

from ._config import CHANNEL_OPTIONS, DEFAULT_RPC_TIMEOUT_SECONDS, resolve_endpoint
from ._errors import from_rpc_error

ProgressFn = Callable[[checkpoints_pb2.CheckpointProgress], None]

__all__ = ["CheckpointClient"]


class CheckpointClient:
    """Blocking client of CheckpointService; one channel, opened on first use."""

    def __init__(self, endpoint: str | None = None, *, timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS) -> None:
        self.endpoint = resolve_endpoint(endpoint)
        self.timeout = timeout
        self._channel: grpc.Channel | None = None
        self._stub: checkpoints_pb2_grpc.CheckpointServiceStub | None = None

    def _service(self) -> checkpoints_pb2_grpc.CheckpointServiceStub:
        if self._stub is None:
            self._channel = grpc.insecure_channel(self.endpoint, options=CHANNEL_OPTIONS)
            self._stub = checkpoints_pb2_grpc.CheckpointServiceStub(self._channel)
        return self._stub

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    def __enter__(self) -> CheckpointClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _follow(self, call: Any, progress: ProgressFn | None) -> checkpoints_pb2.CheckpointProgress:
        """Progress items to `progress` until the last one, which is returned. Leaving early
        (Ctrl-C) cancels the call: a create is abandoned, a restore finishes on its own."""
        last = checkpoints_pb2.CheckpointProgress()
        try:
            for item in call:
                last = item
                if progress is not None and item.phase != "done":
                    progress(item)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from None
        finally:
            call.cancel()  # a no-op once the stream has ended
        return last

    def create(
        self, label: str = "", *, progress: ProgressFn | None = None, timeout: float | None = None
    ) -> checkpoints_pb2.Checkpoint:
        """Write a checkpoint of the control plane now; the checkpoint's description."""
        request = checkpoints_pb2.CreateCheckpointRequest(label=label)
        last = self._follow(self._service().CreateCheckpoint(request, timeout=timeout), progress)
        return last.checkpoint

    def restore(
        self, checkpoint_id: str, *, progress: ProgressFn | None = None, timeout: float | None = None
    ) -> checkpoints_pb2.RestoreSummary:
        """Restore a checkpoint onto this (empty) control plane; what was restored."""
        request = checkpoints_pb2.RestoreCheckpointRequest(id=checkpoint_id)
        last = self._follow(self._service().RestoreCheckpoint(request, timeout=timeout), progress)
        return last.restored

    def list(self) -> list[checkpoints_pb2.Checkpoint]:
        """Every checkpoint, oldest first (unreadable ones with `problem` set)."""
        return list(self.list_response().checkpoints)

    def list_response(self) -> checkpoints_pb2.ListCheckpointsResponse:
        """The listing with the target it came from."""
        try:
            return self._service().ListCheckpoints(checkpoints_pb2.ListCheckpointsRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from None

    def get(self, checkpoint_id: str) -> checkpoints_pb2.Checkpoint:
        try:
            return self._service().GetCheckpoint(
                checkpoints_pb2.GetCheckpointRequest(id=checkpoint_id), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from None

    def delete(self, checkpoint_id: str) -> checkpoints_pb2.Checkpoint:
        try:
            return self._service().DeleteCheckpoint(
                checkpoints_pb2.DeleteCheckpointRequest(id=checkpoint_id), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from None
