"""The webhook transport against real loopback servers that answer as real ones do, and as
broken or hostile ones might: kept-alive connections reused, closed ones replaced, answers
without a length, interim answers, floods, garbage, silence, and TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from shortener.outbound.http11 import MAX_ANSWER_BYTES, MAX_HEAD_BYTES
from shortener.outbound.webhooks import CONNECTIONS_PER_ENDPOINT, WebhookSender

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = '{"type":"interaction.click"}'

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server that reads each request whole and lets the test answer it."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                await self.answer(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(answer)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
        server.port = listening.sockets[0].getsockname()[1]
        servers.append(listening)
        return server

    yield start
    for listening in servers:
        listening.close()


def answering(raw: bytes, *, close: bool = False) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()
        if close:
            writer.close()

    return answer


NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


async def send_many(sender: WebhookSender, url: str, count: int) -> list[bool]:
    outcomes = await asyncio.gather(
        *(sender.send(url, SECRET, f"evt_{n}", BODY) for n in range(count))
    )
    return [outcome.delivered for outcome in outcomes]


async def test_connections_are_kept_alive_and_limited_per_endpoint(serve) -> None:
    server = await serve(answering(NO_CONTENT))
    sender = WebhookSender(allow_private=True)
    try:
        assert await send_many(sender, f"http://127.0.0.1:{server.port}/hook", 200) == [True] * 200
        assert len(server.requests) == 200
        # Reused, and never more at once than an endpoint may have.
        assert 1 <= server.connections <= CONNECTIONS_PER_ENDPOINT
    finally:
        await sender.close()


async def test_each_request_is_a_standard_webhooks_post(serve) -> None:
    server = await serve(answering(NO_CONTENT))
    sender = WebhookSender(allow_private=True)
    try:
        outcome = await sender.send(
            f"http://127.0.0.1:{server.port}/in/hook?x=1", SECRET, "evt_1", BODY
        )
    finally:
        await sender.close()
    assert outcome.delivered and outcome.status == 204
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /in/hook?x=1 HTTP/1.1"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(BODY))
    assert headers["webhook-id"] == "evt_1"
    assert body == BODY.encode()


async def test_a_connection_the_receiver_closes_is_replaced(serve) -> None:
    # "Connection: close" after every answer, and a receiver that closes without saying so.
    for answer in (
        answering(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
        answering(NO_CONTENT, close=True),
    ):
        server = await serve(answer)
        sender = WebhookSender(allow_private=True)
        try:
            url = f"http://127.0.0.1:{server.port}/hook"
            for _ in range(5):
                assert (await sender.send(url, SECRET, "evt_1", BODY)).delivered
                # Let the close reach the client, as an idle connection's would.
                await asyncio.sleep(0.05)
        finally:
            await sender.close()
        assert server.connections == 5


async def test_a_kept_connection_closed_before_answering_is_tried_once_more(serve) -> None:
    # As a receiver does that closes an idle connection just as a request arrives on it.
    answered: set[int] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if id(writer) in answered:
            writer.close()
            return
        answered.add(id(writer))
        writer.write(NO_CONTENT)
        await writer.drain()

    server = await serve(answer)
    sender = WebhookSender(allow_private=True)
    try:
        url = f"http://127.0.0.1:{server.port}/hook"
        first = await sender.send(url, SECRET, "evt_1", BODY)
        second = await sender.send(url, SECRET, "evt_2", BODY)
    finally:
        await sender.close()
    assert (first.delivered, second.delivered) == (True, True)
    # The second event reached the closing connection, then a new one.
    assert server.connections == 2
    assert [b"webhook-id: evt_2" in request for request in server.requests] == [False, True, True]


async def test_answers_without_a_length_or_after_an_interim_answer(serve) -> None:
    for raw, status in (
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nread until the end", 200),
        (b"HTTP/1.0 202 Accepted\r\n\r\n", 202),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            200,
        ),
    ):
        # Answers without a length end when the connection does.
        server = await serve(answering(raw, close=b"Length" not in raw and status != 204))
        sender = WebhookSender(allow_private=True)
        try:
            outcome = await sender.send(f"http://127.0.0.1:{server.port}/h", SECRET, "evt_1", BODY)
        finally:
            await sender.close()
        assert (outcome.delivered, outcome.status) == (True, status), raw


async def test_a_flood_of_an_answer_is_cut_short(serve) -> None:
    flood = b"x" * (64 * MAX_ANSWER_BYTES)
    server = await serve(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(flood), flood))
    )
    sender = WebhookSender(allow_private=True)
    try:
        url = f"http://127.0.0.1:{server.port}/hook"
        # Delivered: the status is what counts. The connection is not reused, as the rest of
        # the answer was never read.
        assert await send_many(sender, url, 3) == [True] * 3
        assert server.connections == 3
    finally:
        await sender.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"y" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"",
    ],
    ids=["garbage", "cut-short", "head-too-long", "upgrade", "closed-silently"],
)
async def test_broken_answers_fail_the_attempt(serve, raw: bytes) -> None:
    server = await serve(answering(raw, close=True))
    sender = WebhookSender(allow_private=True)
    try:
        outcome = await sender.send(f"http://127.0.0.1:{server.port}/hook", SECRET, "evt_1", BODY)
    finally:
        await sender.close()
    assert not outcome.delivered
    assert outcome.error is not None


async def test_error_answers_are_failures_with_their_status(serve) -> None:
    server = await serve(answering(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"))
    sender = WebhookSender(allow_private=True)
    try:
        outcome = await sender.send(f"http://127.0.0.1:{server.port}/hook", SECRET, "evt_1", BODY)
    finally:
        await sender.close()
    assert (outcome.delivered, outcome.status, outcome.error) == (False, 503, "answered 503")


async def test_redirects_are_not_followed(serve) -> None:
    elsewhere = await serve(answering(NO_CONTENT))
    server = await serve(
        answering(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%d/\r\n"
            b"Content-Length: 0\r\n\r\n" % elsewhere.port
        )
    )
    sender = WebhookSender(allow_private=True)
    try:
        outcome = await sender.send(f"http://127.0.0.1:{server.port}/hook", SECRET, "evt_1", BODY)
    finally:
        await sender.close()
    assert (outcome.delivered, outcome.status) == (False, 307)
    assert elsewhere.requests == []


async def test_nothing_listening_is_a_failure(unused_tcp_port: int) -> None:
    sender = WebhookSender(allow_private=True)
    try:
        outcome = await sender.send(f"http://127.0.0.1:{unused_tcp_port}/", SECRET, "evt_1", BODY)
    finally:
        await sender.close()
    assert (outcome.delivered, outcome.error) == (False, "ConnectError")


async def test_loopback_is_refused_unless_allowed(serve) -> None:
    server = await serve(answering(NO_CONTENT))
    sender = WebhookSender(allow_private=False)
    try:
        for host in ("127.0.0.1", "localhost"):
            outcome = await sender.send(f"http://{host}:{server.port}/hook", SECRET, "evt_1", BODY)
            assert not outcome.delivered
            assert outcome.error is not None and "not public" in outcome.error
    finally:
        await sender.close()
    assert server.connections == 0


async def test_tls_checks_the_certificate_against_the_host_name(serve) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_tls)
    server = await serve(answering(NO_CONTENT), tls=server_tls)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    trusted = WebhookSender(allow_private=True, tls=trusting)
    untrusted = WebhookSender(allow_private=True)
    try:
        # Issued for "localhost": good there, not for the address itself, and not without
        # the test's authority.
        ok = await trusted.send(f"https://localhost:{server.port}/hook", SECRET, "evt_1", BODY)
        wrong_name = await trusted.send(
            f"https://127.0.0.1:{server.port}/hook", SECRET, "evt_2", BODY
        )
        unknown = await untrusted.send(
            f"https://localhost:{server.port}/hook", SECRET, "evt_3", BODY
        )
    finally:
        await trusted.close()
        await untrusted.close()
    assert (ok.delivered, ok.status) == (True, 204)
    assert (wrong_name.delivered, wrong_name.error) == (False, "ConnectError")
    assert (unknown.delivered, unknown.error) == (False, "ConnectError")
    assert [request.split(b"\r\n")[0] for request in server.requests] == [b"POST /hook HTTP/1.1"]


async def test_a_receiver_that_never_answers_times_out(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shortener.outbound.webhooks.ATTEMPT_SECONDS", 0.5)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await serve(silent)
    sender = WebhookSender(allow_private=True)
    try:
        outcome = await sender.send(f"http://127.0.0.1:{server.port}/hook", SECRET, "evt_1", BODY)
        assert (outcome.delivered, outcome.error) == (False, "timed out")
        # The connection that timed out is not handed out again.
        server.answer = answering(NO_CONTENT)
        assert (await sender.send(f"http://127.0.0.1:{server.port}/h", SECRET, "e", BODY)).delivered
    finally:
        await sender.close()
    assert server.connections == 2
