"""Validation of what clients send: pure functions that raise InvalidArgument or ResourceExhausted."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from maos.errors import InvalidArgument, MaosError, ResourceExhausted
from maos.v1 import messages_pb2

from ._config import MessagingConfig
from ._names import check_message_id

JSON_CONTENT_TYPE = "application/json"
PRIORITY_CRITICAL, PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW = 1, 2, 3, 4
_PRIORITY_NAMES = "critical (1), high (2), medium (3) or low (4)"
_TRACE_KEYS = ("traceparent", "tracestate")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A validated message body, before it is addressed and copied into mailboxes."""

    priority: int
    data: bytes
    content_type: str
    ttl_seconds: float
    message_id: str = ""
    trace_context: dict[str, str] | None = None  # the sender's W3C context (see maos.tracing)


@functools.lru_cache(maxsize=256)  # a handful of content types, checked once per message
def is_json(content_type: str) -> bool:
    """True for content types whose bytes must parse as JSON ("" means JSON)."""
    base = content_type.partition(";")[0].strip().lower()
    return base in ("", JSON_CONTENT_TYPE) or base.endswith("+json")


def outgoing(
    *,
    priority: int,
    data: bytes,
    content_type: str,
    ttl_seconds: float,
    message_id: str,
    config: MessagingConfig,
    trace_context: Mapping[str, str] | None = None,
) -> Outgoing:
    """Check a message body: priority, size, JSON validity, TTL and client id."""
    return check_outgoing(config, priority, data, content_type, ttl_seconds, message_id, trace_context)


def check_outgoing(
    config: MessagingConfig,
    priority: int,
    data: bytes,
    content_type: str,
    ttl_seconds: float,
    message_id: str,
    trace_context: Mapping[str, str] | None,
) -> Outgoing:
    """`outgoing` with positional arguments: called once per message of a batch, so it is
    written for the common case (every check passes) and keeps keyword passing out."""
    if priority == 0:
        priority = PRIORITY_MEDIUM
    elif not PRIORITY_CRITICAL <= priority <= PRIORITY_LOW:
        raise InvalidArgument(f"priority {priority} is unknown; use {_PRIORITY_NAMES}")
    if len(data) > config.max_payload_bytes:
        raise ResourceExhausted(
            f"payload is {len(data)} bytes; the limit is {config.max_payload_bytes}: send a reference "
            "(a shared-state key or a file path) instead of the data"
        )
    if len(content_type) > 200:
        raise InvalidArgument(f"content_type is {len(content_type)} characters long; the limit is 200")
    if data and is_json(content_type):
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"payload is not valid JSON ({exc}); send JSON or set another content_type") from None
    ttl = ttl_seconds or config.default_ttl_seconds
    if not 0 <= ttl <= config.max_ttl_seconds:  # NaN fails both comparisons
        if math.isnan(ttl) or ttl < 0:
            raise InvalidArgument(f"ttl_seconds must be positive (0 = the default of {config.default_ttl_seconds:g})")
        raise InvalidArgument(f"ttl_seconds {ttl:g} is above the limit of {config.max_ttl_seconds:g}")
    if message_id:
        check_message_id(message_id)
    # Only W3C's two keys, bounded: a client cannot make every copy of its message carry more.
    context = (
        {k: v for k, v in trace_context.items() if k in _TRACE_KEYS and len(v) <= 512} or None
        if trace_context
        else None
    )
    return Outgoing(priority, data, content_type or JSON_CONTENT_TYPE, ttl, message_id, context)


@dataclass(frozen=True, slots=True)
class ReadParams:
    """Validated Receive/Subscribe parameters."""

    max_messages: int
    wait_seconds: float
    lease_seconds: float


def read_params(
    *, max_messages: int, wait_seconds: float, lease_seconds: float, config: MessagingConfig, limit: int
) -> ReadParams:
    """Defaults and bounds for a read; `limit` is the most messages (or in-flight) allowed."""
    if max_messages > limit:
        raise InvalidArgument(f"at most {limit} messages at once, asked for {max_messages}")
    if math.isnan(wait_seconds) or wait_seconds < 0:
        raise InvalidArgument("wait_seconds must not be negative")
    if math.isnan(lease_seconds) or lease_seconds < 0:
        raise InvalidArgument(f"lease_seconds must be positive (0 = the default of {config.default_lease_seconds:g})")
    lease = lease_seconds or config.default_lease_seconds
    if lease > config.max_lease_seconds:
        raise InvalidArgument(f"lease_seconds {lease:g} is above the limit of {config.max_lease_seconds:g}")
    return ReadParams(max(1, max_messages), min(wait_seconds, config.max_wait_seconds), lease)


BatchRow = tuple[str, int, bytes, str, float, str, dict[str, str] | None]
"""A checked SendBatch item: (to_task_id, priority, data, content_type, ttl_seconds,
message_id, trace_context), as `check_outgoing` would make it (a tuple: no object per message)."""


def check_batch_items(
    config: MessagingConfig,
    items: Sequence[messages_pb2.SendRequest],
    to_task_ids: Sequence[str],
    *,
    client_ids: bool = True,
) -> list[BatchRow]:
    """`check_batch_item` for every item of a SendBatch, addressed to `to_task_ids`.

    The common batch repeats one priority, content type and TTL, with no client id and no
    trace context: such an item is checked here with what differs per item (size, JSON).
    Any other item, and any that fails, goes through `check_batch_item`, so results and
    errors (naming the failing index) are exactly its own. `client_ids=False`: the caller
    saw that no item carries a message id, so it is not read again.
    """
    max_bytes = config.max_payload_bytes
    rows: list[BatchRow] = []
    append = rows.append
    # The raw fields the last fully checked item had (none yet: no content type is None), and
    # what the check made of them.
    last_priority = last_ttl = -1.0
    last_type: str | None = None
    priority, content_type, ttl, json = 0, "", 0.0, False
    for i, item in enumerate(items):
        payload = item.payload
        data = payload.data
        if (
            item.priority == last_priority
            and payload.content_type == last_type
            and item.ttl_seconds == last_ttl
            and len(data) <= max_bytes
            and not (client_ids and item.message_id)
            and not item.trace_context
        ):
            if not json or not data:
                append((to_task_ids[i], priority, data, content_type, ttl, "", None))
                continue
            try:
                orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # check_batch_item raises the error that names it
            else:
                append((to_task_ids[i], priority, data, content_type, ttl, "", None))
                continue
        out = check_batch_item(config, i, item)
        append(
            (
                to_task_ids[i],
                out.priority,
                out.data,
                out.content_type,
                out.ttl_seconds,
                out.message_id,
                out.trace_context,
            )
        )
        last_priority, last_type, last_ttl = item.priority, payload.content_type, item.ttl_seconds
        priority, content_type, ttl, json = out.priority, out.content_type, out.ttl_seconds, is_json(last_type)
    return rows


def check_batch_item(config: MessagingConfig, index: int, item: messages_pb2.SendRequest) -> Outgoing:
    """`check_outgoing` for message `index` of a SendBatch; an error names the index."""
    payload = item.payload
    try:
        return check_outgoing(
            config,
            item.priority,
            payload.data,
            payload.content_type,
            item.ttl_seconds,
            item.message_id,
            item.trace_context,
        )
    except MaosError as exc:
        raise type(exc)(f"message {index}: {exc}") from None
