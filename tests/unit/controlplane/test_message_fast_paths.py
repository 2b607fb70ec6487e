"""The message path's batch forms give what the one-at-a-time forms give: ids, wire messages,
mailbox adds, acks and store deletes (they exist for speed only, so any difference is a bug)."""

from __future__ import annotations

import math
import sqlite3

from maos.controlplane.messaging import message_to_proto
from maos.controlplane.messaging._mailbox import Mailbox, StoredMessage
from maos.controlplane.messaging._store_batches import BatchIndex, create_tables, scan
from maos.controlplane.messaging._wire import encoded_messages
from maos.v1 import hosts_pb2

from tests.support.messaging import stored_message

T0 = 1_700_000_000.123456


def _copy(seq: int, **fields: object) -> StoredMessage:
    return stored_message(seq, **{"sent_at": T0 + seq * 0.001, "expires_at": T0 + 3600, **fields})


def test_encoded_messages_build_what_message_to_proto_builds() -> None:
    copies = [
        _copy(1),
        _copy(2, topic="prices", recipient="topic:prices", trace_context={"traceparent": "00-ab-cd-01"}),
        _copy(3, expires_at=math.inf, sent_at=0.0, data=b"", content_type="text/plain"),
    ]
    copies[0].delivery_count = 3
    delivery = hosts_pb2.MessageDelivery.FromString(encoded_messages(copies, 2))
    assert list(delivery.messages) == [message_to_proto(m) for m in copies]
    first, second, third = delivery.messages
    assert first.delivery_count == 3 and first.payload.data == b'{"n": 1}'
    assert first.sent_at.ToNanoseconds() == int(copies[0].sent_at * 1e9)
    assert first.expires_at.seconds == int(T0 + 3600)
    assert second.topic == "prices" and dict(second.trace_context) == {"traceparent": "00-ab-cd-01"}
    assert not third.HasField("expires_at") and not third.HasField("sent_at")


def test_add_many_and_batch_ack_keep_the_same_books_as_one_at_a_time() -> None:
    one, many = Mailbox("task:B", 100, dedupe_window=3), Mailbox("task:B", 100, dedupe_window=3)
    for m in [_copy(i) for i in range(1, 8)]:
        one.add(m)
    assert many.add_many([_copy(i) for i in range(1, 8)] + [_copy(3)]) == 7  # a repeated id is skipped
    for box in (one, many):
        taken = box.take(T0, 3, 30).messages
        assert [m.id for m in taken] == ["id-1", "id-2", "id-3"]
        removed = box.ack(["id-2", "id-5", "nope", "id-2", "id-7", "id-6"], T0)
        assert [m.id for m in removed] == ["id-2", "id-5", "id-7", "id-6"]
    for box in (one, many):
        assert (len(box), box.in_flight, box.bytes) == (3, 2, sum(len(_copy(i).data) for i in (1, 3, 4)))
        assert box.stats.sent == 7 and box.stats.bytes == sum(len(_copy(i).data) for i in range(1, 8))
        # The dedupe window keeps the 3 most recent acknowledged ids.
        assert [box.knows(f"id-{i}") for i in (2, 5, 6, 7)] == [False, True, True, True]
        assert not box.add(_copy(6))


def test_store_deletes_exactly_the_acknowledged_seqs_whole_batches_by_row() -> None:
    conn = sqlite3.connect(":memory:")
    create_tables(conn)
    index = BatchIndex()
    for first in (1, 11, 21):
        index.insert(conn, [_copy(seq) for seq in range(first, first + 10)])
    gone = [5, 4, 3, 2, 1, 7, 9, 10, 12, 12, 20, 11, 13, 14, 15, 16, 17, 18, 19, 24, 30]
    index.delete(conn, gone)
    assert [r[0] for r in conn.execute("SELECT first_seq FROM message_batches")] == [1, 21]  # 11..20 acked whole
    left = [m.seq for m in scan(conn).messages]
    assert left == [s for s in range(1, 31) if s not in gone]
