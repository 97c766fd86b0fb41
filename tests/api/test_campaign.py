"""A message's campaign, kept on its links and on every interaction, anonymous ones too."""

from __future__ import annotations

from typing import Any

import httpx

from shortener.model import LinkKind, StoredLink
from shortener.store.records import decode_link, encode_link
from tests.support.apps import AUTH, BASE_URL, shorten

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


async def interactions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/interactions", headers=AUTH)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["interactions"]
    return found


async def test_the_campaign_is_kept_on_links_and_interactions(client: httpx.AsyncClient) -> None:
    result = await shorten(
        client,
        message_id="m-1",
        campaign="spring sale/2027 ✿",
        body="Deals https://shop.example.com/a and https://shop.example.com/b",
        recipient={"contact_id": "c-1", "tracking_consent": True},
        non_trackable=["https://shop.example.com/b"],
    )
    tracked, untracked = result["links"]
    for link in (tracked, untracked):
        info = (await client.get(f"/v1/links/{link['code']}", headers=AUTH)).json()
        assert info["campaign"] == "spring sale/2027 ✿"
    assert (await client.get(f"/v1/links/{tracked['code']}", headers=AUTH)).json()[
        "message_id"
    ] == "m-1"
    await client.get(f"/{tracked['code']}", headers={"user-agent": PHONE})
    # Opted out since: the click is anonymous, yet still counts for its campaign.
    consent = await client.put("/v1/contacts/c-1/consent", json={"tracking": False}, headers=AUTH)
    assert consent.status_code == 204
    await client.get(f"/{tracked['code']}", headers={"user-agent": PHONE})
    first, anonymous = await interactions(client)
    assert first["campaign"] == anonymous["campaign"] == "spring sale/2027 ✿"
    assert first["contact_id"] == "c-1" and first["message_id"] == "m-1"
    assert anonymous["contact_id"] is None and anonymous["message_id"] is None
    assert anonymous["link_id"] is None and anonymous["code"] is None


async def test_without_a_campaign_nothing_is_added(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="See https://shop.example.com/c")
    info = (await client.get(f"/v1/links/{result['links'][0]['code']}", headers=AUTH)).json()
    assert info["campaign"] is None and info["message_id"] is None
    assert result["links"][0]["short_url"].startswith(BASE_URL)


async def test_a_campaign_must_have_1_to_128_characters(client: httpx.AsyncClient) -> None:
    for campaign in ("", "x" * 129, 5):
        response = await client.post(
            "/v1/messages/shorten",
            json={"body": "https://shop.example.com/d", "campaign": campaign},
            headers=AUTH,
        )
        assert response.status_code == 422, campaign
        assert "campaign" in response.json()["detail"]


def test_records_without_a_campaign_cost_nothing_more_and_read_back() -> None:
    plain = StoredLink(LinkKind.SHORT, "org", "https://a.example/", 1, 2)
    assert encode_link(plain) == "u 1 2 org https://a.example/"
    assert decode_link(encode_link(plain)) == plain
    for link in (
        StoredLink(LinkKind.SHORT, "org", "https://a.example/", 1, 2, campaign="c 1/é"),
        StoredLink(LinkKind.TRACKED_SHORT, "org", "https://a.example/", 1, 2, "p", "m", "c"),
        StoredLink(LinkKind.TRACKED_SHORT, "org", "https://a.example/", 1, 2, "p", "m"),
        StoredLink(LinkKind.TRACKED, "org", "https://a.example/", 1, 2, None, None, "c"),
    ):
        assert decode_link(encode_link(link)) == link
