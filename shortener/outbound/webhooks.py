"""Posting webhook events: Standard Webhooks signatures, one connection pool per endpoint, no
redirects followed, answers read up to a small limit, and (unless private addresses are
allowed) a connection only ever to a public address, checked when it is made, after DNS, so
that a name that changes its answer between a check and the call cannot slip past it."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from standardwebhooks import Webhook

from shortener.outbound.addresses import is_public, resolve

# Any 2xx within this long is a delivery.
ATTEMPT_SECONDS = 10.0
# Of an answer, only this much is read: receivers say little, and a flood must not fill memory.
MAX_ANSWER_BYTES = 16_384
# Requests in flight to one endpoint at most.
CONNECTIONS_PER_ENDPOINT = 8
USER_AGENT = "shortener-webhooks/1"


class PrivateAddress(httpcore.ConnectError):
    """The receiver's name resolved to an address the service may not call."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to public addresses of the host asked for."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore.AsyncNetworkBackend's)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        refused = [address for address in addresses if not is_public(address)]
        if refused:
            raise PrivateAddress(f"{host} resolves to {refused[0]}, which is not public")
        return await self._inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore.AsyncNetworkBackend's)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _transport(allow_private: bool) -> httpx.AsyncHTTPTransport:
    limits = httpx.Limits(
        max_connections=CONNECTIONS_PER_ENDPOINT, max_keepalive_connections=CONNECTIONS_PER_ENDPOINT
    )
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0, trust_env=False)
    if not allow_private:
        # httpx takes no network backend of its own; its pool does, and TLS still checks the
        # certificate against the host name asked for.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=CONNECTIONS_PER_ENDPOINT,
            max_keepalive_connections=CONNECTIONS_PER_ENDPOINT,
            retries=0,
            network_backend=_GuardedBackend(),
        )
    return transport


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    # The answer's status; None where there was none (refused, timed out, ...).
    status: int | None
    # What went wrong, for the log: never the URL's path or query, nor the payload.
    error: str | None
    seconds: float


@functools.lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def signed_headers(secret: str, webhook_id: str, body: str, at: float) -> dict[str, str]:
    """The Standard Webhooks headers of a payload sent at `at`."""
    signature = _signer(secret).sign(webhook_id, datetime.fromtimestamp(at, UTC), body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signature,
    }


class WebhookSender:
    """Sends events, with a client (and so a connection pool) per endpoint URL."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, url: str) -> httpx.AsyncClient:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = httpx.AsyncClient(
                transport=_transport(self._allow_private),
                timeout=ATTEMPT_SECONDS,
                follow_redirects=False,
                headers={"user-agent": USER_AGENT},
            )
        return client

    async def forget(self, urls: Iterable[str]) -> None:
        """Close the clients of URLs no endpoint has any more."""
        for url in urls:
            client = self._clients.pop(url, None)
            if client is not None:
                await client.aclose()

    async def close(self) -> None:
        await self.forget(list(self._clients))

    @staticmethod
    def host_of(url: str) -> str:
        return urlsplit(url).hostname or ""

    async def send(self, url: str, secret: str, webhook_id: str, body: str) -> Outcome:
        """Post one event: the whole attempt, connecting included, within ATTEMPT_SECONDS."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(ATTEMPT_SECONDS):
                return await self._post(url, secret, webhook_id, body, started)
        except TimeoutError:
            return Outcome(False, None, "timed out", time.monotonic() - started)

    async def _post(
        self, url: str, secret: str, webhook_id: str, body: str, started: float
    ) -> Outcome:
        headers = {
            "content-type": "application/json",
            **signed_headers(secret, webhook_id, body, time.time()),
        }
        try:
            async with self._client(url).stream(
                "POST", url, content=body.encode(), headers=headers
            ) as answer:
                read = 0
                async for chunk in answer.aiter_raw():
                    read += len(chunk)
                    if read >= MAX_ANSWER_BYTES:
                        break
                status = answer.status_code
        except PrivateAddress as error:
            return Outcome(False, None, str(error), time.monotonic() - started)
        except httpx.TimeoutException:
            return Outcome(False, None, "timed out", time.monotonic() - started)
        except httpx.HTTPError as error:
            return Outcome(False, None, type(error).__name__, time.monotonic() - started)
        seconds = time.monotonic() - started
        if 200 <= status < 300:
            return Outcome(True, status, None, seconds)
        return Outcome(False, status, f"answered {status}", seconds)
