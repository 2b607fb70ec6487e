"""JSON payloads: Python value <-> maos.v1.Payload."""

from __future__ import annotations

from typing import Any

import orjson
from maos.v1 import common_pb2

JSON_CONTENT_TYPE = "application/json"


class PayloadError(ValueError):
    """A payload that is not what it claims to be (e.g. invalid JSON)."""


def json_payload(value: Any) -> common_pb2.Payload:
    """Encode a JSON-serialisable value; raises PayloadError naming what could not be encoded."""
    try:
        data = orjson.dumps(value)
    except TypeError as exc:
        raise PayloadError(f"value is not JSON-serialisable: {exc}") from exc
    return common_pb2.Payload(data=data, content_type=JSON_CONTENT_TYPE)


def payload_value(payload: common_pb2.Payload) -> Any:
    """Decode a payload: JSON (or unset content type) to a value, anything else to bytes."""
    if not payload.data:
        return None
    if payload.content_type in ("", JSON_CONTENT_TYPE):
        try:
            return orjson.loads(payload.data)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"payload is not valid JSON: {exc}") from exc
    return payload.data
