"""An httpx transport for webhook posts: HTTP/1.1 over asyncio, answers parsed by httptools.

httpx's own transport (httpcore, h11 and anyio underneath) spends about half a millisecond of
CPU on each request, which caps one process near 2,000 deliveries a second; this one spends
a tenth of that. It does only what a webhook post needs: requests with a body already in
memory, answers read up to a limit, connections kept alive and reused up to a number per
endpoint, and (unless private addresses are allowed) connections made only to public
addresses, checked after DNS when the connection is made, so that a name that changes its
answer between a check and the call cannot slip past it. TLS checks the certificate against
the host name asked for.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, cast

import httptools
import httpx

from shortener.outbound.addresses import IPAddress, is_public, resolve

# Of an answer, only this much of the body is read: receivers say little, and a flood must not
# fill memory or hold a connection. An answer longer than that ends its connection.
MAX_ANSWER_BYTES = 16_384
# Status line and headers together, at most.
MAX_HEAD_BYTES = 16_384
DEFAULT_PORTS = {"http": 80, "https": 443}
_FRAMING = (b"content-length", b"transfer-encoding")


class PrivateAddress(httpx.ConnectError):
    """The receiver's name resolved to an address the service may not call."""


class _Stale(Exception):
    """A kept-alive connection was closed by the other side before it answered anything."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[httpx.Response] | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._body = bytearray()
        self._received = False
        self._headers_done = False
        # Whether the answer says where it ends (a length, or chunks): if not, its end is the
        # connection's.
        self._framed = False
        self.closed = False
        self.reusable = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self._answer is None or self._answer.done():
            # Nothing was asked: a server that talks out of turn loses the connection.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the receiver switched protocols"))
        except httptools.HttpParserError as error:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {error}"))

    def eof_received(self) -> bool | None:
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended()

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        self._count_head(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count_head(len(name) + len(value)):
            self._headers.append((name, value))
            self._framed = self._framed or name.lower() in _FRAMING

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = MAX_ANSWER_BYTES - len(self._body)
        self._body += body[:room]
        if len(body) > room:
            self._finish(reusable=False)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:
            # An interim answer ("100 Continue" and the like): the real one follows.
            self._headers.clear()
            self._headers_done = self._framed = False
            return
        self._finish(reusable=self._parser.should_keep_alive())

    # the exchange

    async def exchange(self, head: bytes, body: bytes) -> httpx.Response:
        assert self._transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._status, self._head_bytes, self._received = 0, 0, False
        self._headers_done = self._framed = False
        self._headers, self._body, self.reusable = [], bytearray(), False
        self._transport.write(head + body)
        return await self._answer

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _count_head(self, size: int) -> bool:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail(httpx.RemoteProtocolError("the answer's head is too long"))
            return False
        return True

    def _finish(self, *, reusable: bool) -> None:
        if self._answer is None or self._answer.done():
            return
        self.reusable = reusable and not self.closed
        self._answer.set_result(
            httpx.Response(
                self._status,
                headers=self._headers,
                content=bytes(self._body),
                extensions={"http_version": b"HTTP/1.1"},
            )
        )
        if not self.reusable:
            self.close()

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()

    def _ended(self) -> None:
        """The other side closed the connection."""
        self.closed = True
        if self._answer is None or self._answer.done():
            return
        if self._headers_done and not self._framed:
            self._finish(reusable=False)
        elif not self._received:
            self._fail(_Stale())
        else:
            self._fail(httpx.RemoteProtocolError("the connection closed mid-answer"))


_default_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    # Building a context loads the CA bundle, a few milliseconds: once per process.
    global _default_tls
    if _default_tls is None:
        _default_tls = httpx.create_ssl_context()
    return _default_tls


class WebhookTransport(httpx.AsyncBaseTransport):
    """Connections to one endpoint's origin: at most `connections` at once, kept alive."""

    def __init__(
        self,
        *,
        connections: int,
        allow_private: bool,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(connections)
        self._allow_private = allow_private
        self._tls = tls
        self._idle: list[_Connection] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        head = _head(request)
        body = await request.aread()
        async with self._slots:
            connection = self._kept()
            if connection is not None:
                try:
                    return self._done(connection, await connection.exchange(head, body))
                except _Stale:
                    # The receiver closed an idle connection as it was being reused: once more
                    # on a new one. The receiver may see the event twice; it dedupes by its id.
                    pass
                except BaseException:
                    connection.close()
                    raise
            connection = await self._connect(request.url)
            try:
                return self._done(connection, await connection.exchange(head, body))
            except _Stale:
                raise httpx.ReadError("the connection closed before any answer") from None
            except BaseException:
                connection.close()
                raise

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _kept(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    def _done(self, connection: _Connection, answer: httpx.Response) -> httpx.Response:
        if connection.reusable and not connection.closed:
            self._idle.append(connection)
        return answer

    async def _connect(self, url: httpx.URL) -> _Connection:
        host = url.host
        port = url.port or DEFAULT_PORTS.get(url.scheme, 80)
        addresses: list[IPAddress | str]
        if self._allow_private:
            addresses = [host]
        else:
            found = await resolve(host, port)
            if not found:
                raise httpx.ConnectError(f"{host} does not resolve")
            refused = [address for address in found if not is_public(address)]
            if refused:
                raise PrivateAddress(f"{host} resolves to {refused[0]}, which is not public")
            addresses = list(found)
        tls: dict[str, Any] = {}
        if url.scheme == "https":
            tls = {"ssl": self._tls or _tls_context(), "server_hostname": host}
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for address in addresses:
            try:
                _, connection = await loop.create_connection(_Connection, str(address), port, **tls)
            except OSError as error:
                last = error
                continue
            return connection
        raise httpx.ConnectError(f"{host}: {last}")


def _head(request: httpx.Request) -> bytes:
    """The request line and headers; httpx has already set Host and Content-Length."""
    target = request.url.raw_path or b"/"
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), target)]
    lines.extend(b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw)
    lines.append(b"\r\n")
    return b"".join(lines)
