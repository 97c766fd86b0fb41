"""Path parameters are percent-decoded once, per segment: `%2F` stays inside its parameter."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.routing import BaseRoute, Match, Route

from shortener.config import Settings
from shortener.http.app import create_app
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from tests.support.apps import AUTH, BASE_URL

PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
# Each raw segment and the one value it names.
SEGMENTS = [
    ("crm%2F123", "crm/123"),
    ("crm%252F123", "crm%2F123"),
    ("a%20b%3Fc%23d", "a b?c#d"),
    ("%E3%83%91%E3%82%B9", "パス"),
    ("..", ".."),
    ("%2E%2E", ".."),
    ("%25", "%"),
    ("plain-id_1.2~", "plain-id_1.2~"),
]


def app_routes() -> list[BaseRoute]:
    # Built without its lifespan, so it never connects to this address.
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0", api_keys={"k" * 20: "org"}, signing_keys={1: "s" * 20}
    )
    return list(create_app(settings).routes)


def scope_for(raw_path: str, method: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": "/unused",
        "raw_path": raw_path.encode("ascii"),
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }


ROUTES_WITH_PARAMETERS = [
    route for route in app_routes() if isinstance(route, Route) and PARAMETER.search(route.path)
]


def test_there_are_routes_with_parameters() -> None:
    paths = {route.path for route in ROUTES_WITH_PARAMETERS}  # type: ignore[attr-defined]
    assert {
        "/v1/links/{code}",
        "/v1/contacts/{contact_id}/consent",
        "/api/orgs/{org_hash}/r/{link_id}",
    } <= paths


@pytest.mark.parametrize(("raw", "value"), SEGMENTS)
@pytest.mark.parametrize(
    "route",
    ROUTES_WITH_PARAMETERS,
    ids=[route.path for route in ROUTES_WITH_PARAMETERS],  # type: ignore[attr-defined]
)
def test_every_path_parameter_is_one_decoded_segment(route: Route, raw: str, value: str) -> None:
    names = PARAMETER.findall(route.path)
    raw_path = PARAMETER.sub(raw, route.path)
    method = sorted(route.methods or {"GET"})[0]
    match, child_scope = route.matches(scope_for(raw_path, method))
    assert match is Match.FULL, raw_path
    assert child_scope["path_params"] == dict.fromkeys(names, value)


async def test_a_contact_id_with_a_slash_can_opt_out(client: httpx.AsyncClient) -> None:
    recipients = {"crm/123": "crm%2F123", "crm%2F123": "crm%252F123"}
    codes = {}
    for contact_id in recipients:
        response = await client.post(
            "/v1/messages/shorten",
            json={
                "body": "https://shop.example.com/a",
                "recipient": {"contact_id": contact_id, "tracking_consent": True},
            },
            headers=AUTH,
        )
        codes[contact_id] = response.json()["links"][0]["code"]
    response = await client.put(
        "/v1/contacts/crm%2F123/consent", json={"tracking": False}, headers=AUTH
    )
    assert response.status_code == 204, response.text
    for contact_id in recipients:
        assert (await client.get(f"/{codes[contact_id]}")).status_code == 302
    page = await client.get("/v1/interactions", headers=AUTH)
    anonymous, identified = page.json()["interactions"]
    # Only `crm/123` opted out; `crm%2F123` is someone else.
    assert anonymous["contact_id"] is None
    assert identified["contact_id"] == "crm%2F123"
    response = await client.put(
        "/v1/contacts/crm%252F123/consent", json={"tracking": False}, headers=AUTH
    )
    assert response.status_code == 204
    await client.get(f"/{codes['crm%2F123']}")
    assert (await client.get("/v1/interactions", headers=AUTH)).json()["interactions"][-1][
        "contact_id"
    ] is None


async def test_an_encoded_code_is_the_same_code(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages/shorten", json={"body": "https://shop.example.com/a"}, headers=AUTH
    )
    code = response.json()["links"][0]["code"]
    encoded = "".join(f"%{ord(char):02X}" for char in code)
    details = await client.get(f"/v1/links/{encoded}", headers=AUTH)
    assert details.json()["short_url"] == f"{BASE_URL}/{code}"
    assert (await client.get(f"/{encoded}")).headers["location"] == "https://shop.example.com/a"
    # A slash inside the segment is part of the code, which then names nothing.
    missing = await client.get(f"/v1/links/{quote(code + '/x', safe='')}", headers=AUTH)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM_JSON


async def test_a_segment_that_is_no_utf8_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/contacts/%FF%FE/consent", json={"tracking": False}, headers=AUTH
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
