"""The dashboard's pages in-process, against a real Redis: what each shows, to whom, and the
forms it refuses. (tests/system/test_dashboard.py drives them in a real browser.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shortener.config import Settings
from shortener.http.dashboard.sessions import COOKIE
from tests.support.apps import ADMIN_KEY, API_KEY, AUTH, CONSENTED, OTHER_KEY, PHONE, shorten, tap
from tests.support.pages import HTML, cells, signed_in

# Hang guard only: how long a test waits (in tenths of a second) for a delivery to fail.
FAILED_WAIT_STEPS = 100


async def test_codes_expiring_are_counted_per_day_for_the_org_alone(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    # Links that live two days and a bit: they all expire the day after tomorrow (or the day
    # after that, late in a UTC day).
    client = await client_for(make_settings(link_ttl_seconds=2 * 86_400 + 60))
    for n in range(3):
        await shorten(client, f"Order {n}: https://shop.example.com/{n}")
    await signed_in(client, API_KEY)
    page = await client.get("/dashboard/expiring", headers=HTML)
    assert page.status_code == 200
    rows = cells(page, "expiring-table")[1:]
    assert len(rows) == 30
    today = datetime.now(UTC).date()
    assert rows[0][0] == today.isoformat()
    counted = {day: int(count) for day, count in rows if count != "0"}
    expected = {(today + timedelta(days=2)).isoformat(), (today + timedelta(days=3)).isoformat()}
    assert set(counted) <= expected and sum(counted.values()) == 3
    assert page.text.count('class="bar"') == 30

    await signed_in(client, OTHER_KEY)
    other = await client.get("/dashboard/expiring", headers=HTML)
    assert all(count == "0" for _, count in cells(other, "expiring-table")[1:])


async def test_an_org_sees_and_takes_down_its_own_links_only(client: httpx.AsyncClient) -> None:
    link = (await shorten(client, "https://shop.example.com/x", recipient=CONSENTED))["links"][0]
    token = await signed_in(client, OTHER_KEY)
    page = await client.get("/dashboard/link", params={"code": link["code"]}, headers=HTML)
    assert page.status_code == 404
    assert "No link of yours has this code." in page.text
    refused = await client.post(
        "/dashboard/link/disable", data={"code": link["code"], "reason": "x", "csrf": token}
    )
    assert refused.status_code == 404
    assert (await tap(client, link["short_url"])).status_code == 302

    token = await signed_in(client, API_KEY)
    done = await client.post(
        "/dashboard/link/disable", data={"code": link["code"], "reason": "spam", "csrf": token}
    )
    assert done.status_code == 303
    assert (await tap(client, link["short_url"])).status_code == 410
    info = await client.get(f"/v1/links/{link['code']}", headers=AUTH)
    assert info.json()["disabled_reason"] == "spam"


async def test_forms_need_the_sessions_token_from_this_origin(client: httpx.AsyncClient) -> None:
    link = (await shorten(client, "https://shop.example.com/y"))["links"][0]
    token = await signed_in(client, API_KEY)
    form = {"code": link["code"], "reason": "x"}
    for fields, headers in (
        (form, {}),
        ({**form, "csrf": ""}, {}),
        ({**form, "csrf": token + "x"}, {}),
        ({**form, "csrf": token}, {"origin": "http://evil.example"}),
        ({**form, "csrf": token}, {"origin": "null"}),
    ):
        answer = await client.post("/dashboard/link/disable", data=fields, headers=headers)
        assert answer.status_code == 403, (fields, headers)
        assert "The form had expired" in answer.text
    assert (await tap(client, link["short_url"])).status_code == 302
    # Not as a form at all.
    as_json = await client.post("/dashboard/link/disable", json={**form, "csrf": token})
    assert as_json.status_code == 403
    # Signing in needs the token too, the signed-out session's.
    client.cookies.clear()
    refused = await client.post("/dashboard/sign-in", data={"key": API_KEY})
    assert refused.status_code == 403
    assert (await client.get("/dashboard/link", headers=HTML)).status_code == 303


async def test_a_tampered_or_foreign_cookie_is_a_signed_out_session(
    client: httpx.AsyncClient,
) -> None:
    await signed_in(client, API_KEY)
    good = client.cookies[COOKIE]
    client.cookies.clear()
    for forged in (good[:-2] + "xx", "e30." + good.split(".", 1)[1], "x" * 2000, ""):
        answer = await client.get(
            "/dashboard/webhooks", headers={**HTML, "cookie": f"{COOKIE}={forged}"}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard"


async def test_an_admin_picks_the_org_each_page_shows(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(webhook_delivery=False, webhook_allow_private=True))
    endpoint = {"url": "https://receiver.invalid/hook"}
    made = await client.put("/v1/webhooks/crm", json=endpoint, headers=AUTH)
    assert made.status_code == 200
    link = (await shorten(client, "https://shop.example.com/z", recipient=CONSENTED))["links"][0]
    assert (await tap(client, link["short_url"], PHONE)).status_code == 302

    await signed_in(client, ADMIN_KEY)
    page = await client.get("/dashboard/webhooks", params={"org": "org-a"}, headers=HTML)
    assert cells(page, "webhooks")[1][0] == "crm"
    # Its backlog: the click, not delivered while delivery is off here.
    assert cells(page, "webhooks")[1][3:5] == ["1", "0"]
    other = await client.get("/dashboard/webhooks", params={"org": "org-b"}, headers=HTML)
    assert "No webhook endpoints are configured for org-b" in other.text
    # An org that does not exist: the first one.
    unknown = await client.get("/dashboard/webhooks", params={"org": "<nope>"}, headers=HTML)
    assert 'value="org-a" selected' in unknown.text
    assert "&lt;nope&gt;" not in unknown.text and "<nope>" not in unknown.text
    # An org's key sees its own org whatever it asks for.
    await signed_in(client, OTHER_KEY)
    own = await client.get("/dashboard/webhooks", params={"org": "org-a"}, headers=HTML)
    assert "No webhook endpoints are configured for org-b" in own.text
    assert (await client.get("/dashboard/orgs", headers=HTML)).status_code == 403


async def test_what_callers_named_is_shown_escaped(client: httpx.AsyncClient) -> None:
    await shorten(client, "https://shop.example.com/q", campaign="<script>alert(1)</script>")
    await signed_in(client, API_KEY)
    page = await client.get("/dashboard", params={"range": "24h"}, headers=HTML)
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert (await client.get("/dashboard", params={"range": "1y"}, headers=HTML)).status_code == 400


async def test_the_cookie_is_secure_where_the_service_is_reached_over_https(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    plain = await client_for(make_settings())
    cookie = (await plain.get("/dashboard", headers=HTML)).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie
    secure = await client_for(make_settings(base_url="https://sho.rt"))
    cookie = (await secure.get("/dashboard", headers=HTML)).headers["set-cookie"]
    assert "Secure" in cookie


async def test_failed_events_are_replayed_from_the_webhooks_page(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    unused_tcp_port: int,
) -> None:
    # Nothing listens there: the one attempt allowed fails, and the event is given up.
    settings = make_settings(
        webhook_allow_private=True, webhook_max_attempts=1, webhook_backoff_seconds=0.1
    )
    client = await client_for(settings)
    endpoint = {"url": f"http://127.0.0.1:{unused_tcp_port}/hook"}
    assert (await client.put("/v1/webhooks/crm", json=endpoint, headers=AUTH)).status_code == 200
    link = (await shorten(client, "https://shop.example.com/r", recipient=CONSENTED))["links"][0]
    assert (await tap(client, link["short_url"], PHONE)).status_code == 302
    token = await signed_in(client, API_KEY)
    for _ in range(FAILED_WAIT_STEPS):
        page = await client.get("/dashboard/webhooks", headers=HTML)
        if cells(page, "webhooks")[1][3:5] == ["0", "1"]:
            break
        await asyncio.sleep(0.1)
    assert cells(page, "webhooks")[1][3:5] == ["0", "1"]
    assert "Replay the failed events of crm" in page.text

    (before,) = (await client.get("/v1/webhooks/crm/failed", headers=AUTH)).json()["failed"]

    answer = await client.post("/dashboard/webhooks/replay", data={"name": "crm", "csrf": token})
    assert answer.status_code == 303
    done = await client.get(answer.headers["location"], headers=HTML)
    assert "The failed events are scheduled to be sent again." in done.text
    # Sent again (and, with nothing listening still, given up again, later).
    for _ in range(FAILED_WAIT_STEPS):
        again = (await client.get("/v1/webhooks/crm/failed", headers=AUTH)).json()["failed"]
        if again and again[0]["failed_at"] > before["failed_at"]:
            break
        await asyncio.sleep(0.1)
    assert again[0]["webhook_id"] == before["webhook_id"]
    assert again[0]["failed_at"] > before["failed_at"]
    unknown = await client.post("/dashboard/webhooks/replay", data={"name": "nope", "csrf": token})
    assert unknown.status_code == 404
