"""Branded domains: each org's links are issued on its first domain, and on a host that is an
org's domain only that org's codes, tracked links and pixels resolve; another org's are answered
exactly as a code never issued, and counted nowhere. On any other host every code resolves."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.config import Settings
from tests.support.apps import (
    ADMIN_AUTH,
    AUTH,
    BASE_URL,
    CONSENTED,
    OTHER_AUTH,
    PHONE,
    command_calls,
    cut_short,
    interactions,
    start_of_second,
)

ALPHA = "go.alpha.example"
BETA = "links.beta.example"
PIXEL = re.compile(r'src="([^"]+/o/[^"]+)"')
BROWSER = {"user-agent": PHONE, "accept": "text/html"}
OpenClient = Callable[[Settings], Any]


async def put_org(client: httpx.AsyncClient, org: str, **fields: Any) -> dict[str, Any]:
    response = await client.put(f"/v1/admin/orgs/{org}", json=fields, headers=ADMIN_AUTH)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def org_c_auth(client: httpx.AsyncClient) -> dict[str, str]:
    """A third org, on the default domain, with a key made through the admin routes."""
    await put_org(client, "org-c")
    made = await client.post("/v1/admin/orgs/org-c/keys", headers=ADMIN_AUTH)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


async def issue(client: httpx.AsyncClient, auth: dict[str, str], **message: Any) -> dict[str, Any]:
    message.setdefault("body", "Sale: https://shop.example/deal")
    message.setdefault("recipient", CONSENTED)
    response = await client.post("/v1/messages/shorten", json=message, headers=auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def on_host(url: str, host: str, scheme: str = "https") -> str:
    """The same link as sent to another host."""
    return urlsplit(url)._replace(scheme=scheme, netloc=host).geturl()


async def get(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    return await client.get(url, headers={"user-agent": PHONE, **headers})


async def clicks(client: httpx.AsyncClient, code: str, auth: dict[str, str]) -> int:
    info = await client.get(f"/v1/links/{code}", headers=auth)
    assert info.status_code == 200, info.text
    count: int = info.json()["clicks"]
    return count


def same_answer(one: httpx.Response, other: httpx.Response) -> None:
    """Two answers a caller cannot tell apart: status, body and headers but the request id."""
    assert (one.status_code, one.content) == (other.status_code, other.content)
    drop = {"x-request-id", "content-length"}
    assert {k: v for k, v in one.headers.items() if k not in drop} == {
        k: v for k, v in other.headers.items() if k not in drop
    }


@pytest.fixture
async def orgs(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    await put_org(client, "org-a", domains=[ALPHA, "alt.alpha.example"])
    await put_org(client, "org-b", domains=[BETA])
    return {"org-a": AUTH, "org-b": OTHER_AUTH, "org-c": await org_c_auth(client)}


async def test_links_are_issued_on_the_orgs_first_domain(
    client: httpx.AsyncClient, orgs: dict[str, dict[str, str]]
) -> None:
    bases = {}
    for org, auth in orgs.items():
        result = await issue(client, auth)
        (link,) = result["links"]
        assert link["short_url"] in result["body"]
        bases[org] = {urlsplit(link[name]).netloc for name in ("short_url", "tracking_url")}
    assert bases == {"org-a": {ALPHA}, "org-b": {BETA}, "org-c": {"sho.rt"}}
    html = await issue(
        client, AUTH, body='<a href="https://shop.example/">Shop</a>', content_type="html"
    )
    assert urlsplit(html["links"][0]["tracking_url"]).netloc == ALPHA
    (pixel,) = PIXEL.findall(html["body"])
    assert pixel.startswith(f"https://{ALPHA}/")


async def test_each_orgs_codes_resolve_on_its_domains_and_the_default_never_elsewhere(
    client: httpx.AsyncClient, orgs: dict[str, dict[str, str]]
) -> None:
    links = {org: (await issue(client, auth))["links"][0] for org, auth in orgs.items()}
    own = {"org-a": ALPHA, "org-b": BETA, "org-c": None}
    never_issued = await get(client, f"https://{ALPHA}/Zz9Zz9Z")
    assert never_issued.status_code == 404
    for org, link in links.items():
        code = link["code"]
        for host in ("sho.rt", own[org], "alt.alpha.example" if org == "org-a" else None):
            if host is not None:
                answer = await get(client, on_host(link["short_url"], host))
                assert answer.status_code == 302, (org, host)
                assert answer.headers["location"] == "https://shop.example/deal"
        taps = await clicks(client, code, orgs[org])
        for host in {ALPHA, BETA} - {own[org]}:
            if org == "org-a" and host == ALPHA:
                continue
            refused = await get(client, on_host(link["short_url"], host))
            foreign_never = await get(client, f"https://{host}/Zz9Zz9Z")
            same_answer(refused, foreign_never)
        # A tap refused on another org's domain counts nowhere.
        assert await clicks(client, code, orgs[org]) == taps
    assert len(await interactions(client)) == 3
    assert len(await interactions(client, OTHER_AUTH)) == 2


async def test_the_host_is_matched_without_case_port_or_trailing_dot(
    client: httpx.AsyncClient, orgs: dict[str, dict[str, str]]
) -> None:
    link = (await issue(client, OTHER_AUTH))["links"][0]
    for host in ("GO.Alpha.Example:8443", "go.alpha.example.", "go.alpha.example.:443"):
        answer = await client.get(
            on_host(link["short_url"], "sho.rt"), headers={"host": host, "user-agent": PHONE}
        )
        assert answer.status_code == 404, host
    mine = (await issue(client, AUTH))["links"][0]
    answer = await client.get(
        on_host(mine["short_url"], "sho.rt"), headers={"host": "GO.ALPHA.EXAMPLE:8443"}
    )
    assert answer.status_code == 302


async def test_tracked_links_and_pixels_resolve_only_on_their_orgs_domain(
    client: httpx.AsyncClient, orgs: dict[str, dict[str, str]]
) -> None:
    html = await issue(
        client,
        OTHER_AUTH,
        body='<a href="https://shop.example/b">B</a>',
        content_type="html",
        message_id="html-1",
    )
    tracking_url = html["links"][0]["tracking_url"]
    (pixel,) = PIXEL.findall(html["body"])
    sms = (await issue(client, OTHER_AUTH))["links"][0]["tracking_url"]
    for url in (tracking_url, sms, cut_short(tracking_url)):
        for host in (BETA, "sho.rt"):
            answer = await get(client, on_host(url, host))
            assert answer.status_code == 302, (url, host)
        on_alpha = await get(client, on_host(url, ALPHA))
        assert on_alpha.status_code == 400, url
        assert "location" not in on_alpha.headers
    opened = [await get(client, on_host(pixel, host)) for host in (ALPHA, BETA, "sho.rt")]
    assert [answer.status_code for answer in opened] == [200, 200, 200]
    assert len({answer.content for answer in opened}) == 1
    kinds = [item["type"] for item in await interactions(client, OTHER_AUTH)]
    # Two clicks for each of the three links on the two hosts that resolve them; two opens.
    assert sorted(kinds) == ["click"] * 6 + ["open"] * 2


async def test_codes_issued_before_the_domain_keep_working_on_the_default_one(
    client: httpx.AsyncClient,
) -> None:
    before = (await issue(client, AUTH))["links"][0]
    assert before["short_url"].startswith(BASE_URL)
    await put_org(client, "org-a", domains=[ALPHA])
    after = (await issue(client, AUTH))["links"][0]
    assert after["short_url"].startswith(f"https://{ALPHA}/")
    for url in (before["short_url"], on_host(before["short_url"], ALPHA)):
        assert (await get(client, url)).status_code == 302
    # Each keeps the address it was issued on.
    for link in (before, after):
        info = await client.get(f"/v1/links/{link['code']}", headers=AUTH)
        assert info.json()["short_url"] == link["short_url"]
    # A domain given up resolves every org's codes again, like any other host.
    await put_org(client, "org-b", domains=[])
    await put_org(client, "org-a", domains=["new.alpha.example"])
    other = (await issue(client, OTHER_AUTH))["links"][0]
    assert (await get(client, on_host(other["short_url"], ALPHA))).status_code == 302
    assert (await get(client, on_host(other["short_url"], "new.alpha.example"))).status_code == 404


async def test_a_second_worker_follows_a_domain_within_seconds(
    client: httpx.AsyncClient, client_for: OpenClient, make_settings: Callable[..., Settings]
) -> None:
    other_worker = await client_for(make_settings())
    link = (await issue(client, OTHER_AUTH))["links"][0]
    url = on_host(link["short_url"], ALPHA)
    assert (await get(other_worker, url)).status_code == 302
    await put_org(client, "org-a", domains=[ALPHA])
    for _ in range(50):
        if (await get(other_worker, url)).status_code == 404:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the other worker never learnt of the domain")


async def test_fallback_url_for_disabled_and_unknown_codes_on_the_orgs_domain(
    client: httpx.AsyncClient, orgs: dict[str, dict[str, str]]
) -> None:
    fallback = "https://alpha.example/gone?from=sms"
    await put_org(client, "org-a", fallback_url=fallback)
    mine, theirs, third = [
        (await issue(client, auth))["links"][0] for auth in (AUTH, OTHER_AUTH, orgs["org-c"])
    ]
    assert (await client.delete(f"/v1/links/{mine['code']}", headers=AUTH)).status_code == 204
    for url in (
        mine["short_url"],
        on_host(mine["short_url"], "sho.rt"),
        f"https://{ALPHA}/Zz9Zz9Z",
        f"https://{ALPHA}/not-a-code/at-all",
        on_host(theirs["short_url"], ALPHA),
        on_host(third["short_url"], ALPHA),
    ):
        answer = await get(client, url, accept="text/html")
        assert answer.status_code == 302, url
        assert answer.headers["location"] == fallback
        assert answer.headers["cache-control"] == "no-store"
    # Elsewhere, an unknown code is no org's to send anywhere.
    assert (await get(client, f"{BASE_URL}/Zz9Zz9Z")).status_code == 404
    assert (await get(client, f"https://{BETA}/Zz9Zz9Z")).status_code == 404
    # The tracked link of a disabled code is refused, never sent to the fallback.
    assert (await get(client, mine["tracking_url"])).status_code == 410
    await put_org(client, "org-a", fallback_url=None)
    assert (await get(client, mine["short_url"], **BROWSER)).status_code == 410


async def test_fallback_url_for_expired_codes(
    client_for: OpenClient, make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    await put_org(client, "org-a", fallback_url="https://alpha.example/expired")
    mine = (await issue(client, AUTH))["links"][0]
    theirs = (await issue(client, OTHER_AUTH))["links"][0]
    await asyncio.sleep(1.2)
    answer = await get(client, mine["short_url"])
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://alpha.example/expired"
    assert (await get(client, theirs["short_url"], **BROWSER)).status_code == 410


@pytest.mark.usefixtures("quiet_settler")
async def test_a_tap_on_a_branded_domain_is_still_one_script_call(
    client: httpx.AsyncClient, redis: aioredis.Redis, orgs: dict[str, dict[str, str]]
) -> None:
    mine = (await issue(client, AUTH, recipient=None))["links"][0]["short_url"]
    theirs = (await issue(client, OTHER_AUTH, recipient=None))["links"][0]["short_url"]
    for url, status in ((mine, 302), (on_host(theirs, ALPHA), 404)):
        await redis.config_resetstat()
        assert (await get(client, url)).status_code == status
        calls = await command_calls(redis)
        assert (calls["evalsha"], calls["hget"]) == (1, 1), calls
        assert set(calls) <= {"evalsha", "hget", "bitfield", "pttl", "pexpire"}, calls
        # Another org's code is counted nowhere.
        assert ("bitfield" in calls) == (status == 302), calls
