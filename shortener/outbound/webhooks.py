"""Posting webhook events: Standard Webhooks signatures, and httpx requests handed to a
transport per endpoint (`WebhookTransport`: a pool of kept-alive connections, answers read up
to a small limit, only public addresses unless allowed). Redirects are never followed.

Requests go to the transport directly, not through an `httpx.AsyncClient`: its cookies, auth,
redirects and URL merging serve no webhook post, and cost as much CPU again as the transport.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from shortener.outbound.http11 import PrivateAddress, WebhookTransport

# Any 2xx within this long is a delivery.
ATTEMPT_SECONDS = 10.0
# Requests in flight to one endpoint at most.
CONNECTIONS_PER_ENDPOINT = 8
USER_AGENT = "shortener-webhooks/1"


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
    """Sends events, with a transport (and so a connection pool) per endpoint URL."""

    def __init__(self, *, allow_private: bool, tls: ssl.SSLContext | None = None) -> None:
        self._allow_private = allow_private
        # Certificates are checked against the system's authorities unless told otherwise.
        self._tls = tls
        self._transports: dict[str, tuple[httpx.URL, WebhookTransport]] = {}

    def _transport(self, url: str) -> tuple[httpx.URL, WebhookTransport]:
        found = self._transports.get(url)
        if found is None:
            found = self._transports[url] = (
                httpx.URL(url),
                WebhookTransport(
                    connections=CONNECTIONS_PER_ENDPOINT,
                    allow_private=self._allow_private,
                    tls=self._tls,
                ),
            )
        return found

    async def forget(self, urls: Iterable[str]) -> None:
        """Close the connections to URLs no endpoint has any more."""
        for url in urls:
            found = self._transports.pop(url, None)
            if found is not None:
                await found[1].aclose()

    async def close(self) -> None:
        await self.forget(list(self._transports))

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
        headers = [
            ("user-agent", USER_AGENT),
            ("content-type", "application/json"),
            *signed_headers(secret, webhook_id, body, time.time()).items(),
        ]
        target, transport = self._transport(url)
        try:
            answer = await transport.handle_async_request(
                httpx.Request("POST", target, content=body.encode(), headers=headers)
            )
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
