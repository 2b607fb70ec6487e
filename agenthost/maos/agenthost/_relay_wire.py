"""The relay's messages on the wire: what the control plane pushes down, kept as bytes, and
Receive answers built from them.

A message pushed down the host stream is read once, for what its local mailbox works with
(id, priority, expiry, delivery count so far), and kept as its serialized form with the
delivery count left out. Handing it to an agent is then two byte strings in the Receive
answer: the message as it came and its current delivery count (a field may come after the
others: protobuf parsers read fields in any order). No message object is rebuilt, copied into
the answer or kept alive per held message (bytes are not tracked by the garbage collector, and
the delivery's protobuf objects are freed once it is read).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from maos.controlplane.messaging import add_messages
from maos.controlplane.messaging._mailbox import Mailbox, StoredMessage
from maos.v1 import messages_pb2

_MESSAGES_KEY = 0x0A  # ReceiveResponse.messages: field 1, length-delimited
_DELIVERY_COUNT_KEY = 0x48  # Message.delivery_count: field 9, varint
_SHORT_COUNT = 0x80  # delivery counts below this take one varint byte (two with the key)
_COUNTS = [bytes((_DELIVERY_COUNT_KEY, n)) for n in range(_SHORT_COUNT)]
_PACK_KEY_AND_2 = struct.Struct("<BBB").pack


@dataclass(slots=True, eq=False)
class RelayedMessage(StoredMessage):
    """A message the control plane pushed to this host: `frame` is its entry in a Receive
    answer (key, length, message bytes) without its delivery count, which follows it when it
    is handed out. Only what the mailbox orders and expires by is read out; `data` stays
    empty (the payload is in `frame`; the relay's mailboxes bound messages by count)."""

    frame: bytes = b""


def read_delivery(
    messages: Iterable[messages_pb2.Message], mailbox: str, box: Mailbox, seqs: Iterator[int]
) -> tuple[list[StoredMessage], list[str], int]:
    """A delivery's messages for `box`: copies of those it does not know, the ids of those it
    already acknowledged (the ack was lost with a stream: to acknowledge again), and the
    delivery's size counted from what is serialized anyway (ByteSize would serialize it all
    again). A redelivery of a message the box holds is skipped: its copy there stays.

    Each message's delivery count is cleared (the relay counts on from it, and writes it when
    handing the message out). One loop, no call per message: every pushed message comes here."""
    fresh: list[StoredMessage] = []
    acked: list[str] = []
    size = _entry_size(len(mailbox.encode()))
    knows, held, inf = box.knows, box.get, math.inf
    for msg in messages:
        message_id = msg.id
        if knows(message_id):
            size += _entry_size(msg.ByteSize())
            if held(message_id) is None:
                acked.append(message_id)
            continue
        expires = msg.expires_at
        seconds, nanos = expires.seconds, expires.nanos  # unset reads 0: no expiry
        count = msg.delivery_count
        msg.delivery_count = 0
        data = msg.SerializeToString()
        frame = _key_and_length(len(data) + 2) + data  # + 2: the delivery count, one byte in most cases
        size += len(frame) + 2  # as it came: with its delivery count (1 to 127, as the control plane sends)
        fresh.append(
            RelayedMessage(
                next(seqs),
                mailbox,
                message_id,
                "",
                "",
                "",
                msg.priority,
                b"",
                "",
                0.0,
                seconds + nanos / 1e9 if seconds or nanos else inf,
                count - 1 if count > 0 else 0,
                frame=frame,
            )
        )
    return fresh, acked, size


def receive_answer(taken: list[StoredMessage]) -> bytes:
    """A serialized ReceiveResponse carrying `taken` in order: pushed messages as they came
    with their delivery count, local ones built as the control plane builds them."""
    parts: list[bytes] = []
    append = parts.append
    local: list[StoredMessage] = []
    for msg in taken:
        if not isinstance(msg, RelayedMessage):
            local.append(msg)
            continue
        if local:
            append(_local_frames(local))
            local = []
        count = msg.delivery_count
        if count < _SHORT_COUNT:
            append(msg.frame)
            append(_COUNTS[count])
        else:
            append(_reframed(msg.frame, _varint(_DELIVERY_COUNT_KEY, count)))
    if local:
        append(_local_frames(local))
    return b"".join(parts)


def add_answer(target: RepeatedCompositeFieldContainer[messages_pb2.Message], taken: list[StoredMessage]) -> None:
    """`receive_answer` into a ReceiveResponse's messages (the gRPC servicer's answer)."""
    target.extend(messages_pb2.ReceiveResponse.FromString(receive_answer(taken)).messages)


def wire_messages(taken: list[StoredMessage]) -> list[messages_pb2.Message]:
    """`receive_answer` as message objects (a Subscribe stream's, the relay's tests')."""
    return list(messages_pb2.ReceiveResponse.FromString(receive_answer(taken)).messages)


def _local_frames(msgs: list[StoredMessage]) -> bytes:
    """Messages sent on this host, as entries of a Receive answer."""
    response = messages_pb2.ReceiveResponse()
    add_messages(response.messages, msgs)
    return response.SerializeToString()


def _reframed(frame: bytes, count: bytes) -> bytes:
    """A frame made for a one-byte delivery count, framed again for a longer one."""
    length, at = _read_varint(frame, 1)
    return _key_and_length(length - 2 + len(count)) + frame[at:] + count


def _entry_size(length: int) -> int:
    """The size of a length-delimited field of `length` bytes (key, length, bytes)."""
    return len(_varint(0, length)) + length


def _key_and_length(length: int) -> bytes:
    if 0x80 <= length < 0x4000:  # most messages: a two-byte length, packed without a loop
        return _PACK_KEY_AND_2(_MESSAGES_KEY, length & 0x7F | 0x80, length >> 7)
    return _varint(_MESSAGES_KEY, length)


def _varint(key: int, value: int) -> bytes:
    out = bytearray((key,))
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` in `data`, and where what follows it starts."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
