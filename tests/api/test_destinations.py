"""Destination policy: links to blocked hosts fail their message with 422 and `invalid_links`,
and nothing of that message is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.config import Settings
from tests.support.apps import ADMIN_AUTH, AUTH, CONSENTED, OTHER_AUTH, shorten

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
        records += [f for f in await redis.hkeys(key) if not f.startswith(b"base")]
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


async def set_org(client: httpx.AsyncClient, org: str, **fields: Any) -> None:
    response = await client.put(f"/v1/admin/orgs/{org}", json=fields, headers=ADMIN_AUTH)
    assert response.status_code == 200, response.text


async def test_an_orgs_own_lists_apply_to_it_alone(client: httpx.AsyncClient) -> None:
    await set_org(
        client,
        "org-a",
        allowed_destinations=["contoso.com"],
        blocked_destinations=["bad.contoso.com"],
    )
    await shorten(client, "https://www.contoso.com/a and https://contoso.com/b")
    outside = await refused(client, {"body": "https://shop.example/ https://contoso.com/"})
    assert [link["url"] for link in outside["invalid_links"]] == ["https://shop.example/"]
    assert "allowed destinations" in outside["invalid_links"][0]["reason"]
    blocked = await refused(client, {"body": "https://x.bad.contoso.com/"})
    assert "bad.contoso.com" in blocked["invalid_links"][0]["reason"]
    # The service's own list stays, whatever the org allows.
    await set_org(client, "org-a", allowed_destinations=["bit.ly"])
    assert "this service" in (await refused(client, {"body": "https://bit.ly/x"}))["detail"]
    # Another org is held to none of org-a's lists.
    other = await client.post(
        "/v1/messages/shorten", json={"body": "https://shop.example/"}, headers=OTHER_AUTH
    )
    assert other.status_code == 200, other.text
    # Emptied lists allow every host again.
    await set_org(client, "org-a", allowed_destinations=[], blocked_destinations=None)
    await shorten(client, "https://shop.example/ https://x.bad.contoso.com/")


@pytest.mark.parametrize(
    ("pattern", "link"),
    [
        ("bücher.example", "https://xn--bcher-kva.example/a"),
        ("xn--bcher-kva.example", "https://shop.bücher.example/a"),
        ("BÜCHER.example.", "https://BÜCHER.EXAMPLE/a"),
    ],
)
async def test_org_patterns_match_the_idna_form_of_hosts(
    client: httpx.AsyncClient, pattern: str, link: str
) -> None:
    await set_org(client, "org-a", blocked_destinations=[pattern])
    problem = await refused(client, {"body": f"Read {link}"})
    assert [found["url"] for found in problem["invalid_links"]] == [link]
    await set_org(client, "org-a", blocked_destinations=[], allowed_destinations=[pattern])
    await shorten(client, f"Read {link}")


async def test_a_refused_message_of_a_batch_stores_nothing_of_it(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await set_org(client, "org-a", blocked_destinations=["contoso.com"])
    batch = {
        "messages": [
            {"body": "https://shop.example/1", "message_id": "ok-1"},
            {"body": "https://go.contoso.com/2 https://shop.example/3", "message_id": "no-2"},
            {"body": "https://shop.example/4", "message_id": "ok-3"},
        ]
    }
    response = await client.post("/v1/messages/batch", json=batch, headers=AUTH)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[1]["error"]["status"] == 422
    assert results[1]["error"]["invalid_links"][0]["url"] == "https://go.contoso.com/2"
    assert [len(results[i]["links"]) for i in (0, 2)] == [1, 1]
    assert sorted(await redis.keys("m:*")) == [b"m:org-a:ok-1", b"m:org-a:ok-3"]
    assert len(await stored(redis)) == 4
