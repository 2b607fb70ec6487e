"""What `ctx.messages.receive` hands agent code: Received objects read from the wire in one
pass, payloads decoded on first read, redeliveries and votes sorted out of the batch."""

from __future__ import annotations

import pickle

import pytest
from maos.client import _context_messages as cm
from maos.client._context_messages import SEEN_IDS, VOTE_CONTENT_TYPE, Received, _Inbox
from maos.client._messages_client import message_value
from maos.v1 import common_pb2, messages_pb2


def _wire(
    message_id: str, data: bytes = b'{"n": 1}', content_type: str = "application/json", **fields: object
) -> messages_pb2.Message:
    msg = messages_pb2.Message(id=message_id, **fields)  # type: ignore[arg-type]
    msg.payload.data = data
    msg.payload.content_type = content_type
    return msg


def _received(msg: messages_pb2.Message) -> Received:
    (out,), _ = _Inbox().fresh([msg])
    return out


def test_a_received_message_carries_every_field_of_the_wire_message() -> None:
    msg = _wire(
        "m1",
        sender_task_id="A",
        recipient="topic:prices",
        topic="prices",
        priority=common_pb2.PRIORITY_HIGH,
        delivery_count=2,
    )
    msg.sent_at.seconds, msg.sent_at.nanos = 1_700_000_000, 500_000_000
    got = _received(msg)
    assert (got.id, got.sender, got.value, got.priority, got.topic, got.recipient) == (
        "m1",
        "A",
        {"n": 1},
        "high",
        "prices",
        "topic:prices",
    )
    assert got.sent_at == 1_700_000_000.5 and got.delivery_count == 2
    assert _received(_wire("m2")).priority == "medium"  # unset reads as the service treats it
    assert _received(_wire("m3", priority=9)).priority == "unknown(9)"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"a": [1, 2.5, "x"]}', "application/json"),
        (b"[1, 2]", ""),  # no content type: JSON
        (b"raw bytes", "application/octet-stream"),
        (b"{not json", "application/json"),  # broken JSON: its bytes, not an error
        (b"", "application/json"),  # empty: None
        (b"", "text/plain"),
    ],
)
def test_a_payload_decodes_as_message_value_decodes_it(data: bytes, content_type: str) -> None:
    msg = _wire("m", data, content_type)
    got = _received(msg)
    assert got.value == message_value(msg)
    assert got.value is got.value  # decoded once, then kept


def test_the_payload_is_decoded_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _received(_wire("m", b'{"n": 2}'))
    assert got.id == "m"
    monkeypatch.setattr(cm, "_orjson", None)  # decoding would import it again
    monkeypatch.setattr(cm, "_import_orjson", lambda: pytest.fail("decoded before `value` was read"))
    assert got.sender == "" and got.priority == "medium"


def test_a_received_message_is_read_only_and_compares_prints_and_pickles_by_its_fields() -> None:
    made = Received("m", "A", {"n": 1}, "high", "", "task:B", 1.5, 1)
    got = _received(_wire("m", sender_task_id="A", recipient="task:B", priority=common_pb2.PRIORITY_HIGH))
    assert got != made  # sent_at and delivery_count differ
    same = Received("m", "A", {"n": 1}, "high", "", "task:B", 0.0, 0)
    assert got == same and got != "m"
    with pytest.raises(AttributeError):
        got.value = 2  # type: ignore[misc]
    assert repr(same) == (
        "Received(id='m', sender='A', value={'n': 1}, priority='high', topic='', recipient='task:B', "
        "sent_at=0.0, delivery_count=0)"
    )
    assert pickle.loads(pickle.dumps(got)) == got
    assert hash(Received("m", "A", "v", "high", "", "task:B", 0.0, 0)) == hash(
        Received("m", "A", "v", "high", "", "task:B", 0.0, 0)
    )


def test_a_batch_drops_ids_already_returned_and_keeps_votes_for_their_round() -> None:
    inbox = _Inbox()
    vote = _wire("v1", b'{"vote": "plan", "voter": "T2", "value": "B"}', VOTE_CONTENT_TYPE)
    fresh, ack = inbox.fresh([_wire("a"), _wire("b"), _wire("a"), vote])
    assert [r.id for r in fresh] == ["a", "b"]
    assert ack == ["a", "v1"]  # the repeat within the batch, and the vote
    assert inbox.votes == {"plan": {"v1": ("T2", b'"B"')}}
    fresh, ack = inbox.fresh([_wire("b"), _wire("c")])  # b redelivered after its ack was lost
    assert [r.id for r in fresh] == ["c"] and ack == ["b"]


def test_the_memory_of_returned_ids_stays_bounded() -> None:
    inbox = _Inbox()
    inbox.fresh([_wire(f"m{i}") for i in range(SEEN_IDS + 5)])
    assert len(inbox.seen) == SEEN_IDS and "m0" not in inbox.seen and f"m{SEEN_IDS + 4}" in inbox.seen
