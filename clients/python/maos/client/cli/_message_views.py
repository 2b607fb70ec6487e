"""`maosctl msg` input checks and output: pure functions, tested without a control plane."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import orjson
from maos.errors import InvalidArgument
from maos.v1 import messages_pb2

from .._config import ATTEMPT_ENV, TASK_ID_ENV
from .._enums import priority_name
from .._messages_client import message_value
from ._output import iso, render_table, size, truncate

PAYLOAD_WIDTH = 60


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_payload(text: str) -> Any:
    """The message payload from the JSON argument, checked before any RPC."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.pos == 0 and text.strip() and text.strip()[0] not in '{["-0123456789tfn':
            hint = f"; a JSON string needs quotes, like '\"{truncate(text, 20)}\"'"
        raise InvalidArgument(
            f"JSON is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}"
        ) from None
    except ValueError as exc:
        raise InvalidArgument(f"JSON is not valid JSON: {exc}") from None


def caller() -> tuple[str, int] | None:
    """The calling task from MAOS_TASK_ID (and MAOS_ATTEMPT), as agent hosts set them for command agents."""
    task_id = os.environ.get(TASK_ID_ENV, "")
    if not task_id:
        return None
    attempt = os.environ.get(ATTEMPT_ENV, "")
    return task_id, int(attempt) if attempt.isdigit() else 1


def message_dict(msg: messages_pb2.Message) -> dict[str, Any]:
    """A received message as a JSON document (bytes payloads as {"base64": ...})."""
    return {
        "id": msg.id,
        "from": msg.sender_task_id,
        "recipient": msg.recipient,
        "topic": msg.topic,
        "priority": priority_name(msg.priority),
        "sent_at": iso(msg.sent_at),
        "expires_at": iso(msg.expires_at),
        "delivery_count": msg.delivery_count,
        "content_type": msg.payload.content_type,
        "payload": message_value(msg),
    }


def _payload_text(msg: messages_pb2.Message) -> str:
    value = message_value(msg)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes {msg.payload.content_type}>"
    return orjson.dumps(value).decode()


def messages_table(messages: list[messages_pb2.Message]) -> str:
    """Received messages, one row each."""
    rows = [
        (m.id, m.sender_task_id or "-", priority_name(m.priority), iso(m.sent_at), _payload_text(m)) for m in messages
    ]
    return render_table(
        ["id", "from", "priority", "sent", "payload"], rows, max_widths={4: PAYLOAD_WIDTH}, empty="(no messages)"
    )


def message_line(msg: messages_pb2.Message, *, as_json: bool) -> str:
    """One line per message for `msg tail`: compact JSON, or time, priority, sender and payload."""
    if as_json:
        return orjson.dumps(message_dict(msg), default=_bytes_default).decode()
    return f"{iso(msg.sent_at)}  {priority_name(msg.priority):<8}  {msg.sender_task_id or '-'}  {_payload_text(msg)}"


def _bytes_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def sent_text(reply: messages_pb2.SendResponse, where: str) -> str:
    """What a send, broadcast or publish did, for a person."""
    if not reply.recipients:
        return f"nobody received it: {where} has no recipients; the message was dropped"
    mailboxes = "1 mailbox" if reply.recipients == 1 else f"{reply.recipients} mailboxes"
    return f"sent {reply.message_ids[0]} to {mailboxes} ({where})"


def sent_dict(reply: messages_pb2.SendResponse) -> dict[str, Any]:
    """A send's reply as a JSON document."""
    return {"message_id": reply.message_ids[0] if reply.message_ids else None, "recipients": reply.recipients}


def stats_rows(stats: list[messages_pb2.MailboxStats]) -> list[dict[str, Any]]:
    """Per-mailbox counters as JSON documents."""
    return [
        {
            "mailbox": s.mailbox,
            "queued": s.queued,
            "in_flight": s.in_flight,
            "sent": s.sent,
            "delivered": s.delivered,
            "redelivered": s.redelivered,
            "expired": s.expired,
            "rejected_full": s.rejected_full,
            "bytes": s.bytes,
            "batches": s.batches,
            "delivery_errors": s.delivery_errors,
        }
        for s in stats
    ]


def stats_table(stats: list[messages_pb2.MailboxStats]) -> str:
    """Counters per topic (summed over its subscriptions) and per mailbox."""
    rows = [
        (
            s.mailbox,
            s.queued,
            s.in_flight,
            s.sent,
            size(s.bytes),
            s.batches,
            s.delivered,
            s.redelivered,
            s.delivery_errors,
            s.expired,
            s.rejected_full,
        )
        for s in stats
    ]
    return render_table(
        [
            "mailbox",
            "queued",
            "in-flight",
            "sent",
            "bytes",
            "batches",
            "delivered",
            "redelivered",
            "errors",
            "expired",
            "rejected",
        ],
        rows,
        right=range(1, 11),
        max_widths={0: 60},
        empty="(no mailboxes)",
    )


_HOST_FIELDS = (
    "queued",
    "in_flight",
    "sent_local",
    "sent_upstream",
    "received",
    "acknowledged",
    "redelivered",
    "delivery_errors",
    "batches_up",
    "batches_down",
    "bytes_raw",
    "bytes_compressed",
)


def host_stats_rows(rows: list[messages_pb2.HostMessageStatsRow]) -> list[dict[str, Any]]:
    """Per-host relay counters as JSON documents."""
    return [{"host_id": r.host_id, **{name: getattr(r.stats, name) for name in _HOST_FIELDS}} for r in rows]


def host_stats_table(rows: list[messages_pb2.HostMessageStatsRow]) -> str:
    """What each host's message relay did: local deliveries, traffic on its stream, compression."""
    table = []
    for r in rows:
        s = r.stats
        ratio = f"{s.bytes_raw / s.bytes_compressed:.2f}x" if s.bytes_compressed else "-"
        table.append(
            (
                r.host_id,
                s.queued,
                s.in_flight,
                s.sent_local,
                s.sent_upstream,
                s.received,
                s.acknowledged,
                s.redelivered,
                s.delivery_errors,
                f"{s.batches_up}/{s.batches_down}",
                size(s.bytes_raw),
                ratio,
            )
        )
    return render_table(
        [
            "host",
            "queued",
            "in-flight",
            "local",
            "up",
            "down",
            "acked",
            "redelivered",
            "errors",
            "items up/down",
            "bytes",
            "lz4",
        ],
        table,
        right=range(1, 12),
        empty="(no hosts connected)",
    )
