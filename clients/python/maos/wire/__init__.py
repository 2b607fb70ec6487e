"""Wire helpers shared by the control plane, agent hosts and clients.

Batch envelopes (lz4-frame above a size threshold) for the host stream and
JSON payload conversion.
"""

from ._envelope import DEFAULT_COMPRESS_THRESHOLD as DEFAULT_COMPRESS_THRESHOLD
from ._envelope import EnvelopeError as EnvelopeError
from ._envelope import WireStats as WireStats
from ._envelope import decode_envelope as decode_envelope
from ._envelope import encode_envelope as encode_envelope
from ._envelope import encode_serialized as encode_serialized
from ._envelope import framed_item as framed_item
from ._payload import JSON_CONTENT_TYPE as JSON_CONTENT_TYPE
from ._payload import PayloadError as PayloadError
from ._payload import json_payload as json_payload
from ._payload import payload_value as payload_value

__all__ = [
    "DEFAULT_COMPRESS_THRESHOLD",
    "JSON_CONTENT_TYPE",
    "EnvelopeError",
    "PayloadError",
    "WireStats",
    "decode_envelope",
    "encode_envelope",
    "encode_serialized",
    "framed_item",
    "json_payload",
    "payload_value",
]
