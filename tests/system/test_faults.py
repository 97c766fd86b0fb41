"""Bad input, Redis outages, shutdown under load and code guessing: nothing breaks or is lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import string
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis

from shortener.config import Settings
from shortener.domain.signing import LinkSigner
from shortener.store.keys import interactions_key
from tests.support import service
from tests.support.apps import AUTH, BASE_URL, PHONE, start_of_second
from tests.support.redis_servers import RedisServer, free_port

# Taps of the mid-traffic outage: tappers at once, and at most this many taps each.
TAPPERS = 20
TAPS_PER_TAPPER = 200
# A guard against hangs, far above any answer's real time; not a latency assertion.
HANG_GUARD_SECONDS = 15
# The Redis deadline of the apps these tests break Redis under.
FAULT_TIMEOUT_SECONDS = 0.5
# How long an answer may take when Redis does not answer: the deadline of a round trip or
# two, with room for a slow machine. A deadline ignored or multiplied goes far past it.
ANSWER_BOUND_SECONDS = FAULT_TIMEOUT_SECONDS * 3 + 1


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
        make_settings(redis_url=own_redis.url, redis_timeout_seconds=FAULT_TIMEOUT_SECONDS)
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


@pytest.mark.timeout(60)
async def test_redis_killed_mid_traffic_then_back(
    faulty_client: httpx.AsyncClient, own_redis: RedisServer
) -> None:
    client = faulty_client
    links = await shorten_many(client, 200)
    tracked = {link["code"] for link in links if link["tracked"]}
    assert 0 < len(tracked) < len(links)
    answers: list[tuple[str, int]] = []
    killed = asyncio.Event()

    async def tapper(worker: int) -> None:
        # Taps go on until this tapper has seen the outage, a bounded number of them.
        for i in range(TAPS_PER_TAPPER):
            link = links[(worker * 31 + i) % len(links)]
            response = await call(client, "GET", f"/{link['code']}", headers={"user-agent": PHONE})
            if response.status_code == 503:
                assert_unavailable(response)
            answers.append((link["code"], response.status_code))
            if killed.is_set() and response.status_code == 503:
                return

    tappers = [asyncio.ensure_future(tapper(n)) for n in range(TAPPERS)]
    # Redis dies while taps are being answered, after a good number of them were.
    deadline = asyncio.get_running_loop().time() + HANG_GUARD_SECONDS
    while sum(status == 302 for _, status in answers) < 100:
        assert asyncio.get_running_loop().time() < deadline, answers[-5:]
        assert not all(tapper.done() for tapper in tappers), answers[-5:]
        await asyncio.sleep(0.005)
    own_redis.kill()
    killed.set()
    await asyncio.gather(*tappers)
    statuses = Counter(status for _, status in answers)
    assert set(statuses) == {302, 503}, statuses

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
    # Every tracked tap answered 302 had its click written (and fsynced) first, so the
    # restarted Redis has it; a tap answered 503 may have been stored before the answer failed.
    with SyncRedis.from_url(own_redis.url) as redis:
        clicks = Counter(
            fields[b"k"].decode() for _, fields in redis.xrange(interactions_key("org-a"))
        )
    redirected = Counter(code for code, status in answers if status == 302 and code in tracked)
    attempted = Counter(code for code, _ in answers if code in tracked)
    assert redirected, statuses
    for code in attempted:
        assert redirected[code] <= clicks[code] <= attempted[code], code
    assert set(clicks) <= tracked
    # Every link acknowledged before the outage resolves after it, with no restart.
    for link in links:
        response = await call(client, "GET", f"/{link['code']}")
        assert response.status_code == 302, link
        assert response.headers["location"] == link["url"]
    assert len(await shorten_many(client, 3)) == 3


async def timed(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call(client, method, url, **kwargs)
    return response, time.monotonic() - started


@pytest.mark.timeout(60)
async def test_a_hung_redis_answers_503_within_the_timeout(
    faulty_client: httpx.AsyncClient, own_redis: RedisServer
) -> None:
    links = await shorten_many(faulty_client, 2)
    tracked = next(link for link in links if link["tracked"])
    plain = next(link for link in links if not link["tracked"])
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        for method, url, kwargs in [
            ("GET", f"/{plain['code']}", {}),
            ("GET", f"/{tracked['code']}", {"headers": {"user-agent": PHONE}}),
            ("GET", tracked["tracking_url"][len(BASE_URL) :], {}),
            ("POST", "/v1/messages/shorten", {"json": {"body": "https://a.example/"}}),
            (
                "POST",
                "/v1/messages/batch",
                {"json": {"messages": [{"body": "https://b.example/"}]}},
            ),
            ("PUT", "/v1/contacts/c-1/consent", {"json": {"tracking": False}}),
            ("GET", "/v1/interactions", {}),
            ("GET", f"/v1/links/{links[0]['code']}", {}),
            ("GET", "/readyz", {}),
        ]:
            kwargs.setdefault("headers", AUTH)
            response, seconds = await timed(faulty_client, method, url, **kwargs)
            assert_unavailable(response)
            # Answered at about the configured deadline, not at some multiple of it.
            assert seconds <= ANSWER_BOUND_SECONDS, (method, url, seconds)
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    for _ in range(100):
        response = await call(faulty_client, "GET", f"/{links[0]['code']}")
        if response.status_code == 302:
            break
        await asyncio.sleep(0.1)
    assert response.status_code == 302


@pytest.mark.timeout(60)
async def test_forged_codes_are_refused_without_redis_and_real_ones_wait_for_it(
    own_redis: RedisServer,
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
) -> None:
    client = await client_for(
        make_settings(
            redis_url=own_redis.url,
            redis_timeout_seconds=FAULT_TIMEOUT_SECONDS,
            miss_limit_per_minute=10_000,
        )
    )
    links = await shorten_many(client, 4)
    code = links[0]["code"]
    forged = [code[:i] + c + code[i + 1 :] for i in range(len(code)) for c in "aZ9" if c != code[i]]
    forged += ["".join(random.choices(string.ascii_letters, k=len(code))) for _ in range(50)]
    forged += [code[:-1], "0" + code[1:], "Guess12345"]
    assert own_redis.process is not None
    # A hung Redis rather than a dead one: a command sent to it takes the whole deadline,
    # even one whose failure would be ignored.
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        # A code is checked before the store is asked anything, with whatever command: without
        # a store, forged codes are still a quick 404, while issued ones need it (503).
        for path in forged:
            response, seconds = await timed(client, "GET", f"/{path}")
            assert response.status_code == 404, path
            # Far below the deadline that any command to the hung Redis would take.
            assert seconds < FAULT_TIMEOUT_SECONDS / 2, (path, seconds)
        paths = [f"/{link['code']}{rest}" for link in links for rest in ("", "/more")]
        for response in await asyncio.gather(*(call(client, "GET", path) for path in paths)):
            assert_unavailable(response)
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)


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


@pytest.mark.timeout(120)
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
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while acknowledged < 100:
            assert time.monotonic() < deadline, (acknowledged, failures[:5])
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
    await start_of_second()
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


signer = LinkSigner({1: "k" * 20, 2: "j" * 20}, b"o" * 32)
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
