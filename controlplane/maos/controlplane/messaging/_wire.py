"""A mailbox copy (`StoredMessage`) as the wire `Message` (deliveries, Receive answers)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from maos.v1 import common_pb2, messages_pb2

from ._mailbox import StoredMessage

_NANOS = 1_000_000_000


def message_to_proto(msg: StoredMessage) -> messages_pb2.Message:
    """One delivered copy as the wire message."""
    out = messages_pb2.Message()
    _fill(out, msg)
    return out


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


# ------------------------------------------------------------------ raw encoding


def varint(n: int) -> bytes:
    """`n` (not negative) as a protobuf varint."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encoded_messages(msgs: Iterable[StoredMessage], field: int) -> bytes:
    """Delivered copies encoded as elements of a repeated Message field numbered `field`:
    what protobuf gives that field for `message_to_proto` of each, byte for byte, built
    without a protobuf object per message. Copies of one send delivered alike (same sender,
    recipient, priority, content type, times, trace context and delivery count: a batch's
    run) share every field but id and payload bytes, and the framing around those depends
    only on their lengths: each copy costs a join of five parts. Any other copy is encoded
    by protobuf itself."""
    tag = varint(field << 3 | 2)
    parts: list[bytes] = []
    last: StoredMessage | None = None
    run: _Run | None = None
    # The framing last used, and for which run and sizes (a batch's ids and payloads are
    # often all of one length).
    framed: _Run | None = None
    id_size = data_size = -1
    before_id = before_data = b""
    for msg in msgs:
        if (  # a new run?
            last is None
            or msg.sent_at != last.sent_at
            or msg.expires_at != last.expires_at
            or msg.sender != last.sender
            or msg.recipient != last.recipient
            or msg.priority != last.priority
            or msg.content_type != last.content_type
            or msg.topic != last.topic
            or msg.delivery_count != last.delivery_count
            or msg.trace_context is not last.trace_context
        ):
            run = _Run.of(msg, tag)
        last = msg
        data = msg.data
        if run is None or not data:
            body = message_to_proto(msg).SerializeToString()
            parts += (tag, varint(len(body)), body)
            continue
        message_id = msg.id.encode()
        if run is not framed or len(message_id) != id_size or len(data) != data_size:
            framed, id_size, data_size = run, len(message_id), len(data)
            before_id, before_data = run.framing_for(id_size, data_size)
        parts += (before_id, message_id, before_data, data, run.tail)
    return b"".join(parts)


class _Run:
    """The encodings the copies of one run share: fields 2-5 (`head`), the payload's content
    type and fields 7-9 (`tail`), and the framing around an id and data of given lengths."""

    __slots__ = ("content_type_size", "framing", "head", "tag", "tail")

    def __init__(self, tag: bytes, head: bytes, content_type: bytes, rest: bytes) -> None:
        self.tag = tag
        self.head = head
        self.content_type_size = len(content_type)
        self.tail = content_type + rest  # payload.content_type = 2 (ending the payload), then fields 7-9
        self.framing: dict[tuple[int, int], tuple[bytes, bytes]] = {}

    @classmethod
    def of(cls, msg: StoredMessage, tag: bytes) -> _Run | None:
        """The run `msg` starts; None when it carries a trace context (a map: protobuf encodes it)."""
        if msg.trace_context:
            return None
        full = message_to_proto(msg)
        head = messages_pb2.Message(
            sender_task_id=full.sender_task_id, recipient=full.recipient, topic=full.topic, priority=full.priority
        )
        rest = messages_pb2.Message(delivery_count=full.delivery_count)
        if full.HasField("sent_at"):
            rest.sent_at.CopyFrom(full.sent_at)
        if full.HasField("expires_at"):
            rest.expires_at.CopyFrom(full.expires_at)
        content_type = common_pb2.Payload(content_type=msg.content_type).SerializeToString()
        return cls(tag, head.SerializeToString(), content_type, rest.SerializeToString())

    def framing_for(self, id_size: int, data_size: int) -> tuple[bytes, bytes]:
        """`frame`, remembered."""
        key = (id_size, data_size)
        framing = self.framing.get(key)
        if framing is None:
            framing = self.framing[key] = self.frame(id_size, data_size)
        return framing

    def frame(self, id_size: int, data_size: int) -> tuple[bytes, bytes]:
        """What goes before the id (the element's tag and length, the id's tag and length) and
        between id and data (fields 2-5, the payload's tag and length, the data's tag and length)."""
        data_len = varint(data_size)
        payload_size = 1 + len(data_len) + data_size + self.content_type_size
        middle = self.head + b"\x32" + varint(payload_size) + b"\x0a" + data_len  # payload = 6, its data = 1
        id_len = varint(id_size)
        body_size = 1 + len(id_len) + id_size + len(middle) + data_size + len(self.tail)
        return self.tag + varint(body_size) + b"\x0a" + id_len, middle  # id = 1
