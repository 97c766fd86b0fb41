"""No log line carries a contact id, an API key or a target URL, on any path through the
service: errors of the caller, an unexpected error, and a store that stopped answering."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.exceptions import ClusterDownError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError

from shortener.http.observability import JsonFormatter
from shortener.store.failures import failure_summary
from shortener.store.keys import message_key
from tests.support import service
from tests.support.redis_servers import RedisServer, free_port

PHONE_CONTACT = "+4915112345678"
OTHER_PHONE_CONTACT = "+447700900123"
WRONG_KEY = "not-a-key-of-this-service-31415"
TARGETS = {
    "sms": "https://shop.example.com/orders/tgt-sms-8c1e",
    "mail": "https://shop.example.com/news/tgt-mail-5d2a",
    "bad": "https://shop.example.com/x/tgt-bad-77aa",
    "swapped": "https://evil.example.net/tgt-swap-0b9f",
    "retried": "https://shop.example.com/r/tgt-retry-3f6c",
    "down": "https://shop.example.com/d/tgt-down-1a4b",
}
# The secrets as they might show: whole, or cut, or percent-encoded, in a log line.
SECRETS = [
    service.API_KEY,
    service.OTHER_KEY,
    WRONG_KEY,
    PHONE_CONTACT,
    PHONE_CONTACT[1:],
    OTHER_PHONE_CONTACT[1:],
    *TARGETS.values(),
    *(urlsplit(url).path.rsplit("/", 1)[1] for url in TARGETS.values()),
    "evil.example.net",
]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text or quote(secret, safe="") in text]
    assert not leaked, f"{leaked} in:\n{text}"


def expect(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.request.url, response.text)


def test_no_log_line_names_a_contact_a_key_or_a_target(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    env = service.service_env(own_redis.url, tmp_path / "data", redis_timeout_seconds="0.5")
    with (
        service.running_service(env) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as http,
    ):
        auth = service.AUTH
        consented = {"contact_id": PHONE_CONTACT, "tracking_consent": True}
        sms = running.shorten(TARGETS["sms"], recipient=consented)["links"][0]
        mail = running.shorten(
            f'<a href="{TARGETS["mail"]}">news</a>', content_type="html", recipient=consented
        )
        pixel = re.search(r'<img src="[^"]*(/api/orgs/[^"]+)"', mail["body"])
        assert pixel is not None
        contact_path = f"/v1/contacts/{quote(PHONE_CONTACT, safe='')}/consent"
        tracked = urlsplit(sms["tracking_url"])

        # The caller's mistakes: bodies, fields, consent, paths, methods, keys.
        cut_json = '{"body": "' + TARGETS["bad"]
        as_json = {**auth, "content-type": "application/json"}
        expect(http.post("/v1/messages/shorten", content=cut_json, headers=auth), 415)
        expect(http.post("/v1/messages/shorten", content=cut_json, headers=as_json), 400)
        expect(http.post("/v1/messages/batch", content=cut_json, headers=as_json), 400)
        expect(http.put(contact_path, content=cut_json, headers=as_json), 400)
        unknown_field = {
            "body": TARGETS["bad"],
            "recipient": {**consented, "phone": PHONE_CONTACT},
            TARGETS["bad"]: PHONE_CONTACT,
        }
        expect(http.post("/v1/messages/shorten", json=unknown_field, headers=auth), 422)
        expect(
            http.post("/v1/messages/batch", json={"messages": [unknown_field]}, headers=auth), 200
        )
        for body in (
            {"tracking": PHONE_CONTACT},
            {"tracking": True, "contact_id": OTHER_PHONE_CONTACT},
            [PHONE_CONTACT],
        ):
            expect(http.put(contact_path, json=body, headers=auth), 422)
        long_contact = quote(PHONE_CONTACT * 20, safe="")
        expect(
            http.put(f"/v1/contacts/{long_contact}/consent", json={"tracking": True}, headers=auth),
            400,
        )
        expect(http.delete(contact_path, headers=auth), 405)
        odd_paths = [
            f"/v1/contacts/{PHONE_CONTACT}/consent/{TARGETS['bad']}",
            f"/v1/{quote(PHONE_CONTACT)}?targetUrl={quote(TARGETS['bad'], safe='')}",
            f"/api/orgs/{PHONE_CONTACT}/x/{quote(TARGETS['bad'], safe='')}",
            f"/v1/links/{quote(TARGETS['bad'], safe='')}",
        ]
        for path in odd_paths:
            for accept in ("application/json", BROWSER_ACCEPT):
                expect(http.get(path, headers={**auth, "accept": accept}), 404)
        expect(http.post(f"/{sms['code']}?to={quote(TARGETS['bad'])}", content=PHONE_CONTACT), 405)
        expect(http.put("/metrics", content=PHONE_CONTACT), 405)
        tracked_path = tracked.path
        expect(http.get(f"{tracked_path}?{tracked.query.replace('sms-8c1e', 'bad-77aa')}"), 400)
        swapped = quote(TARGETS["swapped"], safe="")
        expect(http.get(f"{tracked_path}?targetUrl={swapped}&digest=AAAA&secretVersion=1"), 400)
        expect(http.get(f"{tracked_path}?targetUrl={swapped}&digest=AAAA&secretVersion=x"), 400)
        expect(http.get(f"/api/orgs/nope/r/{PHONE_CONTACT}?targetUrl={swapped}"), 400)
        expect(http.get(f"/{PHONE_CONTACT}?targetUrl={swapped}"), 404)
        for authorization in (
            f"Bearer {WRONG_KEY}",
            f"Bearer {service.API_KEY}x",
            f"Basic {service.API_KEY}",
            service.API_KEY,
            f"Bearer {PHONE_CONTACT}",
        ):
            wrong = {"authorization": authorization}
            expect(
                http.post("/v1/messages/shorten", json={"body": TARGETS["bad"]}, headers=wrong), 401
            )
            expect(http.get(contact_path, headers=wrong), 401)
            expect(http.get("/v1/interactions", headers=wrong), 401)

        # An error nobody foresaw: a stored result that was cut short, read by a retry.
        retry = {
            "body": TARGETS["retried"],
            "message_id": "retried-1",
            "recipient": {"contact_id": OTHER_PHONE_CONTACT, "tracking_consent": True},
        }
        running.shorten(**retry)
        with SyncRedis.from_url(own_redis.url) as redis:
            key = message_key("org-a", "retried-1")
            stored = redis.get(key)
            assert stored is not None
            redis.set(key, stored[: stored.index(b"tgt-retry-3f6c") + 14])
        expect(http.post("/v1/messages/shorten", json=retry, headers=auth), 500)

        # The store stops answering: every route that needs it answers 503.
        own_redis.stop()
        down = {"body": TARGETS["down"], "recipient": consented}
        expect(http.post("/v1/messages/shorten", json=down, headers=auth), 503)
        expect(http.post("/v1/messages/batch", json={"messages": [down]}, headers=auth), 503)
        expect(http.put(contact_path, json={"tracking": False}, headers=auth), 503)
        expect(http.get(contact_path, headers=auth), 503)
        expect(http.get("/v1/interactions", headers=auth), 503)
        expect(http.get(f"/v1/links/{sms['code']}", headers=auth), 503)
        expect(http.get(f"/{sms['code']}"), 503)
        expect(http.get(f"/{sms['code']}", headers={"accept": BROWSER_ACCEPT}), 503)
        expect(http.get(f"{tracked_path}?{tracked.query}"), 503)
        expect(http.get(urlsplit(mail["links"][0]["tracking_url"]).path), 503)
        expect(http.get(pixel.group(1)), 503)
        expect(http.get("/readyz"), 503)
        expect(http.get("/healthz"), 200)

    logs = running.logs()
    entries = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(entry["level"] == "error" for entry in entries)
    assert any("store unavailable" in entry["message"] for entry in entries)
    assert_no_secret(logs)


def log_line(error: BaseException) -> str:
    try:
        raise error
    except BaseException:
        record = logging.LogRecord(
            "shortener", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    return JsonFormatter().format(record)


def test_a_logged_traceback_keeps_where_and_what_but_not_the_message() -> None:
    try:
        try:
            raise KeyError(PHONE_CONTACT)
        except KeyError as inner:
            raise ValueError(f"no link to {TARGETS['sms']}") from inner
    except ValueError as error:
        line = json.loads(log_line(error))
    assert "Traceback (most recent call last)" in line["error"]
    assert "ValueError" in line["error"] and "KeyError" in line["error"]
    assert "test_a_logged_traceback_keeps_where_and_what_but_not_the_message" in line["error"]
    assert_no_secret(json.dumps(line))


@pytest.mark.parametrize(
    "error",
    [
        ClusterDownError(
            f"Command # 1 (EVALSHA 4f1c 2 {{o:org-a}}:consent {{o:org-a}}:ix {PHONE_CONTACT} "
            f"{TARGETS['sms']}) of pipeline caused error: CLUSTERDOWN The cluster is down"
        ),
        RedisClusterException(
            "No way to dispatch this command to Redis Cluster. Missing key.\n"
            f"Command: ('HGET', '{PHONE_CONTACT}')"
        ),
        RedisConnectionError(f"Error 111 connecting to {TARGETS['sms']}. Connection refused."),
    ],
)
def test_a_store_failure_is_summed_up_without_the_command(error: Exception) -> None:
    summary = failure_summary(error)
    assert type(error).__name__ in summary
    assert_no_secret(summary)
