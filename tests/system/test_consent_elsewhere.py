"""Consent set through another process counts at the moment of the click."""

from __future__ import annotations

from pathlib import Path

import httpx
import redis.asyncio as aioredis

from shortener.store.keys import interactions_key
from tests.support import service
from tests.support.apps import (
    cut_short,
    interactions,
    shorten,
    tap,
)
from tests.support.redis_servers import RedisServer


async def stream_entries(redis: aioredis.Redis, org: str) -> list[dict[str, str]]:
    """The org's interactions as stored: every field of every stream entry."""
    return [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _, fields in await redis.xrange(interactions_key(org))
    ]


def set_consent_elsewhere(running: service.Service, contact_id: str, tracking: bool) -> None:
    response = httpx.put(
        f"{running.base_url}/v1/contacts/{contact_id}/consent",
        json={"tracking": tracking},
        headers=service.AUTH,
        timeout=10,
    )
    assert response.status_code == 204, response.text


# Fields of an interaction that tell nothing about who tapped: type, URL, bot, campaign.
ANONYMOUS_FIELDS = {"t", "u", "b", "g"}


async def test_opting_out_after_sending_makes_clicks_anonymous(
    client: httpx.AsyncClient, redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    contact, message_id = "contact-7f3a", "msg-91b2"
    result = await shorten(
        client,
        message_id=message_id,
        campaign="spring-sale",
        body="https://shop.example.com/y",
        recipient={"contact_id": contact, "tracking_consent": True},
    )
    link = result["links"][0]
    assert (await tap(client, link["short_url"])).status_code == 302
    (identified,) = await stream_entries(redis, "org-a")
    assert identified["p"] == contact and identified["m"] == message_id
    # Consent changes in another process of the service: what this one may have seen of the
    # contact must not outlive it.
    env = service.service_env(redis_server.url, tmp_path / "elsewhere")
    with service.running_service(env) as elsewhere:
        set_consent_elsewhere(elsewhere, contact, tracking=False)
        for url in (link["short_url"], link["tracking_url"], cut_short(link["tracking_url"])):
            assert (await tap(client, url)).status_code == 302, url
        anonymous = (await stream_entries(redis, "org-a"))[1:]
        assert len(anonymous) == 3
        for entry in anonymous:
            # Nothing stored with the click points back to the person, in any field.
            assert set(entry) <= ANONYMOUS_FIELDS, entry
            for value in entry.values():
                for identifying in (contact, message_id, link["code"]):
                    assert identifying not in value, entry
            assert entry["u"] == "https://shop.example.com/y" and entry["g"] == "spring-sale"
        clicks = (await interactions(client))[1:]
        assert all(click["contact_id"] is None for click in clicks)
        assert all(click["message_id"] is None and click["code"] is None for click in clicks)
        assert all(click["link_id"] is None for click in clicks)
        # Opting in again identifies later clicks again.
        set_consent_elsewhere(elsewhere, contact, tracking=True)
    await tap(client, link["short_url"])
    assert (await interactions(client))[-1]["contact_id"] == contact
    assert (await stream_entries(redis, "org-a"))[-1]["p"] == contact
