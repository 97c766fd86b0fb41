"""A corpus of people's and machines' taps and opens, to measure how honestly the service counts.

Who is who is known from the contact each message was sent to. The corpus mimics:
- people: one or two links of a message, seconds apart, from a phone; e-mail opens from a
  phone, and through Gmail's image proxy (a person's open, counted as one);
- mail scanners: every link of an e-mail and its pixel within a second, with a desktop
  browser's agent;
- link previews: messengers' and social networks' fetchers, by their agents;
- Apple Mail Privacy Protection: the pixel fetched with a bare agent from Apple's network.

`bench/bots.py` prints what a service makes of it; `tests/system/test_bot_corpus.py` holds the
service to it.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

# How long the corpus waits for the service to settle what it was sent.
SETTLE_WAIT_SECONDS = 60.0


class CorpusError(Exception):
    """The service did not take the corpus as sent."""


PHONES = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
]
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
PREVIEWS = [
    "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "WhatsApp/2.23.20.0 A",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "TelegramBot (like TwitterBot)",
]
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
APPLE_PREFETCH = ("Mozilla/5.0", "17.58.100.7")
PEOPLE = "people"
MACHINES = "machines"
# Each kind of sender, and whether it is people.
KINDS = {
    "person-sms": PEOPLE,
    "person-mail": PEOPLE,
    "gmail-proxy": PEOPLE,
    "scanner": MACHINES,
    "preview": MACHINES,
    "apple-prefetch": MACHINES,
}
LINKS_PER_MAIL = 3


@dataclass
class Sent:
    kind: str
    links: list[str]
    pixel: str | None = None
    # Every href of an e-mail's markup, its hidden honeypot link among them.
    hrefs: list[str] = field(default_factory=list)


async def _shorten(client: httpx.AsyncClient, kind: str, number: int, html: bool) -> Sent:
    contact = f"{kind}-{number}"
    urls = [f"https://shop.example.com/{kind}/{number}/{n}" for n in range(LINKS_PER_MAIL)]
    if html:
        body = "".join(f'<p><a href="{url}">offer {n}</a></p>' for n, url in enumerate(urls))
        message = {"content_type": "html", "body": body}
    else:
        message = {"body": f"Deals: {urls[0]} and {urls[1]}"}
    answer = await client.post(
        "/v1/messages/shorten",
        json={
            **message,
            "recipient": {"contact_id": contact, "tracking_consent": True},
            "message_id": f"{contact}-message",
        },
    )
    if answer.status_code != 200:
        raise CorpusError(f"shorten: {answer.status_code} {answer.text[:300]}")
    result = answer.json()
    if html:
        pixel = re.search(r'<img src="([^"]+)"', result["body"])
        links = [link["tracking_url"] for link in result["links"]]
        # A scanner reads the markup, not the page: it follows every href, hidden ones too.
        hrefs = [
            href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', result["body"])
        ]
        return Sent(kind, links, urlsplit(pixel.group(1)).path if pixel else None, hrefs)
    return Sent(kind, [link["short_url"] for link in result["links"]])


async def _fetch(client: httpx.AsyncClient, url: str, agent: str, address: str = "") -> None:
    headers = {"user-agent": agent}
    if address:
        headers["x-forwarded-for"] = address
    answer = await client.get(url, headers=headers)
    if answer.status_code not in (200, 302):
        raise CorpusError(f"{url}: {answer.status_code}")


async def _behave(client: httpx.AsyncClient, sent: Sent, rng: random.Random) -> None:
    """What the sender's kind does with a message."""
    if sent.kind == "person-sms":
        phone = rng.choice(PHONES)
        await _fetch(client, sent.links[0], phone)
        if rng.random() < 0.5:
            await asyncio.sleep(rng.uniform(2, 5))
            await _fetch(client, sent.links[1], phone)
    elif sent.kind == "person-mail":
        phone = rng.choice(PHONES)
        assert sent.pixel is not None
        await _fetch(client, sent.pixel, phone)
        await asyncio.sleep(rng.uniform(2, 5))
        await _fetch(client, rng.choice(sent.links), phone)
    elif sent.kind == "gmail-proxy":
        assert sent.pixel is not None
        await _fetch(client, sent.pixel, GMAIL_PROXY)
    elif sent.kind == "scanner":
        assert sent.pixel is not None
        await asyncio.gather(*(_fetch(client, url, DESKTOP) for url in [*sent.hrefs, sent.pixel]))
    elif sent.kind == "preview":
        await _fetch(client, sent.links[0], rng.choice(PREVIEWS))
    elif sent.kind == "apple-prefetch":
        assert sent.pixel is not None
        await _fetch(client, sent.pixel, *APPLE_PREFETCH)


async def run_corpus(
    base_url: str, api_key: str, per_kind: int, seed: int
) -> dict[str, Counter[str]]:
    """Send the corpus to the service at `base_url` as the org of `api_key` (which must believe
    X-Forwarded-For from loopback); per kind, the interactions recorded and those counted as
    people's."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        sent = [
            await _shorten(client, kind, number, html=kind != "person-sms" and kind != "preview")
            for kind in KINDS
            for number in range(per_kind)
        ]
        await asyncio.gather(*(_behave(client, one, rng) for one in sent))
        return await _settled_counts(client)


async def _settled_counts(client: httpx.AsyncClient) -> dict[str, Counter[str]]:
    """Per kind, the interactions recorded and those counted as people's, once all settled."""
    deadline = asyncio.get_running_loop().time() + SETTLE_WAIT_SECONDS
    while True:
        found: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        unsettled = 0
        after = None
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = (await client.get("/v1/interactions", params=params)).json()
            for item in page["interactions"]:
                kind = item["contact_id"].rsplit("-", 1)[0]
                found[kind]["recorded"] += 1
                found[kind]["people"] += 0 if item["bot"] else 1
                unsettled += 0 if item["settled"] else 1
            if not page["interactions"]:
                break
            after = page["next"]
        if not unsettled:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise CorpusError(f"{unsettled} interactions did not settle")
        await asyncio.sleep(0.5)
