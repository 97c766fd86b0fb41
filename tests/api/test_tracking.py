"""Tracked links, the click recorder, consent and the open pixel, against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
from redis import Redis as SyncRedis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shortener.config import Settings
from shortener.domain.analytics import Analytics
from shortener.domain.interactions import ClickRecorder
from shortener.domain.settling import Rules
from shortener.http.app import create_app
from shortener.model import InteractionType, LinkKind, StoredLink, Visitor
from shortener.store.keys import interactions_key
from shortener.store.store import Store
from tests.support.agents import PREVIEWS
from tests.support.apps import (
    AUTH,
    BASE_URL,
    CONSENTED,
    OTHER_AUTH,
    PHONE,
    cut_short,
    interactions,
    relative,
    shorten,
    start_of_second,
    tap,
)


@pytest.mark.parametrize(
    ("recipient", "non_trackable", "tracked"),
    [
        (CONSENTED, [], True),
        (CONSENTED, ["https://shop.example.com/a"], False),
        ({"contact_id": "c-42", "tracking_consent": False}, [], False),
        ({"contact_id": "c-42", "tracking_consent": False}, ["https://shop.example.com/a"], False),
        (None, [], False),
    ],
)
async def test_text_tracking_follows_consent_and_non_trackable(
    client: httpx.AsyncClient, recipient: Any, non_trackable: list[str], tracked: bool
) -> None:
    message: dict[str, Any] = {
        "message_id": "msg-1",
        "body": "Deal https://shop.example.com/a and terms https://shop.example.com/terms",
        "non_trackable": [*non_trackable, "https://shop.example.com/terms"],
    }
    if recipient is not None:
        message["recipient"] = recipient
    result = await shorten(client, **message)
    deal, terms = result["links"]
    assert deal["tracked"] is tracked and terms["tracked"] is False
    assert (deal["tracking_url"] is not None) is tracked and terms["tracking_url"] is None
    # Every link is shortened, tracked or not, and lands in one hop.
    for link in (deal, terms):
        response = await tap(client, link["short_url"])
        assert response.status_code == 302
        assert response.headers["location"] == link["url"]
    clicks = await interactions(client)
    assert len(clicks) == (1 if tracked else 0)


class StreamLengthAtResponseStart:
    """Wraps the app and reads the length of an org's interaction stream at the moment each
    response starts, before the status line could leave.

    httpx's in-process transport waits for the whole ASGI call, so only this shows whether a
    click was stored before its redirect or after. The read is synchronous on purpose: it
    blocks the event loop, so that nothing the app left to run later can run before it.
    """

    def __init__(self, app: ASGIApp, redis_url: str, org: str) -> None:
        self.app = app
        self.redis = SyncRedis.from_url(redis_url)
        self.key = interactions_key(org)
        self.lengths: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.lengths.append(int(self.redis.xlen(self.key)))
            await send(message)

        await self.app(scope, receive, watched)


@contextlib.asynccontextmanager
async def watched_client(
    settings: Settings, org: str
) -> AsyncIterator[tuple[httpx.AsyncClient, StreamLengthAtResponseStart]]:
    app = create_app(settings)
    watcher = StreamLengthAtResponseStart(app, settings.redis_url or "", org)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=watcher)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                yield client, watcher
    finally:
        watcher.redis.close()


async def test_a_tracked_tap_is_recorded_before_the_redirect(
    redis: aioredis.Redis, make_settings: Callable[..., Settings]
) -> None:
    async with watched_client(make_settings(), "org-a") as (client, watcher):
        text = await shorten(
            client, message_id="m-7", body="Go https://shop.example.com/p?id=1", recipient=CONSENTED
        )
        mail = await shorten(client, message_id="m-9", content_type="html", body=HTML,
                             recipient=CONSENTED)  # fmt: skip
        link = text["links"][0]
        pixel = re.search(r'<img src="([^"]+)"', mail["body"])
        assert pixel is not None
        before = datetime.now(UTC)
        watcher.lengths.clear()
        # The short code, its signed tracked link, that link cut short, and an open pixel:
        # each answer starts only once its interaction is in the stream.
        for url in (
            link["short_url"],
            link["tracking_url"],
            cut_short(link["tracking_url"]),
            pixel.group(1),
        ):
            response = await tap(client, url)
            assert response.status_code in (200, 302), url
            assert watcher.lengths[-1] == await redis.xlen(interactions_key("org-a")), url
        assert watcher.lengths == [1, 2, 3, 4]
        assert response.headers["content-type"] == "image/gif"
        click, *_, opened = await interactions(client)
    assert click["type"] == "click" and opened["type"] == "open"
    assert click["contact_id"] == "c-42"
    assert click["message_id"] == "m-7"
    assert click["url"] == "https://shop.example.com/p?id=1"
    assert click["code"] == link["code"] and click["link_id"] == link["code"]
    assert click["bot"] is False
    at = datetime.fromisoformat(click["at"])
    assert abs((at - before).total_seconds()) < 5


async def test_the_tracked_link_records_a_click_and_redirects(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="https://shop.example.com/x", recipient=CONSENTED)
    tracking_url = result["links"][0]["tracking_url"]
    parts = urlsplit(tracking_url)
    assert re.fullmatch(r"/api/orgs/[A-Za-z0-9_-]+/r/[0-9A-Za-z]+", parts.path)
    query = parse_qs(parts.query)
    assert set(query) == {"targetUrl", "digest", "secretVersion"}
    assert query["secretVersion"] == ["1"]
    response = await tap(client, tracking_url)
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/x"
    assert len(await interactions(client)) == 1


async def test_consent_is_per_org(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="https://shop.example.com/z", recipient=CONSENTED)
    await client.put("/v1/contacts/c-42/consent", json={"tracking": False}, headers=OTHER_AUTH)
    await tap(client, result["links"][0]["short_url"])
    (click,) = await interactions(client)
    assert click["contact_id"] == "c-42"
    assert await interactions(client, OTHER_AUTH) == []


async def test_consent_rejects_bad_input(client: httpx.AsyncClient) -> None:
    for payload in ({"tracking": "no"}, {}, {"tracking": None}):
        response = await client.put("/v1/contacts/c-1/consent", json=payload, headers=AUTH)
        assert response.status_code == 422, payload
    assert (
        await client.put("/v1/contacts/c-1/consent", json={"tracking": False})
    ).status_code == 401


async def test_signed_link_refuses_every_tampering(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="https://shop.example.com/safe", recipient=CONSENTED)
    parts = urlsplit(result["links"][0]["tracking_url"])
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}

    def url(**changes: str | None) -> str:
        merged = {**query, **changes}
        text = "&".join(f"{k}={quote(v, safe='')}" for k, v in merged.items() if v is not None)
        return f"{parts.path}?{text}"

    flipped = query["digest"][:-1] + ("A" if query["digest"][-1] != "A" else "B")
    other_id = parts.path.rsplit("/", 1)[0] + "/AbCdEfGh12"
    cases = [
        url(targetUrl="https://evil.example.com/"),
        url(targetUrl="https://shop.example.com/safe?x=1"),
        url(digest=flipped),
        url(secretVersion="2"),
        url(secretVersion="x"),
        url(targetUrl="https://evil.example.com/", digest=None),
        url(targetUrl="https://evil.example.com/", secretVersion=None),
        f"{other_id}?{parts.query}",
        parts.path.replace("/api/orgs/", "/api/orgs/x") + "?" + parts.query,
    ]
    for case in cases:
        response = await client.get(case, headers={"user-agent": PHONE})
        assert response.status_code == 400, case
        assert "location" not in response.headers
        assert response.headers["content-type"] == "application/problem+json"
    assert await interactions(client) == []
    assert (await client.get(url())).status_code == 302
    # A query cut short goes where the link's record says, whatever is left of it.
    for cut in (url(digest=None), url(digest=""), url(secretVersion=None), url(targetUrl=None)):
        response = await client.get(cut, headers={"user-agent": PHONE})
        assert response.headers["location"] == "https://shop.example.com/safe", cut


async def test_links_signed_with_an_old_key_work_after_rotation(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    v1 = {1: "signing-secret-one-0123456789"}
    old = await client_for(make_settings(signing_keys=v1))
    result = await shorten(old, body="https://shop.example.com/r", recipient=CONSENTED)
    tracking_url = result["links"][0]["tracking_url"]
    assert tracking_url.endswith("secretVersion=1")
    rotated = await client_for(
        make_settings(signing_keys={**v1, 2: "signing-secret-two-0123456789"})
    )
    assert (await tap(rotated, tracking_url)).status_code == 302
    fresh = await shorten(rotated, body="https://shop.example.com/r2", recipient=CONSENTED)
    assert fresh["links"][0]["tracking_url"].endswith("secretVersion=2")
    assert (await tap(rotated, fresh["links"][0]["tracking_url"])).status_code == 302
    # Once version 1 is dropped, its links are refused rather than followed unsigned.
    dropped = await client_for(make_settings(signing_keys={2: "signing-secret-two-0123456789"}))
    assert (await tap(dropped, tracking_url)).status_code == 400


async def test_after_the_window_links_redirect_but_record_nothing(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(tracking_window_seconds=1))
    result = await shorten(client, body="https://shop.example.com/w", recipient=CONSENTED)
    link = result["links"][0]
    assert (await tap(client, link["short_url"])).status_code == 302
    assert len(await interactions(client)) == 1
    await asyncio.sleep(1.1)
    for url in (link["short_url"], link["tracking_url"]):
        response = await tap(client, url)
        assert response.status_code == 302
        assert response.headers["location"] == "https://shop.example.com/w"
    assert len(await interactions(client)) == 1


async def test_tracked_links_redirect_even_after_their_code_expired(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    result = await shorten(client, body="https://shop.example.com/e", recipient=CONSENTED)
    await asyncio.sleep(1.2)
    link = result["links"][0]
    assert (await tap(client, link["short_url"])).status_code == 410
    response = await tap(client, link["tracking_url"])
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.com/e"


HTML = """<!DOCTYPE html>
<html><head><title>Sale <a href="https://not.a.link/">x</a></title>
<style>a[href="https://css.example.com/"] { color: red }</style></head>
<BODY>
<!-- <a href="https://commented.example.com/">old</a> -->
<p>Hello &amp; welcome! <A HREF='https://shop.example.com/sale?a=1&amp;b=2' class=cta>Shop</A>
<a data-tracking="false" href="https://shop.example.com/private">Private</a>
<a href="https://example.com/terms">Terms</a>
<a href=https://unquoted.example.com/u>U</a>
<a href="mailto:help@example.com">Mail</a> <a href="#top">Top</a>
</p>
</BODY></html>
"""


async def test_html_rewrites_only_trackable_hrefs_and_adds_a_pixel(
    client: httpx.AsyncClient,
) -> None:
    result = await shorten(
        client,
        message_id="mail-1",
        content_type="html",
        body=HTML,
        recipient=CONSENTED,
        non_trackable=["https://example.com/terms"],
    )
    assert result["segments"] is None
    links = result["links"]
    assert [link["url"] for link in links] == [
        "https://shop.example.com/sale?a=1&b=2",
        "https://shop.example.com/private",
        "https://example.com/terms",
        "https://unquoted.example.com/u",
    ]
    assert [link["tracked"] for link in links] == [True, False, False, True]
    assert all(link["short_url"] is None and link["code"] is None for link in links)
    body = result["body"]
    # Undo the two rewritten hrefs, the pixel and the hidden honeypot link before it:
    # the rest must be byte-for-byte the input.
    pixel = re.search(r'<img src="[^"]+/o/[0-9A-Za-z]+" width="1" height="1" alt=""[^>]*>', body)
    honeypot = re.search(
        r'<a href="[^"]+/r/[0-9A-Za-z]+\?[^"]+" style="display:none" aria-hidden="true" '
        r'tabindex="-1"></a>',
        body,
    )
    assert pixel is not None and honeypot is not None
    hidden = honeypot.group() + pixel.group()
    assert body.index(hidden) == body.rindex("</BODY>") - len(hidden)
    restored = body.replace(hidden, "")
    hrefs = ["https://shop.example.com/sale?a=1&amp;b=2", "https://unquoted.example.com/u"]
    for link, href in zip((links[0], links[3]), hrefs, strict=True):
        escaped = link["tracking_url"].replace("&", "&amp;")
        assert escaped in restored
        restored = restored.replace(escaped, href, 1)
    assert restored == HTML
    # The tracked link lands on the decoded href.
    response = await tap(client, links[0]["tracking_url"])
    assert response.headers["location"] == "https://shop.example.com/sale?a=1&b=2"
    (click,) = await interactions(client)
    assert click["code"] is None and click["link_id"] and click["message_id"] == "mail-1"


async def test_html_without_consent_comes_back_unchanged(client: httpx.AsyncClient) -> None:
    for recipient in (None, {"contact_id": "c-1", "tracking_consent": False}):
        message: dict[str, Any] = {"content_type": "html", "body": HTML}
        if recipient:
            message["recipient"] = recipient
        result = await shorten(client, **message)
        assert result["body"] == HTML
        assert all(not link["tracked"] and link["tracking_url"] is None for link in result["links"])
        assert len(result["links"]) == 4


async def test_html_without_body_tag_gets_the_pixel_at_the_end(client: httpx.AsyncClient) -> None:
    result = await shorten(
        client,
        content_type="html",
        body='<p><a href="https://a.example/">A</a></p>',
        recipient=CONSENTED,
    )
    assert result["body"].startswith('<p><a href="http://sho.rt/api/orgs/')
    assert result["body"].endswith('aria-hidden="true">')


async def test_the_pixel_records_an_open(client: httpx.AsyncClient) -> None:
    result = await shorten(
        client, message_id="mail-2", content_type="html", body=HTML, recipient=CONSENTED
    )
    src = re.search(r'<img src="([^"]+)"', result["body"])
    assert src is not None
    response = await client.get(relative(src.group(1)), headers={"user-agent": PHONE})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and len(response.content) < 64
    assert "no-store" in response.headers["cache-control"]
    (opened,) = await interactions(client)
    assert opened["type"] == "open" and opened["message_id"] == "mail-2"
    assert opened["contact_id"] == "c-42"
    # A made-up pixel still answers with an image, and records nothing.
    fake = re.sub(r"/o/[0-9A-Za-z]+$", "/o/AbCdEfGh12", src.group(1))
    assert (await client.get(relative(fake))).status_code == 200
    assert len(await interactions(client)) == 1


async def test_previews_and_head_are_not_people(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="https://shop.example.com/b", recipient=CONSENTED)
    link = result["links"][0]
    for agent in PREVIEWS:
        response = await tap(client, link["short_url"], agent)
        assert response.status_code == 302, agent
    head = await client.head(relative(link["short_url"]), headers={"user-agent": PHONE})
    assert head.status_code == 302
    head = await client.head(relative(link["tracking_url"]), headers={"user-agent": PHONE})
    assert head.status_code == 302
    recorded = await interactions(client)
    assert len(recorded) == len(PREVIEWS)
    assert all(item["bot"] is True for item in recorded)
    await tap(client, link["short_url"])
    assert (await interactions(client))[-1]["bot"] is False


async def test_interactions_page_oldest_first_with_a_cursor(client: httpx.AsyncClient) -> None:
    result = await shorten(client, body="https://shop.example.com/p", recipient=CONSENTED)
    for _ in range(5):
        await tap(client, result["links"][0]["short_url"])
    first = (await client.get("/v1/interactions?limit=2", headers=AUTH)).json()
    assert len(first["interactions"]) == 2
    second = (
        await client.get(f"/v1/interactions?limit=2&after={first['next']}", headers=AUTH)
    ).json()
    ids = [i["id"] for i in first["interactions"] + second["interactions"]]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == 4
    empty = (await client.get("/v1/interactions?after=99999999999999-0", headers=AUTH)).json()
    assert empty == {"interactions": [], "next": "99999999999999-0"}
    for query in ("limit=0", "limit=1001", "limit=x", "after=abc", "after=1-2-3"):
        response = await client.get(f"/v1/interactions?{query}", headers=AUTH)
        assert response.status_code == 400, query
    assert (await client.get("/v1/interactions")).status_code == 401


@pytest.mark.timeout(60)
async def test_a_thousand_concurrent_taps_make_a_thousand_interactions(
    client: httpx.AsyncClient,
) -> None:
    messages = [
        {"body": f"https://shop.example.com/c/{i}", "recipient": CONSENTED} for i in range(200)
    ]
    response = await client.post("/v1/messages/batch", json={"messages": messages}, headers=AUTH)
    links = [result["links"][0] for result in response.json()["results"]]
    target_of = {link["code"]: link["url"] for link in links}
    assert len(set(target_of.values())) == len(links) == 200
    tapped = [link for link in links for _ in range(5)]
    random.Random(13).shuffle(tapped)
    responses = await asyncio.gather(*(tap(client, link["short_url"]) for link in tapped))
    # Each answer leads where its own link does, whatever else was tapped at the same time.
    for link, answer in zip(tapped, responses, strict=True):
        assert answer.status_code == 302
        assert answer.headers["location"] == link["url"], link["code"]
    recorded = await interactions(client)
    assert len(recorded) == 1000
    assert len({item["id"] for item in recorded}) == 1000
    # And each interaction is of a link that was tapped, as often as it was tapped.
    assert Counter(item["code"] for item in recorded) == Counter(link["code"] for link in tapped)
    for item in recorded:
        assert item["url"] == target_of[item["code"]], item


async def test_interactions_older_than_the_retention_are_trimmed(
    redis: aioredis.Redis,
) -> None:
    # Stream ids are Redis' own clock, so the recorder runs on the real one, with a retention
    # of a second.
    now = time.time()
    store = Store(redis, timeout=2)
    link = StoredLink(
        LinkKind.TRACKED_SHORT, "org-t", "https://a.example/", int(now), int(now) + 99
    )
    recorder = ClickRecorder(
        store,
        window_seconds=3600,
        retain_seconds=1,
        analytics=Analytics(store, retention_days=1),
        rules=Rules(
            settle_ms=1000, scanner_window_ms=1000, too_soon_ms=0, keep_ms=1000, retention_days=1
        ),
    )

    async def click() -> str | None:
        return await recorder.record(link, InteractionType.CLICK, "AbCdEfGh", Visitor.PERSON)

    old = [await click() for _ in range(250)]
    assert await redis.xlen("{o:org-t}:ix") == 250
    await asyncio.sleep(1.2)
    recent = [await click() for _ in range(30)]
    # Redis drops old entries by whole stream nodes (of 100), so fewer than a node's worth of
    # them may stay; every recent one stays.
    kept = [entry_id.decode() for entry_id, _ in await redis.xrange("{o:org-t}:ix")]
    assert kept[-len(recent) :] == recent
    assert set(kept[: -len(recent)]) <= set(old)
    assert len(kept) < 100 + len(recent)
