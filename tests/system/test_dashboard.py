"""The dashboard in a real browser: `shortener serve` as shipped, driven in headless Chromium.

Each page is signed into as a person would, and compared with what the API answers; the
browser's own log of requests shows that nothing came from another origin. A screenshot of
every page is left in the test run's output folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from tests.support import service
from tests.support.agents import PREVIEWS
from tests.support.browsers import CHROMIUM_FLAGS, output_dir
from tests.support.redis_servers import RedisServer

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is installed by `make test` (the test extra)"
)
expect = playwright_api.expect

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# Hang guard only: how long the test waits for taps to reach the aggregates.
COUNTS_WAIT_SECONDS = 15.0
PHONE_WIDTH = 390
HEADING_LEVELS = "[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])"
UNLABELLED_FIELDS = (
    "[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
    ".filter(field => field.labels.length === 0).map(field => field.name)"
)
TOTALS = ("clicks", "opens", "bot_clicks", "anonymous_clicks", "taps")


@pytest.fixture
def base(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    with ExitStack() as stack:
        env = service.service_env(redis_server.url, tmp_path / "data")
        yield stack.enter_context(service.running_service(env)).base_url


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        try:
            yield launched
        finally:
            launched.close()


def seeded(base: str) -> dict[str, Any]:
    """A tracked text message and an untracked link of campaign `launch`, tapped by people and
    a preview; what the API then counts over the last 7 days."""
    auth = service.AUTH
    answer = httpx.post(
        f"{base}/v1/messages/shorten",
        json={
            "body": "Deals https://shop.example.com/a and https://shop.example.com/b",
            "recipient": {"contact_id": "c-1", "tracking_consent": True},
            "non_trackable": ["https://shop.example.com/b"],
            "campaign": "launch",
        },
        headers=auth,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    tracked, untracked = answer.json()["links"]
    for url, agent in (
        (tracked["short_url"], PHONE),
        (tracked["short_url"], PHONE),
        (tracked["short_url"], PREVIEWS[0]),
        (untracked["short_url"], PHONE),
    ):
        tapped = httpx.get(url, headers={"user-agent": agent}, timeout=10)
        assert tapped.status_code == 302
    # The untracked tap is written within a second, and the clicks settle within one: wait
    # until the API counts them.
    deadline = time.monotonic() + COUNTS_WAIT_SECONDS
    while True:
        series = httpx.get(
            f"{base}/v1/analytics",
            params={"interval": "day", "from": _days_ago(6)},
            headers=auth,
            timeout=10,
        ).json()["series"]
        totals = {name: sum(bucket[name] for bucket in series) for name in TOTALS}
        # Clicks count once they settle (the preview's maybe a round after the people's),
        # taps once written: all within seconds.
        counted = (totals["clicks"], totals["bot_clicks"], totals["taps"])
        if counted == (2, 1, 1) or time.monotonic() > deadline:
            return {"tracked": tracked, "untracked": untracked, "totals": totals}
        time.sleep(0.2)


def _days_ago(days: int) -> str:
    today = int(time.time()) // 86_400
    return time.strftime("%Y-%m-%d", time.gmtime((today - days) * 86_400))


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/dashboard")
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Any, name: str) -> None:
    """Check the page people look at, then keep a picture of it."""
    # Headings in order: one h1 first, no level skipped.
    levels = page.evaluate(HEADING_LEVELS)
    assert levels and levels[0] == 1 and levels.count(1) == 1, (name, levels)
    assert all(later - earlier <= 1 for earlier, later in pairwise(levels)), name
    # Every field has a label.
    assert page.evaluate(UNLABELLED_FIELDS) == [], name
    page.screenshot(path=str(output_dir("dashboard") / f"{name}.png"), full_page=True)


def test_an_org_signs_in_and_sees_its_counts_a_link_and_takes_it_down(
    base: str, browser: Any
) -> None:
    seed = seeded(base)
    assert seed["totals"] == {
        "clicks": 2,
        "opens": 0,
        "bot_clicks": 1,
        "anonymous_clicks": 0,
        "taps": 1,
    }
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()

    # A wrong key is refused, and the form is shown again.
    sign_in(page, base, "not-a-key-of-this-service")
    assert page.get_by_role("alert").inner_text().startswith("That key is neither")
    assert page.get_by_label("Key").is_visible()
    shot(page, "sign-in-refused")

    # The org's key: the overview, with the API's totals and a point per day.
    sign_in(page, base, service.API_KEY)
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    shown = {name: page.locator(f'[data-total="{name}"]').inner_text() for name in TOTALS}
    assert shown == {name: f"{count:,}" for name, count in seed["totals"].items()}
    for series in ("clicks", "opens", "bots"):
        assert page.locator(f"svg g.series.{series} circle").count() == 7
    assert page.locator("#over-time-table tbody tr").count() == 7
    expect(page.locator("#campaigns tbody th")).to_have_text(["launch"])
    # Why the bot's click was not counted: a preview's agent, in the row of its reason.
    reasons = page.locator("#bot-reasons tbody tr")
    assert reasons.count() == 5
    assert page.locator('#bot-reasons tr[data-reason="user_agent"] td').all_inner_texts() == [
        "1",
        "0",
    ]
    shot(page, "overview")
    page.get_by_role("link", name="24h").click()
    assert page.locator("svg g.series.clicks circle").count() == 24
    shot(page, "overview-24h")
    # On a phone: the page fits the screen's width, with nothing to scroll sideways.
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    shot(page, "overview-phone")
    page.set_viewport_size({"width": 1024, "height": 900})

    # A link by its code: its expiry, then taken down, after which a tap answers 410.
    code = seed["tracked"]["code"]
    page.get_by_role("link", name="Link", exact=True).click()
    page.get_by_label("Short code or link id").fill(code)
    page.get_by_role("button", name="Look up").click()
    info = httpx.get(f"{base}/v1/links/{code}", headers=service.AUTH, timeout=10).json()
    assert page.locator('[data-field="expires_at"]').inner_text() == info["expires_at"]
    assert page.locator('[data-field="status"]').inner_text() == "active"
    shot(page, "link")
    page.get_by_label("Reason").fill("phishing report 42")
    page.get_by_role("button", name="Disable").click()
    assert page.get_by_role("status").inner_text().startswith("The link is disabled")
    assert page.locator('[data-field="status"]').inner_text() == "disabled"
    assert page.locator('[data-field="disabled_reason"]').inner_text() == "phishing report 42"
    shot(page, "link-disabled")
    tapped = httpx.get(seed["tracked"]["short_url"], headers={"user-agent": PHONE}, timeout=10)
    assert tapped.status_code == 410

    for name, heading in (("Expiring", "Expiring soon"), ("Webhooks", "Webhooks")):
        page.get_by_role("link", name=name, exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == heading
        shot(page, name.lower())
    assert page.get_by_text("No webhook endpoints are configured").is_visible()

    # A form post without its token, or with another one, is refused; with the session's
    # cookie all the same.
    untracked = seed["untracked"]["code"]
    for fields in ({"code": untracked, "reason": "x"}, {"code": untracked, "csrf": "forged"}):
        answer = context.request.post(f"{base}/dashboard/link/disable", form=fields)
        assert answer.status == 403
    still = httpx.get(seed["untracked"]["short_url"], headers={"user-agent": PHONE}, timeout=10)
    assert still.status_code == 302

    # Everything the browser fetched came from the service itself.
    origin = urlsplit(base).netloc
    assert requested
    assert {urlsplit(url).netloc for url in requested} == {origin}
    context.close()


def test_an_admin_sees_the_orgs_and_makes_and_revokes_a_key(base: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    page = context.new_page()
    sign_in(page, base, service.ADMIN_KEY)
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    page.get_by_role("link", name="Orgs", exact=True).click()
    expect(page.locator("#orgs tbody th")).to_have_text(["org-a", "org-b"])
    page.get_by_role("button", name="Create a key for org-b").click()
    key = page.locator("#new-key").inner_text()
    shot(page, "orgs")
    # The new key works at once, with the API and for signing in.
    listed = httpx.get(
        f"{base}/v1/webhooks", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert listed.status_code == 200
    key_id = page.locator("ul.keys code").first.inner_text()
    page.get_by_role("button", name=f"Revoke key {key_id}").click()
    assert page.get_by_role("status").inner_text() == "The key is revoked."
    revoked = httpx.get(
        f"{base}/v1/webhooks", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert revoked.status_code == 401
    context.close()


def test_a_session_ends_with_its_key_and_on_sign_out(base: str, browser: Any) -> None:
    made = httpx.post(
        f"{base}/v1/admin/orgs/org-a/keys", headers=service.ADMIN_AUTH, timeout=10
    ).json()
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, made["key"])
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    cookie = next(c for c in context.cookies() if c["name"] == "shortener_dashboard")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/dashboard"
    assert cookie["expires"] > time.time() + 3600
    # Revoked: the session is over at once.
    gone = httpx.delete(
        f"{base}/v1/admin/orgs/org-a/keys/{made['key_id']}",
        headers=service.ADMIN_AUTH,
        timeout=10,
    )
    assert gone.status_code == 204
    page.goto(f"{base}/dashboard/webhooks")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    # Signing out ends a session too.
    sign_in(page, base, service.API_KEY)
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    page.goto(f"{base}/dashboard/expiring")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    context.close()


def test_pages_carry_a_policy_that_allows_nothing_from_elsewhere(base: str) -> None:
    answer = httpx.get(f"{base}/dashboard", timeout=10)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
