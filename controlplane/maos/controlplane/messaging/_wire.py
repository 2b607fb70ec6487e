"""A mailbox copy (`StoredMessage`) to and from the wire `Message`."""

from __future__ import annotations

import math

from maos.controlplane._convert import timestamp
from maos.v1 import common_pb2, messages_pb2

from ._mailbox import StoredMessage


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
        expires_at=timestamp(msg.expires_at) if math.isfinite(msg.expires_at) else None,
        delivery_count=msg.delivery_count,
        trace_context=msg.trace_context,
    )


def message_from_proto(msg: messages_pb2.Message, mailbox: str, seq: int) -> StoredMessage:
    """A wire message as a copy in `mailbox` (a host relay's local mailbox), ready for delivery.
    Its delivery count so far is kept, so a local take counts on from it."""
    return StoredMessage(
        seq=seq,
        mailbox=mailbox,
        id=msg.id,
        sender=msg.sender_task_id,
        recipient=msg.recipient,
        topic=msg.topic,
        priority=msg.priority,
        data=msg.payload.data,
        content_type=msg.payload.content_type,
        sent_at=msg.sent_at.ToNanoseconds() / 1e9,
        expires_at=msg.expires_at.ToNanoseconds() / 1e9 if msg.HasField("expires_at") else math.inf,
        delivery_count=max(0, msg.delivery_count - 1),
        trace_context=dict(msg.trace_context) or None,
    )
