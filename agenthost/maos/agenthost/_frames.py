"""Length-prefixed frames between the host and its workers: 4-byte big-endian length + orjson body.

Both directions batch: one frame carries many tasks (host -> worker) or many
results and progress events (worker -> host). Shapes (short keys, hot path):

    host -> worker   {"init": {...}} | {"run": [task, ...]} | {"cancel": [seq, ...]} | {"stop": true}
    worker -> host   {"hello": {"pid": ...}} | {"ev": [event, ...]}

    task   {"s": seq, "id": task_id, "a": attempt, "ty": agent_type, "d": description,
            "in": input JSON text, "root": ..., "par": ..., "deps": [...], "lab": {...}}
    event  result:   {"s": seq, "st": "ok" | "err" | "cancel", "r": result JSON text,
                      "ek": error kind, "em": error message, "log": stderr tail, "t": seconds}
           progress: {"s": seq, "p": fraction, "m": message}
"""

from __future__ import annotations

from typing import Any

import orjson

HEADER_BYTES = 4
# A frame holds up to a batch of results; each result is capped well below this in the worker.
MAX_FRAME_BYTES = 256 * 1024 * 1024


class FrameError(ValueError):
    """A frame stream that cannot be decoded (oversized length, corrupt body)."""


def encode_frame(message: Any) -> bytes:
    """One frame: the length prefix and the orjson body of `message`."""
    body = orjson.dumps(message)
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def decode_body(body: bytes | bytearray | memoryview) -> Any:
    """The message of one frame body; raises FrameError on invalid JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"undecodable frame body: {exc}") from exc


class FrameDecoder:
    """Splits a byte stream into frame bodies, whatever the read boundaries.

    `feed()` takes any chunk (a partial header, several frames at once) and
    returns the bodies completed by it.
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add `data`; return the complete frame bodies, in order."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end_of_data = len(buf)
        while end_of_data - pos >= HEADER_BYTES:
            size = int.from_bytes(buf[pos : pos + HEADER_BYTES], "big")
            if size > self._max:
                raise FrameError(f"frame of {size} bytes exceeds the limit of {self._max} bytes")
            end = pos + HEADER_BYTES + size
            if end > end_of_data:
                break
            frames.append(bytes(buf[pos + HEADER_BYTES : end]))
            pos = end
        if pos:
            del buf[:pos]
        return frames
