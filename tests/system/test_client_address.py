"""Who a request comes from: X-Forwarded-For is believed only from SHORTENER_TRUSTED_PROXIES.

The miss limiter keys on the client address, so a header that anyone may send must neither
let a guesser slip past it nor let them get someone else blocked. Linux routes all of
127.0.0.0/8 to loopback, so a second client address is a socket bound to 127.0.0.2.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shortener.config import SettingsError, load_settings
from shortener.http.clients import ClientAddresses
from tests.support import service
from tests.support.redis_servers import RedisServer

MISS_LIMIT = 3
OTHER_LOOPBACK = "127.0.0.2"
_guesses = itertools.count()


def guess(
    running: service.Service,
    forwarded_for: str | None = None,
    *,
    source: str | None = None,
) -> int:
    """The status of a tap on a made-up code, sent from `source` (default 127.0.0.1)."""
    headers = {} if forwarded_for is None else {"x-forwarded-for": forwarded_for}
    transport = httpx.HTTPTransport(local_address=source) if source else None
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(f"{running.base_url}/Guess{next(_guesses):05d}", headers=headers)
    return response.status_code


@pytest.fixture
def running(redis_server: RedisServer, tmp_path: Path) -> Iterator[service.Service]:
    env = service.service_env(
        redis_server.url, tmp_path / "data", miss_limit_per_minute=str(MISS_LIMIT)
    )
    with service.running_service(env) as started:
        yield started


@pytest.fixture
def behind_proxy(redis_server: RedisServer, tmp_path: Path) -> Iterator[service.Service]:
    env = service.service_env(
        redis_server.url,
        tmp_path / "data",
        miss_limit_per_minute=str(MISS_LIMIT),
        trusted_proxies="127.0.0.1",
    )
    with service.running_service(env) as started:
        yield started


def test_rotating_x_forwarded_for_does_not_get_past_the_miss_limit(
    running: service.Service,
) -> None:
    statuses = [guess(running, f"198.51.100.{i}") for i in range(MISS_LIMIT + 2)]
    assert statuses == [404] * MISS_LIMIT + [429, 429]


def test_a_spoofed_address_does_not_get_its_owner_blocked(running: service.Service) -> None:
    for _ in range(MISS_LIMIT + 1):
        guess(running, OTHER_LOOPBACK)
    assert guess(running, source=OTHER_LOOPBACK) == 404
    # The misses counted against the one who sent them.
    assert guess(running) == 429


def test_behind_a_trusted_proxy_each_forwarded_client_is_limited_on_its_own(
    behind_proxy: service.Service,
) -> None:
    first, second = "198.51.100.7", "2001:db8::8"
    assert [guess(behind_proxy, first) for _ in range(MISS_LIMIT)] == [404] * MISS_LIMIT
    assert guess(behind_proxy, first) == 429
    assert guess(behind_proxy, second) == 404
    # What the client wrote left of the proxy's own entry changes nothing: the proxy's
    # entry (the right-most untrusted one) is the client.
    assert guess(behind_proxy, f"203.0.113.99, {first}") == 429
    # The proxy itself, tapping with no header, is a client of its own.
    assert guess(behind_proxy) == 404


def test_an_untrusted_peer_is_the_client_whatever_it_forwards(
    behind_proxy: service.Service,
) -> None:
    statuses = [
        guess(behind_proxy, f"198.51.100.{i}", source=OTHER_LOOPBACK) for i in range(MISS_LIMIT + 1)
    ]
    assert statuses == [404] * MISS_LIMIT + [429]
    # Nor does its header block the address it names.
    named = "198.51.100.50"
    assert [guess(behind_proxy, named, source=OTHER_LOOPBACK) for _ in range(MISS_LIMIT)] == [
        429
    ] * MISS_LIMIT
    assert guess(behind_proxy, named) == 404


@pytest.mark.parametrize("value", ["10.0.0.0/33", "proxy.internal", "10.0.0.1/8", "::1,300.0.0.1"])
def test_a_trusted_proxy_that_is_no_address_or_network_stops_the_start(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTENER_TRUSTED_PROXIES", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "SHORTENER_TRUSTED_PROXIES" in str(raised.value)


def test_trusted_proxies_are_addresses_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHORTENER_TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.1 ,fd00::/8,")
    trusted = load_settings().trusted_proxies
    assert [str(network) for network in trusted] == ["10.0.0.0/8", "192.0.2.1/32", "fd00::/8"]
    monkeypatch.delenv("SHORTENER_TRUSTED_PROXIES")
    assert load_settings().trusted_proxies == ()


PROXIES = "10.0.0.0/8,2001:db8:1::/48,192.0.2.1"


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # The peer is no trusted proxy: its header counts for nothing.
        ("198.51.100.1", ["203.0.113.5"], "198.51.100.1"),
        # One proxy; what the client wrote left of the proxy's entry is ignored.
        ("10.1.2.3", ["203.0.113.5"], "203.0.113.5"),
        ("10.1.2.3", ["127.0.0.1, 10.9.9.9, 203.0.113.5"], "203.0.113.5"),
        # Two proxies in a row, entries spread over two header lines.
        ("10.1.2.3", ["203.0.113.99, 203.0.113.5", "192.0.2.1"], "203.0.113.5"),
        ("2001:db8:1::7", ["2001:db8:2::5, 2001:db8:1::8"], "2001:db8:2::5"),
        # Ports, brackets and IPv4 mapped into IPv6, as proxies write them.
        ("10.1.2.3", ["203.0.113.5:5123"], "203.0.113.5"),
        ("10.1.2.3", ["[2001:db8:2::5]:443"], "2001:db8:2::5"),
        ("::ffff:10.1.2.3", ["::ffff:203.0.113.5"], "203.0.113.5"),
        # No header, an empty one, or only proxies: the request began at the left-most one.
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", [""], "10.1.2.3"),
        ("10.1.2.3", ["10.4.4.4, 192.0.2.1"], "10.4.4.4"),
        # Garbage stops the walk at the last address a trusted proxy named.
        ("10.1.2.3", ["203.0.113.5, unknown"], "10.1.2.3"),
        ("10.1.2.3", ["unknown, 10.4.4.4"], "10.4.4.4"),
    ],
)
def test_the_client_is_the_right_most_address_that_is_no_trusted_proxy(
    peer: str, forwarded: list[str], client: str
) -> None:
    trusted = load_settings(trusted_proxies=PROXIES).trusted_proxies
    scope = {
        "client": (peer, 4321),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }
    assert ClientAddresses(trusted).of(scope) == client


def test_without_trusted_proxies_the_client_is_the_peer() -> None:
    scope = {"client": ("127.0.0.1", 4321), "headers": [(b"x-forwarded-for", b"203.0.113.5")]}
    assert ClientAddresses(()).of(scope) == "127.0.0.1"
    assert ClientAddresses(()).of({"client": None, "headers": []}) == ""
