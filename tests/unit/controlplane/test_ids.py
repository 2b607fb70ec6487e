"""ULIDs: Crockford base32 of (48-bit ms time, 80-bit random), strictly increasing within a process."""

from __future__ import annotations

from maos.controlplane._ids import UlidGenerator, is_task_id

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(ms: int, rand: int) -> str:
    value, chars = (ms << 80) | rand, []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def test_ids_encode_time_and_randomness_as_the_ulid_spec_says() -> None:
    gen = UlidGenerator()
    for _ in range(100):
        text = gen.new()
        assert text == _reference(gen._last_ms, gen._last_rand)
        assert is_task_id(text)


def test_ids_strictly_increase_even_within_one_millisecond() -> None:
    gen = UlidGenerator()
    ids = [gen.new() for _ in range(20_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_counting_up_past_the_cached_prefix_changes_the_prefix() -> None:
    gen = UlidGenerator()
    gen.new()
    # Within one millisecond the counter runs over the 20 bits the table covers: the prefix must follow.
    gen._last_ms = 2**47  # far ahead of the clock: every next id counts up
    gen._last_rand = (77 << 20) - 3
    ids = [gen.new() for _ in range(6)]
    assert ids == [_reference(2**47, (77 << 20) - 2 + i) for i in range(6)]
    assert ids == sorted(ids) and len(set(ids)) == 6
