"""Settling: every interaction shows at once, unsettled, and settles with its final judgement
once its message's other interactions are known: a fetch of the e-mail's hidden honeypot link
makes its message's interactions a scanner's, and links of one message clicked together are a
burst. Webhooks and the aggregates take settled interactions only. (The tests' service settles
within a second.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.store.keys import SETTLER_KEY
from tests.support.apps import (
    API_KEY,
    AUTH,
    CONSENTED,
    PHONE,
    bot_reasons,
    interactions,
    mail_with_honeypot,
    relative,
    settled_interactions,
    shorten,
    tap,
)
from tests.support.corpus import DESKTOP
from tests.support.pages import HTML, cells, signed_in
from tests.support.receivers import Receiver

# A person's second click, later than a burst allows.
SECOND_CLICK_SECONDS = 2.5
# Longer than the tests' settle time and a few settling rounds: nothing settles meanwhile.
HELD_OFF_SECONDS = 3.0


def judged(found: list[dict[str, Any]]) -> list[tuple[str | None, bool, str | None]]:
    return [(item["message_id"], item["bot"], item["bot_reason"]) for item in found]


async def test_an_interaction_shows_at_once_and_settles_soon_after(
    client: httpx.AsyncClient,
) -> None:
    link = (await shorten(client, "https://shop.example.com/x", recipient=CONSENTED))["links"][0]
    assert (await tap(client, link["short_url"])).status_code == 302
    (shown,) = await interactions(client)
    assert shown["settled"] is False
    (settled,) = await settled_interactions(client)
    assert (settled["settled"], settled["bot"], settled["bot_reason"]) == (True, False, None)


async def test_a_honeypot_fetch_makes_its_messages_interactions_a_scanners(
    client: httpx.AsyncClient,
) -> None:
    scanned, honeypot = await mail_with_honeypot(client, "m-scanned")
    other, _ = await mail_with_honeypot(client, "m-other")
    # A scanner with a browser's agent: a link, the honeypot, the other link.
    for url in (scanned[0], honeypot, scanned[1]):
        response = await client.get(relative(url), headers={"user-agent": DESKTOP})
        assert response.status_code == 302
    # A person reads the other message.
    assert (await tap(client, other[0])).status_code == 302
    found = await settled_interactions(client)
    assert judged(found) == [
        ("m-scanned", True, "honeypot"),
        ("m-scanned", True, "honeypot"),
        ("m-scanned", True, "honeypot"),
        ("m-other", False, None),
    ]
    # The links' own counts say so too: the scanner's clicks are bots'.
    first = found[0]["link_id"]
    info = (await client.get(f"/v1/links/{first}", headers=AUTH)).json()
    assert (info["clicks"], info["bot_clicks"]) == (0, 1)
    # So do the aggregates, and the dashboard says why they were not counted.
    series = (await client.get("/v1/analytics", params={"interval": "hour"}, headers=AUTH)).json()
    assert bot_reasons(series)["honeypot"] == (3, 0)
    await signed_in(client, API_KEY)
    page = await client.get("/dashboard", params={"range": "24h"}, headers=HTML)
    shown = {row[0]: row[1:] for row in cells(page, "bot-reasons")[1:]}
    assert shown["Mail scanners" + "the message's hidden link was fetched"] == ["3", "0"]
    assert shown["Previews, crawlers and scripts" + "known by their user agent"] == ["0", "0"]


async def test_links_of_one_message_clicked_together_are_a_burst_and_apart_a_person(
    client: httpx.AsyncClient,
) -> None:
    body = "A https://shop.example.com/1 B https://shop.example.com/2"
    burst = await shorten(client, body, recipient=CONSENTED, message_id="m-burst")
    person = await shorten(client, body, recipient=CONSENTED, message_id="m-person")
    for link in burst["links"]:
        assert (await tap(client, link["short_url"], DESKTOP)).status_code == 302
    assert (await tap(client, person["links"][0]["short_url"])).status_code == 302
    await asyncio.sleep(SECOND_CLICK_SECONDS)
    assert (await tap(client, person["links"][1]["short_url"])).status_code == 302
    found = await settled_interactions(client)
    assert judged(found) == [
        ("m-burst", True, "burst"),
        ("m-burst", True, "burst"),
        ("m-person", False, None),
        ("m-person", False, None),
    ]
    # The same link twice is no burst: people tap again when a page is slow.
    again = await shorten(
        client, "https://shop.example.com/3", recipient=CONSENTED, message_id="m-3"
    )
    for _ in range(2):
        assert (await tap(client, again["links"][0]["short_url"])).status_code == 302
    found = await settled_interactions(client)
    assert judged(found)[-2:] == [("m-3", False, None), ("m-3", False, None)]


async def test_webhooks_and_aggregates_take_the_settled_judgement(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(webhook_allow_private=True))
    everything, people = Receiver().start(), Receiver().start()
    try:
        for name, receiver, bots in (("all", everything, True), ("people", people, False)):
            endpoint = {"url": receiver.url, "include_bots": bots}
            assert (
                await client.put(f"/v1/webhooks/{name}", json=endpoint, headers=AUTH)
            ).status_code == 200
        body = "A https://shop.example.com/1 B https://shop.example.com/2"
        burst = await shorten(client, body, recipient=CONSENTED, message_id="m-burst")
        for link in burst["links"]:
            assert (await tap(client, link["short_url"], DESKTOP)).status_code == 302
        person = await shorten(client, body, recipient=CONSENTED, message_id="m-person")
        assert (await tap(client, person["links"][0]["short_url"], PHONE)).status_code == 302
        got = await everything.wait_for(lambda events: len(events) >= 3, "every settled event")
        reasons = sorted(
            (event.event()["data"]["bot_reason"] or "", event.event()["data"]["settled"])
            for event in got
        )
        assert reasons == [("", True), ("burst", True), ("burst", True)]
        (only,) = await people.wait_for(lambda events: len(events) >= 1, "the person's event")
        assert only.event()["data"]["message_id"] == "m-person"
        await asyncio.sleep(0.5)
        assert len(people.events()) == 1
    finally:
        everything.stop()
        people.stop()
    series = (await client.get("/v1/analytics", params={"interval": "hour"}, headers=AUTH)).json()
    totals = [sum(bucket[name] for bucket in series["series"]) for name in ("clicks", "bot_clicks")]
    assert totals == [1, 2]
    assert bot_reasons(series) == {
        "user_agent": (0, 0),
        "prefetch": (0, 0),
        "honeypot": (0, 0),
        "burst": (2, 0),
        "too_soon": (0, 0),
    }


async def test_a_lease_taken_over_stops_the_settler_until_it_is_given_back(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    link = (await shorten(client, "https://shop.example.com/x", recipient=CONSENTED))["links"][0]
    assert (await tap(client, link["short_url"])).status_code == 302
    assert [item["settled"] for item in await settled_interactions(client)] == [True]
    # An operator takes the lease over: the app's settler stops renewing it, and settles nothing.
    await redis.set(SETTLER_KEY, "operator", px=60_000)
    assert (await tap(client, link["short_url"])).status_code == 302
    await asyncio.sleep(HELD_OFF_SECONDS)
    assert [item["settled"] for item in await interactions(client)] == [True, False]
    assert await redis.get(SETTLER_KEY) == b"operator"
    await redis.delete(SETTLER_KEY)
    assert [item["settled"] for item in await settled_interactions(client)] == [True, True]
