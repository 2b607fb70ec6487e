"""The control plane's end of the host relays: message traffic carried on host streams.

An agent host's relay (agenthost/_relay.py) forwards what its agents cannot
settle locally: sends, publishes, broadcasts and acks come up as MessageCall
items and are answered with MessageReply items (same call id); a mailbox the
host's agents read is pushed down as MessageDelivery batches, leased to the
host, for as long as the host keeps it subscribed. Everything goes through
the same `MessageRequests` and `Messaging` as the gRPC MessageService, so
the semantics (validation, bounds, persistence, ordering) are the same.

When the stream ends, subscriptions stop; what the host held unacknowledged
is delivered again when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc
from maos.controlplane.messaging import Messaging, StoredMessage
from maos.controlplane.messaging._wire import encoded_messages, varint
from maos.errors import MaosError
from maos.v1 import hosts_pb2

from ._errors import status_code
from ._messages import AgentLookup, MessageRequests

log = logging.getLogger(__name__)

# Messages per MessageDelivery item: large enough to amortise, small enough to interleave streams.
DELIVERY_BATCH = 500
_INTERNAL = grpc.StatusCode.INTERNAL.value[0]


def _code(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, MaosError):
        return status_code(exc).value[0], exc.message
    return _INTERNAL, f"internal error relaying a message call: {type(exc).__name__}; see the control plane log"


class HostMessageBridge:
    """Message items of one host stream. `handle` takes the message items of a batch;
    `close` when the stream ends."""

    def __init__(
        self,
        host_id: str,
        messaging: Messaging,
        send: Callable[[hosts_pb2.ControlItem | bytes], bool],
        task_on_agent: AgentLookup | None = None,
    ) -> None:
        self._host_id = host_id
        self._messaging = messaging
        self._requests = MessageRequests(messaging, task_on_agent)
        self._send = send
        self._subscriptions: dict[str, asyncio.Task[None]] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._closed = False

    def handle(self, item: hosts_pb2.HostItem, kind: str) -> None:
        if self._closed:
            return
        if kind == "message_call":
            task = asyncio.create_task(self._call(item.message_call))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        elif kind == "mailbox_subscribe":
            self._subscribe(item.mailbox_subscribe)
        elif kind == "mailbox_unsubscribe":
            self._unsubscribe(item.mailbox_unsubscribe)

    def close(self) -> None:
        self._closed = True
        for task in [*self._subscriptions.values(), *self._calls]:
            task.cancel()
        self._subscriptions.clear()

    @property
    def subscriptions(self) -> int:
        return len(self._subscriptions)

    async def _call(self, call: hosts_pb2.MessageCall) -> None:
        # The reply is built inside the item that carries it: a batch's answer is not copied.
        item = hosts_pb2.ControlItem()
        reply = item.message_reply
        reply.call_id = call.call_id
        caller = call.caller_task_id
        kind = call.WhichOneof("call")
        try:
            if kind == "send":
                reply.send.CopyFrom(await self._requests.send(caller, call.send))
            elif kind == "send_batch":
                await self._requests.send_batch(caller, call.send_batch, reply.send_batch)
            elif kind == "publish":
                reply.send.CopyFrom(await self._requests.publish(caller, call.publish))
            elif kind == "ack":
                reply.ack.CopyFrom(await self._requests.ack(caller, call.ack))
            else:
                reply.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
                reply.error = "a message call must carry send, send_batch, publish or ack"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, MaosError):
                log.error("relayed message call from host %s failed", self._host_id, exc_info=exc)
            reply.ClearField("send_batch")  # a failed batch answers with its status alone
            reply.code, reply.error = _code(exc)
        self._send(item)

    def _subscribe(self, sub: hosts_pb2.MailboxSubscribe) -> None:
        if sub.mailbox in self._subscriptions:
            return  # already pushing; a relay resubscribes after a reconnect, never twice on one stream
        task = asyncio.create_task(self._pump(sub), name=f"host-{self._host_id}-mailbox-{sub.mailbox}")
        self._subscriptions[sub.mailbox] = task

    async def _pump(self, sub: hosts_pb2.MailboxSubscribe) -> None:
        mailbox = sub.mailbox
        try:
            # A relay asking for more in flight than this control plane allows gets the most it
            # allows (a relay of another version must not lose its mailboxes over a bound).
            in_flight = min(sub.max_in_flight, self._messaging.config.max_in_flight)
            params = self._requests.subscribe_params(in_flight, sub.lease_seconds)
            key = f"{self._host_id}/{sub.caller_task_id}"
            async for batch in self._messaging.subscribe(key, sub.caller_task_id, mailbox, params):
                for start in range(0, len(batch), DELIVERY_BATCH):
                    if not self._send(delivery_item(mailbox, batch[start : start + DELIVERY_BATCH])):
                        return  # the stream is gone; the leases run out and the messages come back
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code, error = _code(exc)
            self._send(
                hosts_pb2.ControlItem(mailbox_closed=hosts_pb2.MailboxClosed(mailbox=mailbox, code=code, error=error))
            )
        finally:
            if self._subscriptions.get(mailbox) is asyncio.current_task():
                del self._subscriptions[mailbox]

    def _unsubscribe(self, unsub: hosts_pb2.MailboxUnsubscribe) -> None:
        task = self._subscriptions.pop(unsub.mailbox, None)
        if task is not None:
            task.cancel()
        if unsub.release_ids:
            release = asyncio.create_task(self._release(unsub.mailbox, list(unsub.release_ids)))
            self._calls.add(release)
            release.add_done_callback(self._calls.discard)

    async def _release(self, mailbox: str, ids: list[str]) -> None:
        try:
            await self._messaging.release("", mailbox, ids)
        except MaosError as exc:
            log.info("host %s released messages of %s, which failed: %s", self._host_id, mailbox, exc.message)


def delivery_item(mailbox: str, messages: list[StoredMessage]) -> bytes:
    """`ControlItem(message_delivery=MessageDelivery(mailbox, messages))` as one framed element
    of a ControlItems batch (what `HostSession.send` takes ready-made), encoded without a
    protobuf object per message (`encoded_messages`)."""
    name = mailbox.encode()
    delivery = b"\x0a" + varint(len(name)) + name + encoded_messages(messages, 2)  # mailbox = 1, messages = 2
    item = b"\x42" + varint(len(delivery)) + delivery  # ControlItem.message_delivery = 8
    return b"\x0a" + varint(len(item)) + item  # ControlItems.items = 1
