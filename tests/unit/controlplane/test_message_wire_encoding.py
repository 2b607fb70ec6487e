"""Deliveries encoded without a protobuf object per message: the same bytes protobuf makes."""

from __future__ import annotations

import math
import random

from maos.controlplane.api._host_messages import delivery_item
from maos.controlplane.messaging._mailbox import StoredMessage
from maos.controlplane.messaging._wire import encoded_messages, message_to_proto, varint
from maos.v1 import hosts_pb2

T0 = 1_700_000_000.123456


def copies(rng: random.Random, n: int) -> list[StoredMessage]:
    """Runs of alike copies (a batch's), broken now and then by one that differs in a field."""
    out: list[StoredMessage] = []
    shared = {"sender": "A", "recipient": "task:B", "topic": "", "priority": 3, "content_type": "application/json"}
    trace = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    for seq in range(1, n + 1):
        if rng.random() < 0.1:
            shared = dict(shared)
            key = rng.choice(["sender", "recipient", "topic", "priority", "content_type"])
            shared[key] = (
                rng.choice([1, 2, 4]) if key == "priority" else rng.choice(["", "x", "topic:t/ü", "text/plain"])
            )
        size = rng.choice([0, 1, 100, 127, 128, 300, 20_000])
        out.append(
            StoredMessage(
                seq,
                "task:B",
                rng.choice(["01J" + "X" * 23, f"client-{seq}", "ïd-ü"]),
                str(shared["sender"]),
                str(shared["recipient"]),
                str(shared["topic"]),
                int(shared["priority"]),
                bytes(rng.getrandbits(8) for _ in range(size)),
                str(shared["content_type"]),
                rng.choice([T0, 0.0]),
                rng.choice([T0 + 60, math.inf, 0.0]),
                rng.choice([1, 1, 2, 0]),
                0.0,
                trace if rng.random() < 0.05 else None,
            )
        )
    return out


def proto_delivery(msgs: list[StoredMessage]) -> hosts_pb2.MessageDelivery:
    return hosts_pb2.MessageDelivery(mailbox="task:B", messages=[message_to_proto(m) for m in msgs])


def test_encoded_messages_are_what_protobuf_encodes() -> None:
    rng = random.Random(11)
    for _ in range(20):
        msgs = copies(rng, 60)
        expected = proto_delivery(msgs)
        raw = b"\x0a\x06task:B" + encoded_messages(msgs, 2)
        assert hosts_pb2.MessageDelivery.FromString(raw) == expected
        if not any(m.trace_context for m in msgs):  # a map's order is protobuf's own
            assert raw == expected.SerializeToString()


def test_a_batch_of_alike_copies_is_encoded_byte_for_byte() -> None:
    msgs = [
        StoredMessage(
            s, "task:B", f"01J{s:023d}", "A", "task:B", "", 3, b'{"n": %d}' % s, "application/json", T0, T0 + 9, 1
        )
        for s in range(1, 501)
    ]
    assert b"\x0a\x06task:B" + encoded_messages(msgs, 2) == proto_delivery(msgs).SerializeToString()


def test_delivery_item_is_a_framed_control_item() -> None:
    msgs = copies(random.Random(3), 30)
    raw = delivery_item("task:B", msgs)
    batch = hosts_pb2.ControlItems.FromString(raw + raw)
    assert len(batch.items) == 2
    assert batch.items[0] == hosts_pb2.ControlItem(message_delivery=proto_delivery(msgs))


def test_varint() -> None:
    for n in (0, 1, 127, 128, 300, 16_383, 16_384, 2**35 + 5):
        out = hosts_pb2.MailboxClosed(code=n % 2**32).SerializeToString() if n < 2**32 else None
        if out is not None and n:
            assert out == b"\x10" + varint(n)
    assert varint(2**35 + 5) == bytes([0x85, 0x80, 0x80, 0x80, 0x80, 0x01])
