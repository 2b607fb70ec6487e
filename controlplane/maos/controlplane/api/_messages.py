"""MessageService: thin — read the caller from metadata, validate the shape, call Messaging.

The caller is the task in the `maos-task-id` metadata (set by the SDK and
maosctl inside an agent; empty for operators). It is the sender of what it
sends and the default mailbox of what it reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from maos.controlplane._convert import timestamp
from maos.controlplane.api._context import before_deadline, caller_task_id
from maos.controlplane.messaging import (
    MAX_SEND_BATCH,
    Messaging,
    Outgoing,
    SendResult,
    StatsRow,
    StoredMessage,
    outgoing,
    read_params,
)
from maos.errors import InvalidArgument, MaosError
from maos.v1 import common_pb2, messages_pb2, messages_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]

SERVICE_NAME: str = messages_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name
"""For the reflection and health lists of the server."""


class MessageServicer(messages_pb2_grpc.MessageServiceServicer):
    """maos.v1.MessageService over a `Messaging`."""

    def __init__(self, messaging: Messaging) -> None:
        self._messaging = messaging
        self._config = messaging.config

    async def Send(self, request: messages_pb2.SendRequest, context: Ctx) -> messages_pb2.SendResponse:
        to_task, root = request.to_task_id, request.broadcast_root_id
        if to_task and root:
            raise InvalidArgument("set to_task_id or broadcast_root_id, not both")
        if not to_task and not root:
            raise InvalidArgument(
                "set to_task_id (one task's mailbox) or broadcast_root_id (every unfinished task of a tree)"
            )
        message = self._outgoing(request.priority, request.payload, request.ttl_seconds, request.message_id)
        sender = caller_task_id(context)
        if to_task:
            return _send_response(await self._messaging.send(sender, to_task, message))
        return _send_response(await self._messaging.broadcast(sender, root, message))

    async def SendBatch(self, request: messages_pb2.SendBatchRequest, context: Ctx) -> messages_pb2.SendBatchResponse:
        if len(request.messages) > MAX_SEND_BATCH:
            raise InvalidArgument(
                f"a batch holds at most {MAX_SEND_BATCH} messages, got {len(request.messages)}; split it"
            )
        items: list[tuple[str, Outgoing]] = []
        for i, item in enumerate(request.messages):
            try:
                if item.broadcast_root_id:
                    raise InvalidArgument("a batch sends to task mailboxes only: broadcast with Send")
                if not item.to_task_id:
                    raise InvalidArgument("set to_task_id (the task whose mailbox receives it)")
                message = self._outgoing(item.priority, item.payload, item.ttl_seconds, item.message_id)
            except MaosError as exc:
                raise type(exc)(f"message {i}: {exc}") from None
            items.append((item.to_task_id, message))
        results = await self._messaging.send_batch(caller_task_id(context), items)
        return messages_pb2.SendBatchResponse(results=[_send_response(r) for r in results])

    async def Publish(self, request: messages_pb2.PublishRequest, context: Ctx) -> messages_pb2.SendResponse:
        message = self._outgoing(request.priority, request.payload, request.ttl_seconds, request.message_id)
        return _send_response(await self._messaging.publish(caller_task_id(context), request.topic, message))

    async def Receive(self, request: messages_pb2.ReceiveRequest, context: Ctx) -> messages_pb2.ReceiveResponse:
        params = read_params(
            max_messages=request.max_messages,
            wait_seconds=before_deadline(request.wait_seconds, context) or 0.0,
            lease_seconds=request.lease_seconds,
            config=self._config,
            limit=self._config.max_receive_batch,
        )
        messages = await self._messaging.receive(caller_task_id(context), request.mailbox, params)
        return messages_pb2.ReceiveResponse(messages=[message_to_proto(m) for m in messages])

    async def Ack(self, request: messages_pb2.AckRequest, context: Ctx) -> messages_pb2.AckResponse:
        acknowledged = await self._messaging.ack(caller_task_id(context), request.mailbox, list(request.message_ids))
        return messages_pb2.AckResponse(acknowledged=acknowledged)

    async def Subscribe(
        self, request: messages_pb2.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[messages_pb2.Message]:
        params = read_params(
            max_messages=request.max_in_flight or self._config.default_max_in_flight,
            wait_seconds=0.0,
            lease_seconds=request.lease_seconds,
            config=self._config,
            limit=self._config.max_in_flight,
        )
        caller = caller_task_id(context)
        async for batch in self._messaging.subscribe(caller or context.peer(), caller, request.mailbox, params):
            for msg in batch:
                yield message_to_proto(msg)

    async def Stats(self, request: messages_pb2.MessageStatsRequest, context: Ctx) -> messages_pb2.MessageStatsResponse:
        return messages_pb2.MessageStatsResponse(mailboxes=[stats_to_proto(row) for row in self._messaging.stats()])

    def _outgoing(self, priority: int, payload: common_pb2.Payload, ttl_seconds: float, message_id: str) -> Outgoing:
        return outgoing(
            priority=priority,
            data=payload.data,
            content_type=payload.content_type,
            ttl_seconds=ttl_seconds,
            message_id=message_id,
            config=self._config,
        )


def add_message_service(server: grpc.aio.Server, messaging: Messaging) -> None:
    """Register MessageService on `server` (add SERVICE_NAME to its reflection/health lists)."""
    messages_pb2_grpc.add_MessageServiceServicer_to_server(MessageServicer(messaging), server)


def message_to_proto(msg: StoredMessage) -> messages_pb2.Message:
    """One delivered copy as the wire message."""
    return messages_pb2.Message(
        id=msg.id,
        sender_task_id=msg.sender,
        recipient=msg.recipient,
        topic=msg.topic,
        priority=msg.priority,  # type: ignore[arg-type]
        payload=common_pb2.Payload(data=msg.data, content_type=msg.content_type),
        sent_at=timestamp(msg.sent_at),
        expires_at=timestamp(msg.expires_at),
        delivery_count=msg.delivery_count,
    )


def stats_to_proto(row: StatsRow) -> messages_pb2.MailboxStats:
    s = row.stats
    return messages_pb2.MailboxStats(
        mailbox=row.name,
        queued=row.queued,
        in_flight=row.in_flight,
        sent=s.sent,
        delivered=s.delivered,
        redelivered=s.redelivered,
        expired=s.expired,
        rejected_full=s.rejected_full,
        bytes=s.bytes,
        batches=s.batches,
        delivery_errors=s.delivery_errors,
    )


def _send_response(result: SendResult) -> messages_pb2.SendResponse:
    return messages_pb2.SendResponse(message_ids=result.message_ids, recipients=result.recipients)
