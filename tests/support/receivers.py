"""Webhook receivers for tests: real HTTP servers on loopback, in a thread of their own, that
record what they are sent and answer as a test tells them to."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

# Hang guard only: how long a test waits for deliveries it expects.
DELIVERY_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload as a receiver reads it: after `standardwebhooks` checked its signature."""
        payload: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return payload


class Receiver:
    """Records every POST; answers `status(received)` (204 unless told otherwise), after
    waiting for `hold` to be set when there is one."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status: Callable[[Received], int] = lambda received: 204
        self.hold: threading.Event | None = None
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                got = Received(
                    {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                with receiver._lock:
                    receiver.received.append(got)
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                self.send_response(receiver.status(got))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until `start` opens it again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """What was answered with a 2xx, by the current rule."""
        return [got for got in self.events() if 200 <= self.status(got) < 300]

    async def wait_for(self, enough: Callable[[list[Received]], bool], what: str) -> list[Received]:
        deadline = time.monotonic() + DELIVERY_WAIT_SECONDS
        while True:
            events = self.events()
            if enough(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: got {len(events)} requests")
            await asyncio.sleep(0.05)
