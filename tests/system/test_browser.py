"""A recipient's tap in a real browser: `shortener serve` as shipped, opened in headless Chromium.

The other tests speak HTTP to the app directly; only a browser shows that what a phone does
with our responses (follow the 302, render the 404/410 pages) is what we mean it to do.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support import service
from tests.support.browsers import CHROMIUM_FLAGS
from tests.support.redis_servers import RedisServer

AUTH = service.AUTH
# Headless Chromium's own agent says "HeadlessChrome", which the service rightly counts as a
# bot; a recipient taps on a phone.
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# The link detector follows twitter-text, which does not take IP literals or `localhost` for
# links, so the message names a real-looking host that the browser is told to resolve to the
# landing server.
LANDING_HOST = "landing.example.com"
LANDING_URL = f"http://{LANDING_HOST}/landing"
LANDING_TITLE = "Browser test landing page"
LANDING_TEXT = "You followed the short link all the way here."
LANDING_PAGE = (
    f"<!doctype html><html><head><meta charset='utf-8'><title>{LANDING_TITLE}</title></head>"
    f"<body><h1 id='landed'>{LANDING_TEXT}</h1></body></html>"
).encode()
BROWSER_TIMEOUT_SECONDS = 60
SERVICE_START_SECONDS = 30


@dataclass
class LandingServer:
    """A stand-in for the site a message links to, remembering who fetched what."""

    port: int
    requests: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def landing() -> Iterator[LandingServer]:
    requests: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append((self.path, self.headers.get("user-agent", "")))
            found = self.path == "/landing"
            body = LANDING_PAGE if found else b"not here"
            self.send_response(200 if found else 404)
            self.send_header("content-type", "text/html; charset=utf-8" if found else "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LandingServer(port=server.server_address[1], requests=requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def start_service(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts `shortener serve` on a fresh store with the given extra settings; its base URL."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    with ExitStack() as stack:

        def start(**settings: str) -> str:
            env = service.service_env(redis_server.url, tmp_path / "data", **settings)
            return stack.enter_context(service.running_service(env)).base_url

        yield start


def shorten(base: str, body: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/v1/messages/shorten",
        json={"body": body, "recipient": {"contact_id": "c-1", "tracking_consent": True}},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (link,) = response.json()["links"]
    result: dict[str, Any] = link
    return result


def browse(chromium: str, landing_port: int, profile: Path, url: str, *action: str) -> str:
    """Opens `url` in a fresh headless Chromium profile; what it printed (the DOM for
    `--dump-dom`)."""
    profile.mkdir(parents=True)
    command = [
        chromium,
        "--headless",
        *CHROMIUM_FLAGS,
        # Chromium would first try https:// on the landing host and fall back to http:// only
        # after a failed TLS handshake with the plain-HTTP landing server.
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        f"--user-data-dir={profile}",
        f"--user-agent={PHONE}",
        f"--host-resolver-rules=MAP {LANDING_HOST} 127.0.0.1:{landing_port}",
        *action,
        url,
    ]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, f"chromium failed ({run.returncode}):\n{run.stderr[-4000:]}"
    return run.stdout


def all_interactions(base: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{base}/v1/interactions", params={"limit": "1000"}, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["interactions"]
    return found


def test_a_phone_follows_a_tracked_short_link_to_the_landing_page(
    chromium: str, landing: LandingServer, start_service: Callable[..., str], tmp_path: Path
) -> None:
    base = start_service()
    link = shorten(base, f"Your order shipped: {LANDING_URL} - reply STOP to opt out")
    assert link["tracked"] is True and link["short_url"].startswith(base)

    dom = browse(chromium, landing.port, tmp_path / "profile", link["short_url"], "--dump-dom")

    assert f"<title>{LANDING_TITLE}</title>" in dom
    assert LANDING_TEXT in dom
    assert landing.requests[0] == ("/landing", PHONE)
    (click,) = all_interactions(base)
    assert click["type"] == "click"
    assert click["bot"] is False
    assert click["contact_id"] == "c-1"
    assert click["url"] == LANDING_URL
    assert click["code"] == link["code"]


def test_an_expired_short_link_shows_the_expired_page(
    chromium: str, landing: LandingServer, start_service: Callable[..., str], tmp_path: Path
) -> None:
    base = start_service(link_ttl_seconds="1")
    link = shorten(base, f"Offer ends soon: {LANDING_URL}")
    time.sleep(1.5)

    dom = browse(chromium, landing.port, tmp_path / "profile", link["short_url"], "--dump-dom")

    assert "<title>Link expired</title>" in dom
    assert "This short link has expired" in dom
    assert LANDING_TEXT not in dom
    assert landing.requests == []
    assert all_interactions(base) == []

    # What the recipient sees on a phone-sized screen: a page, not a blank or a browser error.
    screenshot = tmp_path / "expired.png"
    browse(
        chromium,
        landing.port,
        tmp_path / "profile-screenshot",
        link["short_url"],
        "--window-size=390,844",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
    )
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 5_000


def test_an_unknown_code_shows_the_not_found_page(
    chromium: str, landing: LandingServer, start_service: Callable[..., str], tmp_path: Path
) -> None:
    base = start_service()

    dom = browse(chromium, landing.port, tmp_path / "profile", f"{base}/Zz9NoSuch1", "--dump-dom")

    assert "<title>Link not found</title>" in dom
    assert "This short link does not exist" in dom
    assert landing.requests == []
