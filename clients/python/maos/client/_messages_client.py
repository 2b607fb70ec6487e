"""MessagesClient / AsyncMessagesClient: MessageService for Python code.

    with Client() as maos:                       # maos.messages: a MessagesClient
        maos.messages.send(task_id, {"hello": 1}, priority="high")
        msgs = maos.messages.receive("task:" + task_id, max=100, wait=5)
        for msg in msgs:
            print(message_value(msg))
        maos.messages.ack("task:" + task_id, [msg.id for msg in msgs])

Delivery is at-least-once: a received message is leased to the receiver for
`lease` seconds and delivered again unless acknowledged in time, so receivers
acknowledge what they processed and drop ids they have already seen.
Payloads are Python values sent as JSON, or bytes sent as they are.

Every call sends the caller's identity (`maos-task-id`, from MAOS_TASK_ID or
the `caller` given to the constructor): it is the sender of what is sent,
and the default mailbox of `receive`/`ack`/`subscribe`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
from maos.v1 import common_pb2, messages_pb2, messages_pb2_grpc

from ._batch_wire import BYTES_CONTENT_TYPE as BYTES_CONTENT_TYPE
from ._batch_wire import MAX_BATCH as MAX_BATCH
from ._batch_wire import MAX_BATCH_BYTES as MAX_BATCH_BYTES
from ._batch_wire import check_ttl as _ttl
from ._batch_wire import encode_batches
from ._batch_wire import encode_payload as _encode_payload
from ._config import DEFAULT_RPC_TIMEOUT_SECONDS, caller_metadata
from ._enums import parse_priority
from ._errors import from_rpc_error
from ._specs import payload_value_or_bytes

if TYPE_CHECKING:
    from maos.v1.messages_pb2_grpc import MessageServiceAsyncStub

DEFAULT_LEASE_SECONDS = 30.0
Metadata = tuple[tuple[str, str], ...]
_Req = TypeVar("_Req")
_R = TypeVar("_R")


def message_payload(value: Any, content_type: str | None = None) -> common_pb2.Payload:
    """A Payload: bytes as they are (octet-stream unless `content_type`), anything else as JSON."""
    data, kind = _encode_payload(value, content_type)
    return common_pb2.Payload(data=data, content_type=kind)


def message_value(msg: messages_pb2.Message) -> Any:
    """A received message's payload decoded: JSON to a Python value, other content types to bytes."""
    return payload_value_or_bytes(msg.payload)


def caller_identity(caller: tuple[str, int] | None) -> Metadata:
    """Metadata naming the calling task: the given (task id, attempt), else the environment's."""
    if caller is None:
        return caller_metadata()
    return (("maos-task-id", caller[0]), ("maos-attempt", str(caller[1])))


def send_request(
    payload: Any,
    *,
    to_task_id: str = "",
    broadcast_root_id: str = "",
    to_agent_id: str = "",
    priority: str | int | None = None,
    ttl: float | None = None,
    message_id: str | None = None,
    content_type: str | None = None,
) -> messages_pb2.SendRequest:
    """A SendRequest to one task, to the task an agent runs now, or (broadcast_root_id) to a whole tree."""
    return messages_pb2.SendRequest(
        to_task_id=to_task_id,
        broadcast_root_id=broadcast_root_id,
        to_agent_id=to_agent_id,
        priority=parse_priority(priority) if priority is not None else common_pb2.PRIORITY_UNSPECIFIED,
        payload=message_payload(payload, content_type),
        ttl_seconds=_ttl(ttl),
        message_id=message_id or "",
    )


def publish_request(
    topic: str,
    payload: Any,
    *,
    priority: str | int | None = None,
    ttl: float | None = None,
    message_id: str | None = None,
    content_type: str | None = None,
) -> messages_pb2.PublishRequest:
    """A PublishRequest to every subscription of `topic`."""
    return messages_pb2.PublishRequest(
        topic=topic,
        priority=parse_priority(priority) if priority is not None else common_pb2.PRIORITY_UNSPECIFIED,
        payload=message_payload(payload, content_type),
        ttl_seconds=_ttl(ttl),
        message_id=message_id or "",
    )


def batch_requests(messages: Iterable[Mapping[str, Any]]) -> list[messages_pb2.SendBatchRequest]:
    """SendBatchRequests for `send_many`: chunks of at most MAX_BATCH messages and about MAX_BATCH_BYTES.

    Each message is a dict with `to_task_id` and `payload`, and optionally
    `priority`, `ttl`, `message_id` and `content_type` (see `encode_batches`).
    """
    return [messages_pb2.SendBatchRequest.FromString(data) for data, _ in encode_batches(messages)]


class MessagesClient:
    """MessageService on a blocking channel (which the caller owns and closes)."""

    def __init__(
        self,
        channel: grpc.Channel,
        endpoint: str,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
        caller: tuple[str, int] | None = None,
        control_plane: grpc.Channel | None = None,
    ) -> None:
        """`control_plane`: a channel to the control plane itself when `channel` goes to a host's
        message relay (inside an agent), for what only the control plane serves (watch_topic)."""
        self.endpoint = endpoint
        self.timeout = timeout
        self._stub = messages_pb2_grpc.MessageServiceStub(channel)
        self._watch_stub = messages_pb2_grpc.MessageServiceStub(control_plane) if control_plane else self._stub
        self._caller = caller

    def close(self) -> None:
        """Release what this client holds for the calling thread: nothing here (the caller owns
        the channel); a client of a host relay's frame socket closes that thread's connection."""

    def _call(self, method: grpc.UnaryUnaryMultiCallable[_Req, _R], request: _Req, timeout: float | None = None) -> _R:
        try:
            return method(
                request, timeout=self.timeout if timeout is None else timeout, metadata=caller_identity(self._caller)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc

    def send(
        self,
        to_task_id: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> messages_pb2.SendResponse:
        """Send to one task's mailbox. `message_id` makes a resend a no-op; `ttl` in seconds (default 24 h)."""
        request = send_request(
            payload,
            to_task_id=to_task_id,
            priority=priority,
            ttl=ttl,
            message_id=message_id,
            content_type=content_type,
        )
        reply: messages_pb2.SendResponse = self._call(self._stub.Send, request)
        return reply

    def send_to_agent(
        self,
        agent_id: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
    ) -> messages_pb2.SendResponse:
        """Send to the mailbox of the task agent `agent_id` (a worker, see `maosctl agent list`) runs now;
        NotFound when it runs none."""
        request = send_request(payload, to_agent_id=agent_id, priority=priority, ttl=ttl, message_id=message_id)
        reply: messages_pb2.SendResponse = self._call(self._stub.Send, request)
        return reply

    def send_many(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        """Send many messages to task mailboxes with one SendBatch (one commit) per chunk of up to
        10,000; their ids, in order.

        Each message is a dict: `to_task_id`, `payload`, and optionally
        `priority`, `ttl`, `message_id`, `content_type`. A chunk is all or
        nothing (an error names the message's index within it); earlier
        chunks stay sent when a later one fails, so give `message_id`s to
        make a retry of the whole list safe.
        """
        ids: list[str] = []
        for data, _ in encode_batches(messages):
            ids += self._send_batch(data)
        return ids

    def _send_batch(self, data: bytes) -> list[str]:
        """One SendBatch of an encoded SendBatchRequest; the messages' ids."""
        request = messages_pb2.SendBatchRequest.FromString(data)
        reply: messages_pb2.SendBatchResponse = self._call(self._stub.SendBatch, request)
        return [r.message_ids[0] for r in reply.results]

    def broadcast(
        self,
        root_id: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> messages_pb2.SendResponse:
        """Send to every unfinished task of the tree rooted at `root_id`, except the caller."""
        request = send_request(
            payload,
            broadcast_root_id=root_id,
            priority=priority,
            ttl=ttl,
            message_id=message_id,
            content_type=content_type,
        )
        reply: messages_pb2.SendResponse = self._call(self._stub.Send, request)
        return reply

    def publish(
        self,
        topic: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> messages_pb2.SendResponse:
        """Copy to every current subscription of `topic`; `recipients` is 0 when nobody subscribes."""
        request = publish_request(
            topic, payload, priority=priority, ttl=ttl, message_id=message_id, content_type=content_type
        )
        reply: messages_pb2.SendResponse = self._call(self._stub.Publish, request)
        return reply

    def receive(
        self, mailbox: str | None = None, *, max: int = 1, wait: float = 0.0, lease: float = DEFAULT_LEASE_SECONDS
    ) -> list[messages_pb2.Message]:
        """Lease up to `max` messages (priority order), waiting up to `wait` seconds for the first.

        `mailbox` defaults to the caller's task ("task:<id>"); "topic:<t>/<name>"
        reads (and on first use creates) a subscription of topic t. Acknowledge
        with `ack` within `lease` seconds, or the messages are delivered again.
        """
        return list(self.receive_reply(mailbox, max=max, wait=wait, lease=lease).messages)

    def receive_reply(
        self, mailbox: str | None = None, *, max: int = 1, wait: float = 0.0, lease: float = DEFAULT_LEASE_SECONDS
    ) -> messages_pb2.ReceiveResponse:
        """`receive`'s whole answer: a reader that goes through its messages once iterates it in
        place (no list holding a wrapper object for each of them until the last is read)."""
        request = messages_pb2.ReceiveRequest(
            mailbox=mailbox or "", max_messages=max, wait_seconds=wait, lease_seconds=lease
        )
        reply: messages_pb2.ReceiveResponse = self._call(self._stub.Receive, request, self.timeout + wait)
        return reply

    def ack(self, mailbox: str | None, ids: Iterable[str]) -> int:
        """Acknowledge messages (by id) of a mailbox; how many were still waiting for it."""
        request = messages_pb2.AckRequest(mailbox=mailbox or "", message_ids=list(ids))
        reply: messages_pb2.AckResponse = self._call(self._stub.Ack, request)
        return reply.acknowledged

    def subscribe(
        self, mailbox: str | None = None, *, lease: float = DEFAULT_LEASE_SECONDS, max_in_flight: int = 100
    ) -> Generator[messages_pb2.Message, None, None]:
        """Messages pushed as they arrive; at most `max_in_flight` unacknowledged at once, so `ack` them.

        Runs until the iterator is closed (closing cancels the stream).
        """
        request = messages_pb2.SubscribeRequest(mailbox=mailbox or "", lease_seconds=lease, max_in_flight=max_in_flight)
        call = self._stub.Subscribe(request, metadata=caller_identity(self._caller))
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves CallIterator.cancel untyped

    def watch_topic(self, topic: str) -> Generator[messages_pb2.Message, None, None]:
        """Every publication to `topic` from now on, at most once, consuming nothing (no ack): a live view.

        Any control plane serves it (a standby too, with --redis). Runs until the iterator is closed.
        """
        call = self._watch_stub.WatchTopic(
            messages_pb2.WatchTopicRequest(topic=topic), metadata=caller_identity(self._caller)
        )
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves CallIterator.cancel untyped

    def stats(self) -> list[messages_pb2.MailboxStats]:
        """Counters per topic ("topic:<name>", summed over its subscriptions) and per mailbox."""
        reply: messages_pb2.MessageStatsResponse = self._call(self._stub.Stats, messages_pb2.MessageStatsRequest())
        return list(reply.mailboxes)

    def host_stats(self) -> list[messages_pb2.HostMessageStatsRow]:
        """Counters of each connected host's message relay (as of its last heartbeat)."""
        reply: messages_pb2.MessageStatsResponse = self._call(self._stub.Stats, messages_pb2.MessageStatsRequest())
        return list(reply.hosts)


class AsyncMessagesClient:
    """MessageService on a grpc.aio channel (which the caller owns and closes)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        endpoint: str,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
        caller: tuple[str, int] | None = None,
        control_plane: grpc.aio.Channel | None = None,
    ) -> None:
        """`control_plane`: as for MessagesClient."""
        self.endpoint = endpoint
        self.timeout = timeout
        self._stub: MessageServiceAsyncStub = messages_pb2_grpc.MessageServiceStub(channel)
        self._watch_stub: MessageServiceAsyncStub = (
            messages_pb2_grpc.MessageServiceStub(control_plane) if control_plane else self._stub
        )
        self._caller = caller

    def _metadata(self) -> Metadata:
        return caller_identity(self._caller)

    async def _call(self, call: Awaitable[_R]) -> _R:
        try:
            return await call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc

    async def send(
        self,
        to_task_id: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> messages_pb2.SendResponse:
        """`MessagesClient.send` for asyncio."""
        request = send_request(
            payload,
            to_task_id=to_task_id,
            priority=priority,
            ttl=ttl,
            message_id=message_id,
            content_type=content_type,
        )
        reply = await self._call(self._stub.Send(request, timeout=self.timeout, metadata=self._metadata()))
        return reply

    async def send_many(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        """`MessagesClient.send_many` for asyncio."""
        ids: list[str] = []
        for data, _ in encode_batches(messages):
            ids += await self._send_batch(data)
        return ids

    async def _send_batch(self, data: bytes) -> list[str]:
        """One SendBatch of an encoded SendBatchRequest; the messages' ids."""
        request = messages_pb2.SendBatchRequest.FromString(data)
        reply = await self._call(self._stub.SendBatch(request, timeout=self.timeout, metadata=self._metadata()))
        return [r.message_ids[0] for r in reply.results]

    async def broadcast(
        self,
        root_id: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> messages_pb2.SendResponse:
        """`MessagesClient.broadcast` for asyncio."""
        request = send_request(
            payload,
            broadcast_root_id=root_id,
            priority=priority,
            ttl=ttl,
            message_id=message_id,
            content_type=content_type,
        )
        reply = await self._call(self._stub.Send(request, timeout=self.timeout, metadata=self._metadata()))
        return reply

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
    ) -> messages_pb2.SendResponse:
        """`MessagesClient.publish` for asyncio."""
        request = publish_request(
            topic, payload, priority=priority, ttl=ttl, message_id=message_id, content_type=content_type
        )
        reply = await self._call(self._stub.Publish(request, timeout=self.timeout, metadata=self._metadata()))
        return reply

    async def receive(
        self, mailbox: str | None = None, *, max: int = 1, wait: float = 0.0, lease: float = DEFAULT_LEASE_SECONDS
    ) -> list[messages_pb2.Message]:
        """`MessagesClient.receive` for asyncio."""
        request = messages_pb2.ReceiveRequest(
            mailbox=mailbox or "", max_messages=max, wait_seconds=wait, lease_seconds=lease
        )
        reply = await self._call(self._stub.Receive(request, timeout=self.timeout + wait, metadata=self._metadata()))
        return list(reply.messages)

    async def ack(self, mailbox: str | None, ids: Iterable[str]) -> int:
        """`MessagesClient.ack` for asyncio."""
        request = messages_pb2.AckRequest(mailbox=mailbox or "", message_ids=list(ids))
        reply = await self._call(self._stub.Ack(request, timeout=self.timeout, metadata=self._metadata()))
        return reply.acknowledged

    async def subscribe(
        self, mailbox: str | None = None, *, lease: float = DEFAULT_LEASE_SECONDS, max_in_flight: int = 100
    ) -> AsyncGenerator[messages_pb2.Message, None]:
        """`MessagesClient.subscribe` for asyncio; leaving the loop cancels the stream."""
        request = messages_pb2.SubscribeRequest(mailbox=mailbox or "", lease_seconds=lease, max_in_flight=max_in_flight)
        call = self._stub.Subscribe(request, metadata=caller_identity(self._caller))
        try:
            async for msg in call:
                yield msg
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()

    async def watch_topic(self, topic: str) -> AsyncGenerator[messages_pb2.Message, None]:
        """`MessagesClient.watch_topic` for asyncio; leaving the loop cancels the stream."""
        call = self._watch_stub.WatchTopic(
            messages_pb2.WatchTopicRequest(topic=topic), metadata=caller_identity(self._caller)
        )
        try:
            async for msg in call:
                yield msg
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.endpoint) from exc
        finally:
            call.cancel()

    async def stats(self) -> list[messages_pb2.MailboxStats]:
        """`MessagesClient.stats` for asyncio."""
        request = messages_pb2.MessageStatsRequest()
        reply = await self._call(self._stub.Stats(request, timeout=self.timeout, metadata=self._metadata()))
        return list(reply.mailboxes)

    async def host_stats(self) -> list[messages_pb2.HostMessageStatsRow]:
        """`MessagesClient.host_stats` for asyncio."""
        request = messages_pb2.MessageStatsRequest()
        reply = await self._call(self._stub.Stats(request, timeout=self.timeout, metadata=self._metadata()))
        return list(reply.hosts)
