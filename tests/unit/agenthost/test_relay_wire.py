"""The relay's wire forms: a pushed message kept as bytes and handed out in a Receive answer
reads exactly as the message the control plane sent, its delivery count brought up to date."""

from __future__ import annotations

import itertools
import math

from maos.agenthost._relay_wire import RelayedMessage, add_answer, add_delivery, receive_answer, wire_messages
from maos.controlplane.messaging import message_to_proto
from maos.controlplane.messaging._mailbox import Mailbox, StoredMessage
from maos.v1 import hosts_pb2, messages_pb2

from tests.support.messaging import stored_message

T0 = 1_700_000_000.123456


def _local(seq: int, **fields: object) -> StoredMessage:
    return stored_message(seq, **{"sent_at": T0 + seq * 0.001, "expires_at": T0 + 3600, **fields})


def _pushed(seq: int, delivery_count: int = 1, **fields: object) -> messages_pb2.Message:
    """A message as the control plane pushes it down the host stream."""
    wire = message_to_proto(_local(seq, **fields))
    wire.delivery_count = delivery_count
    return wire


def relayed(msg: messages_pb2.Message, mailbox: str, seq: int) -> RelayedMessage:
    box = Mailbox(mailbox, 10)
    added, acked, _ = add_delivery(
        hosts_pb2.MessageDelivery(mailbox=mailbox, messages=[msg]), box, itertools.count(seq)
    )
    copy = box.get(msg.id)
    assert added == 1 and acked == [] and isinstance(copy, RelayedMessage)
    return copy


def test_a_pushed_message_is_handed_out_as_it_came_with_its_delivery_count_brought_up_to_date() -> None:
    sent = _pushed(5, delivery_count=2, topic="t", trace_context={"traceparent": "x"})
    original = messages_pb2.Message()
    original.CopyFrom(sent)
    copy = relayed(sent, "task:B", 40)
    assert isinstance(copy, RelayedMessage)
    assert (copy.id, copy.priority, copy.seq, copy.mailbox) == ("id-5", 2, 40, "task:B")
    assert copy.expires_at == T0 + 3600 and copy.delivery_count == 1  # the control plane's delivery 2
    box = Mailbox("task:B", max_queued=10)
    assert box.add(copy)
    (out,) = wire_messages(box.take(T0, 10, 30).messages)
    original.delivery_count = 2
    assert out == original  # every field as sent: sender, topic, payload, times, trace context
    box.requeue_expired(T0 + 31)  # the local lease ran out: the next take is a redelivery
    (again,) = wire_messages(box.take(T0 + 31, 10, 30).messages)
    assert again.delivery_count == 3 and again.id == "id-5" and again.payload.data == b'{"n": 5}'


def test_a_message_without_expiry_never_expires_and_one_never_delivered_counts_from_zero() -> None:
    copy = relayed(messages_pb2.Message(id="n"), "task:B", 41)
    assert copy.expires_at == math.inf and copy.delivery_count == 0


def test_an_answer_mixes_local_and_pushed_messages_in_the_order_taken() -> None:
    pushed = [relayed(_pushed(i), "task:B", i) for i in (2, 3, 5)]
    local = [_local(1), _local(4), _local(6)]
    taken: list[StoredMessage] = [local[0], pushed[0], pushed[1], local[1], pushed[2], local[2]]
    for msg in taken:
        msg.delivery_count = 1
    answer = messages_pb2.ReceiveResponse.FromString(receive_answer(taken))
    assert [m.id for m in answer.messages] == [f"id-{i}" for i in range(1, 7)]
    for got, msg in zip(answer.messages, taken, strict=True):
        expected = _pushed(int(msg.id[3:])) if isinstance(msg, RelayedMessage) else message_to_proto(msg)
        assert got == expected
    into = messages_pb2.ReceiveResponse()
    add_answer(into.messages, taken)
    assert into == answer
    assert receive_answer([]) == b""


def test_a_delivery_count_past_one_byte_is_framed_again() -> None:
    copy = relayed(_pushed(7, trace_context={"traceparent": "y" * 200}), "task:B", 7)
    for count in (127, 128, 300, 70_000):
        copy.delivery_count = count
        (out,) = messages_pb2.ReceiveResponse.FromString(receive_answer([copy, copy])).messages[1:]
        assert out.delivery_count == count and out.id == "id-7" and out.trace_context["traceparent"] == "y" * 200


def test_a_delivery_adds_new_messages_and_names_lost_acks_and_its_size() -> None:
    mailbox = "topic:" + "p" * 150  # a name past one length byte
    box = Mailbox(mailbox, 10)
    first = hosts_pb2.MessageDelivery(mailbox=mailbox, messages=[_pushed(1), _pushed(2)])
    assert add_delivery(first, box, itertools.count(1)) == (2, [], first.ByteSize())
    held = box.get("id-1")
    box.ack(["id-2"], T0)  # acknowledged here; its ack upstream then lost with the stream
    delivery = hosts_pb2.MessageDelivery(
        mailbox=mailbox, messages=[_pushed(1), _pushed(2), _pushed(3, trace_context={"t": "x" * 200}), _pushed(2)]
    )
    added, lost_acks, size = add_delivery(delivery, box, itertools.count(10))
    assert added == 1 and lost_acks == ["id-2"] and size == delivery.ByteSize()
    assert box.get("id-1") is held and len(box) == 2  # the held copy stays as it is


def test_a_first_hand_out_is_the_control_planes_bytes_and_a_redelivery_appends_its_count() -> None:
    sent = [_pushed(i, trace_context={"traceparent": f"t{i}"}) for i in (1, 2)]
    box = Mailbox("task:B", 10)
    add_delivery(hosts_pb2.MessageDelivery(mailbox="task:B", messages=sent), box, itertools.count(1))
    answer = receive_answer(box.take(T0, 10, 30).messages)
    assert answer == messages_pb2.ReceiveResponse(messages=sent).SerializeToString()  # no field moved or rebuilt
    box.requeue_expired(T0 + 31)
    again = messages_pb2.ReceiveResponse.FromString(receive_answer(box.take(T0 + 31, 10, 30).messages))
    assert [(m.id, m.delivery_count, m.trace_context["traceparent"]) for m in again.messages] == [
        ("id-1", 2, "t1"),
        ("id-2", 2, "t2"),
    ]


def test_each_message_of_a_delivery_keeps_its_own_expiry() -> None:
    sent = [_pushed(1), _pushed(2, expires_at=T0 + 60), messages_pb2.Message(id="n", delivery_count=1), _pushed(3)]
    delivery = hosts_pb2.MessageDelivery(mailbox="task:B", messages=sent)
    box = Mailbox("task:B", 10)
    add_delivery(delivery, box, itertools.count(1))
    held = [box.get(message_id) for message_id in ("id-1", "id-2", "n", "id-3")]
    assert [m.expires_at if m else None for m in held] == [T0 + 3600, T0 + 60, math.inf, T0 + 3600]
