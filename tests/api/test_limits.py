"""Requests that would make the service do outsized work: messages and batches with more links
than a real message has, and orgs shortening more messages a minute than they are allowed.

Each refusal is a clear problem+json error that names the limit, and stores nothing: the store
is read raw before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.domain.limits import MAX_LINKS_PER_BATCH, MAX_LINKS_PER_HTML, MAX_LINKS_PER_TEXT
from shortener.store.keys import BLOCKS_KEY, SETTLER_KEY, shorten_quota_key
from tests.support.apps import AUTH, OTHER_AUTH

Opener = Callable[[Settings], Any]
PROBLEM_JSON = "application/problem+json"
README = Path(__file__).resolve().parents[2] / "README.md"


def sms_with_links(count: int, prefix: str = "") -> str:
    return "Deals: " + " ".join(f"https://e.co/{prefix}{i}" for i in range(count))


def html_with_links(count: int) -> str:
    anchors = "".join(f'<a href="https://e.co/{i}">{i}</a> ' for i in range(count))
    return f"<html><body><p>{anchors}</p></body></html>"


async def post_shorten(
    client: httpx.AsyncClient, message: dict[str, Any], auth: dict[str, str] = AUTH
) -> httpx.Response:
    return await client.post("/v1/messages/shorten", json=message, headers=auth)


async def post_batch(
    client: httpx.AsyncClient, messages: list[Any], auth: dict[str, str] = AUTH
) -> httpx.Response:
    return await client.post("/v1/messages/batch", json={"messages": messages}, headers=auth)


async def snapshot(redis: aioredis.Redis) -> dict[bytes, bytes | None]:
    """Every key with its serialised value. The expiry index (`x:*`) is left out: apps write
    it a second after they shorten, whatever a later request does; so is the settler's lease,
    which an app takes whenever its settler's round comes."""
    keys = [
        key
        for key in await redis.keys("*")
        if not key.startswith(b"x:") and key != SETTLER_KEY.encode()
    ]
    return {key: await redis.dump(key) for key in sorted(keys)}


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    for word in words:
        assert word in problem["detail"], problem["detail"]
    return problem


# Links per message and per batch


def test_the_readme_names_the_limits_the_service_applies() -> None:
    text = " ".join(README.read_text().split())
    assert (
        f"at most {MAX_LINKS_PER_TEXT} in a text body and {MAX_LINKS_PER_HTML} in an html body"
        in text
    )
    assert f"at most {MAX_LINKS_PER_BATCH:,} in all the messages of one batch" in text


async def test_a_text_message_may_have_as_many_links_as_its_limit(
    client: httpx.AsyncClient,
) -> None:
    response = await post_shorten(client, {"body": sms_with_links(MAX_LINKS_PER_TEXT)})
    assert response.status_code == 200, response.text
    assert len(response.json()["links"]) == MAX_LINKS_PER_TEXT


async def test_a_text_message_over_its_link_limit_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    before = await snapshot(redis)
    # Links left as they are (here: a port out of range) count too: each was found.
    body = sms_with_links(MAX_LINKS_PER_TEXT) + " https://e.co:99999/x"
    response = await post_shorten(client, {"message_id": "many", "body": body})
    problem = assert_problem(response, 422, f"at most {MAX_LINKS_PER_TEXT} links", "101")
    assert "text" in problem["detail"]
    assert await snapshot(redis) == before
    assert await redis.get(BLOCKS_KEY) is None


async def test_an_html_message_over_its_link_limit_is_refused(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    consented = {"contact_id": "c-1", "tracking_consent": True}
    at_limit = {"content_type": "html", "body": html_with_links(MAX_LINKS_PER_HTML)}
    response = await post_shorten(client, {**at_limit, "recipient": consented})
    assert response.status_code == 200, response.text
    assert len(response.json()["links"]) == MAX_LINKS_PER_HTML

    before = await snapshot(redis)
    over = {"content_type": "html", "body": html_with_links(MAX_LINKS_PER_HTML + 1)}
    response = await post_shorten(client, {**over, "recipient": consented})
    assert_problem(response, 422, f"at most {MAX_LINKS_PER_HTML} links", "html")
    assert await snapshot(redis) == before


async def test_a_batch_message_over_its_link_limit_gets_its_own_error(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    messages = [
        {"body": "First https://e.co/first"},
        {"message_id": "too-many", "body": sms_with_links(MAX_LINKS_PER_TEXT + 1)},
        {"body": "Last https://e.co/last"},
    ]
    response = await post_batch(client, messages)
    assert response.status_code == 200, response.text
    first, refused, last = response.json()["results"]
    assert [link["url"] for link in first["links"]] == ["https://e.co/first"]
    assert [link["url"] for link in last["links"]] == ["https://e.co/last"]
    assert refused["error"]["status"] == 422
    assert f"at most {MAX_LINKS_PER_TEXT} links" in refused["error"]["detail"]
    # The same problem a single shorten of it answers.
    alone = await post_shorten(client, messages[1])
    assert alone.json() == refused["error"]
    # Only the two shortened messages' links are stored, and no claim of the refused one.
    stored = [field for key in await redis.keys("l:*") for field in await redis.hkeys(key)]
    assert len([field for field in stored if field != b"base"]) == 2
    assert await redis.keys("m:*") == []


async def test_a_batch_may_have_as_many_links_as_its_limit(client: httpx.AsyncClient) -> None:
    per_message = MAX_LINKS_PER_TEXT
    messages = [
        {"body": sms_with_links(per_message, prefix=f"{m}-")}
        for m in range(MAX_LINKS_PER_BATCH // per_message)
    ]
    response = await post_batch(client, messages)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert sum(len(result["links"]) for result in results) == MAX_LINKS_PER_BATCH


async def test_a_batch_over_its_link_limit_fails_whole_and_stores_nothing(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    before = await snapshot(redis)
    # Every message is within its own limit; together they are one link over the batch's.
    per_message = MAX_LINKS_PER_TEXT
    messages: list[Any] = [
        {"message_id": f"m-{m}", "body": sms_with_links(per_message, prefix=f"{m}-")}
        for m in range(MAX_LINKS_PER_BATCH // per_message)
    ]
    messages.append({"message_id": "one-more", "body": "https://e.co/one-more"})
    response = await post_batch(client, messages)
    assert_problem(response, 413, f"at most {MAX_LINKS_PER_BATCH} links", "smaller batches")
    assert await snapshot(redis) == before
    assert await redis.get(BLOCKS_KEY) is None


async def test_a_megabyte_of_links_is_refused_before_anything_is_issued(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    # As many links as a body can hold: short scheme-less links, each message at its limit.
    body = " ".join(f"a.co/{i}" for i in range(MAX_LINKS_PER_TEXT))
    messages = [{"body": body} for _ in range(1000)]
    response = await post_batch(client, messages)
    assert_problem(response, 413, f"at most {MAX_LINKS_PER_BATCH} links")
    assert len(response.content) < 1000
    assert await redis.keys("l:*") == []
    assert await redis.get(BLOCKS_KEY) is None


# Messages per org and minute


async def test_instances_share_an_orgs_shorten_limit(
    client_for: Opener, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    one = await client_for(make_settings(org_shorten_limit_per_minute=3))
    two = await client_for(make_settings(org_shorten_limit_per_minute=3))
    assert (await post_shorten(one, {"body": "1 https://e.co/1"})).status_code == 200
    batch = await post_batch(two, [{"body": "2 https://e.co/2"}, {"body": "3 https://e.co/3"}])
    assert batch.status_code == 200, batch.text

    before = await snapshot(redis)
    for client in (one, two):
        refused = await post_shorten(client, {"message_id": "4th", "body": "4 https://e.co/4"})
        assert_problem(refused, 429, "3 messages per minute")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        refused_batch = await post_batch(client, [{"body": "5 https://e.co/5"}])
        assert_problem(refused_batch, 429, "3 messages per minute")
        assert 1 <= int(refused_batch.headers["retry-after"]) <= 60
    assert await snapshot(redis) == before

    # Another org has a minute of its own.
    for client in (one, two):
        other = await post_shorten(client, {"body": "https://e.co/other"}, auth=OTHER_AUTH)
        assert other.status_code == 200, other.text


async def test_a_batch_over_what_is_left_of_the_minute_is_refused_whole(
    client_for: Opener, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    client = await client_for(make_settings(org_shorten_limit_per_minute=3))
    assert (await post_shorten(client, {"body": "https://e.co/1"})).status_code == 200
    assert (await post_shorten(client, {"body": "https://e.co/2"})).status_code == 200
    before = await snapshot(redis)
    two = [{"message_id": f"b-{i}", "body": f"https://e.co/b{i}"} for i in range(2)]
    assert_problem(await post_batch(client, two), 429, "3 messages per minute")
    assert await snapshot(redis) == before
    # What is left of the minute is still there for a batch that fits.
    assert (await post_batch(client, two[:1])).status_code == 200


async def test_a_batch_larger_than_the_limit_is_told_to_split(
    client_for: Opener, make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(org_shorten_limit_per_minute=3))
    messages = [{"body": f"https://e.co/{i}"} for i in range(4)]
    assert_problem(await post_batch(client, messages), 429, "3 messages per minute", "smaller")
    assert (await post_batch(client, messages[:3])).status_code == 200


async def test_only_valid_messages_count(
    client_for: Opener, make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(org_shorten_limit_per_minute=2))
    assert (await post_shorten(client, {"body": 5})).status_code == 422
    messages: list[Any] = [{"body": "https://e.co/1"}, {"bdy": "typo"}, {"body": "https://e.co/2"}]
    response = await post_batch(client, messages)
    assert response.status_code == 200, response.text
    assert "error" in response.json()["results"][1]
    assert (await post_shorten(client, {"body": "https://e.co/3"})).status_code == 429


async def test_the_limit_starts_again_when_the_minute_is_over(
    client_for: Opener, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    client = await client_for(make_settings(org_shorten_limit_per_minute=1))
    assert (await post_shorten(client, {"body": "https://e.co/1"})).status_code == 200
    assert (await post_shorten(client, {"body": "https://e.co/2"})).status_code == 429
    ttl = await redis.pttl(shorten_quota_key("org-a"))
    assert 0 < ttl <= 60_000
    await redis.pexpire(shorten_quota_key("org-a"), 1)
    await asyncio.sleep(0.01)
    assert (await post_shorten(client, {"body": "https://e.co/3"})).status_code == 200


async def test_without_a_limit_nothing_is_counted(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    messages = [{"body": f"https://e.co/{i}"} for i in range(1000)]
    assert (await post_batch(client, messages)).status_code == 200
    assert (await post_shorten(client, {"body": "https://e.co/more"})).status_code == 200
    assert await redis.exists(shorten_quota_key("org-a")) == 0


async def test_the_limit_holds_after_redis_forgot_its_scripts(
    client_for: Opener, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    client = await client_for(make_settings(org_shorten_limit_per_minute=1))
    await redis.script_flush()
    assert (await post_shorten(client, {"body": "https://e.co/1"})).status_code == 200
    await redis.script_flush()
    assert (await post_shorten(client, {"body": "https://e.co/2"})).status_code == 429
