"""Batches answer per message, and nothing a refused message issued stays in the store.

The store is read raw: link hashes (`l:{block}`), message claims (`m:*`) and the expiry index
(`x:*`) hold exactly what the answers handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from shortener.config import Settings
from shortener.domain.codes import CodeCodec
from shortener.http.app import create_app
from shortener.store.keys import CODE_MAC_KEY, link_field, link_key
from tests.support.apps import AUTH, BASE_URL, CONSENTED, shorten

ORG = "org-a"
_HEX = re.compile(r"[0-9a-f]+")


@contextlib.asynccontextmanager
async def opened_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """An app in-process with its client, so that a test can reach its store."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client, app


@pytest.fixture
async def service(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    async with opened_app(make_settings()) as pair:
        yield pair


async def batch(client: httpx.AsyncClient, messages: list[Any]) -> list[dict[str, Any]]:
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(messages)
    return results


async def stored_links(redis: aioredis.Redis) -> set[tuple[str, str]]:
    """Every link record in the store, as (hash key, slot field)."""
    found = set()
    for key in await redis.keys("l:*"):
        for field in await redis.hkeys(key):
            if _HEX.fullmatch(field.decode()):
                found.add((key.decode(), field.decode()))
    return found


async def records_of(redis: aioredis.Redis, results: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The link records that the given results hand out."""
    codec = CodeCodec(await redis.get(CODE_MAC_KEY))
    records = set()
    for result in results:
        for link in result["links"]:
            if link["code"] is not None:
                serial = codec.decode(link["code"])
                assert serial is not None
                records.add((link_key(serial), link_field(serial)))
    return records


async def claimed(redis: aioredis.Redis) -> set[str]:
    return {key.decode().removeprefix(f"m:{ORG}:") for key in await redis.keys(f"m:{ORG}:*")}


async def expiry_index_total(redis: aioredis.Redis, app: Starlette) -> int:
    """The codes of the org that the expiry index counts, once the app wrote what it buffers."""
    await app.state.runtime.store.flush()
    total = 0
    for key in await redis.keys("x:*"):
        for field, count in (await redis.hgetall(key)).items():
            if field.decode().rpartition(":")[0] == ORG:
                total += int(count)
    return total


def codes_issued(metrics: str) -> float:
    match = re.search(r"^shortener_codes_issued_total (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_a_batch_answers_per_message_and_stores_only_what_it_answered(
    service: tuple[httpx.AsyncClient, Starlette], redis: aioredis.Redis
) -> None:
    client, app = service
    taken = await shorten(client, message_id="taken", body="Hi https://shop.example.com/first")
    first = {"message_id": "b-0", "body": "A https://shop.example.com/0 https://shop.example.com/1"}
    messages: list[Any] = [
        first,
        {"message_id": "taken", "body": "https://shop.example.com/other"},
        {"body": 5},
        {"mesage_id": "typo", "body": "https://shop.example.com/typo"},
        {"body": "B https://shop.example.com/2", "recipient": CONSENTED},
        dict(first),
        {"message_id": "b-0", "body": "https://shop.example.com/else"},
        {"message_id": "taken", "body": "Hi https://shop.example.com/first"},
        "https://shop.example.com/not-an-object",
        {"body": "https://shop.example.com/3", "recipient": {"contact_id": "c", "consent": True}},
    ]
    results = await batch(client, messages)

    ok = [0, 4]
    assert [("error" not in result) for result in results] == [i in ok for i in range(10)]
    assert [link["url"] for link in results[0]["links"]] == [
        "https://shop.example.com/0",
        "https://shop.example.com/1",
    ]
    assert results[4]["links"][0]["tracked"] is True
    # A batch names each message once: a repeated id is refused for the later message.
    assert "earlier message of this batch" in results[5]["error"]["detail"]
    assert "earlier message of this batch" in results[7]["error"]["detail"]
    problems = {i: result["error"] for i, result in enumerate(results) if "error" in result}
    for problem in problems.values():
        assert set(problem) >= {"type", "title", "status", "detail"}
    assert {i: problem["status"] for i, problem in problems.items()} == {
        1: 409, 2: 422, 3: 422, 5: 409, 6: 409, 7: 409, 8: 422, 9: 422,
    }  # fmt: skip
    assert "taken" in problems[1]["detail"] and "b-0" in problems[6]["detail"]
    assert "body" in problems[2]["detail"]
    assert "mesage_id" in problems[3]["detail"]
    assert "recipient.consent" in problems[9]["detail"]
    # Each refusal is the problem a single shorten of that message answers.
    for i in (1, 2, 3, 8, 9):
        alone = await client.post("/v1/messages/shorten", json=messages[i], headers=AUTH)
        assert alone.status_code == problems[i]["status"]
        assert alone.json() == problems[i]

    answered = [taken] + [results[i] for i in ok]
    assert await stored_links(redis) == await records_of(redis, answered)
    assert len(await stored_links(redis)) == 4
    assert await claimed(redis) == {"taken", "b-0"}
    assert await expiry_index_total(redis, app) == 4


async def test_a_message_id_reused_for_another_body_leaves_nothing_behind(
    service: tuple[httpx.AsyncClient, Starlette], redis: aioredis.Redis
) -> None:
    client, app = service
    kept = await shorten(client, message_id="m-2", body="https://t.example/1")
    before = codes_issued((await client.get("/metrics")).text)
    for _ in range(3):
        response = await client.post(
            "/v1/messages/shorten",
            json={"message_id": "m-2", "body": "https://t.example/2 https://t.example/3"},
            headers=AUTH,
        )
        assert response.status_code == 409
    assert await stored_links(redis) == await records_of(redis, [kept])
    assert await claimed(redis) == {"m-2"}
    assert codes_issued((await client.get("/metrics")).text) == before
    assert await expiry_index_total(redis, app) == 1


async def test_retries_that_lose_the_race_are_not_counted(
    service: tuple[httpx.AsyncClient, Starlette], redis: aioredis.Redis
) -> None:
    client, app = service
    before = codes_issued((await client.get("/metrics")).text)
    message = {"message_id": "m-race", "body": "https://t.example/race https://t.example/2"}
    results = await asyncio.gather(*(shorten(client, **message) for _ in range(20)))
    assert all(result == results[0] for result in results)
    assert await stored_links(redis) == await records_of(redis, results[:1])
    assert codes_issued((await client.get("/metrics")).text) - before == 2
    assert await expiry_index_total(redis, app) == 2


async def test_a_batch_of_only_refusals_stores_nothing(
    service: tuple[httpx.AsyncClient, Starlette], redis: aioredis.Redis
) -> None:
    client, app = service
    results = await batch(
        client,
        [{"body": "https://t.example/1", "extra": 1}, {"body": "x", "content_type": "pdf"}],
    )
    assert [result["error"]["status"] for result in results] == [422, 422]
    assert await stored_links(redis) == set()
    assert await claimed(redis) == set()
    assert await expiry_index_total(redis, app) == 0


@pytest.mark.parametrize(
    ("payload", "status", "named"),
    [
        (b"{not json", 400, "JSON"),
        (b'{"messages": []}', 422, "messages"),
        (b'{"message": [{"body": "https://t.example/1"}]}', 422, "message"),
        (b'{"messages": [{"body": "https://t.example/1"}], "async": true}', 422, "async"),
        (b'{"messages": {"body": "https://t.example/1"}}', 422, "messages"),
    ],
)
async def test_only_a_broken_envelope_fails_the_whole_batch(
    service: tuple[httpx.AsyncClient, Starlette],
    redis: aioredis.Redis,
    payload: bytes,
    status: int,
    named: str,
) -> None:
    client, _ = service
    headers = {**AUTH, "content-type": "application/json"}
    response = await client.post("/v1/messages/batch", content=payload, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert named in response.json()["detail"]
    assert await stored_links(redis) == set()


async def test_more_than_a_thousand_messages_fail_the_whole_batch(
    service: tuple[httpx.AsyncClient, Starlette], redis: aioredis.Redis
) -> None:
    client, _ = service
    messages = [{"body": f"https://t.example/{i}"} for i in range(1001)]
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    assert response.status_code == 422
    assert "messages" in response.json()["detail"]
    assert await stored_links(redis) == set()


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ({"mesage_id": "m-1", "body": "https://t.example/1"}, "mesage_id"),
        (
            {"body": "https://t.example/1", "recipient": {"contact_id": "c", "consent": True}},
            "recipient.consent",
        ),
        ({"body": "https://t.example/1", "nontrackable": ["https://t.example/1"]}, "nontrackable"),
    ],
)
async def test_unknown_request_fields_are_refused_by_name(
    service: tuple[httpx.AsyncClient, Starlette],
    redis: aioredis.Redis,
    message: dict[str, Any],
    named: str,
) -> None:
    client, _ = service
    response = await client.post("/v1/messages/shorten", json=message, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert named in response.json()["detail"]
    assert await stored_links(redis) == set()


async def test_unknown_consent_fields_are_refused_by_name(
    service: tuple[httpx.AsyncClient, Starlette], redis: aioredis.Redis
) -> None:
    client, _ = service
    response = await client.put(
        "/v1/contacts/c-1/consent", json={"tracking": False, "trackng": True}, headers=AUTH
    )
    assert response.status_code == 422
    assert "trackng" in response.json()["detail"]
    assert await redis.keys("*consent*") == []
