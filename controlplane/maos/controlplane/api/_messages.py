"""MessageService: thin — read the caller from metadata, validate the shape, call Messaging.

The caller is the task in the `maos-task-id` metadata (set by the SDK and
maosctl inside an agent; empty for operators). It is the sender of what it
sends and the default mailbox of what it reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
from maos.controlplane.api._context import before_deadline, caller_task_id
from maos.controlplane.fanout import TopicFeed
from maos.controlplane.messaging import (
    MAX_SEND_BATCH,
    Messaging,
    Outgoing,
    ReadParams,
    SendResult,
    StatsRow,
    message_to_proto,
    outgoing,
    read_params,
)
from maos.controlplane.messaging._checks import check_batch_items
from maos.controlplane.messaging._names import check_token
from maos.controlplane.messaging._wire import encoded_messages
from maos.errors import InvalidArgument, NotFound
from maos.v1 import common_pb2, messages_pb2, messages_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]
HostStatsSource = Callable[[], list[messages_pb2.HostMessageStatsRow]]
AgentLookup = Callable[[str], str | None]  # agent id -> the task it runs now

SERVICE_NAME: str = messages_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name
"""For the reflection and health lists of the server."""


class MessageRequests:
    """The request handling MessageService and the host streams' relayed calls share:
    validate a request's shape and run it for `caller` (a task id, "" for an operator)."""

    def __init__(self, messaging: Messaging, task_on_agent: AgentLookup | None = None) -> None:
        self.messaging = messaging
        self.config = messaging.config
        self._task_on_agent = task_on_agent

    async def send(self, caller: str, request: messages_pb2.SendRequest) -> messages_pb2.SendResponse:
        to_task, root, agent = request.to_task_id, request.broadcast_root_id, request.to_agent_id
        if sum(map(bool, (to_task, root, agent))) > 1:
            raise InvalidArgument("set one of to_task_id, to_agent_id or broadcast_root_id")
        if not to_task and not root and not agent:
            raise InvalidArgument(
                "set to_task_id (one task's mailbox), to_agent_id (the task an agent runs now) or "
                "broadcast_root_id (every unfinished task of a tree)"
            )
        if agent:
            found = self._task_on_agent(agent) if self._task_on_agent is not None else None
            if found is None:
                raise NotFound(
                    f"agent {agent} is not running a task now (see `maosctl agent list`); "
                    "messages go to tasks, so an idle agent has no mailbox"
                )
            to_task = found
        message = self._outgoing(
            request.priority, request.payload, request.ttl_seconds, request.message_id, request.trace_context
        )
        if to_task:
            return _send_response(await self.messaging.send(caller, to_task, message))
        return _send_response(await self.messaging.broadcast(caller, root, message))

    async def send_batch(
        self,
        caller: str,
        request: messages_pb2.SendBatchRequest,
        response: messages_pb2.SendBatchResponse | None = None,
    ) -> messages_pb2.SendBatchResponse:
        """Send a batch; the answer goes into `response` when given (a host reply built in place)."""
        messages = list(request.messages)  # each item's wrapper made once, for both passes
        if len(messages) > MAX_SEND_BATCH:
            raise InvalidArgument(f"a batch holds at most {MAX_SEND_BATCH} messages, got {len(messages)}; split it")
        # Each field read in a list comprehension of its own: fewer Python steps per message.
        to_task_ids = [item.to_task_id for item in messages]
        if not all(to_task_ids) or any([item.broadcast_root_id for item in messages]):
            _check_addresses(messages)
        client_ids = any([item.message_id for item in messages])
        # Addressing and room before the payloads: a full mailbox refuses the batch without
        # parsing every payload first (senders retry while their reader catches up).
        await self.messaging.check_batch(caller, to_task_ids, client_ids)
        ids = await self.messaging.send_rows(
            caller, check_batch_items(self.config, messages, to_task_ids, client_ids=client_ids)
        )
        if response is None:
            response = messages_pb2.SendBatchResponse()
        response.MergeFromString(_batch_results(ids))
        return response

    async def publish(self, caller: str, request: messages_pb2.PublishRequest) -> messages_pb2.SendResponse:
        message = self._outgoing(
            request.priority, request.payload, request.ttl_seconds, request.message_id, request.trace_context
        )
        return _send_response(await self.messaging.publish(caller, request.topic, message))

    async def ack(self, caller: str, request: messages_pb2.AckRequest) -> messages_pb2.AckResponse:
        acknowledged = await self.messaging.ack(caller, request.mailbox, list(request.message_ids))
        return messages_pb2.AckResponse(acknowledged=acknowledged)

    def subscribe_params(self, max_in_flight: int, lease_seconds: float) -> ReadParams:
        return read_params(
            max_messages=max_in_flight or self.config.default_max_in_flight,
            wait_seconds=0.0,
            lease_seconds=lease_seconds,
            config=self.config,
            limit=self.config.max_in_flight,
        )

    def _outgoing(
        self,
        priority: int,
        payload: common_pb2.Payload,
        ttl_seconds: float,
        message_id: str,
        trace_context: Mapping[str, str] | None = None,
    ) -> Outgoing:
        return outgoing(
            priority=priority,
            data=payload.data,
            content_type=payload.content_type,
            ttl_seconds=ttl_seconds,
            message_id=message_id,
            config=self.config,
            trace_context=trace_context,
        )


class MessageServicer(messages_pb2_grpc.MessageServiceServicer):
    """maos.v1.MessageService over a `Messaging`."""

    def __init__(
        self,
        messaging: Messaging,
        host_stats: HostStatsSource | None = None,
        task_on_agent: AgentLookup | None = None,
    ) -> None:
        self._messaging = messaging
        self._config = messaging.config
        self._requests = MessageRequests(messaging, task_on_agent)
        self._host_stats = host_stats
        self.topic_feed = TopicFeed()  # the live topic view (api/_fanout.py wires it to publications)

    async def Send(self, request: messages_pb2.SendRequest, context: Ctx) -> messages_pb2.SendResponse:
        return await self._requests.send(caller_task_id(context), request)

    async def SendBatch(self, request: messages_pb2.SendBatchRequest, context: Ctx) -> messages_pb2.SendBatchResponse:
        return await self._requests.send_batch(caller_task_id(context), request)

    async def Publish(self, request: messages_pb2.PublishRequest, context: Ctx) -> messages_pb2.SendResponse:
        return await self._requests.publish(caller_task_id(context), request)

    async def Receive(self, request: messages_pb2.ReceiveRequest, context: Ctx) -> messages_pb2.ReceiveResponse:
        params = read_params(
            max_messages=request.max_messages,
            wait_seconds=before_deadline(request.wait_seconds, context) or 0.0,
            lease_seconds=request.lease_seconds,
            config=self._config,
            limit=self._config.max_receive_batch,
        )
        messages = await self._messaging.receive(caller_task_id(context), request.mailbox, params)
        # Encoded in one go and parsed in C: cheaper than building each message from Python.
        return messages_pb2.ReceiveResponse.FromString(encoded_messages(messages, _RECEIVED_MESSAGES))

    async def Ack(self, request: messages_pb2.AckRequest, context: Ctx) -> messages_pb2.AckResponse:
        return await self._requests.ack(caller_task_id(context), request)

    async def Subscribe(
        self, request: messages_pb2.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[messages_pb2.Message]:
        params = self._requests.subscribe_params(request.max_in_flight, request.lease_seconds)
        caller = caller_task_id(context)
        async for batch in self._messaging.subscribe(caller or context.peer(), caller, request.mailbox, params):
            for msg in batch:
                yield message_to_proto(msg)

    async def Stats(self, request: messages_pb2.MessageStatsRequest, context: Ctx) -> messages_pb2.MessageStatsResponse:
        hosts = self._host_stats() if self._host_stats is not None else []
        return messages_pb2.MessageStatsResponse(
            mailboxes=[stats_to_proto(row) for row in self._messaging.stats()], hosts=hosts
        )

    async def WatchTopic(
        self, request: messages_pb2.WatchTopicRequest, context: Ctx
    ) -> AsyncIterator[messages_pb2.Message]:
        check_token(request.topic, "topic")
        async for message in self.topic_feed.watch(request.topic, caller_task_id(context) or context.peer()):
            yield message


def add_message_service(
    server: grpc.aio.Server,
    messaging: Messaging,
    host_stats: HostStatsSource | None = None,
    task_on_agent: AgentLookup | None = None,
) -> MessageServicer:
    """Register MessageService on `server` (add SERVICE_NAME to its reflection/health lists).
    `host_stats` lists the connected hosts' relay statistics for Stats."""
    servicer = MessageServicer(messaging, host_stats, task_on_agent)
    messages_pb2_grpc.add_MessageServiceServicer_to_server(servicer, server)
    return servicer


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


def _check_addresses(messages: list[messages_pb2.SendRequest]) -> None:
    """Raise for the first message of a batch that is not addressed to one task."""
    for i, item in enumerate(messages):
        if item.broadcast_root_id:
            raise InvalidArgument(f"message {i}: a batch sends to task mailboxes only: broadcast with Send")
        if not item.to_task_id:
            raise InvalidArgument(f"message {i}: set to_task_id (the task whose mailbox receives it)")


def _batch_results(ids: list[str]) -> bytes:
    """A SendBatchResponse's encoding: one result of one id and one recipient per message.
    Made as bytes and parsed by protobuf in one call (rather than a result built per message):
    each result's bytes are a head that depends only on the id's length, the id, a tail."""
    heads = _RESULT_HEADS
    parts = []
    for message_id in ids:
        raw = message_id.encode()
        head = heads.get(len(raw))
        if head is None:
            head = _result_head(len(raw))
        parts.append(head + raw + _RESULT_TAIL)
    return b"".join(parts)


def _result_head(length: int) -> bytes:
    """What precedes an id of `length` bytes in its result: protobuf's own encoding of such
    a result, less the id and the tail that follow it."""
    raw = messages_pb2.SendBatchResponse(
        results=[messages_pb2.SendResponse(message_ids=["-" * length], recipients=1)]
    ).SerializeToString()
    head = _RESULT_HEADS[length] = raw[: len(raw) - length - len(_RESULT_TAIL)]
    return head


_RECEIVED_MESSAGES = messages_pb2.ReceiveResponse.MESSAGES_FIELD_NUMBER
_RESULT_TAIL = messages_pb2.SendResponse(recipients=1).SerializeToString()
_RESULT_HEADS: dict[int, bytes] = {}


def _send_response(result: SendResult) -> messages_pb2.SendResponse:
    return messages_pb2.SendResponse(message_ids=result.message_ids, recipients=result.recipients)
