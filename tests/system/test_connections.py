"""Connections that do not finish their request, oversized heads, too many connections and
clients that go away, against a real `shortener serve` over raw sockets."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import service
from tests.support.redis_servers import RedisServer

# The header and body deadlines of the `strict` service, in seconds.
DEADLINE = 1.0
# How long the service may take past a deadline to act on it.
SLACK = 3.0
# No socket operation of these tests waits longer: none of them can hang.
SOCKET_SECONDS = 10.0
TRICKLE_SECONDS = 0.1
SHORTEN = "/v1/messages/shorten"


@pytest.fixture(scope="module")
def strict(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[service.Service]:
    """Two workers, so that every worker is seen to apply the limits."""
    env = service.service_env(
        redis_server.url,
        tmp_path_factory.mktemp("strict"),
        header_timeout_seconds=str(DEADLINE),
        body_timeout_seconds=str(DEADLINE),
        keep_alive_timeout_seconds=str(int(DEADLINE)),
    )
    with service.running_service(env, workers=2) as running:
        yield running


def connect(running: service.Service) -> socket.socket:
    address = urlsplit(running.base_url)
    assert address.hostname is not None and address.port is not None
    return socket.create_connection((address.hostname, address.port), timeout=SOCKET_SECONDS)


def head(method: str, path: str, *fields: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def shorten_head(length: int) -> bytes:
    return head(
        "POST",
        SHORTEN,
        f"Authorization: Bearer {service.API_KEY}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    )


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body: its status, headers and body. Reads no byte
    beyond it, so that the next response stays for the next call."""
    head_bytes = b""
    while not head_bytes.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"the connection closed before a whole response: {head_bytes!r}"
        head_bytes += byte
    status_line, *field_lines = head_bytes[:-4].decode("latin-1").split("\r\n")
    fields = {}
    for line in field_lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    length = int(fields["content-length"])
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        assert chunk, "the connection closed within a response body"
        body += chunk
    return int(status_line.split(" ")[1]), fields, body


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the service sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def trickle(sock: socket.socket, byte: bytes) -> float:
    """Send `byte` every TRICKLE_SECONDS until the service answers or closes; how long that
    took."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE + SLACK:
        readable, _, _ = select.select([sock], [], [], TRICKLE_SECONDS)
        if readable:
            break
        try:
            sock.sendall(byte)
        except (BrokenPipeError, ConnectionResetError):
            break
    return time.monotonic() - started


def assert_cut_off_in_time(elapsed: float) -> None:
    assert DEADLINE * 0.8 <= elapsed < DEADLINE + SLACK, elapsed


def test_a_connection_that_sends_nothing_is_closed(strict: service.Service) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert_cut_off_in_time(time.monotonic() - started)


def test_an_idle_keep_alive_connection_is_closed(strict: service.Service) -> None:
    with connect(strict) as sock:
        sock.sendall(head("GET", "/healthz"))
        assert read_response(sock)[0] == 200
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert_cut_off_in_time(time.monotonic() - started)


def test_several_requests_share_one_connection(strict: service.Service) -> None:
    with connect(strict) as sock:
        for _ in range(3):
            sock.sendall(head("GET", "/healthz"))
            assert read_response(sock)[0] == 200
            time.sleep(DEADLINE / 4)
        # Pipelined: both asked before either is answered.
        sock.sendall(head("GET", "/healthz") * 2)
        assert read_response(sock)[0] == 200
        assert read_response(sock)[0] == 200


def test_a_request_in_pieces_within_the_deadlines_is_served(strict: service.Service) -> None:
    body = json.dumps({"body": "https://shop.example.com/pieces"}).encode()
    request = shorten_head(len(body)) + body
    with connect(strict) as sock:
        for piece in (request[:20], request[20:-10], request[-10:]):
            sock.sendall(piece)
            time.sleep(DEADLINE / 4)
        status, _, answer = read_response(sock)
    assert status == 200, answer


def test_headers_trickled_past_the_deadline_are_cut_off(strict: service.Service) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        elapsed = trickle(sock, b"a")
        answer = read_until_closed(sock)
    assert_cut_off_in_time(elapsed)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_request_line_trickled_past_the_deadline_is_cut_off(strict: service.Service) -> None:
    with connect(strict) as sock:
        sock.sendall(head("GET", "/healthz"))
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /")
        elapsed = trickle(sock, b"a")
        answer = read_until_closed(sock)
    assert_cut_off_in_time(elapsed)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_blank_lines_trickled_between_requests_are_cut_off(strict: service.Service) -> None:
    # The parser skips blank lines before a request line without starting a request.
    with connect(strict) as sock:
        sock.sendall(head("GET", "/healthz"))
        assert read_response(sock)[0] == 200
        elapsed = trickle(sock, b"\r\n")
        assert read_until_closed(sock) == b""
    assert_cut_off_in_time(elapsed)


def test_a_body_trickled_past_the_deadline_gets_408(strict: service.Service) -> None:
    with connect(strict) as sock:
        sock.sendall(shorten_head(1000) + b'{"body": "')
        elapsed = trickle(sock, b"x")
        status, fields, body = read_response(sock)
        assert read_until_closed(sock) == b""
    assert_cut_off_in_time(elapsed)
    assert status == 408
    assert fields["content-type"] == "application/problem+json"
    assert fields["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 408
    assert "body" in problem["detail"]


def test_a_body_still_coming_after_the_answer_is_cut_off(strict: service.Service) -> None:
    # Answered at once (no valid key), while the body would go on for ever.
    with connect(strict) as sock:
        sock.sendall(head("POST", SHORTEN, "Content-Length: 100000"))
        assert read_response(sock)[0] == 401
        elapsed = trickle(sock, b"x")
        assert read_until_closed(sock) == b""
    assert_cut_off_in_time(elapsed)


def test_oversized_headers_get_431_at_once(strict: service.Service) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        sock.sendall(head("GET", "/healthz", "X-Big: " + "a" * 65536))
        status, fields, body = read_response(sock)
        assert read_until_closed(sock) == b""
    assert time.monotonic() - started < SLACK
    assert status == 431
    assert fields["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 431


def test_an_oversized_head_that_never_ends_gets_431(strict: service.Service) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 65536)
        status, _, _ = read_response(sock)
    assert status == 431


def test_an_oversized_pipelined_head_gets_431(strict: service.Service) -> None:
    # The second head arrives with the end of the first request, in the same read.
    with connect(strict) as sock:
        sock.sendall(head("GET", "/healthz") + head("GET", "/healthz", "X-Big: " + "a" * 32768))
        assert read_response(sock)[0] == 200
        assert read_response(sock)[0] == 431


def test_large_headers_within_the_limit_and_large_bodies_are_served(
    strict: service.Service,
) -> None:
    padding = " " * 200_000
    body = (json.dumps({"body": "https://shop.example.com/large"}) + padding).encode()
    with connect(strict) as sock:
        sock.sendall(head("GET", "/healthz", "Cookie: " + "c" * 12_000))
        assert read_response(sock)[0] == 200
        sock.sendall(shorten_head(len(body)) + body)
        status, _, answer = read_response(sock)
    assert status == 200, answer


def test_a_client_leaving_within_its_body_is_no_error(strict: service.Service) -> None:
    logged_before = len(strict.logs())
    with connect(strict) as sock:
        sock.sendall(shorten_head(100_000) + b'{"body": "' + b"x" * 50_000)
        time.sleep(0.2)
    deadline = time.monotonic() + SLACK
    while time.monotonic() < deadline and '"status": 499' not in strict.logs()[logged_before:]:
        time.sleep(0.1)
    assert httpx.get(f"{strict.base_url}/healthz", timeout=SOCKET_SECONDS).status_code == 200
    lines = strict.logs()[logged_before:].splitlines()
    assert any(
        '"route": "/v1/messages/shorten"' in line and '"status": 499' in line for line in lines
    )
    for line in lines:
        assert "Traceback" not in line, line
        assert json.loads(line)["level"] not in ("error", "critical"), line


def test_the_limits_have_production_defaults() -> None:
    from shortener.config import Settings

    defaults = Settings.model_construct()
    assert defaults.header_timeout_seconds == 10
    assert defaults.body_timeout_seconds == 30
    assert defaults.keep_alive_timeout_seconds == 5
    assert defaults.max_header_bytes == 16_384
    # Far above the 64 to 128 connections of `make bench` and `make soak`.
    assert defaults.max_connections >= 1000


def test_connections_beyond_the_limit_get_503(redis_server: RedisServer, tmp_path: Path) -> None:
    env = service.service_env(redis_server.url, tmp_path / "data", max_connections="2")
    with service.running_service(env) as running:
        first, second = connect(running), connect(running)
        with first, second:
            for sock in (first, second):
                sock.sendall(head("GET", "/healthz"))
                assert read_response(sock)[0] == 200
            with connect(running) as third:
                third.sendall(head("GET", "/healthz"))
                status, fields, _ = read_response(third)
                assert status == 503
                assert fields["connection"] == "close"
            first.close()
            deadline = time.monotonic() + SLACK
            while True:
                with connect(running) as again:
                    again.sendall(head("GET", "/healthz"))
                    if read_response(again)[0] == 200:
                        break
                assert time.monotonic() < deadline, "a freed connection slot stayed taken"
                time.sleep(0.1)
