"""Bad input, Redis outages, shutdown under load and code guessing: nothing breaks or is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis

from shortener.config import Settings
from shortener.signing import LinkSigner
from tests import service
from tests.conftest import AUTH, BASE_URL
from tests.redis_servers import RedisServer, free_port

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile"
# A guard against hangs, far above any answer's real time; not a latency assertion.
HANG_GUARD_SECONDS = 15


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, with every write fsynced, that the test may kill."""
    server = RedisServer(tmp_path / "redis", free_port(), persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def faulty_client(
    own_redis: RedisServer,
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> AsyncIterator[httpx.AsyncClient]:
    client: httpx.AsyncClient = await client_for(
        make_settings(redis_url=own_redis.url, redis_timeout_seconds=0.5)
    )
    yield client


async def call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    return await asyncio.wait_for(client.request(method, url, **kwargs), HANG_GUARD_SECONDS)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503


async def shorten_many(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    messages = [
        {"body": f"https://shop.example.com/f/{i}", "recipient": {"tracking_consent": i % 2 == 0}}
        for i in range(count)
    ]
    response = await call(
        client, "POST", "/v1/messages/batch", json={"messages": messages}, headers=AUTH
    )
    assert response.status_code == 200
    return [result["links"][0] for result in response.json()["results"]]


async def test_redis_killed_mid_traffic_then_back(
    faulty_client: httpx.AsyncClient, own_redis: RedisServer
) -> None:
    client = faulty_client
    links = await shorten_many(client, 200)

    async def tap(link: dict[str, Any]) -> int:
        response = await call(client, "GET", f"/{link['code']}", headers={"user-agent": PHONE})
        if response.status_code == 503:
            assert_unavailable(response)
        return response.status_code

    taps = [asyncio.ensure_future(tap(link)) for link in links * 3]
    await asyncio.sleep(0.01)
    own_redis.kill()
    statuses = await asyncio.gather(*taps)
    assert set(statuses) <= {302, 503}

    assert_unavailable(await call(client, "GET", f"/{links[0]['code']}"))
    assert_unavailable(
        await call(
            client,
            "POST",
            "/v1/messages/shorten",
            json={"body": "https://a.example/"},
            headers=AUTH,
        )
    )
    assert_unavailable(await call(client, "GET", "/v1/interactions", headers=AUTH))
    assert_unavailable(await call(client, "GET", "/readyz"))
    assert (await call(client, "GET", "/healthz")).status_code == 200

    own_redis.start()
    for _ in range(100):
        if (await call(client, "GET", "/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.1)
    # Every link acknowledged before the outage resolves after it, with no restart.
    for link in links:
        response = await call(client, "GET", f"/{link['code']}")
        assert response.status_code == 302, link
        assert response.headers["location"] == link["url"]
    assert len(await shorten_many(client, 3)) == 3


async def test_a_hung_redis_answers_503_within_the_timeout(
    faulty_client: httpx.AsyncClient, own_redis: RedisServer
) -> None:
    links = await shorten_many(faulty_client, 2)
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        assert_unavailable(await call(faulty_client, "GET", f"/{links[0]['code']}"))
        assert_unavailable(
            await call(
                faulty_client,
                "POST",
                "/v1/messages/shorten",
                json={"body": "https://a.example/"},
                headers=AUTH,
            )
        )
        assert_unavailable(await call(faulty_client, "GET", "/readyz"))
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    for _ in range(100):
        response = await call(faulty_client, "GET", f"/{links[0]['code']}")
        if response.status_code == 302:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 302


async def test_the_service_starts_while_redis_is_down_and_recovers(
    tmp_path: Path, client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    later = RedisServer(tmp_path / "later", free_port())
    client = await client_for(make_settings(redis_url=later.url, redis_timeout_seconds=0.5))
    assert (await call(client, "GET", "/healthz")).status_code == 200
    assert_unavailable(await call(client, "GET", "/readyz"))
    assert_unavailable(await call(client, "GET", "/AbCdEfGh12"))
    later.start()
    try:
        response = await call(
            client,
            "POST",
            "/v1/messages/shorten",
            json={"body": "https://a.example/"},
            headers=AUTH,
        )
        assert response.status_code == 200
        code = response.json()["links"][0]["code"]
        assert (await call(client, "GET", f"/{code}")).status_code == 302
    finally:
        later.stop()


def test_sigterm_under_load_loses_no_acknowledged_click(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    env = service.service_env(own_redis.url, tmp_path / "data")
    with service.running_service(env) as running:
        codes = [
            link["code"]
            for result in httpx.post(
                f"{running.base_url}/v1/messages/batch",
                json={
                    "messages": [
                        {"body": f"https://shop.example.com/s/{i}",
                         "recipient": {"tracking_consent": True}}
                        for i in range(20)
                    ]
                },
                headers=service.AUTH,
            ).json()["results"]
            for link in result["links"]
        ]  # fmt: skip
        acknowledged = 0
        failures: list[str] = []
        lock = threading.Lock()
        started = threading.Event()

        def tapper(worker: int) -> None:
            nonlocal acknowledged
            with httpx.Client(base_url=running.base_url, timeout=10) as client:
                for i in range(200):
                    started.set()
                    try:
                        response = client.get(f"/{codes[(worker + i) % len(codes)]}")
                    except httpx.TransportError:
                        return  # The server stopped taking new connections: expected.
                    with lock:
                        if response.status_code == 302:
                            acknowledged += 1
                        else:
                            failures.append(f"{response.status_code} {response.text[:200]}")

        threads = [threading.Thread(target=tapper, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        started.wait(10)
        while acknowledged < 100:
            threading.Event().wait(0.01)
        running.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        # In-flight requests finish, then the process exits as one ended by SIGTERM does.
        assert running.process.wait(30) == 128 + signal.SIGTERM
        assert "Finished server process" in running.logs()
    assert not failures, failures[:5]
    with SyncRedis.from_url(own_redis.url) as redis:
        recorded = redis.xlen("{o:org-a}:ix")
    # Every tap answered 302 had its click stored before the answer; a tap whose answer
    # was lost in the shutdown may be stored too.
    assert acknowledged >= 100
    assert recorded >= acknowledged


async def test_guessing_codes_is_throttled_but_real_links_still_work(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = await client_for(make_settings(miss_limit_per_minute=10, link_ttl_seconds=1))
    expired = (await shorten_many(client, 1))[0]
    await asyncio.sleep(1.1)
    fresh_client = await client_for(make_settings(miss_limit_per_minute=10))
    live = (await shorten_many(fresh_client, 1))[0]
    for i in range(10):
        assert (await call(fresh_client, "GET", f"/Guess{i:05d}")).status_code == 404
    refused = await call(fresh_client, "GET", "/Guess99999")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "60"
    # Issued codes are still followed: live ones redirect, expired ones say so.
    assert (await call(fresh_client, "GET", f"/{live['code']}")).status_code == 302
    assert (await call(fresh_client, "GET", f"/{expired['code']}")).status_code == 410


BAD_BODIES: list[tuple[bytes, str, int]] = [
    (b"{", "application/json", 400),
    (b"\xff\xfe\x00", "application/json", 400),
    (b'{"body": "caf\xe9"}', "application/json", 400),
    (b"[]", "application/json", 422),
    (b'"text"', "application/json", 422),
    (b"null", "application/json", 422),
    (b'{"body": 1}', "application/json", 422),
    (b'{"messages": {}}', "application/json", 422),
    (b'{"body": "x", "content_type": "sms"}', "application/json", 422),
    (b'{"tracking": "yes"}', "application/json", 422),
    (b'{"body": "x"}', "text/plain", 415),
    (b'{"body": "x"}', "", 415),
    (b'{"body": "x"}', "multipart/form-data", 415),
]
POSTED = [
    ("POST", "/v1/messages/shorten"),
    ("POST", "/v1/messages/batch"),
    ("PUT", "/v1/contacts/c-1/consent"),
]


@pytest.mark.parametrize(("method", "path"), POSTED)
async def test_every_bad_body_is_a_clear_4xx(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    for content, media_type, status in BAD_BODIES:
        headers = {**AUTH, **({"content-type": media_type} if media_type else {})}
        response = await call(client, method, path, content=content, headers=headers)
        assert response.status_code == status, (content, media_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == response.status_code and problem["detail"]


@pytest.mark.parametrize(("method", "path"), POSTED)
async def test_oversized_bodies_are_413_on_every_route(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    method: str,
    path: str,
) -> None:
    client = await client_for(make_settings(max_body_bytes=4096))
    big = b'{"body": "' + b"x" * 8192 + b'"}'
    response = await call(
        client, method, path, content=big, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while reading, too.
        for _ in range(10):
            yield b"x" * 1024

    streamed = await call(
        client, method, path, content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_absurd_codes_and_paths_never_break_anything(client: httpx.AsyncClient) -> None:
    for path in [
        "/" + "a" * 10_000,
        "/%00",
        "/%FF%FE",
        "/..%2F..%2Fetc%2Fpasswd",
        "/ZZZZZZZZZZZZZZZZZZZZZ",
        "/%E2%82%AC%E2%82%AC%E2%82%AC",
        "/api/orgs/x/r/y",
        "/api/orgs/x/r/y?targetUrl=https%3A%2F%2Fevil.example&digest=x&secretVersion=99999999999",
        "/api/orgs/x/o/" + "y" * 5000,
        "/v1/links/" + "z" * 5000,
        "/v1/interactions?limit=" + "9" * 400,
    ]:
        response = await call(client, "GET", path, headers=AUTH)
        assert 400 <= response.status_code < 500 or response.status_code == 200, path
        assert "location" not in response.headers
    batch = await call(
        client, "POST", "/v1/messages/batch",
        json={"messages": [{"body": "x"}] * 1001}, headers=AUTH,
    )  # fmt: skip
    assert batch.status_code == 422


async def test_a_redirect_only_ever_goes_to_a_submitted_target(client: httpx.AsyncClient) -> None:
    submitted = {"https://shop.example.com/a", "https://shop.example.com/b"}
    links = [
        (await call(client, "POST", "/v1/messages/shorten", json={
            "body": url, "recipient": {"tracking_consent": True}}, headers=AUTH)).json()["links"][0]
        for url in sorted(submitted)
    ]  # fmt: skip
    for link in links:
        for url in (link["short_url"], link["tracking_url"]):
            response = await call(client, "GET", url[len(BASE_URL) :])
            assert response.headers["location"] in submitted


signer = LinkSigner({1: "k" * 20, 2: "j" * 20}, b"o" * 32, "http://s")
text = st.text(min_size=1, max_size=40)


@settings(max_examples=300)
@given(org=text, link_id=text, target=text, other=text, version=st.sampled_from([1, 2]))
def test_signatures_verify_exactly_what_was_signed(
    org: str, link_id: str, target: str, other: str, version: int
) -> None:
    digest = signer._digest(version, org, link_id, target)
    assert signer.verify(org, link_id, target, digest, version)
    assert not signer.verify(org, link_id, target, digest, 3)
    for changed in ((other, link_id, target), (org, other, target), (org, link_id, other)):
        if changed != (org, link_id, target):
            assert not signer.verify(*changed, digest, version)
    if digest[:-1] != other[:-1]:
        assert not signer.verify(org, link_id, target, other, version)
