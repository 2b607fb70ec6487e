"""send_many's hand-written SendBatchRequest encoding (client/_batch_wire.py) is protobuf's, byte for byte."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from maos.client._batch_wire import MAX_BATCH, MAX_BATCH_BYTES, encode_batches, first_message_ids
from maos.client._messages_client import batch_requests
from maos.errors import InvalidArgument
from maos.v1 import common_pb2, messages_pb2

PAYLOADS: list[Any] = [
    {"n": 1, "s": "é"},
    "x" * 200,  # lengths above 127 take a two-byte varint
    "y" * 20_000,  # and three bytes
    b"\x00raw",
    bytearray(b"ba"),
    memoryview(b"mv"),
    b"",  # an empty payload: no data field
    None,
    [1, 2.5, True],
]


def _expected(message: dict[str, Any]) -> messages_pb2.SendRequest:
    """The request as protobuf builds it from the same message (the encoding's reference)."""
    value = message["payload"]
    if isinstance(value, bytes | bytearray | memoryview):
        data, kind = bytes(value), message.get("content_type") or "application/octet-stream"
    else:
        import orjson

        data, kind = orjson.dumps(value), message.get("content_type") or "application/json"
    priority = {"critical": 1, "high": 2, "medium": 3, "low": 4}.get(message.get("priority") or "", 0)
    return messages_pb2.SendRequest(
        to_task_id=message["to_task_id"],
        priority=priority,  # type: ignore[arg-type]
        payload=common_pb2.Payload(data=data, content_type=kind),
        ttl_seconds=float(message.get("ttl") or 0.0),
        message_id=message.get("message_id") or "",
    )


def _messages() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    options = itertools.product([None, "high", "low"], [None, 2.5, 86400], [None, "", "m-1"], [None, "text/plain"])
    for i, (priority, ttl, message_id, content_type) in enumerate(options):
        message: dict[str, Any] = {"to_task_id": f"task-{i % 3}-ü", "payload": PAYLOADS[i % len(PAYLOADS)]}
        for key, value in (
            ("priority", priority),
            ("ttl", ttl),
            ("message_id", message_id),
            ("content_type", content_type),
        ):
            if value is not None:
                message[key] = value
        out.append(message)
    out += [{"to_task_id": "t", "payload": p} for p in PAYLOADS]  # no options: the fast path
    return out


def test_the_encoding_is_protobufs_byte_for_byte() -> None:
    messages = _messages()
    ((data, count),) = encode_batches(messages)
    expected = messages_pb2.SendBatchRequest(messages=[_expected(m) for m in messages])
    assert count == len(messages)
    assert data == expected.SerializeToString(deterministic=True)
    assert batch_requests(messages) == [expected]


def test_chunks_hold_at_most_max_batch_messages_and_about_max_batch_bytes() -> None:
    assert [count for _, count in encode_batches({"to_task_id": "B", "payload": i} for i in range(MAX_BATCH + 1))] == [
        MAX_BATCH,
        1,
    ]
    big = b"x" * (3 * 1024 * 1024)
    chunks = encode_batches([{"to_task_id": "B", "payload": big}] * 5)
    assert [count for _, count in chunks] == [2, 2, 1]
    assert all(len(data) <= MAX_BATCH_BYTES for data, _ in chunks)
    huge = b"x" * (MAX_BATCH_BYTES + 1)  # alone in its chunk: the server says whether it is too big
    assert [
        count for _, count in encode_batches([{"to_task_id": "B", "payload": huge}, {"to_task_id": "B", "payload": 1}])
    ] == [1, 1]
    assert encode_batches([]) == []


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"to": "B", "payload": 1}, r"^message 1: unknown key\(s\) \['to'\]"),
        ({"payload": 1}, r"^message 1: needs to_task_id and payload"),
        ({"to_task_id": "B"}, r"^message 1: needs to_task_id and payload"),
        ({"to_task_id": 7, "payload": 1}, r"^message 1: to_task_id must be a string"),
        ({"to_task_id": ["B"], "payload": 1}, r"^message 1: to_task_id must be a string"),
        ({"to_task_id": "\ud800", "payload": 1}, r"^message 1: to_task_id is not valid text"),
        ({"to_task_id": "B", "payload": {1j}}, r"^message 1: message payload: value is not JSON-serialisable"),
        ({"to_task_id": "B", "payload": {1j}, "ttl": 5}, r"^message 1: message payload: value is not JSON-serialis"),
        ({"to_task_id": "B", "payload": 1, "priority": "urgent"}, r"^message 1: unknown priority 'urgent'"),
        ({"to_task_id": "B", "payload": 1, "ttl": 0}, r"^message 1: ttl must be a positive number of seconds"),
        ({"to_task_id": "B", "payload": 1, "message_id": 5}, r"^message 1: message_id must be a string"),
        ({"to_task_id": "B", "payload": 1, "content_type": b"x"}, r"^message 1: content_type must be a string"),
    ],
)
def test_a_bad_message_is_named_by_its_index(message: dict[str, Any], error: str) -> None:
    with pytest.raises(InvalidArgument, match=error):
        encode_batches([{"to_task_id": "B", "payload": 0}, message])


def _response(*results: messages_pb2.SendResponse) -> bytes:
    return messages_pb2.SendBatchResponse(results=results).SerializeToString()


@pytest.mark.parametrize(
    "results",
    [
        [messages_pb2.SendResponse(message_ids=[f"01JX{i:022d}"], recipients=1) for i in range(1000)],
        [messages_pb2.SendResponse(message_ids=["k-1"], recipients=1)],
        [messages_pb2.SendResponse(message_ids=["a"])],  # recipients 0: not written
        [messages_pb2.SendResponse(message_ids=["é-1", "x"], recipients=2)],  # not ASCII
        [messages_pb2.SendResponse(message_ids=["m" * 200], recipients=1)],  # a two-byte length
        [messages_pb2.SendResponse(message_ids=["m" * 124], recipients=1)],  # a record of 128 bytes
        [messages_pb2.SendResponse(message_ids=["first", "second"], recipients=2)],
        [messages_pb2.SendResponse(message_ids=[""], recipients=1)],
        [],
    ],
)
def test_the_ids_read_from_a_response_are_protobufs(results: list[messages_pb2.SendResponse]) -> None:
    assert first_message_ids(_response(*results)) == [r.message_ids[0] for r in results]


def test_a_result_without_ids_fails_as_it_did_through_protobuf() -> None:
    with pytest.raises(IndexError):
        first_message_ids(
            _response(messages_pb2.SendResponse(message_ids=["a"]), messages_pb2.SendResponse(recipients=1))
        )
    with pytest.raises(IndexError):
        first_message_ids(_response(messages_pb2.SendResponse()))  # an empty record: "0a 00"
