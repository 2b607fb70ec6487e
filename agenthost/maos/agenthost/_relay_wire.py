"""The relay's messages on the wire: what the control plane pushes down, kept as bytes, and
Receive answers built from them.

A message pushed down the host stream is read once, for what its local mailbox works with
(id, priority, expiry, delivery count so far), and kept serialized, as it came.
Handing it to an agent is then those bytes as an entry of the Receive answer, with its
delivery count appended when it changed since (a redelivery here: protobuf parsers read
fields in any order, and the last value of a field wins). No message object is rebuilt,
copied into the answer or kept alive per held message (bytes are not tracked by the garbage
collector, and the delivery's protobuf objects are freed once it is read).

The per-byte work is done by the protobuf runtime (in C), through views: message types
declared here (they never travel, so they are not in proto/) that read a delivery's
messages as bytes, or as just the fields the relay reads, and write bytes as a Receive
answer's messages. The wire form of a message field and of a bytes field is the same (key,
length, bytes), and a parser skips the fields its type does not declare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from maos.controlplane.messaging._mailbox import Mailbox, StoredMessage
from maos.controlplane.messaging._wire import encoded_messages
from maos.v1 import hosts_pb2, messages_pb2

_DELIVERY_COUNT_KEY = 0x48  # Message.delivery_count: field 9, varint
_SHORT_COUNT = 0x80  # delivery counts below this take one varint byte (two with the key)
_COUNTS = [bytes((_DELIVERY_COUNT_KEY, n)) for n in range(_SHORT_COUNT)]


class _Frames(Protocol):
    """A view whose `messages` holds each message's serialized bytes."""

    messages: MutableSequence[bytes]

    def SerializeToString(self) -> bytes: ...


class _Head(Protocol):
    """What the relay reads of a pushed Message (its expiry left serialized)."""

    id: str
    priority: int
    expires_at: bytes
    delivery_count: int


class _Heads(Protocol):
    messages: Sequence[_Head]


_FIELD = descriptor_pb2.FieldDescriptorProto
_VIEWS = "maos.agenthost.relay_views"


def _views() -> tuple[Callable[[bytes], _Frames], Callable[[bytes], _Heads], Callable[[], _Frames]]:
    """Views of the messages of a MessageDelivery (mailbox = 1, messages = 2) and of a
    ReceiveResponse (messages = 1): as bytes (DeliveryFrames, AnswerFrames), and as the few
    Message fields the relay reads (DeliveryHeads; the rest is skipped by the parser)."""
    file = descriptor_pb2.FileDescriptorProto(name="maos/agenthost/relay_views.proto", package=_VIEWS, syntax="proto3")
    head = file.message_type.add(name="MessageHead")
    for name, number, kind in (
        ("id", 1, _FIELD.TYPE_STRING),
        ("priority", 5, _FIELD.TYPE_INT32),
        ("expires_at", 8, _FIELD.TYPE_BYTES),  # a Timestamp, decoded once per distinct expiry
        ("delivery_count", 9, _FIELD.TYPE_UINT32),
    ):
        head.field.add(name=name, number=number, type=kind, label=_FIELD.LABEL_OPTIONAL)
    views = {
        "DeliveryFrames": (2, _FIELD.TYPE_BYTES, ""),
        "DeliveryHeads": (2, _FIELD.TYPE_MESSAGE, f".{_VIEWS}.MessageHead"),
        "AnswerFrames": (1, _FIELD.TYPE_BYTES, ""),
    }
    for name, (number, kind, type_name) in views.items():
        field = file.message_type.add(name=name).field.add(name="messages", number=number, type=kind)
        field.label = _FIELD.LABEL_REPEATED
        if type_name:
            field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_VIEWS}.{name}")) for name in views}
    return (
        cast(Callable[[bytes], _Frames], classes["DeliveryFrames"].FromString),
        cast(Callable[[bytes], _Heads], classes["DeliveryHeads"].FromString),
        cast(Callable[[], _Frames], classes["AnswerFrames"]),
    )


_delivery_frames, _delivery_heads, _answer_view = _views()


@dataclass(slots=True, eq=False)
class RelayedMessage(StoredMessage):
    """A message the control plane pushed to this host: `frame` is its bytes as sent, with
    `sent_count` as their delivery count. Only what the mailbox orders and expires by is
    read out; `data` stays empty (the payload is in `frame`; the relay's mailboxes bound
    messages by count)."""

    frame: bytes = b""
    sent_count: int = 0


def add_delivery(delivery: hosts_pb2.MessageDelivery, box: Mailbox, seqs: Iterator[int]) -> tuple[int, list[str], int]:
    """Add a delivery's messages to `box`: how many were new, the ids of those it already
    acknowledged (the ack was lost with a stream: to acknowledge again), and the delivery's
    size (its serialized form is at hand; ByteSize would serialize it again). A redelivery
    of a message the box holds is skipped: its copy there stays.

    Each message's delivery count is the control plane's less one (the relay counts on from
    it when handing the message out). One loop, no call per message: every pushed message
    comes here. Every message is copied and the box sorts out those it knows (rare: after a
    reconnect), rather than asking it about each message first."""
    raw = delivery.SerializeToString()  # one call; then read twice in C, through the views
    frames = _delivery_frames(raw).messages
    copies: list[StoredMessage] = []
    mailbox, inf = box.name, math.inf
    expiries: dict[bytes, float] = {b"": inf}
    stamp = timestamp_pb2.Timestamp()
    for msg, frame in zip(_delivery_heads(raw).messages, frames, strict=True):
        when = msg.expires_at
        expires = expiries.get(when)
        if expires is None:  # read once per distinct expiry (a batch's messages share one)
            stamp.ParseFromString(when)
            seconds, nanos = stamp.seconds, stamp.nanos  # unset reads 0: no expiry
            expires = expiries[when] = seconds + nanos / 1e9 if seconds or nanos else inf
        count = msg.delivery_count
        copies.append(
            RelayedMessage(  # positional: a third cheaper than by keyword, once per pushed message
                next(seqs),
                mailbox,
                msg.id,
                "",
                "",
                "",
                msg.priority,
                b"",
                "",
                0.0,
                expires,
                count - 1 if count > 0 else 0,
                0.0,
                None,
                frame,
                count,
            )
        )
    added = box.add_many(copies)
    acked: list[str] = []
    if added < len(copies):  # some were known: held (left as they are) or acknowledged here
        held = box.get
        acked = list(dict.fromkeys(m.id for m in copies if held(m.id) is None))
    return added, acked, len(raw)


def receive_answer(taken: list[StoredMessage]) -> bytes:
    """A serialized ReceiveResponse carrying `taken` in order: pushed messages as they came
    (their delivery count appended if it changed), local ones built as the control plane
    builds them."""
    parts: list[bytes] = []
    frames: list[bytes] = []
    local: list[StoredMessage] = []
    for msg in taken:
        if not isinstance(msg, RelayedMessage):
            if frames:
                parts.append(_answer_frames(frames))
                frames = []
            local.append(msg)
            continue
        if local:
            parts.append(_local_frames(local))
            local = []
        count = msg.delivery_count
        frames.append(msg.frame if count == msg.sent_count else msg.frame + _count_field(count))
    if frames:
        parts.append(_answer_frames(frames))
    if local:
        parts.append(_local_frames(local))
    return b"".join(parts)  # one part (the common case) is returned as it is, not copied


def add_answer(target: RepeatedCompositeFieldContainer[messages_pb2.Message], taken: list[StoredMessage]) -> None:
    """`receive_answer` into a ReceiveResponse's messages (the gRPC servicer's answer)."""
    target.extend(messages_pb2.ReceiveResponse.FromString(receive_answer(taken)).messages)


def wire_messages(taken: list[StoredMessage]) -> list[messages_pb2.Message]:
    """`receive_answer` as message objects (a Subscribe stream's, the relay's tests')."""
    return list(messages_pb2.ReceiveResponse.FromString(receive_answer(taken)).messages)


def _answer_frames(frames: list[bytes]) -> bytes:
    """Messages' bytes as entries of a Receive answer (framed in C)."""
    view = _answer_view()
    view.messages.extend(frames)
    return view.SerializeToString()


def _local_frames(msgs: list[StoredMessage]) -> bytes:
    """Messages sent on this host, as entries of a Receive answer (its messages = 1)."""
    return encoded_messages(msgs, 1)


def _count_field(count: int) -> bytes:
    """Message.delivery_count as a field to append to a message's bytes."""
    if count < _SHORT_COUNT:
        return _COUNTS[count]
    out = bytearray((_DELIVERY_COUNT_KEY,))
    while count >= 0x80:
        out.append(count & 0x7F | 0x80)
        count >>= 7
    out.append(count)
    return bytes(out)
