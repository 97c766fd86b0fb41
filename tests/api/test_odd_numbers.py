"""Numbers, cursors and versions that are not ASCII digits get a clear 4xx from the routes
that read them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from tests.support.apps import AUTH, BASE_URL
from tests.support.inputs import NOT_NUMBERS


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
