"""The control plane's per-batch fast paths give what the per-message forms give: checked
SendBatch items, the batch answer's encoding, delivered wire messages, and a batch's copies
in their mailboxes (ids, priority then FIFO order, dedupe, errors naming the right index).
They exist for speed only, so any difference is a bug."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence

import pytest
from maos.controlplane._host_session import HostSession
from maos.controlplane.api._messages import MessageRequests, _batch_results
from maos.controlplane.messaging import (
    Loaded,
    Messaging,
    MessagingConfig,
    ReadParams,
    StoredMessage,
    TaskInfo,
    check_batch_item,
    message_to_proto,
)
from maos.controlplane.messaging._checks import check_batch_items
from maos.controlplane.messaging._mailbox import Mailbox
from maos.controlplane.messaging._wire import encoded_messages
from maos.errors import InvalidArgument, NotFound, ResourceExhausted
from maos.v1 import common_pb2, hosts_pb2, messages_pb2
from maos.wire import decode_envelope, framed_item

from tests.support.messaging import stored_message

CONFIG = MessagingConfig(max_payload_bytes=64, max_queued=100)
T0 = 1_700_000_000.25


def _item(
    data: bytes = b'{"n": 1}',
    *,
    priority: int = 0,
    content_type: str = "application/json",
    ttl: float = 0.0,
    message_id: str = "",
    trace: dict[str, str] | None = None,
) -> messages_pb2.SendRequest:
    return messages_pb2.SendRequest(
        to_task_id="B",
        priority=priority,  # type: ignore[arg-type]
        payload=common_pb2.Payload(data=data, content_type=content_type),
        ttl_seconds=ttl,
        message_id=message_id,
        trace_context=trace or {},
    )


def _reference(items: Sequence[messages_pb2.SendRequest]) -> list[tuple[object, ...]]:
    out = []
    for i, item in enumerate(items):
        o = check_batch_item(CONFIG, i, item)
        out.append((item.to_task_id, o.priority, o.data, o.content_type, o.ttl_seconds, o.message_id, o.trace_context))
    return out


def _rows(items: Sequence[messages_pb2.SendRequest]) -> list[tuple[object, ...]]:
    return list(check_batch_items(CONFIG, items, [item.to_task_id for item in items]))


def test_checked_batch_items_are_what_checking_each_item_gives() -> None:
    items = [
        _item(),
        _item(b'{"n": 2}'),  # same shape: the fast path
        _item(b""),  # empty data is valid under any content type
        _item(b"[1, 2]", priority=1),
        _item(b'"x"', priority=1),
        _item(b"not json", content_type="text/plain"),
        _item(b"still not json", content_type="text/plain"),
        _item(b"{}", content_type=""),  # "" means JSON
        _item(b"{}", content_type="application/x+json; charset=utf-8", ttl=5),
        _item(b"{}", content_type="application/x+json; charset=utf-8", ttl=5),
        _item(b"{}", content_type="application/x+json; charset=utf-8", ttl=6),
        _item(b"{}", message_id="client-1"),  # a client id is checked in full
        _item(b"{}"),
        _item(b"{}", trace={"traceparent": "00-ab-cd-01", "baggage": "dropped"}),
        _item(b"{}", priority=4, ttl=0),
    ]
    rows = _rows(items)
    assert rows == _reference(items)
    assert rows[0][1:5] == (3, b'{"n": 1}', "application/json", CONFIG.default_ttl_seconds)
    assert rows[7][3] == "application/json" and rows[10][4] == 6
    assert rows[13][6] == {"traceparent": "00-ab-cd-01"}


@pytest.mark.parametrize(
    ("bad", "error", "text"),
    [
        (_item(b'{"n": '), InvalidArgument, "message 3: payload is not valid JSON"),
        (_item(b"x" * 65), ResourceExhausted, "message 3: payload is 65 bytes"),
        (_item(priority=9), InvalidArgument, "message 3: priority 9 is unknown"),
        (_item(ttl=math.nan), InvalidArgument, "message 3: ttl_seconds must be positive"),
        (_item(message_id="has space"), InvalidArgument, "message 3: message_id 'has space'"),
    ],
)
def test_a_bad_item_among_good_ones_of_its_shape_is_named_by_its_index(
    bad: messages_pb2.SendRequest, error: type[Exception], text: str
) -> None:
    items = [_item(), _item(), _item(), bad, _item()]
    with pytest.raises(error, match="^" + text.replace("(", r"\(")):
        _rows(items)


@pytest.mark.parametrize("length", [1, 26, 100, 123, 124, 127, 128])
def test_the_batch_answer_is_encoded_as_protobuf_encodes_it(length: int) -> None:
    ids = ("0123456789" * 13)[:length], "01ARZ3NDEKTSV4RRFFQ69G5FAV", "~" * length, "é" * length
    built = messages_pb2.SendBatchResponse(
        results=[messages_pb2.SendResponse(message_ids=[i], recipients=1) for i in ids]
    )
    parsed = messages_pb2.SendBatchResponse.FromString(_batch_results(list(ids)))
    assert parsed == built and parsed.SerializeToString() == built.SerializeToString()
    reply = hosts_pb2.MessageReply()  # merged into a reply's field, the field is there
    reply.send_batch.MergeFromString(_batch_results([]))
    assert reply.HasField("send_batch") and not reply.send_batch.results


def _copy(seq: int, **fields: object) -> StoredMessage:
    return stored_message(seq, **{"sent_at": T0, **fields})


def test_delivered_runs_of_one_send_are_built_as_message_to_proto_builds_each() -> None:
    trace = {"traceparent": "00-ab-cd-01"}
    copies = [
        _copy(1),
        _copy(2, delivery_count=2),
        _copy(3, data=b""),
        _copy(4, sent_at=T0 + 1),  # another send: a new run
        _copy(5, sent_at=T0 + 1, priority=1),
        _copy(6, sent_at=T0 + 1, priority=1, content_type=""),
        _copy(7, sent_at=T0 + 1, priority=1, content_type="", trace_context=trace),
        _copy(8, sent_at=T0 + 1, priority=1, content_type="", trace_context=trace),
        _copy(9, sent_at=T0 + 1, priority=1, content_type="", trace_context=dict(trace)),
        _copy(10, topic="t", recipient="topic:t/x", expires_at=math.inf, sent_at=0.0),
        _copy(11, topic="t", recipient="topic:t/x", expires_at=math.inf, sent_at=0.0),
        _copy(12, sender="C"),
        _copy(13, sender="C", recipient="task:D"),
        _copy(14, sender="C", recipient="task:D", id="ünïcode"),
    ]
    for i, msg in enumerate(copies):
        msg.delivery_count = msg.delivery_count or i % 3
    delivery = hosts_pb2.MessageDelivery.FromString(encoded_messages(copies, 2))
    expected = [message_to_proto(m) for m in copies]
    assert list(delivery.messages) == expected
    assert [m.SerializeToString() for m in delivery.messages] == [m.SerializeToString() for m in expected]


class _Store:
    """A message store whose every write is at once durable."""

    def __init__(self) -> None:
        self.inserted: list[StoredMessage] = []

    backlog = 0
    commits = 0

    async def open(self) -> Loaded:
        return Loaded([], [], 0)

    async def read_all(self) -> Loaded:
        return Loaded([], [], 0)

    async def close(self) -> None:
        pass

    def _done(self) -> asyncio.Future[None]:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def insert(self, messages: Sequence[StoredMessage]) -> asyncio.Future[None]:
        self.inserted.extend(messages)
        return self._done()

    def delete(self, seqs: Sequence[int]) -> asyncio.Future[None]:
        return self._done()

    def subscribe(self, mailbox: str, topic: str, created_at: float) -> asyncio.Future[None]:
        return self._done()

    def unsubscribe(self, mailbox: str, seqs: Sequence[int]) -> asyncio.Future[None]:
        return self._done()


class _Tasks:
    def __init__(self) -> None:
        self.tasks = {t: TaskInfo(t, "R", False) for t in ("A", "B", "C")}

    async def task(self, task_id: str) -> TaskInfo | None:
        return self.tasks.get(task_id)

    def unfinished_in_tree(self, root_id: str) -> list[str]:
        return sorted(self.tasks)


def _batch(*items: tuple[str, int, str]) -> messages_pb2.SendBatchRequest:
    """Items as (to_task_id, priority, client id)."""
    return messages_pb2.SendBatchRequest(
        messages=[
            messages_pb2.SendRequest(
                to_task_id=to,
                priority=priority,  # type: ignore[arg-type]
                payload=common_pb2.Payload(data=b'{"i": %d}' % i),
                message_id=client_id,
            )
            for i, (to, priority, client_id) in enumerate(items)
        ]
    )


async def test_a_batch_mixing_recipients_and_priorities_lands_in_priority_then_fifo_order() -> None:
    store = _Store()
    messaging = Messaging(store, _Tasks(), MessagingConfig(max_queued=100))  # type: ignore[arg-type]
    await messaging.open()
    requests = MessageRequests(messaging)
    try:
        plan = [("B", 3, ""), ("C", 1, ""), ("B", 1, ""), ("B", 3, "k1"), ("C", 0, ""), ("B", 3, "k1"), ("B", 2, "")]
        answer = await requests.send_batch("A", _batch(*plan))
        ids = [r.message_ids[0] for r in answer.results]
        assert [r.recipients for r in answer.results] == [1] * 7
        assert ids[3] == ids[5] == "k1"
        server_ids = [ids[i] for i in (0, 1, 2, 4, 6)]
        assert server_ids == sorted(server_ids) and len(set(server_ids)) == 5  # ULIDs in acceptance order
        # The repeated client id inside the batch is a no-op: six copies, seqs in item order.
        assert [(m.mailbox, m.id) for m in store.inserted] == [
            ("task:B", ids[0]),
            ("task:C", ids[1]),
            ("task:B", ids[2]),
            ("task:B", "k1"),
            ("task:C", ids[4]),
            ("task:B", ids[6]),
        ]
        assert [m.seq for m in store.inserted] == [1, 2, 3, 4, 5, 6]
        await asyncio.sleep(0)  # the commit's callback makes the copies readable
        now = time.time()
        box_b, box_c = messaging._index.get("task:B"), messaging._index.get("task:C")
        assert box_b is not None and box_c is not None
        taken = box_b.take(now, 10, 30).messages
        assert [m.id for m in taken] == [ids[2], ids[6], ids[0], "k1"]  # priority 1, 2, then 3 in order
        assert [m.priority for m in taken] == [1, 2, 3, 3]
        assert [m.id for m in box_c.take(now, 10, 30).messages] == [ids[1], ids[4]]
        assert box_b.stats.delivered == 4 and box_b.in_flight == 4 and box_b.stats.batches == 1
        # A lease that runs out puts the message back in its place: counted as redelivered.
        box_b.requeue_expired(now + 31)
        again = box_b.take(now + 31, 2, 30).messages
        assert [m.id for m in again] == [ids[2], ids[6]] and [m.delivery_count for m in again] == [2, 2]
        assert (box_b.stats.delivered, box_b.stats.redelivered, box_b.in_flight) == (4, 2, 2)
        # The client id resent in a later batch is still a no-op.
        resend = await requests.send_batch("A", _batch(("B", 3, "k1")))
        assert resend.results[0].message_ids[0] == "k1" and len(store.inserted) == 6
    finally:
        await messaging.close()


async def test_a_batch_error_names_the_first_message_of_the_failing_recipient() -> None:
    store = _Store()
    messaging = Messaging(store, _Tasks(), MessagingConfig(max_queued=3))  # type: ignore[arg-type]
    await messaging.open()
    requests = MessageRequests(messaging)
    try:
        with pytest.raises(NotFound, match=r"^message 2: task X not found"):
            await requests.send_batch("A", _batch(("B", 0, ""), ("C", 0, ""), ("X", 0, ""), ("B", 0, ""), ("Y", 0, "")))
        with pytest.raises(ResourceExhausted):  # four for a mailbox of three: none is sent
            await requests.send_batch("A", _batch(*[("B", 0, "")] * 4))
        assert store.inserted == []
    finally:
        await messaging.close()


def test_a_mailbox_takes_in_priority_then_seq_order_whatever_order_copies_come_back_in() -> None:
    """Random adds (mostly in seq order, some behind), takes, lease expiries, unleases and
    acks: every take is the lowest (priority, seq) ready copies, as a sort would give them."""
    rng = random.Random(5)
    box = Mailbox("task:B", max_queued=10_000, dedupe_window=50)
    now, seq = T0, 1000
    for _ in range(3000):
        op = rng.random()
        if op < 0.4:
            batch = []
            for _ in range(rng.randrange(1, 20)):
                seq += 1
                late = rng.random() < 0.1  # a commit that lands after a later one
                copy_seq = 2 * seq - 999 if late else 2 * seq  # unique, as the service's seqs are
                batch.append(
                    _copy(copy_seq, id=f"m{seq}", expires_at=math.inf, priority=rng.choice((1, 2, 2, 3, 3, 3, 4)))
                )
            if rng.random() < 0.5:
                box.add_many(batch)
            else:
                for msg in batch:
                    box.add(msg)
        elif op < 0.7:
            now += rng.choice((0.0, 0.0, 1.0, 40.0))  # sometimes past the leases: redeliveries
            box.requeue_expired(now)
            ready = sorted(
                (m for m in (box.get(i) for i in list(box._messages)) if m is not None and not m.lease_until),
                key=lambda m: (m.priority, m.seq),
            )
            limit = rng.randrange(1, 30)
            taken = box.take(now, limit, 30).messages
            assert [m.id for m in taken] == [m.id for m in ready[:limit]]
        elif op < 0.85:
            leased = [i for i, m in box._messages.items() if m.lease_until]
            box.unlease(rng.sample(leased, min(len(leased), rng.randrange(0, 5))))
        else:
            held = list(box._messages)
            box.ack(rng.sample(held, min(len(held), rng.randrange(0, 40))), now)
        assert box.queued + box.in_flight == len(box)
    assert box.stats.redelivered > 0 and box.stats.delivered > 0


async def test_host_session_envelopes_carry_what_a_batch_message_of_the_items_carries() -> None:
    session = HostSession(register=hosts_pb2.Register(host_id="h1"))
    items = [hosts_pb2.ControlItem(mailbox_closed=hosts_pb2.MailboxClosed(mailbox="task:B", code=5, error="gone"))]
    for n in (1, 3, 300):  # item encodings of one, two and three length bytes
        item = hosts_pb2.ControlItem()
        item.message_delivery.mailbox = "task:B"
        item.message_delivery.messages.extend(message_to_proto(_copy(i, data=b'"%s"' % (b"x" * 60))) for i in range(n))
        items.append(item)
    items.append(hosts_pb2.ControlItem())  # an empty item encodes to nothing: still an element
    for item in items:
        assert session.send(item)
    session.close()
    envelopes = [e async for e in session.envelopes()]
    decoded = [decode_envelope(e, hosts_pb2.ControlItems) for e in envelopes]
    assert [item for d in decoded for item in d.items] == items
    assert decoded[0] == hosts_pb2.ControlItems(items=items)
    assert envelopes[0].item_count == len(items) and session.sent.items == len(items)
    assert framed_item(items[1]) == hosts_pb2.ControlItems(items=[items[1]]).SerializeToString()


async def test_a_subscriber_stream_holds_no_more_than_max_in_flight_bytes_of_large_messages() -> None:
    """The push credit is the stream's count bound, and at most max_in_flight_bytes at the
    mailbox's mean payload size: a host relay asking for 5,000 in flight must not be handed
    5,000 payloads of a megabyte."""
    config = MessagingConfig(max_queued=100, max_payload_bytes=2048, max_in_flight_bytes=10_000)
    messaging = Messaging(_Store(), _Tasks(), config)  # type: ignore[arg-type]
    await messaging.open()
    requests = MessageRequests(messaging)
    big = b'"' + b"x" * 998 + b'"'  # 1,000 bytes of JSON
    small = messages_pb2.SendBatchRequest(
        messages=[messages_pb2.SendRequest(to_task_id="C", payload=common_pb2.Payload(data=b"1")) for _ in range(30)]
    )
    try:
        await requests.send_batch(
            "A",
            messages_pb2.SendBatchRequest(
                messages=[messages_pb2.SendRequest(to_task_id="B", payload=common_pb2.Payload(data=big))] * 30
            ),
        )
        await requests.send_batch("A", small)
        params = ReadParams(max_messages=1000, wait_seconds=0, lease_seconds=30)
        stream = messaging.subscribe("host-1/B", "B", "", params)
        first = await anext(stream)
        assert len(first) == 10  # 10,000 bytes at 1,000 a message
        await messaging.ack("B", "", [m.id for m in first[:4]])
        assert len(await anext(stream)) == 4  # room for as many as were acknowledged
        await stream.aclose()
        tiny = messaging.subscribe("host-1/C", "C", "", params)
        assert len(await anext(tiny)) == 30  # small payloads: the count bound alone
        await tiny.aclose()
    finally:
        await messaging.close()
