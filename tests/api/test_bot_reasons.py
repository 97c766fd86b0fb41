"""Why an interaction is not a person's, and the machines that are people: every interaction says
`bot_reason`; an open through Gmail's image proxy is a person's (marked `proxied`); Apple Mail
Privacy Protection's prefetch of the pixel is no one's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shortener.config import Settings
from shortener.store.records import decode_interaction
from tests.support.agents import PREVIEWS
from tests.support.apps import (
    AUTH,
    CONSENTED,
    PHONE,
    interactions,
    mail,
    settled_interactions,
    shorten,
    tap,
)

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_PREFETCH = "Mozilla/5.0"
APPLE_ADDRESS = "17.58.100.7"
ELSEWHERE = "203.0.113.9"


async def counts(client: httpx.AsyncClient, link_id: str) -> tuple[int, int]:
    info = (await client.get(f"/v1/links/{link_id}", headers=AUTH)).json()
    return info["clicks"], info["bot_clicks"]


async def opens(client: httpx.AsyncClient) -> int:
    """People's opens in the aggregates, which count settled interactions."""
    await settled_interactions(client)
    series = (await client.get("/v1/analytics", params={"interval": "hour"}, headers=AUTH)).json()
    return sum(bucket["opens"] for bucket in series["series"])


async def test_every_interaction_says_why_it_is_a_bots(client: httpx.AsyncClient) -> None:
    link = (await shorten(client, "https://shop.example.com/a", recipient=CONSENTED))["links"][0]
    assert (await tap(client, link["short_url"], PHONE)).status_code == 302
    assert (await tap(client, link["short_url"], PREVIEWS[0])).status_code == 302
    # Gmail's image proxy fetches images, not links: on a link it is a machine like any.
    assert (await tap(client, link["short_url"], GMAIL_PROXY)).status_code == 302
    found = [(i["bot"], i["bot_reason"], i["proxied"]) for i in await interactions(client)]
    assert found == [(False, None, False), (True, "user_agent", False), (True, "user_agent", False)]


@pytest.mark.parametrize("agent", [GMAIL_PROXY, YAHOO_PROXY])
async def test_an_open_through_a_mail_clients_image_proxy_is_a_persons(
    client: httpx.AsyncClient, agent: str
) -> None:
    _, pixel = await mail(client, campaign="news")
    fetched = await client.get(pixel, headers={"user-agent": agent})
    assert fetched.status_code == 200
    (opened,) = await interactions(client)
    assert (opened["type"], opened["bot"], opened["bot_reason"], opened["proxied"]) == (
        "open",
        False,
        None,
        True,
    )
    assert opened["contact_id"] == CONSENTED["contact_id"]
    assert await counts(client, opened["link_id"]) == (1, 0)
    assert await opens(client) == 1


async def test_apple_mail_privacy_prefetches_are_no_ones_opens(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    # The in-process client connects from loopback, a proxy the service is told to believe.
    client = await client_for(make_settings(trusted_proxies="127.0.0.1"))
    _, pixel = await mail(client, campaign="news")
    for address, agent in (
        (APPLE_ADDRESS, APPLE_PREFETCH),
        # Only both together: the bare agent from elsewhere, and a Mac's own agent on Apple's
        # network, are not the prefetch.
        (ELSEWHERE, APPLE_PREFETCH),
        (APPLE_ADDRESS, PHONE),
    ):
        headers = {"user-agent": agent, "x-forwarded-for": address}
        assert (await client.get(pixel, headers=headers)).status_code == 200
    prefetched, bare, person = await interactions(client)
    assert (prefetched["bot"], prefetched["bot_reason"], prefetched["proxied"]) == (
        True,
        "prefetch",
        False,
    )
    assert bare["bot_reason"] != "prefetch"
    assert (person["bot"], person["bot_reason"]) == (False, None)
    # Counted: the person's open, and the bare agent's as what its agent says it is.
    assert await opens(client) == 1 + (0 if bare["bot"] else 1)
    people, machines = await counts(client, prefetched["link_id"])
    assert machines == 1 + (1 if bare["bot"] else 0)
    assert people == 3 - machines


def test_entries_stored_before_reasons_were_kept_read_as_user_agent_bots() -> None:
    old = {"t": "c", "u": "https://a.example/", "b": "1"}
    assert decode_interaction("1-0", old).bot_reason == "user_agent"
    assert decode_interaction("1-0", {**old, "b": "0"}).bot_reason is None
    assert decode_interaction("1-0", {**old, "r": "p"}).bot_reason == "prefetch"
