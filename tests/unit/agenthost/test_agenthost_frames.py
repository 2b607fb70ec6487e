"""Length-prefixed frames: encoding, and decoding whatever the read boundaries."""

from __future__ import annotations

import pytest
from maos.agenthost._frames import FrameDecoder, FrameError, decode_body, encode_frame


def test_frame_is_a_big_endian_length_then_json() -> None:
    frame = encode_frame({"run": [{"s": 1}]})
    assert frame[:4] == len(frame[4:]).to_bytes(4, "big")
    assert decode_body(frame[4:]) == {"run": [{"s": 1}]}


def test_several_frames_in_one_chunk() -> None:
    messages = [{"ev": [{"s": i, "st": "ok", "r": "null"}]} for i in range(5)]
    data = b"".join(encode_frame(m) for m in messages)
    assert [decode_body(b) for b in FrameDecoder().feed(data)] == messages


def test_byte_by_byte_reads_give_the_same_frames() -> None:
    messages = [{"hello": {"pid": 1}}, {"ev": []}, {"run": [{"s": 2, "in": "é ☃ \u0000"}]}]
    data = b"".join(encode_frame(m) for m in messages)
    decoder = FrameDecoder()
    out = []
    for i in range(len(data)):
        out.extend(decoder.feed(data[i : i + 1]))
        if i < len(data) - 1:
            assert len(out) < len(messages) or decoder.buffered == 0
    assert [decode_body(b) for b in out] == messages
    assert decoder.buffered == 0


@pytest.mark.parametrize("split", [1, 3, 4, 5, 9])
def test_split_inside_header_or_body(split: int) -> None:
    frame = encode_frame({"x": "y" * 10})
    decoder = FrameDecoder()
    assert decoder.feed(frame[:split]) == []
    assert decoder.buffered == split
    (body,) = decoder.feed(frame[split:])
    assert decode_body(body) == {"x": "y" * 10}


def test_empty_feed_and_empty_body() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed((0).to_bytes(4, "big")) == [b""]


def test_oversized_length_is_an_error() -> None:
    decoder = FrameDecoder(max_frame_bytes=100)
    with pytest.raises(FrameError, match="exceeds the limit of 100 bytes"):
        decoder.feed((101).to_bytes(4, "big"))


def test_corrupt_body_is_an_error() -> None:
    with pytest.raises(FrameError, match="undecodable frame body"):
        decode_body(b"{not json")
