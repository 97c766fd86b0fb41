"""Shortening SMS bodies over HTTP, against a real Redis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import redis.asyncio as aioredis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shortener.config import Settings
from tests.support.apps import AUTH, BASE_URL, OTHER_AUTH, link_fields, shorten, start_of_second

SHORT = re.compile(re.escape(BASE_URL) + r"/([0-9A-Za-z]{6,12})")


async def test_every_link_is_replaced_and_nothing_else_changes(client: httpx.AsyncClient) -> None:
    body = (
        "Hi Ana! Your order shipped: https://track.example.com/o/123?x=1&y=2.\n"
        "Returns (see http://shop.example.org/returns) — thanks, "
        "HTTPS://Example.com/Ünïcode/path €5"
    )
    result = await shorten(client, body)
    urls = [link["url"] for link in result["links"]]
    assert urls == [
        "https://track.example.com/o/123?x=1&y=2",
        "http://shop.example.org/returns",
        "HTTPS://Example.com/Ünïcode/path",
    ]
    rebuilt = result["body"]
    for link in result["links"]:
        assert link["short_url"] == f"{BASE_URL}/{link['code']}"
        assert link["tracked"] is False and link["tracking_url"] is None
        rebuilt = rebuilt.replace(link["short_url"], link["url"], 1)
    assert rebuilt == body
    assert len(SHORT.findall(result["body"])) == 3


async def test_tap_redirects_to_the_target_in_ascii(client: httpx.AsyncClient) -> None:
    result = await shorten(client, "Go https://bücher.example/straße?q=€ now")
    code = result["links"][0]["code"]
    tap = await client.get(f"/{code}")
    assert tap.status_code == 302
    assert tap.headers["location"] == "https://xn--bcher-kva.example/stra%C3%9Fe?q=%E2%82%AC"
    head = await client.head(f"/{code}")
    assert head.status_code == 302
    assert head.headers["location"] == tap.headers["location"]


async def test_a_body_without_links_comes_back_unchanged(client: httpx.AsyncClient) -> None:
    result = await shorten(client, "No links here, just text. www is not a link: ftp://x.y")
    assert result["links"] == []
    assert result["body"] == "No links here, just text. www is not a link: ftp://x.y"


async def test_the_same_url_twice_in_a_message_shares_one_code(client: httpx.AsyncClient) -> None:
    result = await shorten(client, "https://a.example/x and again https://a.example/x")
    codes = [link["code"] for link in result["links"]]
    assert len(codes) == 2 and codes[0] == codes[1]


async def test_unknown_code_is_404_with_a_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/AbCdEf12", headers={"accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "does not exist" in response.text
    assert "location" not in response.headers


async def test_expired_code_is_410_even_after_redis_dropped_it(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis: aioredis.Redis,
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    result = await shorten(client, "Sale: https://shop.example.com/sale")
    code = result["links"][0]["code"]
    assert (await client.get(f"/{code}")).status_code == 302
    # The record is kept a grace period as long as its life (here 1 s) for ops to inspect.
    ttls = [await redis.pttl(key) for key in await redis.keys("l:*")]
    assert ttls and all(1000 < ttl <= 2000 for ttl in ttls)
    await asyncio.sleep(1.1)
    expired = await client.get(f"/{code}")
    assert expired.status_code == 410
    assert "expired" in expired.text
    await asyncio.sleep(1.0)
    assert await redis.keys("l:*") == []
    gone = await client.get(f"/{code}")
    assert gone.status_code == 410


async def test_record_past_its_own_expiry_is_410_while_its_bucket_lives(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    short_lived = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    long_lived = await client_for(make_settings(link_ttl_seconds=3600))
    first = (await shorten(short_lived, "https://a.example/1"))["links"][0]["code"]
    second = (await shorten(long_lived, "https://a.example/2"))["links"][0]["code"]
    await asyncio.sleep(1.2)
    assert (await long_lived.get(f"/{first}")).status_code == 410
    assert (await long_lived.get(f"/{second}")).status_code == 302


async def test_codes_are_stored_with_the_configured_lifetime(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await shorten(client, "https://a.example/")
    (key,) = await redis.keys("l:*")
    # 365 days, then 30 days during which ops can still look the expired code up.
    kept = (31_536_000 + 30 * 86_400) * 1000
    assert kept - 5_000 < await redis.pttl(key) <= kept


async def test_retry_with_the_same_message_id_returns_the_same_result(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    message = {"message_id": "m-1", "body": "Track https://t.example/1 and https://t.example/2"}
    first = await shorten(client, **message)
    again = await shorten(client, **message)
    assert again == first
    # Concurrent retries, too, all get the first codes and nothing more is stored.
    results = await asyncio.gather(*(shorten(client, **message) for _ in range(20)))
    assert all(result == first for result in results)
    assert len(await link_fields(redis)) == 2


async def test_concurrent_first_requests_with_one_message_id_get_one_set_of_codes(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    message = {"message_id": "m-race", "body": "https://t.example/race"}
    results = await asyncio.gather(*(shorten(client, **message) for _ in range(20)))
    assert len({result["links"][0]["code"] for result in results}) == 1
    assert len(await link_fields(redis)) == 1


async def test_reusing_a_message_id_for_another_body_is_409(client: httpx.AsyncClient) -> None:
    await shorten(client, "https://t.example/1", message_id="m-2")
    response = await client.post(
        "/v1/messages/shorten",
        json={"message_id": "m-2", "body": "https://t.example/other"},
        headers=AUTH,
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "m-2" in response.json()["detail"]


async def test_message_ids_are_scoped_to_the_org(client: httpx.AsyncClient) -> None:
    message = {"message_id": "same", "body": "https://t.example/1"}
    mine = await client.post("/v1/messages/shorten", json=message, headers=AUTH)
    theirs = await client.post("/v1/messages/shorten", json=message, headers=OTHER_AUTH)
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["links"][0]["code"] != theirs.json()["links"][0]["code"]


async def test_batch_keeps_the_order_of_messages(client: httpx.AsyncClient) -> None:
    messages = [{"body": f"Message {i}: https://shop.example.com/item/{i}"} for i in range(50)]
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["links"][0]["url"] for r in results] == [
        f"https://shop.example.com/item/{i}" for i in range(50)
    ]
    for i in (0, 17, 49):
        tap = await client.get(f"/{results[i]['links'][0]['code']}")
        assert tap.headers["location"] == f"https://shop.example.com/item/{i}"


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    too_many = {"messages": [{"body": "x"}] * 1001}
    response = await client.post("/v1/messages/batch", json=too_many, headers=AUTH)
    assert response.status_code == 422
    assert "messages" in response.json()["detail"]
    empty = await client.post("/v1/messages/batch", json={"messages": []}, headers=AUTH)
    assert empty.status_code == 422


async def test_ten_thousand_codes_are_distinct_and_resolve(client: httpx.AsyncClient) -> None:
    body = " ".join(f"https://s.example/{{}}/{n}" for n in range(10))
    messages = [{"body": body.format(*([i] * 10))} for i in range(1000)]
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    codes = [link["code"] for r in response.json()["results"] for link in r["links"]]
    assert len(codes) == 10_000 == len(set(codes))
    assert max(len(code) for code in codes) <= 12
    for i in (0, 4_321, 9_999):
        tap = await client.get(f"/{codes[i]}")
        assert tap.headers["location"] == f"https://s.example/{i // 10}/{i % 10}"


async def test_segments_before_and_after(client: httpx.AsyncClient) -> None:
    body = "Your order shipped: https://track.example.com/o/123"
    result = await shorten(client, body)
    assert result["segments"]["before"] == {"encoding": "GSM-7", "characters": 51, "segments": 1}
    after = len(result["body"])
    assert result["segments"]["after"] == {"encoding": "GSM-7", "characters": after, "segments": 1}


async def test_segments_count_extension_characters_and_ucs2(client: httpx.AsyncClient) -> None:
    euro = await shorten(client, "Only 5€ {today}: https://shop.example.com/" + "a" * 100)
    assert euro["segments"]["before"]["encoding"] == "GSM-7"
    assert (
        euro["segments"]["before"]["characters"] == 17 + 3 + 25 + 100
    )  # €, { and } cost two septets each
    ucs2 = await shorten(client, "Привет! " * 10 + "https://shop.example.com/x")
    assert ucs2["segments"]["before"] == {"encoding": "UCS-2", "characters": 106, "segments": 2}
    assert ucs2["segments"]["after"]["encoding"] == "UCS-2"


async def test_without_a_key_every_v1_route_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope-nope-nope-nope"}, {"Authorization": "x"}):
        response = await client.post(
            "/v1/messages/shorten", json={"body": "https://a.example/"}, headers=headers
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        batch = await client.post("/v1/messages/batch", json={"messages": []}, headers=headers)
        assert batch.status_code == 401


async def test_bad_input_is_a_clear_4xx(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"content": b"{not json"}, 400),
        ({"content": b"\xff\xfe{}"}, 400),
        ({"json": {"body": 5}}, 422),
        ({"json": {}}, 422),
        ({"json": {"body": "x", "content_type": "pdf"}}, 422),
        ({"json": {"body": "x", "recipient": {"tracking_consent": "maybe"}}}, 422),
        ({"json": {"body": "x", "message_id": ""}}, 422),
    ]
    for kwargs, status in cases:
        headers = {**AUTH, "content-type": "application/json"}
        response = await client.post("/v1/messages/shorten", headers=headers, **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status"] == status and problem["title"] and problem["detail"]
    wrong_type = await client.post(
        "/v1/messages/shorten", content=b"body=x", headers={**AUTH, "content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_oversized_body_is_413(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(max_body_bytes=2048))
    response = await client.post("/v1/messages/shorten", json={"body": "x" * 4096}, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["status"] == 413


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing/here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # DELETE and GET name a message (its id may be "shorten"); PATCH names nothing here.
    wrong = await client.patch("/v1/messages/shorten", headers=AUTH)
    assert wrong.status_code == 405


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_every_kind_of_link_lands_where_it_was_written(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(http_only_hosts=frozenset({"legacy.example.com"})))
    body = (
        "Sale!www.shop.com/deal. Order:https://a.co/x (see shop.com/deal) "
        "訂單：https://example.com/x。謝謝 <https://example.com/a?b=c&d=e#frag> "
        "https://en.wikipedia.org/wiki/Python_(language) bücher.de/straße "
        "legacy.example.com/old and https://example.com/%E2%82%AC"
    )
    expected = {
        "www.shop.com/deal": "https://www.shop.com/deal",
        "https://a.co/x": "https://a.co/x",
        "shop.com/deal": "https://shop.com/deal",
        "https://example.com/x": "https://example.com/x",
        "https://example.com/a?b=c&d=e#frag": "https://example.com/a?b=c&d=e#frag",
        "https://en.wikipedia.org/wiki/Python_(language)": (
            "https://en.wikipedia.org/wiki/Python_(language)"
        ),
        "bücher.de/straße": "https://xn--bcher-kva.de/stra%C3%9Fe",
        "legacy.example.com/old": "http://legacy.example.com/old",
        "https://example.com/%E2%82%AC": "https://example.com/%E2%82%AC",
    }
    result = await shorten(client, body)
    assert [link["url"] for link in result["links"]] == list(expected)
    rebuilt = result["body"]
    for link in result["links"]:
        rebuilt = rebuilt.replace(link["short_url"], link["url"], 1)
        tap = await client.get(f"/{link['code']}")
        assert tap.status_code == 302
        assert tap.headers["location"] == expected[link["url"]]
    assert rebuilt == body


async def test_dangerous_schemes_are_never_shortened(client: httpx.AsyncClient) -> None:
    body = (
        "javascript:alert(1) data:text/html,<b>x</b> vbscript:x file:///etc/passwd "
        "ftp://files.example.com/a tel:+15551234 mailto:bob@shop.com"
    )
    result = await shorten(client, body)
    assert result["links"] == []
    assert result["body"] == body


async def test_a_text_body_longer_than_any_sms_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages/shorten", json={"body": "a." * 20_001}, headers=AUTH)
    assert response.status_code == 422
    assert "40000 characters" in response.json()["detail"]


FRAGMENTS = st.sampled_from(
    ["https://", "http://", "www.", "shop.com", ".com", "/", "(", ")", ".", ",", "@", "#", " ",
     "\n", "é", "€", "訂單", "：", "😀", "?q=1&a=b", "%E2%82%AC", "bücher.de", "ab.co/x"]
)  # fmt: skip
BODIES = st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=30).map("".join)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
async def test_shortening_keeps_every_byte_outside_the_links(
    client: httpx.AsyncClient, body: str
) -> None:
    response = await client.post("/v1/messages/shorten", json={"body": body}, headers=AUTH)
    if response.status_code == 422:
        # Random text may spell a host that no message may link to (`rb.gy`, a shortener):
        # then the message is refused whole, and that is all there is to check.
        refused = response.json()["invalid_links"]
        assert refused and all("not allowed" in link["reason"] for link in refused), refused
        assume(False)
    assert response.status_code == 200, response.text
    result = response.json()
    rebuilt = result["body"]
    position = 0
    restored = []
    for link in result["links"]:
        start = rebuilt.index(link["short_url"], position)
        restored += (rebuilt[position:start], link["url"])
        position = start + len(link["short_url"])
    restored.append(rebuilt[position:])
    assert "".join(restored) == body
