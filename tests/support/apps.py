"""The app in-process over httpx, against a real Redis, and the calls tests make of it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.http.app import create_app

API_KEY = "test-key-org-a-0123456789"
OTHER_KEY = "test-key-org-b-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_KEY}"}
BASE_URL = "http://sho.rt"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile"
HONEYPOT = re.compile(r'<a href="([^"]+)" style="display:none" aria-hidden="true" tabindex="-1">')
CONSENTED = {"contact_id": "c-42", "tracking_consent": True}
MAX_PAGES = 100
# Hang guard only: how long a test waits for interactions to settle.
SETTLE_WAIT_SECONDS = 15.0


async def open_client(settings: Settings) -> tuple[httpx.AsyncClient, Any]:
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
    return client, lifespan


@contextlib.asynccontextmanager
async def app_clients() -> AsyncIterator[Callable[[Settings], Any]]:
    """Opens apps in-process, each with its own settings; closes them all on the way out."""
    opened: list[tuple[httpx.AsyncClient, Any]] = []

    async def open_(settings: Settings) -> httpx.AsyncClient:
        pair = await open_client(settings)
        opened.append(pair)
        return pair[0]

    try:
        yield open_
    finally:
        for client, lifespan in reversed(opened):
            await client.aclose()
            await lifespan.__aexit__(None, None, None)


async def shorten(
    client: httpx.AsyncClient, body: str | None = None, /, **message: Any
) -> dict[str, Any]:
    """Shorten one message (`body`, or the fields given) as org-a; its result."""
    if body is not None:
        message["body"] = body
    response = await client.post("/v1/messages/shorten", json=message, headers=AUTH)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def mail(client: httpx.AsyncClient, **message: Any) -> tuple[dict[str, Any], str]:
    """An e-mail with one tracked link, shortened as org-a for a consenting contact: its
    result, and the path of its open pixel."""
    sent = await shorten(
        client,
        content_type="html",
        body='<p><a href="https://shop.example.com/m">m</a></p>',
        recipient=CONSENTED,
        **message,
    )
    pixel = re.search(r'<img src="([^"]+)"', sent["body"])
    assert pixel is not None, sent["body"]
    return sent, urlsplit(pixel.group(1)).path


async def mail_with_honeypot(client: httpx.AsyncClient, message_id: str) -> tuple[list[str], str]:
    """An e-mail of two tracked links, of campaign `spring`: their URLs, and its hidden
    honeypot link's."""
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


async def first_link(client: httpx.AsyncClient, body: str, **message: Any) -> dict[str, Any]:
    """The first link of a message shortened as org-a."""
    link: dict[str, Any] = (await shorten(client, body, **message))["links"][0]
    return link


async def interactions(client: httpx.AsyncClient, auth: dict[str, str] = AUTH) -> list[Any]:
    found: list[Any] = []
    after = None
    # A cursor that stops moving would page forever; no test stores this many pages.
    for _ in range(MAX_PAGES):
        params = {"limit": "1000", **({"after": after} if after else {})}
        page = await client.get("/v1/interactions", params=params, headers=auth)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["interactions"]
        if not body["interactions"]:
            return found
        after = body["next"]
    raise AssertionError(f"interactions did not end within {MAX_PAGES} pages")


async def settled_interactions(client: httpx.AsyncClient, auth: dict[str, str] = AUTH) -> list[Any]:
    """The interactions once each has settled (the tests' service settles within a second)."""
    deadline = time.monotonic() + SETTLE_WAIT_SECONDS
    while True:
        found = await interactions(client, auth)
        if all(item["settled"] for item in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


def bot_reasons(series: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """A `GET /v1/analytics` answer's machines' clicks and opens, by reason."""
    return {row["reason"]: (row["clicks"], row["opens"]) for row in series["bot_reasons"]}


def relative(url: str) -> str:
    assert url.startswith(BASE_URL)
    return url[len(BASE_URL) :]


async def tap(client: httpx.AsyncClient, url: str, agent: str = PHONE) -> httpx.Response:
    return await client.get(relative(url), headers={"user-agent": agent})


def cut_short(tracking_url: str) -> str:
    """A tracked link as a client that drops its `digest` sends it."""
    parts = urlsplit(tracking_url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    del query["digest"]
    return parts._replace(query=urlencode(query)).geturl()


async def link_fields(redis: aioredis.Redis) -> list[bytes]:
    """The link records in the store: every field of the link hashes but their base URL."""
    keys = await redis.keys("l:*")
    return [f for key in keys for f in await redis.hkeys(key) if not f.startswith(b"base")]


async def command_calls(redis: aioredis.Redis) -> dict[str, int]:
    """Calls of each Redis command since the last CONFIG RESETSTAT, but the test's own and the
    settler's bids for its lease (see the `quiet_settler` fixture)."""
    stats: dict[str, Any] = await redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config", "cmdstat_set")
    }


async def start_of_second() -> None:
    """Wait for the start of the next second. Links expire on whole seconds, so one issued
    late in a second with a 1-second lifetime could expire before a test's first tap."""
    await asyncio.sleep(1 - time.time() % 1 + 0.01)
