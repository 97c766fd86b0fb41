"""Numbers, versions and cursors from outside: ASCII digits only, the whole text, bounded."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shortener.cli import _duration
from shortener.config import SettingsError, load_settings
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from shortener.text import parsing
from tests.conftest import AUTH, BASE_URL

# Text that `str.isdigit()`, `int()`, a regex `\d` or `re.match(r"^…$")` takes for a number,
# and that no caller means as one.
NOT_NUMBERS = [
    "",
    "²",
    "1²",
    "١",
    "١٢",
    "９",
    "1\n",
    "1\r\n",
    "\n1",
    " 1",
    "1 ",
    "+1",
    "-1",
    "1_0",
    "0x10",
    "1e3",
    "1.0",
    "1\x00",
    "٣-٤",
]
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


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize("limit", [*NOT_NUMBERS[1:], "1" + "0" * 30, "0", "1001"])
async def test_an_odd_limit_is_a_400(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get(
        "/v1/interactions", params={"limit": limit}, headers=AUTH, timeout=10
    )
    problem(response, 400)


@pytest.mark.parametrize("after", ["1-2\n", "1-²", "١-2", "1-2 ", "1-2\x00"])
async def test_an_odd_cursor_is_a_400(client: httpx.AsyncClient, after: str) -> None:
    response = await client.get(
        "/v1/interactions", params={"after": after}, headers=AUTH, timeout=10
    )
    problem(response, 400)


@pytest.mark.parametrize("version", [v for v in NOT_NUMBERS if v] + ["9" * 30])
async def test_an_odd_secret_version_is_a_400(client: httpx.AsyncClient, version: str) -> None:
    response = await client.post(
        "/v1/messages/shorten",
        json={"body": "https://shop.example.com/v", "recipient": {"tracking_consent": True}},
        headers=AUTH,
    )
    tracking_url = response.json()["links"][0]["tracking_url"]
    parts = urlsplit(tracking_url[len(BASE_URL) :])
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query["secretVersion"] = version
    text = "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
    response = await client.get(f"{parts.path}?{text}")
    problem(response, 400)
    assert "location" not in response.headers


# Header values arrive as bytes and are read as Latin-1, where 0xB2 is '²'.
@pytest.mark.parametrize(
    "declared", [b"\xb2", b"1\xb9", "١٠".encode(), b"+10", b" 10", b"0x10", b"1" * 40]
)
async def test_an_odd_content_length_is_a_4xx(
    client_for: Callable[..., Any], make_settings: Callable[..., Any], declared: bytes
) -> None:
    client: httpx.AsyncClient = await client_for(make_settings())
    request = client.build_request(
        "PUT",
        "/v1/contacts/c-1/consent",
        content=b'{"tracking": false}',
        headers={**AUTH, "content-type": "application/json"},
    )
    request.headers.encoding = "latin-1"
    request.headers["content-length"] = declared.decode("latin-1")
    response = await client.send(request)
    assert response.status_code in (400, 413), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
