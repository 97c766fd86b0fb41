"""Org API keys made and revoked through the admin routes."""

from __future__ import annotations

import hashlib
from datetime import datetime

import httpx
import redis.asyncio as aioredis

from tests.support.apps import ADMIN_AUTH, AUTH


async def make_key(client: httpx.AsyncClient, org: str = "org-a") -> dict[str, str]:
    answer = await client.post(f"/v1/admin/orgs/{org}/keys", headers=ADMIN_AUTH)
    assert answer.status_code == 201, answer.text
    made: dict[str, str] = answer.json()
    return made


async def shorten_with(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/v1/messages/shorten",
        json={"body": "See https://example.com/a"},
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_a_made_key_acts_for_its_org(client: httpx.AsyncClient) -> None:
    made = await make_key(client)
    assert set(made) == {"key_id", "key", "created_at"}
    answer = await shorten_with(client, made["key"])
    assert answer.status_code == 200, answer.text
    code = answer.json()["links"][0]["code"]
    # The link is org-a's: the configured key of org-a sees it.
    assert (await client.get(f"/v1/links/{code}", headers=AUTH)).status_code == 200


async def test_a_key_is_stored_only_as_its_hash(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    made = await make_key(client)
    stored = []
    for key in await redis.keys("*"):
        kind = await redis.type(key)
        if kind == b"hash":
            stored.append(repr(await redis.hgetall(key)).encode())
        elif kind == b"string":
            stored.append(await redis.get(key) or b"")
        stored.append(key)
    dump = b" ".join(stored)
    assert made["key"].encode() not in dump
    assert hashlib.sha256(made["key"].encode()).hexdigest().encode() in dump


async def test_keys_are_listed_without_the_key(client: httpx.AsyncClient) -> None:
    made = await make_key(client)
    await make_key(client, "org-b")
    listed = await client.get("/v1/admin/orgs/org-a/keys", headers=ADMIN_AUTH)
    assert listed.status_code == 200
    (key,) = listed.json()["keys"]
    assert key == {
        "key_id": made["key_id"],
        "created_at": made["created_at"],
        "last_used_at": None,
    }
    await shorten_with(client, made["key"])
    services = await client._transport.app.state.runtime.services()  # type: ignore[attr-defined]
    await services.org_keys.write_uses()
    (key,) = (await client.get("/v1/admin/orgs/org-a/keys", headers=ADMIN_AUTH)).json()["keys"]
    assert datetime.fromisoformat(key["last_used_at"]) >= datetime.fromisoformat(made["created_at"])


async def test_a_revoked_key_is_refused(client: httpx.AsyncClient) -> None:
    made = await make_key(client)
    revoked = await client.delete(f"/v1/admin/orgs/org-a/keys/{made['key_id']}", headers=ADMIN_AUTH)
    assert revoked.status_code == 204
    assert (await shorten_with(client, made["key"])).status_code == 401
    listed = await client.get("/v1/admin/orgs/org-a/keys", headers=ADMIN_AUTH)
    assert listed.json() == {"keys": []}
    again = await client.delete(f"/v1/admin/orgs/org-a/keys/{made['key_id']}", headers=ADMIN_AUTH)
    assert again.status_code == 404


async def test_only_the_keys_org_revokes_it(client: httpx.AsyncClient) -> None:
    made = await make_key(client)
    other = await client.delete(f"/v1/admin/orgs/org-b/keys/{made['key_id']}", headers=ADMIN_AUTH)
    assert other.status_code == 404
    assert (await shorten_with(client, made["key"])).status_code == 200


async def test_keys_of_an_unknown_org_are_not_found(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/admin/orgs/nobody/keys", headers=ADMIN_AUTH)).status_code == 404
    assert (await client.get("/v1/admin/orgs/nobody/keys", headers=ADMIN_AUTH)).status_code == 404


async def test_a_made_key_opens_no_admin_route(client: httpx.AsyncClient) -> None:
    made = await make_key(client)
    auth = {"Authorization": f"Bearer {made['key']}"}
    assert (await client.get("/v1/admin/orgs", headers=auth)).status_code == 403
