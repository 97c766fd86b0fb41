"""Settling: every interaction shows at once, unsettled, and settles with its final judgement
once its message's other interactions are known: a fetch of the e-mail's hidden honeypot link
makes its message's interactions a scanner's, and links of one message clicked together are a
burst. Webhooks and the aggregates take settled interactions only. (The tests' service settles
within a second.)"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx

from shortener.config import Settings
from tests.support.apps import (
    AUTH,
    CONSENTED,
    PHONE,
    interactions,
    relative,
    settled_interactions,
    shorten,
    tap,
)
from tests.support.receivers import Receiver

DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
HONEYPOT = re.compile(r'<a href="([^"]+)" style="display:none" aria-hidden="true" tabindex="-1">')
# A person's second click, later than a burst allows.
SECOND_CLICK_SECONDS = 2.5


async def mail(client: httpx.AsyncClient, message_id: str) -> tuple[list[str], str]:
    """An e-mail of two tracked links: their URLs, and its honeypot link's."""
    sent = await shorten(
        client,
        content_type="html",
        body='<p><a href="https://shop.example.com/a">a</a> <a href="https://shop.example.com/b">b</a></p>',
        recipient=CONSENTED,
        message_id=message_id,
        campaign="spring",
    )
    honeypot = HONEYPOT.search(sent["body"])
    assert honeypot is not None, sent["body"]
    return [link["tracking_url"] for link in sent["links"]], honeypot.group(1).replace("&amp;", "&")


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
    scanned, honeypot = await mail(client, "m-scanned")
    other, _ = await mail(client, "m-other")
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
