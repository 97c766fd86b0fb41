"""Tests for SMS encoding detection and segment counting."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shortener.text.segments import Encoding, SegmentCount, count_segments

# The tables are restated here as code points, independently of the module's
# string literal, so that a typo in either one shows up as a failure.
# Each row is 16 GSM positions; None marks 0x1B, the escape to the extension table.
GSM_BASIC_BY_CODE: list[int | None] = [
    # 0x00
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
    # 0x10
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
    0x03A3, 0x0398, 0x039E, None, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
    # 0x20
    0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,
    0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
    # 0x30
    *range(0x0030, 0x003A), 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F,
    # 0x40
    0x00A1, *range(0x0041, 0x0050),
    # 0x50
    *range(0x0050, 0x005B), 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
    # 0x60
    0x00BF, *range(0x0061, 0x0070),
    # 0x70
    *range(0x0070, 0x007B), 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
]  # fmt: skip
GSM_BASIC = frozenset(chr(cp) for cp in GSM_BASIC_BY_CODE if cp is not None)
GSM_EXTENSION = frozenset(
    chr(cp) for cp in (0x000C, 0x005E, 0x007B, 0x007D, 0x005C, 0x005B, 0x007E, 0x005D, 0x007C)
) | {"\N{EURO SIGN}"}

EURO = "\N{EURO SIGN}"
EMOJI = "\N{GRINNING FACE}"
HAN = "\N{CJK UNIFIED IDEOGRAPH-4E2D}"


def gsm_cost(char: str) -> int:
    return 2 if char in GSM_EXTENSION else 1


def ucs2_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def reference_count(text: str) -> SegmentCount:
    """Pack character by character, starting a new part whenever the next one does not fit."""
    encoding: Encoding
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        encoding, cost, single, multi = "GSM-7", gsm_cost, 160, 153
    else:
        encoding, cost, single, multi = "UCS-2", ucs2_cost, 70, 67
    costs = [cost(char) for char in text]
    total = sum(costs)
    if total == 0:
        return SegmentCount(encoding, 0, 0)
    if total <= single:
        return SegmentCount(encoding, total, 1)
    segments = 1
    used = 0
    for unit_cost in costs:
        if used + unit_cost > multi:
            segments += 1
            used = 0
        used += unit_cost
    return SegmentCount(encoding, total, segments)


def test_reference_tables_have_the_standard_sizes() -> None:
    assert len(GSM_BASIC_BY_CODE) == 128
    assert len(GSM_BASIC) == 127
    assert len(GSM_EXTENSION) == 10
    assert not GSM_BASIC & GSM_EXTENSION


def test_empty_body() -> None:
    assert count_segments("") == SegmentCount("GSM-7", 0, 0)


def test_result_is_immutable() -> None:
    result = count_segments("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.segments = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm_segment_boundaries(length: int, segments: int) -> None:
    assert count_segments("a" * length) == SegmentCount("GSM-7", length, segments)


@pytest.mark.parametrize("char", sorted(GSM_EXTENSION))
def test_extension_character_costs_two_septets(char: str) -> None:
    assert count_segments(char) == SegmentCount("GSM-7", 2, 1)
    assert count_segments("ab" + char + "c") == SegmentCount("GSM-7", 5, 1)


def test_euro_sign_costs_two_septets() -> None:
    assert count_segments(EURO).characters == 2
    assert count_segments(EURO * 80) == SegmentCount("GSM-7", 160, 1)
    assert count_segments("a" + EURO * 80) == SegmentCount("GSM-7", 161, 2)


def test_extension_character_is_not_split_across_segments() -> None:
    # 152 + 2 + 152 = 306 septets divides into 2 parts, but the escape pair
    # cannot start in the last septet of part one, so it needs 3.
    body = "a" * 152 + EURO + "a" * 152
    result = count_segments(body)
    assert result == SegmentCount("GSM-7", 306, 3)
    assert -(-result.characters // 153) == 2


def test_extension_character_that_fits_exactly_does_not_move() -> None:
    body = "a" * 151 + EURO + "a" * 153
    assert count_segments(body) == SegmentCount("GSM-7", 306, 2)


def test_extension_characters_only_waste_a_septet_in_every_part() -> None:
    # 153 is odd, so a part holds 76 pairs and one idle septet: 229 pairs are
    # 458 septets, which division fits in 3 parts but packing needs 4.
    result = count_segments(EURO * 229)
    assert result == SegmentCount("GSM-7", 458, 4)
    assert -(-result.characters // 153) == 3


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_segment_boundaries(length: int, segments: int) -> None:
    assert count_segments(HAN * length) == SegmentCount("UCS-2", length, segments)


def test_astral_character_costs_two_code_units() -> None:
    assert count_segments(EMOJI) == SegmentCount("UCS-2", 2, 1)
    assert count_segments(EMOJI * 35) == SegmentCount("UCS-2", 70, 1)
    assert count_segments("a" + EMOJI * 35) == SegmentCount("UCS-2", 71, 2)


def test_surrogate_pair_is_not_split_across_segments() -> None:
    # 66 + 2 + 66 = 134 code units divides into 2 parts, but the pair cannot
    # start in the last unit of part one, so it needs 3.
    body = HAN * 66 + EMOJI + HAN * 66
    result = count_segments(body)
    assert result == SegmentCount("UCS-2", 134, 3)
    assert -(-result.characters // 67) == 2


def test_surrogate_pair_that_fits_exactly_does_not_move() -> None:
    body = HAN * 65 + EMOJI + HAN * 67
    assert count_segments(body) == SegmentCount("UCS-2", 134, 2)


def test_lone_surrogate_counts_one_code_unit() -> None:
    assert count_segments("\ud83d") == SegmentCount("UCS-2", 1, 1)
    # Alone, a high surrogate is not a pair and may end a part.
    body = HAN * 66 + "\ud83d" + HAN * 67
    assert count_segments(body) == SegmentCount("UCS-2", 134, 2)


def test_surrogate_halves_as_separate_characters_are_still_one_pair() -> None:
    # Encoded, the two halves form the same pair as the emoji, so they must
    # not be split either.
    body = HAN * 66 + "\ud83d\ude00" + HAN * 66
    assert count_segments(body) == count_segments(HAN * 66 + EMOJI + HAN * 66)


@pytest.mark.parametrize(
    "char",
    ["\N{LATIN SMALL LETTER L WITH STROKE}", HAN, "`", "\N{LATIN SMALL LETTER C WITH CEDILLA}",
     "\N{LATIN CAPITAL LETTER E WITH GRAVE}", "\N{NO-BREAK SPACE}", "\t", "\x1b", EMOJI],
)  # fmt: skip
def test_one_non_gsm_character_switches_whole_body_to_ucs2(char: str) -> None:
    body = "a" * 100 + EURO + char
    result = count_segments(body)
    assert result.encoding == "UCS-2"
    # The euro sign is one code unit in UCS-2, not an escape pair.
    assert result.characters == 101 + ucs2_cost(char)
    assert result.segments == 2


@pytest.mark.parametrize("char", sorted(GSM_BASIC))
def test_every_basic_table_character_is_one_septet(char: str) -> None:
    assert count_segments(char) == SegmentCount("GSM-7", 1, 1)
    assert count_segments(char * 161) == SegmentCount("GSM-7", 161, 2)


def test_whole_basic_table_in_one_body() -> None:
    body = "".join(sorted(GSM_BASIC))
    assert count_segments(body) == SegmentCount("GSM-7", 127, 1)
    assert count_segments(body + "".join(sorted(GSM_EXTENSION))) == SegmentCount("GSM-7", 147, 1)


GSM_CHARS = sorted(GSM_BASIC | GSM_EXTENSION)
EXTENSION_CHARS = sorted(GSM_EXTENSION)

bodies = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700),
    # Mostly one-unit characters with a sprinkling of two-unit ones, so that the
    # wide characters land on part boundaries often.
    st.text(alphabet=st.sampled_from(["a"] * 6 + EXTENSION_CHARS), max_size=700),
    st.text(alphabet=st.sampled_from([HAN] * 4 + [EMOJI, "\N{PILE OF POO}"]), max_size=300),
    st.text(alphabet=st.sampled_from(["a", EURO, EMOJI, HAN]), max_size=300),
)


@settings(max_examples=500)
@given(bodies)
def test_matches_reference_packing(text: str) -> None:
    expected = reference_count(text)
    result = count_segments(text)
    assert result == expected
    if result.encoding == "GSM-7":
        assert result.characters == sum(gsm_cost(char) for char in text)
    else:
        assert result.characters == sum(ucs2_cost(char) for char in text)
        assert result.characters == len(text.encode("utf-16-le")) // 2
