"""The open pixel records an open only for the pixel of an HTML message: any other id that
the service issued (an SMS short code, an e-mail's tracked link) gets the GIF and nothing
is recorded or counted."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support.apps import AUTH, BASE_URL, CONSENTED, PHONE, shorten


async def fetch_pixel(client: httpx.AsyncClient, org_hash: str, link_id: str) -> None:
    response = await client.get(f"/api/orgs/{org_hash}/o/{link_id}", headers={"user-agent": PHONE})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")


async def recorded(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/interactions", headers=AUTH)
    assert response.status_code == 200, response.text
    interactions: list[dict[str, Any]] = response.json()["interactions"]
    return interactions


async def counts(client: httpx.AsyncClient, link_id: str) -> tuple[int, int]:
    response = await client.get(f"/v1/links/{link_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    info = response.json()
    return info["clicks"], info["bot_clicks"]


async def test_only_the_pixel_of_an_html_message_records_an_open(
    client: httpx.AsyncClient,
) -> None:
    sms = (await shorten(client, body="https://shop.example.com/s", recipient=CONSENTED))["links"]
    code = sms[0]["code"]
    mail = await shorten(
        client,
        content_type="html",
        body='<p><a href="https://shop.example.com/m">m</a></p>',
        recipient=CONSENTED,
    )
    tracked_path = urlsplit(mail["links"][0]["tracking_url"]).path
    org_hash, tracked_link_id = tracked_path.split("/")[3], tracked_path.split("/")[5]
    pixel = re.search(r'<img src="([^"]+)"', mail["body"])
    assert pixel is not None and pixel.group(1).startswith(BASE_URL)
    pixel_hash, pixel_id = urlsplit(pixel.group(1)).path.split("/")[3::2]
    assert pixel_hash == org_hash

    await fetch_pixel(client, org_hash, code)
    await fetch_pixel(client, org_hash, tracked_link_id)
    assert await recorded(client) == []
    assert await counts(client, code) == (0, 0)
    assert await counts(client, tracked_link_id) == (0, 0)

    await fetch_pixel(client, org_hash, pixel_id)
    (opened,) = await recorded(client)
    assert opened["type"] == "open" and opened["link_id"] == pixel_id
    assert await counts(client, pixel_id) == (1, 0)
