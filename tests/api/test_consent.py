"""A contact's stored consent: it wins over the request until changed, and can be read back."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.apps import AUTH, CONSENTED, OTHER_AUTH, shorten

EMAIL = '<p><a href="https://shop.example.com/mail">Shop</a></p>'


async def set_consent(
    client: httpx.AsyncClient, contact_id: str, tracking: bool, auth: dict[str, str] = AUTH
) -> None:
    response = await client.put(
        f"/v1/contacts/{contact_id}/consent", json={"tracking": tracking}, headers=auth
    )
    assert response.status_code == 204, response.text


async def test_a_stored_opt_out_wins_over_the_request(client: httpx.AsyncClient) -> None:
    await set_consent(client, "c-42", False)
    text = await shorten(client, body="Deal https://shop.example.com/a", recipient=CONSENTED)
    (link,) = text["links"]
    assert link["tracked"] is False and link["tracking_url"] is None
    email = await shorten(client, content_type="html", body=EMAIL, recipient=CONSENTED)
    assert email["body"] == EMAIL
    assert [link["tracked"] for link in email["links"]] == [False]
    other = {"contact_id": "c-43", "tracking_consent": True}
    response = await client.post(
        "/v1/messages/batch",
        json={
            "messages": [
                {"body": "https://shop.example.com/b", "recipient": CONSENTED},
                {"body": "https://shop.example.com/c", "recipient": other},
            ]
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    opted_out, consenting = response.json()["results"]
    assert opted_out["links"][0]["tracked"] is False
    assert consenting["links"][0]["tracked"] is True
    # Opting in again lets the request decide again; another org's opt-out changes nothing.
    await set_consent(client, "c-42", True)
    await set_consent(client, "c-42", False, OTHER_AUTH)
    again = await shorten(client, body="https://shop.example.com/d", recipient=CONSENTED)
    assert again["links"][0]["tracked"] is True
    refused = {"contact_id": "c-42", "tracking_consent": False}
    declined = await shorten(client, body="https://shop.example.com/e", recipient=refused)
    assert declined["links"][0]["tracked"] is False


@pytest.mark.usefixtures("quiet_settler")
async def test_a_batch_reads_consent_in_one_command(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await set_consent(client, "c-3", False)
    messages = [
        {
            "body": f"https://shop.example.com/{i}",
            "recipient": {"contact_id": f"c-{i}", "tracking_consent": True},
        }
        for i in range(100)
    ]
    await redis.config_resetstat()
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    assert response.status_code == 200
    tracked = [result["links"][0]["tracked"] for result in response.json()["results"]]
    assert tracked == [i != 3 for i in range(100)]
    stats = await redis.info("commandstats")
    reads = {name: stat["calls"] for name, stat in stats.items() if "get" in name}
    # One HMGET reads every contact's consent. The HGETs are the contact index's, one for each
    # tracked link's contact, inside the scripts that save the links (c-3 opted out: its link
    # is untracked and names no one).
    assert reads == {"cmdstat_hmget": 1, "cmdstat_hget": 99}, reads


async def test_consent_can_be_read_back(client: httpx.AsyncClient) -> None:
    never = await client.get("/v1/contacts/c-1/consent", headers=AUTH)
    assert never.status_code == 200
    assert never.headers["content-type"] == "application/json"
    assert never.json() == {"contact_id": "c-1", "tracking": None, "updated_at": None}
    for tracking in (False, True, False):
        before = datetime.now(UTC)
        await set_consent(client, "c-1", tracking)
        stored = (await client.get("/v1/contacts/c-1/consent", headers=AUTH)).json()
        assert stored["contact_id"] == "c-1" and stored["tracking"] is tracking
        updated_at = datetime.fromisoformat(stored["updated_at"])
        assert abs((updated_at - before).total_seconds()) < 5
    theirs = await client.get("/v1/contacts/c-1/consent", headers=OTHER_AUTH)
    assert theirs.json()["tracking"] is None
    assert (await client.get("/v1/contacts/c-1/consent")).status_code == 401
    too_long = await client.get(f"/v1/contacts/{'c' * 257}/consent", headers=AUTH)
    assert too_long.status_code == 400
    assert too_long.headers["content-type"] == "application/problem+json"
