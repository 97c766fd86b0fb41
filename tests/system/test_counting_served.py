"""Every reason an interaction is a machine's, from real requests to `shortener serve`: each shows
in `/v1/interactions`, in a signed webhook, in its link's counts and in the aggregates; a
person's clicks, Gmail's proxied open and a person's second click 30 s after the first count as
people's."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis

from tests.support import service
from tests.support.apps import bot_reasons
from tests.support.corpus import APPLE_PREFETCH, DESKTOP, GMAIL_PROXY, PHONES, PREVIEWS
from tests.support.receivers import Receiver
from tests.support.redis_servers import RedisServer

PHONE = PHONES[0]
# Clicks sooner than this after their link was issued are `too_soon` in this test's service
# (issued times are kept to the second: a click at once is sooner than 2 s in any case).
TOO_SOON_SECONDS = 2
# A person's second click of one message, as the issue of bursts puts it.
SECOND_CLICK_SECONDS = 30.0
# Hang guard only: how long the test waits for everything to settle and be delivered.
SETTLE_WAIT_SECONDS = 30.0


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class Sender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def sms(self, message_id: str, links: int) -> list[str]:
        body = " ".join(f"https://shop.example.com/{message_id}/{n}" for n in range(links))
        result = await self._shorten({"body": body}, message_id)
        return [link["short_url"] for link in result["links"]]

    async def mail(self, message_id: str) -> tuple[list[str], str]:
        """An e-mail of two links: every href of its markup (the hidden one too), its pixel."""
        body = "".join(
            f'<p><a href="https://shop.example.com/{message_id}/{n}">offer {n}</a></p>'
            for n in range(2)
        )
        result = await self._shorten({"content_type": "html", "body": body}, message_id)
        hrefs = re.findall(r'href="([^"]+)"', result["body"])
        pixel = re.search(r'<img src="([^"]+)"', result["body"])
        assert pixel is not None and len(hrefs) == 3, result["body"]
        return [href.replace("&amp;", "&") for href in hrefs], pixel.group(1)

    async def _shorten(self, message: dict[str, Any], message_id: str) -> dict[str, Any]:
        recipient = {"contact_id": f"c-{message_id}", "tracking_consent": True}
        answer = await self.client.post(
            "/v1/messages/shorten",
            json={**message, "recipient": recipient, "message_id": message_id},
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def fetch(self, url: str, agent: str, address: str = "") -> None:
        headers = {"user-agent": agent} | ({"x-forwarded-for": address} if address else {})
        answer = await self.client.get(relative(url), headers=headers)
        assert answer.status_code in (200, 302), (url, answer.status_code)


async def settled(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SETTLE_WAIT_SECONDS
    while True:
        found = (await client.get("/v1/interactions", params={"limit": "1000"})).json()
        items: list[dict[str, Any]] = found["interactions"]
        if len(items) >= count and all(item["settled"] for item in items):
            return items
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.3)


async def every_reason(base_url: str, receiver: Receiver) -> None:
    headers = {"Authorization": f"Bearer {service.API_KEY}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
        endpoint = {"url": receiver.url, "include_bots": True}
        put = await client.put("/v1/webhooks/crm", json=endpoint)
        assert put.status_code == 200, put.text
        secret = put.json()["secret"]
        send = Sender(client)
        # Clicked as soon as it is issued: no person reads that fast.
        (soon,) = await send.sms("m-soon", 1)
        await send.fetch(soon, PHONE)
        (preview,) = await send.sms("m-preview", 1)
        burst = await send.sms("m-burst", 2)
        two_clicks = await send.sms("m-person", 2)
        scanned, _ = await send.mail("m-scanned")
        read, read_pixel = await send.mail("m-read")
        _, apple_pixel = await send.mail("m-apple")
        await asyncio.sleep(TOO_SOON_SECONDS)
        first_click = time.monotonic()
        await send.fetch(two_clicks[0], PHONE)
        await send.fetch(preview, PREVIEWS[0])
        await asyncio.gather(*(send.fetch(url, DESKTOP) for url in burst))
        await asyncio.gather(*(send.fetch(url, DESKTOP) for url in scanned))
        await send.fetch(read_pixel, GMAIL_PROXY)
        await send.fetch(read[1], PHONE)
        await send.fetch(apple_pixel, *APPLE_PREFETCH)
        await asyncio.sleep(first_click + SECOND_CLICK_SECONDS - time.monotonic())
        await send.fetch(two_clicks[1], PHONE)

        found = await settled(client, 12)
        judged = sorted(
            (item["message_id"], item["type"], item["bot"], item["bot_reason"], item["proxied"])
            for item in found
        )
        assert judged == [
            ("m-apple", "open", True, "prefetch", False),
            ("m-burst", "click", True, "burst", False),
            ("m-burst", "click", True, "burst", False),
            ("m-person", "click", False, None, False),
            ("m-person", "click", False, None, False),
            ("m-preview", "click", True, "user_agent", False),
            ("m-read", "click", False, None, False),
            ("m-read", "open", False, None, True),
            ("m-scanned", "click", True, "honeypot", False),
            ("m-scanned", "click", True, "honeypot", False),
            ("m-scanned", "click", True, "honeypot", False),
            ("m-soon", "click", True, "too_soon", False),
        ]

        # The same judgements reach the webhook, signed and settled.
        events = await receiver.wait_for(lambda got: len(got) >= len(found), "every event")
        delivered = sorted(
            (data["message_id"], data["bot_reason"] or "", data["settled"])
            for data in (event.verified(secret)["data"] for event in events)
        )
        assert delivered == sorted(
            (item["message_id"], item["bot_reason"] or "", True) for item in found
        )

        # Each link's counts: people's clicks, and machines' whatever the reason.
        for item in found:
            if item["type"] != "click":
                continue
            info = (await client.get(f"/v1/links/{item['link_id']}")).json()
            counted = (info["clicks"], info["bot_clicks"])
            assert counted == ((0, 1) if item["bot"] else (1, 0)), (item, info)

        # And the aggregates: people's counts, and why the rest were not counted.
        series = (await client.get("/v1/analytics", params={"interval": "hour"})).json()
        totals = {
            name: sum(bucket[name] for bucket in series["series"])
            for name in ("clicks", "opens", "bot_clicks")
        }
        assert totals == {"clicks": 3, "opens": 1, "bot_clicks": 7}
        assert bot_reasons(series) == {
            "user_agent": (1, 0),
            "prefetch": (0, 1),
            "honeypot": (3, 0),
            "burst": (2, 0),
            "too_soon": (1, 0),
        }


def test_every_reason_shows_everywhere_and_people_count(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    env = service.service_env(
        redis_server.url,
        tmp_path / "data",
        trusted_proxies="127.0.0.1",
        webhook_allow_private="1",
        too_soon_seconds=str(TOO_SOON_SECONDS),
    )
    receiver = Receiver().start()
    try:
        with service.running_service(env) as running:
            asyncio.run(every_reason(running.base_url, receiver))
    finally:
        receiver.stop()
