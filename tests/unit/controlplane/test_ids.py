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


def test_a_batch_of_ids_is_what_one_call_per_id_gives_across_a_prefix_change() -> None:
    one, many = UlidGenerator(), UlidGenerator()
    for gen in (one, many):
        gen._last_ms = 2**47  # far ahead of the clock: every next id counts up from here
        gen._last_rand = (77 << 20) - 700
    singles = [one.new() for _ in range(3000)]
    batch = many.new_many(1) + many.new_many(0) + many.new_many(2999)
    assert batch == singles
    assert batch == [_reference(2**47, (77 << 20) - 699 + i) for i in range(3000)]
    assert many.new() == one.new()  # and the generator carries on from the batch's last id


def test_a_batch_of_ids_strictly_increases_after_single_ids() -> None:
    gen = UlidGenerator()
    ids = [gen.new(), *gen.new_many(5000), gen.new(), *gen.new_many(3)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and all(is_task_id(i) for i in ids)
