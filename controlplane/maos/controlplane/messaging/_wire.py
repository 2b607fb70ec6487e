"""A mailbox copy (`StoredMessage`) as the wire `Message` (deliveries, Receive answers)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from maos.v1 import messages_pb2

from ._mailbox import StoredMessage

_NANOS = 1_000_000_000


def message_to_proto(msg: StoredMessage) -> messages_pb2.Message:
    """One delivered copy as the wire message."""
    out = messages_pb2.Message()
    _fill(out, msg)
    return out


def add_messages(target: RepeatedCompositeFieldContainer[messages_pb2.Message], msgs: Iterable[StoredMessage]) -> None:
    """Append delivered copies to a repeated Message field (a delivery, a Receive answer),
    each built in place. Copies of one send delivered alike (same sender, recipient, priority,
    content type, times, trace context and delivery count: a batch's run) share every field
    but id and payload bytes, so from a run's second copy on those fields are encoded once and
    parsed into each message in C, and only the two that differ are set from Python (about 3x
    cheaper per message than `_fill`, itself about 4x cheaper than `message_to_proto`).
    A copy unlike the one before (lone sends) is built by `_fill`."""
    add = target.add
    last: StoredMessage | None = None
    shared: bytes | None = None  # the current run's shared fields, once it has two copies
    for msg in msgs:
        if (
            last is not None
            and msg.sent_at == last.sent_at
            and msg.expires_at == last.expires_at
            and msg.sender == last.sender
            and msg.recipient == last.recipient
            and msg.priority == last.priority
            and msg.content_type == last.content_type
            and msg.topic == last.topic
            and msg.delivery_count == last.delivery_count
            and msg.trace_context is last.trace_context  # a batch's copies share one dict
        ):
            if shared is None:
                shared = _shared_fields(msg)
            out = add()
            out.MergeFromString(shared)
            out.id = msg.id
            out.payload.data = msg.data
        else:
            _fill(add(), msg)
            shared = None
        last = msg


def _shared_fields(msg: StoredMessage) -> bytes:
    """`msg` encoded as a wire Message without the fields each copy of its run sets itself."""
    out = messages_pb2.Message()
    _fill(out, msg)
    out.ClearField("id")
    out.payload.ClearField("data")
    return out.SerializeToString()


def _fill(out: messages_pb2.Message, msg: StoredMessage) -> None:
    out.id = msg.id
    out.sender_task_id = msg.sender
    out.recipient = msg.recipient
    if msg.topic:
        out.topic = msg.topic
    out.priority = msg.priority  # type: ignore[assignment]
    payload = out.payload
    payload.data = msg.data
    payload.content_type = msg.content_type
    if msg.sent_at:
        ts = out.sent_at
        ts.seconds, ts.nanos = divmod(int(msg.sent_at * 1e9), _NANOS)
    if math.isfinite(msg.expires_at) and msg.expires_at:
        ts = out.expires_at
        ts.seconds, ts.nanos = divmod(int(msg.expires_at * 1e9), _NANOS)
    out.delivery_count = msg.delivery_count
    if msg.trace_context:
        out.trace_context.update(msg.trace_context)
