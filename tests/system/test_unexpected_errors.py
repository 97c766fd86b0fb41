"""An error nobody foresaw: one 500 problem, and one log line that names the request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from redis import Redis as SyncRedis

from shortener.http.problems import MEDIA_TYPE as PROBLEM_JSON
from tests.support import service
from tests.support.redis_servers import RedisServer

BROWSER_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"


def corrupt_every_link(redis_url: str) -> None:
    """Leaves link records the code cannot read: the store holds what it never wrote."""
    with SyncRedis.from_url(redis_url) as redis:
        for key in redis.scan_iter("l:*"):
            for field in redis.hkeys(key):
                redis.hset(key, field, "garbage")


def log_entries(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_an_unexpected_error_is_answered_500_and_logged_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with SyncRedis.from_url(redis_server.url) as redis:
        redis.flushall()
    env = service.service_env(redis_server.url, tmp_path / "data")
    with service.running_service(env) as running:
        code = running.shorten("https://shop.example.com/x")["links"][0]["code"]
        corrupt_every_link(redis_server.url)
        # A retry whose stored first answer the code cannot read, on a route answered past
        # routing and middleware.
        retried = {"body": "https://shop.example.com/y", "message_id": "m-1"}
        running.shorten(**retried)
        with SyncRedis.from_url(redis_server.url) as redis:
            (stored,) = redis.keys("m:*")
            redis.set(stored, "fingerprint\nnot json")
        direct = httpx.post(
            f"{running.base_url}/v1/messages/shorten",
            json=retried,
            headers={**service.AUTH, "x-request-id": "direct-500"},
            timeout=10,
        )
        routed = httpx.get(
            f"{running.base_url}/v1/links/{code}",
            headers={**service.AUTH, "x-request-id": "routed-500"},
            timeout=10,
        )
        tap = httpx.get(
            f"{running.base_url}/{code}", headers={"x-request-id": "tap-500"}, timeout=10
        )
        page = httpx.get(
            f"{running.base_url}/{code}",
            headers={"x-request-id": "page-500", "accept": BROWSER_ACCEPT},
            timeout=10,
        )
        answers = ((routed, "routed-500"), (tap, "tap-500"), (direct, "direct-500"))
        for response, request_id in answers:
            assert response.status_code == 500, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["status"] == 500
            assert response.headers["x-request-id"] == request_id
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        metrics = httpx.get(f"{running.base_url}/metrics", timeout=10).text
        assert (
            'shortener_requests_total{method="POST",route="/v1/messages/shorten",status="500"} 1.0'
            in metrics
        ), metrics
    entries = log_entries(running.logs())
    errors = [entry for entry in entries if entry["level"] in ("error", "critical")]
    assert [entry.get("request_id") for entry in errors] == [
        "direct-500",
        "routed-500",
        "tap-500",
        "page-500",
    ]
    for entry in errors:
        assert "Traceback" in entry["error"]
        # Logs name routes, never paths: a path may carry a contact's id.
        assert code not in entry["message"]
