"""What the people who tap links get: mangled links that still land, cut tracked links that
still land, and pages rather than JSON when something goes wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from tests.support.apps import AUTH, BASE_URL, OTHER_AUTH, PHONE, first_link, start_of_second
from tests.support.redis_servers import free_port

# What a phone's browser sends, and what an API client does.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BROWSER = {"user-agent": PHONE, "accept": BROWSER_ACCEPT}
API_ACCEPTS = ["*/*", "application/json", "application/problem+json", "image/*"]
CONSENTED = {"contact_id": "c-7", "tracking_consent": True}
TARGET = "https://shop.example.com/deal?id=7&ref=sms"


async def clicks(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/interactions", params={"limit": "1000"}, headers=AUTH)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["interactions"]
    return found


async def hget_calls(redis: aioredis.Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get("cmdstat_hget", {}).get("calls", 0))


def is_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!doctype html>")
    assert "location" not in response.headers


def is_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert "location" not in response.headers


def headers_for(accept: str) -> dict[str, str]:
    return {"user-agent": PHONE, "accept": accept}


# Taps on what phones make of a link


# What a phone takes into the link when the message goes on without a space.
SUFFIXES = ["パス", ".", ")", ",", "!", "/", "/anything", "/a/b?c=d", "?utm_source=x", "%2F", "x"]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.usefixtures("quiet_settler")
async def test_a_code_followed_by_more_still_lands(
    client: httpx.AsyncClient, redis: aioredis.Redis, suffix: str
) -> None:
    link = await first_link(client, f"Deal: {TARGET}", recipient=CONSENTED)
    await redis.config_resetstat()
    assert (await client.get(f"/{link['code']}", headers={"user-agent": PHONE})).status_code == 302
    reads = await hget_calls(redis)
    await redis.config_resetstat()
    response = await client.get(f"/{link['code']}{suffix}", headers={"user-agent": PHONE})
    assert response.status_code == 302, response.text
    assert response.headers["location"] == TARGET
    # As many store reads as for the code alone; and the click names the code, not the path.
    assert await hget_calls(redis) == reads
    first, second = await clicks(client)
    assert second["code"] == second["link_id"] == link["code"]
    assert second["contact_id"] == first["contact_id"] == "c-7"


@pytest.mark.usefixtures("quiet_settler")
async def test_paths_without_a_code_cost_no_store_call(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    code = (await first_link(client, TARGET))["code"]
    await redis.config_resetstat()
    for path in [
        f"/{code[:-1]}",
        f"/{code[:-1]}.",
        f"/{code[:-1]}/{code}",
        f"/x{code}",
        f"/.{code}",
        f"/0{code}",
        "/favicon.ico",
        "/robots.txt",
        "/ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "/" + "a" * 5000,
        "/%F0%9F%98%80",
    ]:
        response = await client.get(path, headers=BROWSER)
        is_page(response, 404)
    assert await hget_calls(redis) == 0


async def test_codes_with_more_do_not_shadow_other_routes(client: httpx.AsyncClient) -> None:
    code = (await first_link(client, TARGET))["code"]
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")
    assert (await client.get("/openapi.json")).json()["openapi"] == "3.1.0"
    assert (await client.get(f"/v1/links/{code}")).status_code == 401
    assert (await client.get(f"/v1/links/{code}", headers=AUTH)).json()["code"] == code
    # Routes under /v1 and /api stay theirs, found or not.
    is_problem(await client.get(f"/v1/{code}/x", headers=AUTH), 404)
    is_problem(await client.get(f"/api/{code}/x"), 404)


# Tracked links whose query was cut short


async def tracked(client: httpx.AsyncClient, auth: dict[str, str] = AUTH) -> dict[str, Any]:
    response = await client.post(
        "/v1/messages/shorten",
        json={"body": f"Deal: {TARGET}", "recipient": CONSENTED},
        headers=auth,
    )
    link: dict[str, Any] = response.json()["links"][0]
    parts = urlsplit(link["tracking_url"][len(BASE_URL) :])
    link["path"] = parts.path
    link["query"] = parts.query
    return link


async def test_a_cut_query_lands_on_the_stored_target(client: httpx.AsyncClient) -> None:
    link = await tracked(client)
    query: str = link["query"]
    digest_at = query.index("&digest=")
    version_at = query.index("&secretVersion=")
    cuts = [
        "",
        "targetUrl=",
        "targetUrl=https%3A%2F%2Fsho",
        "targetUrl=https%3A%2F%2Fshop.example.com%2",
        query[:digest_at],
        query[: digest_at + 12],
        query[:version_at],
        query[: version_at + len("&secretVersion=")],
        # A digest and its version check out against the stored target, too.
        query[digest_at + 1 :],
    ]
    for cut_query in cuts:
        response = await client.get(f"{link['path']}?{cut_query}", headers=BROWSER)
        assert response.status_code == 302, (cut_query, response.text)
        assert response.headers["location"] == TARGET
    recorded = await clicks(client)
    assert len(recorded) == len(cuts)
    assert all(click["contact_id"] == "c-7" and click["url"] == TARGET for click in recorded)
    head = await client.head(link["path"], headers=BROWSER)
    assert head.status_code == 302 and head.headers["location"] == TARGET
    assert len(await clicks(client)) == len(cuts)


async def test_a_cut_query_never_goes_where_the_query_says(client: httpx.AsyncClient) -> None:
    link = await tracked(client)
    query = {name: values[0] for name, values in parse_qs(link["query"]).items()}
    evil = quote("https://evil.example.com/", safe="")
    flipped = query["digest"][:-1] + ("A" if query["digest"][-1] != "A" else "B")
    for refused in [
        f"targetUrl={evil}",
        f"targetUrl={evil}&digest={query['digest']}",
        f"digest={flipped}&secretVersion=1",
        f"digest={query['digest']}&secretVersion=2",
        f"targetUrl={evil}&digest={flipped}&secretVersion=1",
        f"targetUrl={evil}&digest={query['digest']}&secretVersion=1",
    ]:
        response = await client.get(f"{link['path']}?{refused}", headers={"user-agent": PHONE})
        is_problem(response, 400)
    assert await clicks(client) == []


async def test_a_cut_query_needs_a_stored_record_of_the_org(client: httpx.AsyncClient) -> None:
    mine = await tracked(client)
    theirs = await tracked(client, OTHER_AUTH)
    untracked = await first_link(client, TARGET)
    org_path = mine["path"].rsplit("/", 1)[0]
    for path in [
        f"{org_path}/AbCdEfGh12",
        f"{org_path}/{theirs['code']}",
        f"{org_path}/{untracked['code']}",
        theirs["path"].rsplit("/", 1)[0] + f"/{mine['code']}",
        f"{org_path}/",
    ]:
        response = await client.get(f"{path}?targetUrl=https", headers={"user-agent": PHONE})
        assert response.status_code in (400, 404), path
        assert "location" not in response.headers


async def test_a_cut_query_of_a_link_whose_record_is_gone_is_400(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    link = await tracked(client)
    await asyncio.sleep(2.2)
    # The whole link still redirects on its signature; a cut one has nothing left to go by.
    whole = await client.get(f"{link['path']}?{link['query']}")
    assert whole.headers["location"] == TARGET
    is_problem(await client.get(link["path"]), 400)


# Pages for people, problems for programs


async def test_a_tap_that_leads_nowhere_is_a_page_for_browsers_only(
    client: httpx.AsyncClient,
) -> None:
    is_page(await client.get("/AbCdEf12", headers=BROWSER), 404)
    assert "does not exist" in (await client.get("/AbCdEf12", headers=BROWSER)).text
    for accept in API_ACCEPTS:
        is_problem(await client.get("/AbCdEf12", headers=headers_for(accept)), 404)
    without_accept = client.build_request("GET", "/AbCdEf12")
    del without_accept.headers["accept"]
    is_problem(await client.send(without_accept), 404)
    # A browser's preference decides, not the mere mention of HTML.
    is_problem(
        await client.get("/AbCdEf12", headers={"accept": "application/json, text/html;q=0.5"}),
        404,
    )
    is_page(await client.get("/AbCdEf12", headers={"accept": "text/*"}), 404)


async def test_an_expired_code_is_a_page_for_browsers_only(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    code = (await first_link(client, TARGET))["code"]
    await asyncio.sleep(1.1)
    page = await client.get(f"/{code}", headers=BROWSER)
    is_page(page, 410)
    assert "expired" in page.text
    is_problem(await client.get(f"/{code}", headers=headers_for("application/json")), 410)


async def test_throttled_taps_get_a_page_for_browsers(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(miss_limit_per_minute=2))
    for _ in range(2):
        await client.get("/Guess12345")
    page = await client.get("/Guess12345", headers=BROWSER)
    is_page(page, 429)
    assert page.headers["retry-after"] == "60"
    problem = await client.get("/Guess12345")
    is_problem(problem, 429)
    assert problem.headers["retry-after"] == "60"


async def test_a_bad_tracked_link_is_a_page_for_browsers(client: httpx.AsyncClient) -> None:
    link = await tracked(client)
    bad = f"{link['path']}?{link['query']}".replace("targetUrl=https", "targetUrl=http")
    page = await client.get(bad, headers=BROWSER)
    is_page(page, 400)
    assert "not valid" in page.text
    is_problem(await client.get(bad, headers=headers_for("application/json")), 400)


async def test_a_store_outage_is_a_page_for_browsers_on_every_public_route(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    client = await client_for(make_settings(redis_url=nowhere, redis_timeout_seconds=0.3))
    for path in [
        "/AbCdEfGh12",
        "/AbCdEfGh12/more",
        "/api/orgs/x/r/AbCdEfGh12?targetUrl=https%3A%2F%2Fa.example%2F&digest=x&secretVersion=1",
        "/api/orgs/x/r/AbCdEfGh12",
        "/api/orgs/x/o/AbCdEfGh12",
    ]:
        page = await client.get(path, headers=BROWSER)
        is_page(page, 503)
        assert page.headers["retry-after"] == "1"
        is_problem(await client.get(path), 503)


async def test_the_root_says_what_the_service_is(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers=BROWSER)
    is_page(page, 404)
    assert "short links" in page.text
    problem = await client.get("/")
    is_problem(problem, 404)
    assert "short links" in problem.json()["detail"]
    assert (await client.head("/", headers=BROWSER)).status_code == 404
