"""The host's message relay: its agents' messages travel through it.

Agents on this host call MessageService on the relay (a local socket whose
address the host gives them as MAOS_MESSAGES_ENDPOINT; the SDK sends the hot
calls as plain frames on a socket beside it, _relay_frames). The relay

- delivers a message between two tasks running on this host, in the same
  tree, itself: straight into the recipient's local mailbox, no round trip
  to the control plane;
- sends everything else up the host stream (MessageCall items, batched with
  the stream's other items, lz4-compressed above 512 bytes) and answers the
  agent with the control plane's reply;
- keeps a local mailbox for each mailbox its agents read, fed both by local
  sends and by the control plane, which pushes that mailbox's messages down
  the stream (leased to the host) once the relay subscribes it.

Semantics match the control plane's: priority order then FIFO, leases and
redelivery, message ids to drop duplicates, bounded mailboxes that answer
RESOURCE_EXHAUSTED, TTLs (the same `Mailbox` implements both). Acks of
messages that came from the control plane go back up, coalesced per mailbox.

Durability: a locally delivered message lives in the host's memory. When
its recipient's task ends with messages still unacknowledged, the relay
hands them to the control plane (same ids, so a resend is a no-op), so a
retried task still finds them. A host crash loses only local messages whose
sender and recipient both ran here (both tasks are retried); everything
that went through the control plane is persisted there.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from maos.controlplane._ids import UlidGenerator
from maos.controlplane.messaging import MessagingConfig, Outgoing, check_batch_item, outgoing
from maos.controlplane.messaging._mailbox import Mailbox, StoredMessage
from maos.errors import ERRORS_BY_CODE, InvalidArgument, MaosError, PermissionDenied, ResourceExhausted, Unavailable
from maos.v1 import hosts_pb2, messages_pb2

from ._relay_wire import add_answer, add_delivery, receive_answer, wire_messages

log = logging.getLogger(__name__)

TASK_PREFIX = "task:"
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Tuning of the relay. `upstream_lease_seconds` is how long the control plane leaves a
    pushed message with this host before delivering it again (if the host vanished).
    `upstream_max_in_flight` is how many of a mailbox's messages the control plane pushes
    ahead of the acks: several of an agent's reads (up to 1,000 each), so the next ones are
    already here while it works through a batch instead of being pushed only once it acks."""

    local_delivery: bool = True
    upstream_lease_seconds: float = 120.0
    upstream_max_in_flight: int = 5000
    idle_unsubscribe_seconds: float = 60.0
    limits: MessagingConfig = field(default_factory=MessagingConfig)


@dataclass(slots=True)
class RelayStats:
    sent_local: int = 0
    sent_upstream: int = 0
    received: int = 0
    acknowledged: int = 0
    redelivered: int = 0
    delivery_errors: int = 0
    batches_up: int = 0
    batches_down: int = 0
    bytes_raw: int = 0


@dataclass(eq=False, slots=True)
class LocalMailbox:
    """A mailbox as the relay holds it for one reader on this host."""

    name: str
    reader: str  # the task reading it ("" for a mailbox not tied to one task)
    box: Mailbox
    local_ids: set[str] = field(default_factory=set)  # messages sent on this host (not from upstream)
    subscribed: bool = False
    streams: int = 0  # Subscribe streams reading it now
    error: MaosError | None = None
    last_read: float = 0.0
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def wake(self) -> None:
        """Something changed: every reader waiting in `changed_within` looks again."""
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def changed_within(self, seconds: float) -> None:
        """Wait until the next `wake`, or `seconds` at most. A future and a timer rather than
        an Event under wait_for: the reader resumes on the loop turn after the wake (wait_for's
        inner task costs another turn or two, on every lone message's path)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self.waiters.append(fut)
        timer = loop.call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
            if fut in self.waiters:  # timed out or cancelled: no wake took it
                self.waiters.remove(fut)


class MessageRelay:
    """The relay's state; the gRPC servicer (_relay_server) and the host daemon drive it."""

    def __init__(
        self,
        config: RelayConfig,
        send_up: Callable[[hosts_pb2.HostItem, int], bool],
        connected: Callable[[], bool],
    ) -> None:
        self.config = config
        self._send_up = send_up
        self._connected = connected
        self._running: dict[str, str] = {}  # task id -> root id, for tasks running on this host
        self._boxes: dict[str, LocalMailbox] = {}
        self._calls: dict[int, asyncio.Future[hosts_pb2.MessageReply]] = {}
        self._call_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._ids = UlidGenerator()
        # Acks to send up, per mailbox: lists of distinct ids (one per local ack or delivery).
        self._pending_acks: dict[str, list[list[str]]] = {}
        # Unread local messages of ended tasks, waiting to go to the control plane: (sender, batch).
        self._handovers: list[tuple[str, messages_pb2.SendBatchRequest]] = []
        self._ack_flush_scheduled = False
        self.stats = RelayStats()

    # ---------------------------------------------------------------- the host's tasks

    def task_assigned(self, task_id: str, root_id: str) -> None:
        self._running[task_id] = root_id or task_id

    def task_ended(self, task_id: str) -> None:
        """The task's attempt finished here: its mailboxes go back to the control plane."""
        self._running.pop(task_id, None)
        for name in [n for n, lm in self._boxes.items() if lm.reader == task_id]:
            self._drop_box(name)

    # ---------------------------------------------------------------- agent calls

    async def send(self, caller: str, request: messages_pb2.SendRequest) -> messages_pb2.SendResponse:
        if self._is_local(caller, request.to_task_id) and not request.broadcast_root_id:
            message = self._validate(request)
            self._check_room({request.to_task_id: 1})
            (message_id,) = self._deliver_locally(caller, [(request.to_task_id, message)])
            return messages_pb2.SendResponse(message_ids=[message_id], recipients=1)
        reply = await self._call(caller, hosts_pb2.MessageCall(send=request), 1, request.ByteSize())
        return reply.send

    async def send_batch(self, caller: str, request: messages_pb2.SendBatchRequest) -> messages_pb2.SendBatchResponse:
        here = self._local_tree(caller)
        if not here or not any(m.to_task_id in here for m in request.messages):
            # The common case (every recipient elsewhere): forward the request as it is, no copies.
            reply = await self._call(
                caller, hosts_pb2.MessageCall(send_batch=request), len(request.messages), request.ByteSize()
            )
            return reply.send_batch
        items = list(request.messages)  # each item's wrapper made once
        local: list[int] = []
        remote = messages_pb2.SendBatchRequest()
        remote_index: list[int] = []
        rooms: dict[str, int] = {}
        for i, item in enumerate(items):
            to_task_id = item.to_task_id
            if to_task_id in here and not item.broadcast_root_id:
                local.append(i)
                rooms[to_task_id] = rooms.get(to_task_id, 0) + 1
            else:
                remote.messages.append(item)
                remote_index.append(i)
        # Room before payloads, as on the control plane: a sender retrying against a full
        # mailbox is refused without every payload of its batch being parsed again.
        self._check_room(rooms)
        limits = self.config.limits
        addressed: list[tuple[str, Outgoing]] = []
        for i in local:
            item = items[i]
            addressed.append((item.to_task_id, check_batch_item(limits, i, item)))
        response = messages_pb2.SendBatchResponse()
        add = response.results.add
        if not remote.messages:
            for message_id in self._deliver_locally(caller, addressed):
                add(recipients=1).message_ids.append(message_id)
            return response
        # All or nothing, as on the control plane: the remote part first; the local room
        # was checked, and nothing else runs on this loop between the reply and the adds.
        call = hosts_pb2.MessageCall(send_batch=remote)
        reply = await self._call(caller, call, len(remote.messages), remote.ByteSize())
        self._check_room(rooms)
        ids: list[str] = [""] * len(items)
        for index, result in zip(remote_index, reply.send_batch.results, strict=True):
            ids[index] = result.message_ids[0] if result.message_ids else ""
        for index, message_id in zip(local, self._deliver_locally(caller, addressed), strict=True):
            ids[index] = message_id
        for message_id in ids:
            add(recipients=1).message_ids.append(message_id)
        return response

    async def publish(self, caller: str, request: messages_pb2.PublishRequest) -> messages_pb2.SendResponse:
        reply = await self._call(caller, hosts_pb2.MessageCall(publish=request), 1, request.ByteSize())
        return reply.send

    async def receive(
        self, caller: str, mailbox: str, max_messages: int, wait_seconds: float, lease_seconds: float
    ) -> list[messages_pb2.Message]:
        return wire_messages(await self._receive(caller, mailbox, max_messages, wait_seconds, lease_seconds))

    async def receive_into(
        self,
        into: RepeatedCompositeFieldContainer[messages_pb2.Message],
        caller: str,
        mailbox: str,
        max_messages: int,
        wait_seconds: float,
        lease_seconds: float,
    ) -> int:
        """`receive`, the messages added to `into` (a Receive answer) in place; how many."""
        taken = await self._receive(caller, mailbox, max_messages, wait_seconds, lease_seconds)
        add_answer(into, taken)
        return len(taken)

    async def receive_bytes(
        self, caller: str, mailbox: str, max_messages: int, wait_seconds: float, lease_seconds: float
    ) -> bytes:
        """`receive`, as a serialized ReceiveResponse (the framed path's answer, built without
        message objects)."""
        return receive_answer(await self._receive(caller, mailbox, max_messages, wait_seconds, lease_seconds))

    async def _receive(
        self, caller: str, mailbox: str, max_messages: int, wait_seconds: float, lease_seconds: float
    ) -> list[StoredMessage]:
        lm = self._readable(caller, mailbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        limits = self.config.limits
        lease = lease_seconds or limits.default_lease_seconds
        while True:
            taken = self._take_stored(lm, max_messages, lease)
            if not taken and lm.error is not None:
                # The control plane refused the subscription: say why (a later read tries again).
                error, lm.error = lm.error, None
                if not len(lm.box):
                    self._boxes.pop(lm.name, None)
                raise error
            remaining = deadline - loop.time()
            if taken or remaining <= 0:
                return taken
            next_lease = lm.box.next_lease_deadline()
            timeout = remaining if next_lease is None else min(remaining, max(0.001, next_lease - time.time()))
            await lm.changed_within(timeout)

    def ack(self, caller: str, mailbox: str, ids: list[str]) -> int | None:
        """Acknowledge on a relayed mailbox; None if the relay does not hold this mailbox
        (the caller then forwards the ack with `forward_ack`). The relay may keep `ids`."""
        lm = self._boxes.get(self._mailbox_name(caller, mailbox))
        if lm is None:
            return None
        removed = lm.box.ack(ids, time.time())
        if lm.local_ids:
            upstream = [m.id for m in removed if m.id not in lm.local_ids]
            lm.local_ids.difference_update(m.id for m in removed)
        elif len(removed) == len(ids):
            upstream = ids  # each id removed once, none local: the ids as they came, no per-id work
        else:
            upstream = [m.id for m in removed]
        self.stats.acknowledged += len(removed)
        if upstream:
            self._queue_acks(lm.name, upstream)
        lm.wake()
        return len(removed)

    async def forward_ack(self, caller: str, request: messages_pb2.AckRequest) -> messages_pb2.AckResponse:
        reply = await self._call(caller, hosts_pb2.MessageCall(ack=request), 0, request.ByteSize())
        return reply.ack

    def readable(self, caller: str, mailbox: str) -> LocalMailbox:
        """The local mailbox a Subscribe stream reads (subscribed upstream on first use)."""
        return self._readable(caller, mailbox)

    def take(self, lm: LocalMailbox, limit: int, lease_seconds: float) -> list[messages_pb2.Message]:
        return self._take(lm, limit, lease_seconds or self.config.limits.default_lease_seconds)

    # ---------------------------------------------------------------- from the control plane

    def on_reply(self, reply: hosts_pb2.MessageReply) -> None:
        fut = self._calls.pop(reply.call_id, None)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def on_delivery(self, delivery: hosts_pb2.MessageDelivery) -> None:
        self.stats.batches_down += 1
        lm = self._boxes.get(delivery.mailbox)
        if lm is None:
            # Nobody here reads it any more: give the messages straight back.
            self.stats.bytes_raw += delivery.ByteSize()
            self._send_item(
                hosts_pb2.HostItem(
                    mailbox_unsubscribe=hosts_pb2.MailboxUnsubscribe(
                        mailbox=delivery.mailbox, release_ids=[m.id for m in delivery.messages]
                    )
                )
            )
            return
        added, acked_already, size = add_delivery(delivery, lm.box, self._seq)
        self.stats.bytes_raw += size
        self.stats.received += added
        if acked_already:
            self._queue_acks(lm.name, acked_already)
        lm.wake()

    def on_closed(self, closed: hosts_pb2.MailboxClosed) -> None:
        lm = self._boxes.get(closed.mailbox)
        if lm is None:
            return
        lm.subscribed = False
        lm.error = _status_error(closed.code, closed.error)
        lm.wake()

    def on_disconnected(self) -> None:
        """The stream is gone: answer waiting calls, resubscribe mailboxes on the next one."""
        calls, self._calls = self._calls, {}
        for fut in calls.values():
            if not fut.done():
                fut.set_exception(
                    Unavailable(
                        "the agent host lost its control plane connection while relaying this call; it may or "
                        "may not have taken effect: send again with the same message_id to be sure"
                    )
                )
        self.stats.delivery_errors += len(calls)
        for lm in self._boxes.values():
            lm.subscribed = False

    def on_connected(self) -> None:
        """A new stream: subscribe again what agents here read, and send the acks held meanwhile."""
        for lm in self._boxes.values():
            self._ensure_subscribed(lm)
        self._send_handovers()
        self._flush_acks()

    def sweep(self, now: float) -> None:
        """Requeue expired local leases (counted), drop mailboxes nobody reads any more."""
        for name, lm in list(self._boxes.items()):
            before = lm.box.stats.delivery_errors
            lm.box.requeue_expired(now)
            requeued = lm.box.stats.delivery_errors - before
            if requeued:
                self.stats.delivery_errors += requeued  # counted as redelivered when taken again
                lm.wake()
            idle = now - lm.last_read > self.config.idle_unsubscribe_seconds
            if idle and lm.reader not in self._running and lm.box.in_flight == 0:
                self._drop_box(name)

    def message_stats(self) -> messages_pb2.HostMessageStats:
        s = self.stats
        queued = sum(lm.box.queued for lm in self._boxes.values())
        in_flight = sum(lm.box.in_flight for lm in self._boxes.values())
        return messages_pb2.HostMessageStats(
            queued=queued,
            in_flight=in_flight,
            sent_local=s.sent_local,
            sent_upstream=s.sent_upstream,
            received=s.received,
            acknowledged=s.acknowledged,
            redelivered=s.redelivered,
            delivery_errors=s.delivery_errors,
            batches_up=s.batches_up,
            batches_down=s.batches_down,
            bytes_raw=s.bytes_raw,
        )

    # ---------------------------------------------------------------- internals

    def _local_tree(self, caller: str) -> set[str]:
        """The tasks of the caller's tree running here (the caller too): what `_is_local` accepts."""
        root = self._running.get(caller) if self.config.local_delivery and caller else None
        if root is None:
            return set()
        return {t for t, r in self._running.items() if r == root}

    def _is_local(self, caller: str, to_task_id: str) -> bool:
        if not self.config.local_delivery or not caller or not to_task_id:
            return False
        root = self._running.get(to_task_id)
        return root is not None and self._running.get(caller) == root

    def _validate(self, request: messages_pb2.SendRequest) -> Outgoing:
        return outgoing(
            priority=request.priority,
            data=request.payload.data,
            content_type=request.payload.content_type,
            ttl_seconds=request.ttl_seconds,
            message_id=request.message_id,
            config=self.config.limits,
            trace_context=request.trace_context,
        )

    def _check_room(self, rooms: dict[str, int]) -> None:
        for task_id, n in rooms.items():
            lm = self._boxes.get(TASK_PREFIX + task_id)
            if lm is not None and not lm.box.has_room(n):
                self.stats.delivery_errors += n
                lm.box.stats.rejected_full += n
                raise ResourceExhausted(
                    f"mailbox task:{task_id} is full ({lm.box.max_queued} messages): its reader is not keeping "
                    "up; send again later"
                )

    def _deliver_locally(self, sender: str, addressed: list[tuple[str, Outgoing]]) -> list[str]:
        """Add checked messages to local mailboxes (room was checked); their ids, in order.
        An id the mailbox already knows is a resend: a no-op."""
        now = time.time()
        new_id, seq = self._ids.new, self._seq
        ids: list[str] = []
        by_box: dict[str, tuple[LocalMailbox, list[StoredMessage]]] = {}
        for to_task_id, message in addressed:
            name = TASK_PREFIX + to_task_id
            entry = by_box.get(name)
            if entry is None:
                entry = by_box[name] = (self._box(name, reader=to_task_id), [])
            message_id = message.message_id or new_id()
            ids.append(message_id)
            if message.message_id and entry[0].box.knows(message_id):
                continue  # a resend of one held or recently acknowledged here
            entry[1].append(
                StoredMessage(
                    next(seq),
                    name,
                    message_id,
                    sender,
                    name,
                    "",
                    message.priority,
                    message.data,
                    message.content_type,
                    now,
                    now + message.ttl_seconds,
                    0,
                    0.0,
                    message.trace_context,
                )
            )
        for lm, msgs in by_box.values():
            if msgs:
                lm.local_ids.update(m.id for m in msgs)
                self.stats.sent_local += lm.box.add_many(msgs)
                lm.wake()
        return ids

    def _mailbox_name(self, caller: str, mailbox: str) -> str:
        if mailbox:
            return mailbox
        if not caller:
            raise InvalidArgument("name a mailbox: the caller is not a task, so it has no mailbox of its own")
        return TASK_PREFIX + caller

    def _readable(self, caller: str, mailbox: str) -> LocalMailbox:
        name = self._mailbox_name(caller, mailbox)
        if name.startswith(TASK_PREFIX) and name != TASK_PREFIX + caller:
            raise PermissionDenied(f"task {caller} may read only its own mailbox task:{caller}, not {name}")
        lm = self._box(name, reader=caller)
        lm.last_read = time.time()
        self._ensure_subscribed(lm)
        return lm

    def _box(self, name: str, reader: str) -> LocalMailbox:
        lm = self._boxes.get(name)
        if lm is None:
            limits = self.config.limits
            lm = LocalMailbox(name, reader, Mailbox(name, limits.max_queued, limits.dedupe_window, time.time()))
            self._boxes[name] = lm
        return lm

    def _ensure_subscribed(self, lm: LocalMailbox) -> None:
        if lm.subscribed or lm.error is not None or not self._connected():
            return
        item = hosts_pb2.HostItem(
            mailbox_subscribe=hosts_pb2.MailboxSubscribe(
                mailbox=lm.name,
                caller_task_id=lm.reader,
                lease_seconds=self.config.upstream_lease_seconds,
                max_in_flight=self.config.upstream_max_in_flight,
            )
        )
        lm.subscribed = self._send_item(item)

    def _take(self, lm: LocalMailbox, limit: int, lease_seconds: float) -> list[messages_pb2.Message]:
        return wire_messages(self._take_stored(lm, limit, lease_seconds))

    def _take_stored(self, lm: LocalMailbox, limit: int, lease_seconds: float) -> list[StoredMessage]:
        lm.last_read = time.time()
        before = lm.box.stats.redelivered
        taken = lm.box.take(lm.last_read, limit, lease_seconds)
        self.stats.redelivered += lm.box.stats.redelivered - before
        for msg in taken.dropped:
            lm.local_ids.discard(msg.id)
        return taken.messages

    def _drop_box(self, name: str) -> None:
        """Stop relaying a mailbox: unacknowledged upstream messages go back at once, local
        ones are handed to the control plane so a later reader (a retry) gets them."""
        lm = self._boxes.pop(name, None)
        if lm is None:
            return
        self._flush_acks()
        held = lm.box.drain()
        upstream = [m.id for m in held if m.id not in lm.local_ids]
        local = [m for m in held if m.id in lm.local_ids]
        if lm.subscribed or upstream:
            self._send_item(
                hosts_pb2.HostItem(mailbox_unsubscribe=hosts_pb2.MailboxUnsubscribe(mailbox=name, release_ids=upstream))
            )
        if local and name.startswith(TASK_PREFIX):
            self._hand_over(name[len(TASK_PREFIX) :], local)

    def _hand_over(self, task_id: str, messages: list[StoredMessage]) -> None:
        by_sender: dict[str, list[StoredMessage]] = {}
        for msg in messages:
            by_sender.setdefault(msg.sender, []).append(msg)
        now = time.time()
        for sender, msgs in by_sender.items():
            batch = messages_pb2.SendBatchRequest()
            for m in msgs:
                ttl = m.expires_at - now
                if ttl <= 0:
                    continue
                item = batch.messages.add(to_task_id=task_id, priority=m.priority, ttl_seconds=ttl, message_id=m.id)
                item.payload.data = m.data
                item.payload.content_type = m.content_type
            if batch.messages:
                self._handovers.append((sender, batch))
        self._send_handovers()

    def _send_handovers(self) -> None:
        """Send the hand-overs waiting; one that fails for want of a stream waits for the next
        (the ids make a resend harmless); one the control plane refuses is logged and dropped."""
        if not self._connected():
            return
        waiting, self._handovers = self._handovers, []
        for sender, batch in waiting:
            call = hosts_pb2.MessageCall(send_batch=batch)
            task = asyncio.ensure_future(self._call(sender, call, len(batch.messages), batch.ByteSize()))
            task.add_done_callback(functools.partial(self._handed_over, sender, batch))

    def _handed_over(
        self, sender: str, batch: messages_pb2.SendBatchRequest, fut: asyncio.Future[hosts_pb2.MessageReply]
    ) -> None:
        error = None if fut.cancelled() else fut.exception()
        if isinstance(error, Unavailable):
            self._handovers.append((sender, batch))  # the stream went away: again on the next one
        elif error is not None:
            log.warning("could not hand %d unread local messages to the control plane: %s", len(batch.messages), error)

    def _queue_acks(self, mailbox: str, ids: list[str]) -> None:
        """Send `ids` (distinct) up this turn; kept as they are, not copied."""
        self._pending_acks.setdefault(mailbox, []).append(ids)
        if not self._ack_flush_scheduled:
            # Coalesce: every ack of this loop turn goes up in one item per mailbox.
            self._ack_flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_flush_scheduled = False
        if not self._pending_acks or not self._connected():
            return  # kept for the next stream
        pending, self._pending_acks = self._pending_acks, {}
        step = self.config.limits.max_ack_ids
        for mailbox, queued in pending.items():
            # A redelivery acked twice in a turn goes up once (each list's ids are distinct).
            ids = queued[0] if len(queued) == 1 else list(dict.fromkeys(itertools.chain.from_iterable(queued)))
            lm = self._boxes.get(mailbox)
            reader = lm.reader if lm is not None else ""
            for start in range(0, len(ids), step):
                call = hosts_pb2.MessageCall(
                    call_id=0,
                    caller_task_id=reader,
                    ack=messages_pb2.AckRequest(mailbox=mailbox, message_ids=ids[start : start + step]),
                )
                if not self._send_item(hosts_pb2.HostItem(message_call=call)):
                    self._pending_acks.setdefault(mailbox, []).append(ids[start:])
                    break

    async def _call(self, caller: str, call: hosts_pb2.MessageCall, messages: int, size: int) -> hosts_pb2.MessageReply:
        if not self._connected():
            self.stats.delivery_errors += messages
            raise Unavailable("the agent host is not connected to the control plane; retry in a moment")
        call.call_id = next(self._call_ids)
        call.caller_task_id = caller
        fut: asyncio.Future[hosts_pb2.MessageReply] = asyncio.get_running_loop().create_future()
        self._calls[call.call_id] = fut
        if not self._send_item(hosts_pb2.HostItem(message_call=call), size):
            self._calls.pop(call.call_id, None)
            self.stats.delivery_errors += messages
            raise Unavailable("the agent host's queue to the control plane is full; retry in a moment")
        self.stats.sent_upstream += messages
        try:
            reply = await fut
        finally:
            self._calls.pop(call.call_id, None)
        if reply.code:
            self.stats.delivery_errors += messages
            raise _status_error(reply.code, reply.error)
        return reply

    def _send_item(self, item: hosts_pb2.HostItem, size: int = 0) -> bool:
        sent = self._send_up(item, size)
        if sent:
            self.stats.batches_up += 1
            self.stats.bytes_raw += size or item.ByteSize()
        return sent


def check_read(max_messages: int, wait_seconds: float, lease_seconds: float, limit: int) -> None:
    """The bounds of a Receive or Subscribe on the relay (gRPC or framed)."""
    if max_messages > limit:
        raise InvalidArgument(f"at most {limit} messages at once, asked for {max_messages}")
    for name, value in (("wait_seconds", wait_seconds), ("lease_seconds", lease_seconds)):
        if math.isnan(value) or value < 0:
            raise InvalidArgument(f"{name} must not be negative")


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _status_error(code: int, message: str) -> MaosError:
    """The maos.errors exception for a gRPC status code the control plane sent back as a number."""
    return ERRORS_BY_CODE.get(_CODE_NAMES.get(code, ""), MaosError)(message)
