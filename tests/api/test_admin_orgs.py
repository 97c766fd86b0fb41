"""Orgs as data: the admin routes, their keys, and one domain per org at most."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from shortener.config import SettingsError, load_settings
from tests.support.apps import ADMIN_AUTH, AUTH

CONTOSO = {
    "domains": ["Go.Contoso.com", "bücher.example"],
    "allowed_destinations": ["contoso.com"],
    "blocked_destinations": ["bit.ly"],
    "fallback_url": "https://contoso.com/expired",
}


async def put_org(client: httpx.AsyncClient, org: str, body: dict[str, Any]) -> httpx.Response:
    return await client.put(f"/v1/admin/orgs/{org}", json=body, headers=ADMIN_AUTH)


async def test_an_org_is_stored_with_its_settings(client: httpx.AsyncClient) -> None:
    answer = await put_org(client, "contoso", CONTOSO)
    assert answer.status_code == 200, answer.text
    org = answer.json()
    assert org["org"] == "contoso"
    assert org["domains"] == ["go.contoso.com", "xn--bcher-kva.example"]
    assert org["allowed_destinations"] == ["contoso.com"]
    assert org["blocked_destinations"] == ["bit.ly"]
    assert org["fallback_url"] == "https://contoso.com/expired"
    assert org["created_at"] == org["updated_at"]
    read = await client.get("/v1/admin/orgs/contoso", headers=ADMIN_AUTH)
    assert read.status_code == 200
    assert read.json() == org


async def test_a_field_left_out_keeps_its_value(client: httpx.AsyncClient) -> None:
    first = (await put_org(client, "contoso", CONTOSO)).json()
    changed = await put_org(client, "contoso", {"fallback_url": None})
    assert changed.status_code == 200, changed.text
    org = changed.json()
    assert org["fallback_url"] is None
    assert org["domains"] == first["domains"]
    assert org["created_at"] == first["created_at"]


async def test_the_list_holds_configured_and_stored_orgs(client: httpx.AsyncClient) -> None:
    await put_org(client, "contoso", {"domains": ["go.contoso.com"]})
    answer = await client.get("/v1/admin/orgs", headers=ADMIN_AUTH)
    assert answer.status_code == 200
    orgs = {org["org"]: org for org in answer.json()["orgs"]}
    assert set(orgs) == {"contoso", "org-a", "org-b"}
    assert orgs["org-a"]["domains"] == [] and orgs["org-a"]["created_at"] is None
    assert orgs["contoso"]["domains"] == ["go.contoso.com"]
    assert (await client.get("/v1/admin/orgs/org-a", headers=ADMIN_AUTH)).status_code == 200


async def test_an_unknown_org_is_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/admin/orgs/nobody", headers=ADMIN_AUTH)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_domain_claimed_twice_is_a_conflict(client: httpx.AsyncClient) -> None:
    assert (await put_org(client, "contoso", {"domains": ["go.contoso.com"]})).status_code == 200
    taken = await put_org(client, "fabrikam", {"domains": ["fab.example", "GO.contoso.com"]})
    assert taken.status_code == 409, taken.text
    # Nothing of the refused request stays: neither the org nor its other domain.
    assert (await client.get("/v1/admin/orgs/fabrikam", headers=ADMIN_AUTH)).status_code == 404
    assert (await put_org(client, "other", {"domains": ["fab.example"]})).status_code == 200


async def test_concurrent_claims_of_one_domain_leave_one_owner(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(put_org(client, f"org-{n}", {"domains": ["shared.example"]}) for n in range(8))
    )
    assert sorted(answer.status_code for answer in answers) == [200] + [409] * 7


async def test_a_domain_given_up_can_be_claimed(client: httpx.AsyncClient) -> None:
    await put_org(client, "contoso", {"domains": ["go.contoso.com"]})
    await put_org(client, "contoso", {"domains": []})
    assert (await put_org(client, "fabrikam", {"domains": ["go.contoso.com"]})).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"domains": ["go.contoso.com:443"]},
        {"domains": ["https://go.contoso.com"]},
        {"domains": ["10.0.0.1"]},
        {"domains": [""]},
        {"domains": "go.contoso.com"},
        {"allowed_destinations": ["a b.com"]},
        {"blocked_destinations": ["xn--zz.example"]},
        {"fallback_url": "ftp://contoso.com/"},
        {"fallback_url": "contoso.com/expired"},
        {"fallback_url": "https:///nohost"},
        {"domain": ["go.contoso.com"]},
        {"domains": [f"d{n}.example" for n in range(100)]},
    ],
)
async def test_settings_that_are_not_valid_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    answer = await put_org(client, "contoso", body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/admin/orgs/contoso", headers=ADMIN_AUTH)).status_code == 404


async def test_an_org_name_that_is_not_valid_is_refused(client: httpx.AsyncClient) -> None:
    answer = await put_org(client, "con%20toso", {})
    assert answer.status_code == 422, answer.text


async def test_keys_open_only_their_own_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/admin/orgs", headers=AUTH)).status_code == 403
    assert (await client.get("/v1/admin/orgs")).status_code == 401
    bogus = {"Authorization": "Bearer not-a-key-of-this-service"}
    assert (await client.get("/v1/admin/orgs", headers=bogus)).status_code == 401
    shorten = await client.post(
        "/v1/messages/shorten", json={"body": "https://example.com"}, headers=ADMIN_AUTH
    )
    assert shorten.status_code == 403
    assert shorten.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/interactions", headers=ADMIN_AUTH)).status_code == 403


@pytest.mark.parametrize(
    "value", ["too-short-key", "an admin key with spaces", f"{'k' * 20},short", "ключ" * 8]
)
def test_an_admin_key_must_be_16_printable_characters(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTENER_ADMIN_KEYS", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SHORTENER_ADMIN_KEYS" in str(raised.value)
    assert value not in str(raised.value)


def test_admin_keys_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORTENER_ADMIN_KEYS", f" {'a' * 16} ,{'b' * 20},")
    assert load_settings().admin_keys == {"a" * 16, "b" * 20}
