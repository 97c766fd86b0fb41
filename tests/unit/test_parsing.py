"""Numbers, versions and cursors from outside: ASCII digits only, the whole text, bounded."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shortener.cli import _duration
from shortener.config import SettingsError, load_settings
from shortener.text import parsing
from tests.support.inputs import NOT_NUMBERS

MAX_STREAM_ID_PART = 2**64 - 1


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_only_ascii_digits_are_a_number(text: str) -> None:
    assert parsing.whole_number(text) is None


@given(st.integers(min_value=0, max_value=10**parsing.MAX_DIGITS - 1))
def test_every_number_reads_back(number: int) -> None:
    assert parsing.whole_number(str(number)) == number


def test_numbers_are_bounded_in_length() -> None:
    assert parsing.whole_number("9" * parsing.MAX_DIGITS) == 10**parsing.MAX_DIGITS - 1
    assert parsing.whole_number("9" * (parsing.MAX_DIGITS + 1)) is None
    # Far beyond what int() converts at all.
    assert parsing.whole_number("9" * 10_000) is None
    assert parsing.whole_number("12345", max_digits=4) is None
    assert parsing.whole_number("1234", max_digits=4) == 1234


@pytest.mark.parametrize(
    ("text", "cursor"),
    [
        ("0-0", "0-0"),
        ("1767225600000-3", "1767225600000-3"),
        ("007-01", "7-1"),
        (f"{MAX_STREAM_ID_PART}-0", f"{MAX_STREAM_ID_PART}-0"),
        (f"0-{MAX_STREAM_ID_PART}", f"0-{MAX_STREAM_ID_PART}"),
    ],
)
def test_stream_cursors(text: str, cursor: str) -> None:
    assert parsing.stream_cursor(text) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "1-2\n",
        "1-²",
        "١-2",
        "1- 2",
        "1-2-3",
        "1",
        "-1",
        "1-",
        "a-b",
        f"{MAX_STREAM_ID_PART + 1}-0",
        f"0-{MAX_STREAM_ID_PART + 1}",
        # Nothing can come after the largest id.
        f"{MAX_STREAM_ID_PART}-{MAX_STREAM_ID_PART}",
    ],
)
def test_what_is_no_stream_cursor(text: str) -> None:
    assert parsing.stream_cursor(text) is None


@pytest.mark.parametrize("version", ["²", "١", "1\n", "+1", "0x1", "1_0", "０"])
def test_signing_key_versions_are_ascii_numbers(version: str) -> None:
    with pytest.raises(SettingsError, match="version"):
        load_settings(signing_keys=f"{version}:a-signing-secret-0123456789")
    assert load_settings(signing_keys="12:a-signing-secret-0123456789").signing_keys == {
        12: "a-signing-secret-0123456789"
    }


@pytest.mark.parametrize("text", ["²d", "١d", "１h", "+1d", "0x1d", "1_0m"])
def test_durations_take_ascii_numbers_only(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _duration(text)
    assert _duration("36h") == 36 * 3600
