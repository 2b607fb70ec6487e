"""Batch envelopes: a serialized items message, lz4-frame compressed when large."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import lz4.frame
from google.protobuf.message import DecodeError, Message
from maos.v1 import common_pb2

DEFAULT_COMPRESS_THRESHOLD = 512
_M = TypeVar("_M", bound=Message)


class EnvelopeError(ValueError):
    """An envelope that cannot be decoded (unknown codec, corrupt body)."""


@dataclass(slots=True)
class WireStats:
    """Counters for one direction of a stream."""

    batches: int = 0
    items: int = 0
    raw_bytes: int = 0
    wire_bytes: int = 0

    def record(self, envelope: common_pb2.Envelope) -> None:
        self.batches += 1
        self.items += envelope.item_count
        self.raw_bytes += envelope.raw_size
        self.wire_bytes += len(envelope.body)


def encode_envelope(
    items: Message, item_count: int, threshold: int = DEFAULT_COMPRESS_THRESHOLD
) -> common_pb2.Envelope:
    """Serialize `items`; compress the body with lz4-frame when it exceeds `threshold` bytes."""
    return encode_serialized(items.SerializeToString(), item_count, threshold)


def encode_serialized(raw: bytes, item_count: int, threshold: int = DEFAULT_COMPRESS_THRESHOLD) -> common_pb2.Envelope:
    """`encode_envelope` for an items message already serialized: e.g. its items' own
    encodings joined (`framed_item`), which spares copying each item into the batch message."""
    if len(raw) > threshold:
        # Level 0 (fast mode): the stream is latency-bound, not bandwidth-bound.
        body = lz4.frame.compress(raw, compression_level=0, store_size=False)
        if len(body) < len(raw):
            return common_pb2.Envelope(
                codec=common_pb2.CODEC_LZ4_FRAME, body=body, item_count=item_count, raw_size=len(raw)
            )
    return common_pb2.Envelope(codec=common_pb2.CODEC_NONE, body=raw, item_count=item_count, raw_size=len(raw))


def framed_item(item: Message) -> bytes:
    """`item` encoded as one element of an items message's `items` (field 1, repeated): joined,
    such elements are that message's encoding (protobuf concatenates repeated fields)."""
    raw = item.SerializeToString()
    size = len(raw)
    if size < 0x80:
        return b"\x0a" + bytes((size,)) + raw
    head = bytearray(b"\x0a")
    while size >= 0x80:
        head.append((size & 0x7F) | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + raw


def decode_envelope(envelope: common_pb2.Envelope, message_type: type[_M]) -> _M:
    """Decode an envelope's body into `message_type`; raises EnvelopeError on bad input."""
    if envelope.codec == common_pb2.CODEC_LZ4_FRAME:
        try:
            raw = lz4.frame.decompress(envelope.body)
        except RuntimeError as exc:
            raise EnvelopeError(f"corrupt lz4 body: {exc}") from exc
    elif envelope.codec in (common_pb2.CODEC_NONE, common_pb2.CODEC_UNSPECIFIED):
        raw = envelope.body
    else:
        raise EnvelopeError(f"unknown codec {envelope.codec}; this side knows NONE and LZ4_FRAME")
    message = message_type()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise EnvelopeError(f"undecodable {message_type.__name__} body: {exc}") from exc
    return message
