"""Looking up what was stored: every issued id, with the base URL it was issued with, and its
tap counts for as long as the link lives."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from shortener.config import Settings
from tests.support import service
from tests.support.apps import AUTH, BASE_URL, CONSENTED, OTHER_AUTH, PHONE, shorten
from tests.support.redis_servers import RedisServer


async def details(client: httpx.AsyncClient, link_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/links/{link_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()
    return info


def cli_env(redis_server: RedisServer, tmp_path: Path, base_url: str) -> dict[str, str]:
    return service.service_env(redis_server.url, tmp_path / "cli", base_url=base_url)


async def test_every_issued_id_can_be_looked_up(
    client: httpx.AsyncClient, redis_server: RedisServer, tmp_path: Path
) -> None:
    email = await shorten(
        client,
        message_id="mail-1",
        content_type="html",
        body='<p><a href="https://shop.example.com/mail">Shop</a></p>',
        recipient=CONSENTED,
    )
    tracking_url = email["links"][0]["tracking_url"]
    tracked_id = re.search(r"/r/([0-9A-Za-z]+)\?", tracking_url)
    pixel = re.search(r'<img src="[^"]+(/api/orgs/[^/"]+/o/([0-9A-Za-z]+))"', email["body"])
    assert tracked_id is not None and pixel is not None
    sms = await shorten(client, body="https://shop.example.com/sms")
    code = sms["links"][0]["code"]
    await client.get(tracking_url[len(BASE_URL) :], headers={"user-agent": PHONE})
    await client.get(pixel.group(1), headers={"user-agent": PHONE})

    short = await details(client, code)
    assert short["kind"] == "short" and short["code"] == code
    assert short["short_url"] == f"{BASE_URL}/{code}"
    tracked = await details(client, tracked_id.group(1))
    assert tracked["kind"] == "tracked_link" and tracked["tracked"] is True
    assert tracked["short_url"] is None and tracked["code"] is None
    assert tracked["url"] == "https://shop.example.com/mail"
    assert tracked["status"] == "active" and tracked["clicks"] == 1
    opened = await details(client, pixel.group(2))
    assert opened["kind"] == "pixel" and opened["url"] is None and opened["short_url"] is None
    assert opened["status"] == "active" and opened["clicks"] == 1
    for link_id in (tracked_id.group(1), pixel.group(2)):
        theirs = await client.get(f"/v1/links/{link_id}", headers=OTHER_AUTH)
        assert theirs.status_code == 404

    env = cli_env(redis_server, tmp_path, BASE_URL)
    human = service.run_cli(env, "inspect", pixel.group(2))
    assert human.returncode == 0, human.stdout + human.stderr
    assert re.search(r"kind\s+pixel", human.stdout)
    as_json = service.run_cli(env, "inspect", tracked_id.group(1), "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    fields = json.loads(as_json.stdout)
    assert fields["kind"] == "tracked_link" and fields["url"] == "https://shop.example.com/mail"


async def test_short_urls_keep_the_base_url_they_were_issued_with(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    issuer = await client_for(make_settings(base_url="https://go.example.com"))
    code = (await shorten(issuer, body="https://shop.example.com/base"))["links"][0]["code"]
    looker = await client_for(make_settings(base_url="https://ops.example.net"))
    assert (await details(looker, code))["short_url"] == f"https://go.example.com/{code}"
    env = cli_env(redis_server, tmp_path, "https://cli.example.org")
    human = service.run_cli(env, "inspect", code)
    assert human.returncode == 0, human.stdout + human.stderr
    assert f"https://go.example.com/{code}" in human.stdout
    assert "cli.example.org" not in human.stdout
    as_json = json.loads(service.run_cli(env, "inspect", code, "--json").stdout)
    assert as_json["short_url"] == f"https://go.example.com/{code}"


async def test_tap_counts_live_as_long_as_their_links(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis: aioredis.Redis,
) -> None:
    # Lifetimes of a few seconds, with wide margins: a loaded machine stretches every step.
    client = await client_for(make_settings(link_ttl_seconds=2))
    first = (await shorten(client, body="https://shop.example.com/1"))["links"][0]["code"]
    await client.get(f"/{first}", headers={"user-agent": PHONE})
    await asyncio.sleep(1.5)
    # A later link of the same block stretches the block's life, and its counts' with it.
    second = (await shorten(client, body="https://shop.example.com/2"))["links"][0]["code"]
    await client.get(f"/{second}", headers={"user-agent": PHONE})
    ((links, counts),) = [(key, key.replace(b"l:", b"n:", 1)) for key in await redis.keys("l:*")]
    assert await redis.pttl(counts) >= await redis.pttl(links) - 50
    # Past the first link's whole keep (its life and as long again for ops), its block lives on.
    await asyncio.sleep(3.1)
    assert await redis.exists(links)
    for code in (first, second):
        info = await details(client, code)
        assert info["status"] == "expired" and info["clicks"] == 1, (code, info)


async def test_inspect_shows_a_takedown(
    client: httpx.AsyncClient, redis_server: RedisServer, tmp_path: Path
) -> None:
    code = (await shorten(client, body="https://shop.example.com/down"))["links"][0]["code"]
    response = await client.request(
        "DELETE", f"/v1/links/{code}", json={"reason": "reported as phishing"}, headers=AUTH
    )
    assert response.status_code == 204, response.text
    env = cli_env(redis_server, tmp_path, BASE_URL)
    human = service.run_cli(env, "inspect", code)
    assert human.returncode == 1, human.stdout + human.stderr
    assert "disabled" in human.stdout and "reported as phishing" in human.stdout
    as_json = json.loads(service.run_cli(env, "inspect", code, "--json").stdout)
    assert as_json["status"] == "disabled"
    assert as_json["disabled_reason"] == "reported as phishing"
    assert as_json["disabled_at"] == (await details(client, code))["disabled_at"]
