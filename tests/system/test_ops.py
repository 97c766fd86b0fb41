"""What on-call operators rely on: link lookup, inspect, expiring, readiness, metrics, logs."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis import Redis as SyncRedis

from shortener.config import Settings
from tests.support import service
from tests.support.apps import AUTH, BASE_URL, OTHER_AUTH, PHONE, first_link, start_of_second
from tests.support.redis_servers import RedisServer, free_port

BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def test_link_details_report_target_expiry_and_clicks(client: httpx.AsyncClient) -> None:
    link = await first_link(
        client, "https://shop.example.com/d", recipient={"tracking_consent": True}
    )
    code = link["code"]
    for agent in (PHONE, PHONE, PHONE, BOT):
        await client.get(f"/{code}", headers={"user-agent": agent})
    await client.head(f"/{code}", headers={"user-agent": PHONE})
    tracking_path = link["tracking_url"][len(BASE_URL) :]
    await client.get(tracking_path, headers={"user-agent": PHONE})
    response = await client.get(f"/v1/links/{code}", headers=AUTH)
    assert response.status_code == 200
    info = response.json()
    assert set(info) == {
        "link_id", "kind", "code", "short_url", "url", "tracked", "created_at", "expires_at",
        "ttl_seconds", "status", "clicks", "bot_clicks", "campaign", "message_id",
        "disabled_at", "disabled_reason",
    }  # fmt: skip
    assert info["disabled_at"] is None and info["disabled_reason"] is None
    assert info["code"] == code and info["short_url"] == f"{BASE_URL}/{code}"
    assert info["url"] == "https://shop.example.com/d"
    assert info["tracked"] is True and info["status"] == "active"
    assert info["clicks"] == 4 and info["bot_clicks"] == 1
    created = datetime.fromisoformat(info["created_at"])
    expires = datetime.fromisoformat(info["expires_at"])
    assert (expires - created).total_seconds() == 31_536_000
    assert 31_536_000 - 10 <= info["ttl_seconds"] <= 31_536_000


async def test_link_details_are_private_to_the_org(client: httpx.AsyncClient) -> None:
    code = (await first_link(client, "https://shop.example.com/p"))["code"]
    for path, headers, status in [
        (f"/v1/links/{code}", OTHER_AUTH, 404),
        (f"/v1/links/{code}", {}, 401),
        ("/v1/links/AbCdEfGh12", AUTH, 404),
        ("/v1/links/x", AUTH, 404),
    ]:
        response = await client.get(path, headers=headers)
        assert response.status_code == status, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_expired_code_is_reported_expired(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=1))
    await start_of_second()
    code = (await first_link(client, "https://shop.example.com/x"))["code"]
    await asyncio.sleep(1.1)
    response = await client.get(f"/v1/links/{code}", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["status"] == "expired"
    assert response.json()["ttl_seconds"] == 0


async def test_readyz_follows_redis(
    tmp_path: Path, client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    own = RedisServer(tmp_path / "redis", free_port())
    own.start()
    try:
        client = await client_for(make_settings(redis_url=own.url))
        assert (await client.get("/readyz")).status_code == 200
        own.stop()
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert (await client.get("/healthz")).status_code == 200
        own.start()
        assert (await client.get("/readyz")).status_code == 200
    finally:
        own.stop()


async def test_metrics_count_requests_redirects_codes_and_clicks(
    client: httpx.AsyncClient,
) -> None:
    def sample(text: str, name: str, **labels: str) -> float:
        for line in text.splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = (await client.get("/metrics")).text
    link = await first_link(
        client, "https://shop.example.com/m", recipient={"tracking_consent": True}
    )
    await client.get(f"/{link['code']}", headers={"user-agent": PHONE})
    await client.get(f"/{link['code']}", headers={"user-agent": BOT})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    for name, labels, delta in [
        ("shortener_requests_total", {"route": "/{code}", "status": "302"}, 2),
        ("shortener_requests_total", {"route": "/v1/messages/shorten", "status": "200"}, 1),
        ("shortener_redirect_seconds_count", {}, 2),
        ("shortener_codes_issued_total", {}, 1),
        ("shortener_clicks_total", {"type": "click", "visitor": "person"}, 1),
        ("shortener_clicks_total", {"type": "click", "visitor": "bot"}, 1),
    ]:
        assert sample(after, name, **labels) - sample(before, name, **labels) == delta, name
    assert "shortener_redis_errors_total" in after


async def test_metrics_have_no_created_series(client: httpx.AsyncClient) -> None:
    await first_link(client, "https://shop.example.com/c")
    text = (await client.get("/metrics")).text
    assert "shortener_codes_issued_total" in text
    assert "_created" not in text


@pytest.fixture
def external_env(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    with SyncRedis.from_url(redis_server.url) as client:
        client.flushall()
    return service.service_env(redis_server.url, tmp_path / "data")


def test_inspect_reads_an_external_redis(external_env: dict[str, str]) -> None:
    with service.running_service(external_env) as running:
        code = running.shorten("https://shop.example.com/i")["links"][0]["code"]
        for _ in range(3):
            httpx.get(f"{running.base_url}/{code}", headers={"user-agent": PHONE})
    human = service.run_cli(external_env, "inspect", code)
    assert human.returncode == 0, human.stderr
    assert "https://shop.example.com/i" in human.stdout
    assert re.search(r"status\s+active", human.stdout)
    assert re.search(r"expires .*\(in 36[45]\.\d days\)", human.stdout)
    assert re.search(r"clicks\s+3 ", human.stdout)
    as_json = service.run_cli(external_env, "inspect", code, "--json")
    assert as_json.returncode == 0
    fields = json.loads(as_json.stdout)
    assert fields["url"] == "https://shop.example.com/i" and fields["clicks"] == 3
    unknown = service.run_cli(external_env, "inspect", "AbCdEfGh12")
    assert unknown.returncode == 1 and "unknown" in unknown.stdout


def test_inspect_attaches_to_a_running_services_embedded_store(tmp_path: Path) -> None:
    env = service.service_env(None, tmp_path / "data")
    with service.running_service(env) as running:
        code = running.shorten("https://shop.example.com/e")["links"][0]["code"]
        inspected = service.run_cli(env, "inspect", code, "--json")
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["url"] == "https://shop.example.com/e"
        # The service still runs on the store the CLI attached to and left alone.
        assert httpx.get(f"{running.base_url}/{code}").status_code == 302


def test_inspect_says_expired_and_exits_1(tmp_path: Path, external_env: dict[str, str]) -> None:
    # Expired, and still kept for ops (as long again as it lived): 3 s leaves the CLI time to
    # start on a loaded machine.
    env = {**external_env, "SHORTENER_LINK_TTL_SECONDS": "3"}
    with service.running_service(env) as running:
        code = running.shorten("https://shop.example.com/old")["links"][0]["code"]
        shortened = time.monotonic()
    time.sleep(max(0.0, shortened + 3.1 - time.monotonic()))
    result = service.run_cli(env, "inspect", code)
    assert result.returncode == 1
    assert re.search(r"status\s+expired", result.stdout)


def test_expiring_counts_codes_per_org(external_env: dict[str, str]) -> None:
    soon = {**external_env, "SHORTENER_LINK_TTL_SECONDS": str(3 * 86_400)}
    with service.running_service(soon) as running:
        for key, count in ((service.API_KEY, 3), (service.OTHER_KEY, 2)):
            running.shorten(" ".join(f"https://shop.example.com/{i}" for i in range(count)), key)
    within = service.run_cli(soon, "expiring", "--within", "3d", "--json")
    assert within.returncode == 0, within.stderr
    assert json.loads(within.stdout)["orgs"] == {"org-a": 3, "org-b": 2}
    assert json.loads(within.stdout)["total"] == 5
    before = service.run_cli(soon, "expiring", "--within", "1d", "--json")
    assert json.loads(before.stdout)["total"] == 0
    # Without --within: a week, or the links' whole lifetime when that is shorter.
    whole_lifetime = service.run_cli(soon, "expiring", "--json")
    assert json.loads(whole_lifetime.stdout)["within_seconds"] == 3 * 86_400
    assert json.loads(whole_lifetime.stdout)["total"] == 5
    human = service.run_cli(soon, "expiring", "--within", "72h")
    assert "org-a" in human.stdout and "5" in human.stdout
    bad = service.run_cli(soon, "expiring", "--within", "soon")
    assert bad.returncode == 2 and "duration" in bad.stderr


async def test_expiring_lists_only_codes_still_active(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    short_lived = await client_for(make_settings(link_ttl_seconds=2))
    long_lived = await client_for(make_settings(link_ttl_seconds=3600))
    for client, headers, count in (
        (short_lived, AUTH, 3),
        (long_lived, AUTH, 2),
        (long_lived, OTHER_AUTH, 1),
    ):
        body = " ".join(f"https://shop.example.com/{i}" for i in range(count))
        response = await client.post("/v1/messages/shorten", json={"body": body}, headers=headers)
        assert response.status_code == 200, response.text
    # The short-lived codes expire meanwhile, and both apps write their expiry tallies.
    await asyncio.sleep(3)
    env = service.service_env(redis_server.url, tmp_path / "cli", link_ttl_seconds="7200")
    result = service.run_cli(env, "expiring", "--within", "2h", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "within_seconds": 7200,
        "total": 3,
        "orgs": {"org-a": 2, "org-b": 1},
    }


async def test_expiring_counts_to_the_minute(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis: aioredis.Redis,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    client = await client_for(make_settings(link_ttl_seconds=600))
    await first_link(client, "https://shop.example.com/a https://shop.example.com/b")
    await asyncio.sleep(1.5)  # the app writes its expiry tally once a second
    # The index forgets each hour once it is over.
    keys = [key.decode() async for key in redis.scan_iter("x:*")]
    assert keys
    for key in keys:
        hour_over = (int(key.removeprefix("x:")) + 1) * 3600
        assert 0 < await redis.ttl(key) <= hour_over + 60 - time.time() + 1
    env = service.service_env(redis_server.url, tmp_path / "cli", link_ttl_seconds="3600")
    soon = service.run_cli(env, "expiring", "--within", "5m", "--json")
    assert soon.returncode == 0, soon.stderr
    assert json.loads(soon.stdout)["total"] == 0
    later = service.run_cli(env, "expiring", "--within", "15m", "--json")
    assert json.loads(later.stdout)["total"] == 2


def test_expiring_needs_a_unit_and_stays_within_the_link_lifetime(
    external_env: dict[str, str],
) -> None:
    env = {**external_env, "SHORTENER_LINK_TTL_SECONDS": str(86_400)}
    bare = service.run_cli(env, "expiring", "--within", "7")
    assert bare.returncode == 2 and "unit" in bare.stderr
    for too_long in ("2d", "25h", "999999999w"):
        refused = service.run_cli(env, "expiring", "--within", too_long)
        assert refused.returncode == 2, too_long
        assert "at most 1d" in refused.stderr, refused.stderr


def test_two_workers_report_metrics_of_both(external_env: dict[str, str]) -> None:
    with service.running_service(external_env, workers=2) as running:
        code = running.shorten("https://shop.example.com/w")["links"][0]["code"]
        taps = 40
        # A fresh connection per tap, so that both workers serve some of them.
        for _ in range(taps):
            httpx.get(f"{running.base_url}/{code}", headers={"user-agent": PHONE})
        counts = set()
        for _ in range(6):
            text = httpx.get(f"{running.base_url}/metrics").text
            match = re.search(
                r'shortener_requests_total\{[^}]*route="/\{code\}"[^}]*status="302"[^}]*\} (\S+)',
                text,
            )
            assert match, text[:2000]
            counts.add(float(match.group(1)))
            assert "_created" not in text
        assert counts == {taps}


def test_access_logs_are_json_and_keep_secrets_out(external_env: dict[str, str]) -> None:
    with service.running_service(external_env) as running:
        httpx.put(
            f"{running.base_url}/v1/contacts/+15551234567/consent",
            json={"tracking": False},
            headers={**service.AUTH, "x-request-id": "trace-abc-123"},
        )
        created = running.shorten(
            "https://shop.example.com/l", recipient={"contact_id": "c-secret-9"}
        )
        tap = httpx.get(f"{running.base_url}/{created['links'][0]['code']}")
        assert tap.headers["x-request-id"]
    # Read once the service has stopped: a line is written after its response is sent.
    logs = running.logs()
    entries = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    requests = [entry for entry in entries if entry.get("message") == "request"]
    assert len(requests) >= 4
    for entry in requests:
        assert {"time", "request_id", "method", "route", "status", "duration_ms"} <= set(entry)
    consent = next(e for e in requests if e["route"] == "/v1/contacts/{contact_id}/consent")
    assert consent["request_id"] == "trace-abc-123" and consent["status"] == 204
    assert any(e["route"] == "/{code}" and e["status"] == 302 for e in requests)
    for secret in (service.API_KEY, "+15551234567", "15551234567", "c-secret-9"):
        assert secret not in logs


def test_access_log_lines_match_every_other_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from shortener.http.observability import AccessLog, JsonFormatter

    writer = AccessLog()
    writer.write("req-1", "GET", "/{code}", 302, 0.00125)
    line = capsys.readouterr().err.strip()
    record = logging.LogRecord("shortener.access", logging.INFO, "", 0, "request", None, None)
    record.created = datetime.fromisoformat(json.loads(line)["time"]).timestamp()
    record.fields = {
        "request_id": "req-1", "method": "GET", "route": "/{code}", "status": 302,
        "duration_ms": 1.25,
    }  # fmt: skip
    assert json.loads(line) == json.loads(JsonFormatter().format(record))
