"""Destination policy: links to blocked hosts fail their message with 422 and `invalid_links`,
and nothing of that message is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.domain.destinations import DestinationPolicy
from shortener.text.hosts import HostPatterns
from tests.support.apps import AUTH, CONSENTED, shorten

OpenClient = Callable[[Settings], Any]


async def refused(client: httpx.AsyncClient, message: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/messages/shorten", json=message, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    return problem


async def stored(redis: aioredis.Redis) -> list[bytes]:
    """Every link record and message claim in the store."""
    records = []
    for key in await redis.keys("l:*"):
        records += [field for field in await redis.hkeys(key) if field != b"base"]
    return records + await redis.keys("m:*")


@pytest.mark.parametrize(
    "body",
    [
        "Deal: https://bit.ly/abc",
        "Deal: www.bit.ly/abc",
        "Deal: HTTPS://WWW.Bit.Ly/abc and https://shop.example/ok",
    ],
)
async def test_the_default_list_refuses_public_shorteners_and_their_subdomains(
    client: httpx.AsyncClient, redis: aioredis.Redis, body: str
) -> None:
    problem = await refused(client, {"body": body, "message_id": "m-1"})
    assert problem["status"] == 422
    assert [link["url"] for link in problem["invalid_links"]] == [body.split()[1]]
    assert "bit.ly" in problem["invalid_links"][0]["reason"]
    assert "bit.ly" in problem["detail"]
    assert await stored(redis) == []


async def test_a_host_that_only_ends_like_a_pattern_is_shortened(
    client: httpx.AsyncClient,
) -> None:
    result = await shorten(client, "See https://notbit.ly/x and https://bit.ly.example/y")
    assert len(result["links"]) == 2


async def test_the_setting_replaces_the_default_list(
    client_for: OpenClient, make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(blocked_destinations="contoso.com, Bücher.Example."))
    assert len((await shorten(client, "https://bit.ly/x"))["links"]) == 1
    problem = await refused(client, {"body": "https://go.contoso.com/a"})
    assert problem["invalid_links"][0]["url"] == "https://go.contoso.com/a"
    # The pattern written in Unicode refuses the A-label form of the link, and its subdomains.
    await refused(client, {"body": "https://shop.xn--bcher-kva.example/"})
    await refused(client, {"body": "https://bücher.example/"})


async def test_an_a_label_pattern_refuses_a_unicode_link(
    client_for: OpenClient, make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(blocked_destinations="xn--bcher-kva.example"))
    problem = await refused(client, {"body": "Neu: BÜCHER.example/katalog"})
    assert problem["invalid_links"][0]["url"] == "BÜCHER.example/katalog"


async def test_an_empty_setting_blocks_nothing(
    client_for: OpenClient, make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(blocked_destinations=""))
    assert len((await shorten(client, "https://bit.ly/x https://t.co/y"))["links"]) == 2


async def test_html_links_are_refused_tracked_or_not(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    body = '<a href="https://shop.example/">shop</a> <a href="https://tinyurl.com/z">z</a>'
    for recipient in (CONSENTED, None):
        problem = await refused(
            client, {"body": body, "content_type": "html", "recipient": recipient}
        )
        assert problem["invalid_links"] == [
            {"url": "https://tinyurl.com/z", "reason": problem["invalid_links"][0]["reason"]}
        ]
    assert await stored(redis) == []


async def test_a_batch_stores_nothing_of_a_refused_message_and_all_of_the_others(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    messages = [
        {"message_id": "ok-1", "body": "https://shop.example/1 https://shop.example/2"},
        {
            "message_id": "bad",
            "body": "https://shop.example/3 https://ow.ly/4",
            "recipient": CONSENTED,
        },
        {"message_id": "ok-2", "body": "https://shop.example/5", "recipient": CONSENTED},
    ]
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    error = results[1]["error"]
    assert error["status"] == 422
    assert error["invalid_links"][0]["url"] == "https://ow.ly/4"
    alone = await client.post("/v1/messages/shorten", json=messages[1], headers=AUTH)
    assert alone.json() == error
    assert [len(results[i]["links"]) for i in (0, 2)] == [2, 1]
    assert sorted(await redis.keys("m:*")) == [b"m:org-a:ok-1", b"m:org-a:ok-2"]
    records = [field for key in await redis.keys("l:*") for field in await redis.hkeys(key)]
    assert len([field for field in records if field != b"base"]) == 3


async def test_an_orgs_own_policy_is_applied(client: httpx.AsyncClient) -> None:
    """The domain takes each org's policy from a hook; here one stands in for the org store."""
    await shorten(client, "https://shop.example/")
    shortening = (await client._transport.app.state.runtime.services()).shortening  # type: ignore[attr-defined]
    everywhere = shortening.destinations("org-a")
    own = everywhere.for_org(
        blocked=HostPatterns.parse(["bad.contoso.com"]),
        allowed=HostPatterns.parse(["contoso.com"]),
    )
    shortening.destinations = lambda org: own if org == "org-a" else everywhere
    assert isinstance(own, DestinationPolicy)
    await shorten(client, "https://www.contoso.com/a")
    outside = await refused(client, {"body": "https://shop.example/ https://contoso.com/"})
    assert [link["url"] for link in outside["invalid_links"]] == ["https://shop.example/"]
    blocked = await refused(client, {"body": "https://x.bad.contoso.com/"})
    assert "bad.contoso.com" in blocked["invalid_links"][0]["reason"]
    await refused(client, {"body": "https://bit.ly/x"})
