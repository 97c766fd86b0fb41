"""Short codes: compact, distinct, and unforgeable without the key."""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shortener.domain.codes import (
    ALPHABET,
    MAX_SERIAL,
    SERIAL_BANDS,
    TAG_BITS,
    CodeCodec,
)
from shortener.store.serials import BLOCK_SIZE

SECRET = b"k" * 32
codec = CodeCodec(SECRET)


def _number(code: str) -> int:
    number = 0
    for char in code:
        number = number * len(ALPHABET) + ALPHABET.index(char)
    return number


def _code(number: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _serial_seen_without_key(code: str) -> int:
    return _number(code) >> TAG_BITS


def test_codes_round_trip_and_stay_short() -> None:
    for serial in (1, 2, 511, 512, 10**6, 10**9, 10**9 + 10**6, MAX_SERIAL):
        code = codec.encode(serial)
        assert codec.decode(code) == serial
        assert set(code) <= set(ALPHABET)
    assert len(codec.encode(1)) <= 7
    assert len(codec.encode(10**9)) <= 12
    assert len(codec.encode(MAX_SERIAL)) == 12
    with pytest.raises(ValueError):
        codec.encode(MAX_SERIAL + 1)
    with pytest.raises(ValueError):
        codec.encode(0)


def test_codes_round_trip_at_every_band_edge_and_keep_their_length() -> None:
    for length, first, last in SERIAL_BANDS:
        serials = {
            first,
            first + 1,
            last - 1,
            last,
            *random.sample(range(first, last + 1), min(300, last - first)),
        }
        for serial in serials:
            code = codec.encode(serial)
            assert codec.decode(code) == serial
            seen = _serial_seen_without_key(code)
            assert first <= seen <= last
            # Only the band's first serial can make a number just below 62**(length - 1).
            assert len(code) == length or (len(code) == length - 1 and seen == first)
    assert SERIAL_BANDS[-1][2] == MAX_SERIAL
    assert [length for length, _, _ in SERIAL_BANDS] == list(range(7, 13))


def test_codes_of_a_band_are_a_permutation_of_its_serials() -> None:
    for _, first, last in SERIAL_BANDS[:2]:
        codes = [codec.encode(serial) for serial in range(first, last + 1)]
        assert sorted(_serial_seen_without_key(code) for code in codes) == list(
            range(first, last + 1)
        )
        assert [codec.decode(code) for code in codes] == list(range(first, last + 1))


def test_codes_tell_neither_the_serial_nor_the_order() -> None:
    for start in (200_000, 10**6, 10**8, 10**10):
        serials = list(range(start, start + 2 * BLOCK_SIZE))
        seen = [_serial_seen_without_key(codec.encode(serial)) for serial in serials]
        pairs = list(itertools.pairwise(seen))
        assert sum(after == before + 1 for before, after in pairs) <= 2
        assert sum(after > before for before, after in pairs) < 0.6 * len(pairs)
        near = [
            abs(shown - serial) < BLOCK_SIZE for shown, serial in zip(seen, serials, strict=True)
        ]
        assert sum(near) < 20
    other = CodeCodec(b"o" * 32)
    serials = range(10**6, 10**6 + 100)
    mine = [_serial_seen_without_key(codec.encode(serial)) for serial in serials]
    theirs = [_serial_seen_without_key(other.encode(serial)) for serial in serials]
    assert sum(a == b for a, b in zip(mine, theirs, strict=True)) <= 2


def test_codes_made_with_the_plain_serial_keep_resolving() -> None:
    # The format before serials were permuted: the serial itself, tagged with the unpersonalised
    # MAC. Such codes are out in messages and must keep working until they expire.
    for serial in (1, 512, 6354, 10**6, 10**9, MAX_SERIAL):
        mac = hashlib.blake2b(serial.to_bytes(8, "big"), key=SECRET, digest_size=5)
        tag = int.from_bytes(mac.digest(), "big") & ((1 << TAG_BITS) - 1)
        code = _code(serial << TAG_BITS | tag)
        assert codec.decode(code) == serial
        assert CodeCodec(b"o" * 32).decode(code) is None
        assert codec.decode(_code(serial << TAG_BITS | tag ^ 1)) is None


def test_another_key_makes_other_codes_and_refuses_these() -> None:
    other = CodeCodec(b"o" * 32)
    codes = [codec.encode(serial) for serial in range(1, 2000)]
    assert all(other.decode(code) is None for code in codes)
    assert not set(codes) & {other.encode(serial) for serial in range(1, 2000)}


@given(st.integers(min_value=1, max_value=MAX_SERIAL))
def test_every_single_character_change_is_refused(serial: int) -> None:
    code = codec.encode(serial)
    for position in range(len(code)):
        for replacement in random.sample(ALPHABET, 8):
            if replacement == code[position]:
                continue
            mutated = code[:position] + replacement + code[position + 1 :]
            assert codec.decode(mutated) is None


@given(st.text(max_size=20))
def test_arbitrary_text_never_decodes_or_crashes(text: str) -> None:
    assert codec.decode(text) is None


@given(st.integers(min_value=1, max_value=MAX_SERIAL), st.text(max_size=20))
def test_a_code_is_found_at_the_start_of_what_follows_it(serial: int, rest: str) -> None:
    code = codec.encode(serial)
    found = codec.decode_leading(code + rest)
    assert found is not None
    # What follows may itself complete a longer code; then that one is meant.
    assert found == (code, serial) or (found[0].startswith(code) and len(found[0]) > len(code))
    assert codec.decode_leading(code) == (code, serial)


@given(st.text(max_size=30))
def test_arbitrary_text_starts_with_no_code(text: str) -> None:
    assert codec.decode_leading(text) is None


def test_tag_bits_look_uniform() -> None:
    # A biased tag would make guessing cheaper than 2**-35; check each bit's frequency.
    counts = [0] * TAG_BITS
    samples = 4000
    for serial in range(1, samples + 1):
        tag = _number(codec.encode(serial)) & ((1 << TAG_BITS) - 1)
        for bit in range(TAG_BITS):
            counts[bit] += tag >> bit & 1
    assert all(0.45 * samples < count < 0.55 * samples for count in counts)
