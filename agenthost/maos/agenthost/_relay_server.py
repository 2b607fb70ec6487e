"""MessageService on the host's relay: a gRPC server on a local Unix socket for its agents.

Same service, same messages, same errors as the control plane's
MessageService, so the SDK and `maosctl msg` talk to either unchanged (the
host sets MAOS_MESSAGES_ENDPOINT for its workers). Errors become statuses in
the control plane's one interceptor.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from maos.controlplane.api._errors import ErrorMappingInterceptor
from maos.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from maos.v1 import messages_pb2, messages_pb2_grpc

from ._relay import LocalMailbox, MessageRelay, check_read
from ._relay_frames import RelayFrames

log = logging.getLogger(__name__)

RELAY_DIR_PREFIX = "maos-relay-"
OWNER_FILE = "owner.pid"  # the host's pid: a later host removes the directory once that process is gone

Ctx = grpc.aio.ServicerContext[Any, Any]
TASK_ID_METADATA = "maos-task-id"


def _caller(context: Ctx) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == TASK_ID_METADATA:
            return value if isinstance(value, str) else value.decode()
    return ""


class RelayServicer(messages_pb2_grpc.MessageServiceServicer):
    def __init__(self, relay: MessageRelay, host_id: str) -> None:
        self._relay = relay
        self._host_id = host_id
        self._limits = relay.config.limits

    async def Send(self, request: messages_pb2.SendRequest, context: Ctx) -> messages_pb2.SendResponse:
        return await self._relay.send(_caller(context), request)

    async def SendBatch(self, request: messages_pb2.SendBatchRequest, context: Ctx) -> messages_pb2.SendBatchResponse:
        return await self._relay.send_batch(_caller(context), request)

    async def Publish(self, request: messages_pb2.PublishRequest, context: Ctx) -> messages_pb2.SendResponse:
        return await self._relay.publish(_caller(context), request)

    async def Receive(self, request: messages_pb2.ReceiveRequest, context: Ctx) -> messages_pb2.ReceiveResponse:
        limits = self._limits
        check_read(request.max_messages, request.wait_seconds, request.lease_seconds, limits.max_receive_batch)
        wait = min(request.wait_seconds, limits.max_wait_seconds)
        remaining = context.time_remaining()
        if remaining is not None:
            wait = max(0.0, min(wait, remaining - 0.05))  # answer before the caller gives up
        response = messages_pb2.ReceiveResponse()
        caller, batch = _caller(context), max(1, request.max_messages)
        await self._relay.receive_into(response.messages, caller, request.mailbox, batch, wait, request.lease_seconds)
        return response

    async def Ack(self, request: messages_pb2.AckRequest, context: Ctx) -> messages_pb2.AckResponse:
        if len(request.message_ids) > self._limits.max_ack_ids:
            raise InvalidArgument(f"at most {self._limits.max_ack_ids} message ids per ack")
        caller = _caller(context)
        done = self._relay.ack(caller, request.mailbox, list(request.message_ids))
        if done is None:
            return await self._relay.forward_ack(caller, request)
        return messages_pb2.AckResponse(acknowledged=done)

    async def Subscribe(
        self, request: messages_pb2.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[messages_pb2.Message]:
        limits = self._limits
        check_read(request.max_in_flight, 0.0, request.lease_seconds, limits.max_in_flight)
        credit = request.max_in_flight or limits.default_max_in_flight
        lm = self._relay.readable(_caller(context), request.mailbox)
        if lm.streams >= limits.max_streams_per_mailbox:
            raise ResourceExhausted(
                f"mailbox {lm.name} already has {lm.streams} subscriber stream(s), the limit; "
                "close the other one or read with Receive"
            )
        lm.streams += 1
        try:
            async for msg in self._stream(lm, credit, request.lease_seconds):
                yield msg
        finally:
            lm.streams -= 1

    async def _stream(self, lm: LocalMailbox, credit: int, lease_seconds: float) -> AsyncIterator[messages_pb2.Message]:
        while True:
            if lm.error is not None:
                raise lm.error
            room = credit - lm.box.in_flight
            taken = self._relay.take(lm, room, lease_seconds) if room > 0 else []
            if taken:
                for msg in taken:
                    yield msg
                continue
            next_lease = lm.box.next_lease_deadline()
            timeout = 30.0 if next_lease is None else max(0.001, next_lease - time.time())
            await lm.changed_within(min(timeout, 30.0))

    async def WatchTopic(
        self, request: messages_pb2.WatchTopicRequest, context: Ctx
    ) -> AsyncIterator[messages_pb2.Message]:
        raise FailedPrecondition(
            "the host's message relay carries agents' mailboxes, not the live topic view: watch "
            f"topic {request.topic!r} on the control plane (its endpoint, MAOS_ENDPOINT)"
        )
        yield  # an async generator, as a server-streaming handler must be

    async def Stats(self, request: messages_pb2.MessageStatsRequest, context: Ctx) -> messages_pb2.MessageStatsResponse:
        stats = self._relay.message_stats()
        row = messages_pb2.HostMessageStatsRow(host_id=self._host_id, stats=stats)
        return messages_pb2.MessageStatsResponse(hosts=[row])


class RelayServer:
    """The relay's gRPC server on a private Unix socket; `endpoint` is the address for agents.
    Beside it, the framed fast path for the hot calls (_relay_frames), which the SDK finds there."""

    def __init__(self, relay: MessageRelay, host_id: str) -> None:
        self._relay = relay
        self._host_id = host_id
        sweep_stale_relay_dirs(Path(tempfile.gettempdir()))
        self._dir = Path(tempfile.mkdtemp(prefix=RELAY_DIR_PREFIX))
        (self._dir / OWNER_FILE).write_text(str(os.getpid()))
        self._path = self._dir / "messages.sock"
        self._server: grpc.aio.Server | None = None
        self._frames = RelayFrames(relay)
        self.endpoint = ""

    async def start(self) -> str:
        server = grpc.aio.server(
            interceptors=[ErrorMappingInterceptor()],
            options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)],
        )
        messages_pb2_grpc.add_MessageServiceServicer_to_server(RelayServicer(self._relay, self._host_id), server)
        server.add_insecure_port(f"unix:{self._path}")
        await server.start()
        os.chmod(self._path, 0o600)  # only this user's processes (the workers) may use it
        self._server = server
        await self._frames.start(self._dir)
        self.endpoint = f"unix:{self._path}"
        return self.endpoint

    async def stop(self) -> None:
        await self._frames.stop()
        if self._server is not None:
            await self._server.stop(1.0)
        shutil.rmtree(self._dir, ignore_errors=True)


def sweep_stale_relay_dirs(tmp: Path) -> int:
    """Remove the socket directories of relays whose host is gone (a SIGKILLed host cannot clean up).

    A directory is stale when the pid in its owner file no longer runs, or, without an owner file
    (older hosts), when nothing accepts on its socket. Returns how many were removed."""
    removed = 0
    for path in tmp.glob(RELAY_DIR_PREFIX + "*"):
        try:
            if not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            owner = path / OWNER_FILE
            stale = not _pid_runs(int(owner.read_text())) if owner.exists() else not _accepts(path / "messages.sock")
        except (OSError, ValueError):
            continue  # another host removing it meanwhile, or not ours to judge
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d message-relay directories of agent hosts that are gone", removed)
    return removed


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _accepts(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True
