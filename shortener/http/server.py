"""HTTP connections with deadlines and a head size limit: uvicorn's httptools protocol, bounded.

uvicorn closes idle keep-alive connections and refuses connections beyond a limit, but lets a
request take as long as it likes to arrive, and its head grow without end. Here a request's
head (request line and headers) must arrive within `header_timeout_seconds` of its first byte
(of the connection's opening, for its first request) and stay within `max_header_bytes`, and
its body must arrive within `body_timeout_seconds` of the end of its head.

Taps are most of the traffic and arrive whole, in one read: a deadline is only armed when a
read ends inside a request's head or body, so they cost no timer. Answers to other methods than
GET and HEAD (the API's shorten calls first) leave head and body in one write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn._types import ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from shortener.config import Settings, load_settings
from shortener.http.problems import problem_response

log = logging.getLogger(__name__)

# How long a refused connection may still take: to send the answers owed before the refusal,
# and then to be read (what arrives is dropped) until the client has read the refusal.
LINGER_SECONDS = 5.0
_INVALID_REQUEST = "Invalid HTTP request received."


@dataclass(frozen=True)
class RequestLimits:
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_header_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> RequestLimits:
        return cls(
            header_timeout_seconds=settings.header_timeout_seconds,
            body_timeout_seconds=settings.body_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
        )


@functools.cache
def configured_limits() -> RequestLimits:
    """The limits of this process's configuration: each worker reads it, as its app does."""
    return RequestLimits.of(load_settings())


# Where a connection is in its current request.
_AWAITING_HEAD = 0  # no byte of it yet
_IN_HEAD = 1
_IN_BODY = 2


class _HeadTooLarge(Exception):
    """Raised inside the parser to stop it at a head over the limit."""


class _Held:
    """Stands in for the transport while a response's head is written: keeps it."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _Prefixed:
    """The transport, with a held head written in front of the first thing written (or before
    it closes, or when flushed)."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        self._transport = transport
        self._head = head

    def write(self, data: bytes) -> None:
        head, self._head = self._head, b""
        self._transport.write(head + data)

    def flush(self) -> None:
        if self._head:
            self.write(b"")

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeadWithBodyCycle(RequestResponseCycle):
    """uvicorn's request cycle, with a response's head held until its body is written and
    sent with it: one system call where there were two, and a system call is a large part of
    what an API call costs. Taps have no body to wait for, and are left as they are."""

    _held: bytes = b""

    async def send(self, message: ASGISendEvent) -> None:
        transport = self.transport
        if message["type"] == "http.response.start" and not self.response_started:
            held = _Held()
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._held = held.data
            return
        if not self._held:
            await super().send(message)
            return
        prefixed = _Prefixed(transport, self._held)
        self._held = b""
        self.transport = prefixed  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
            # A HEAD request's answer writes no body: its head goes alone.
            prefixed.flush()


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with deadlines for each request's head and body and a
    limit on the head's size. A request past one of them is answered (408, 431) after the
    answers owed before it, when that is still possible, and its connection closed."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = configured_limits()
        self._max_header_bytes = self.limits.max_header_bytes
        # The connection's one timer: the deadline of the head or body being read, or the end
        # of a lingering close.
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = _AWAITING_HEAD
        # Bytes read while waiting for or reading the current head, and whether that counts
        # all of it: a head that begins in the read that ended the previous request does not
        # have its first bytes counted.
        self._head_bytes = 0
        self._head_counted = True
        # The refusal that ends the connection, held until the answers owed before it are out.
        self._last_answer: bytes | None = None
        # Refused: whatever still arrives is dropped.
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.call_later(
            self.limits.header_timeout_seconds, self._head_overdue
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    # The parser callbacks and data_received run for every request: they call the base class
    # directly, and touch as little as they can.

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with the head counted and the deadlines armed.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        phase = self._phase
        if phase != _IN_BODY:
            if phase == _AWAITING_HEAD:
                self._head_counted = True
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _HeadTooLarge):
                self._refuse_head()
            else:
                self._cancel_deadline()
                self.logger.warning(_INVALID_REQUEST)
                self.send_400_response(_INVALID_REQUEST)
            return
        except httptools.HttpParserUpgrade:
            self._cancel_deadline()
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._deadline is not None:
            if self._head_bytes > self._max_header_bytes and self._phase != _IN_BODY:
                self._refuse_head()
            return
        phase = self._phase
        if phase == _IN_BODY:
            self._deadline = self.loop.call_later(
                self.limits.body_timeout_seconds, self._body_overdue
            )
        elif self._head_bytes > self._max_header_bytes:
            self._refuse_head()
        # Counted bytes without a request begun are blank lines, which the parser skips: they
        # must not keep a connection open either.
        elif phase == _IN_HEAD or self._head_bytes:
            self._deadline = self.loop.call_later(
                self.limits.header_timeout_seconds, self._head_overdue
            )

    def on_message_begin(self) -> None:
        self._phase = _IN_HEAD
        HttpToolsProtocol.on_message_begin(self)

    def on_headers_complete(self) -> None:
        limit = self._max_header_bytes
        # What was read can hold a body too: only then is the head itself measured.
        if (self._head_bytes > limit or not self._head_counted) and self._head_size() > limit:
            raise _HeadTooLarge
        if self._deadline is not None:
            self._cancel_deadline()
        self._phase = _IN_BODY
        previous = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not previous and self.scope["method"] not in ("GET", "HEAD"):
            # Its task has not run yet: it runs as this class.
            self.cycle.__class__ = _HeadWithBodyCycle

    def on_message_complete(self) -> None:
        if self._deadline is not None:
            self._cancel_deadline()
        self._phase = _AWAITING_HEAD
        self._head_bytes = 0
        self._head_counted = False
        HttpToolsProtocol.on_message_complete(self)

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_overdue(self) -> None:
        self._deadline = None
        if self._phase == _AWAITING_HEAD:
            # Silent (or blank lines) since the last answer or the opening: nothing to answer.
            self.transport.close()
            return
        seconds = self.limits.header_timeout_seconds
        self._refuse(408, f"the request line and headers did not arrive within {seconds:g} s")

    def _refuse_head(self) -> None:
        limit = self.limits.max_header_bytes
        self._refuse(431, f"the request line and headers must not exceed {limit} bytes")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer `status` to the request whose head is being read, once every earlier request
        has its answer, and close the connection."""
        log.info("request refused: %s", detail, extra={"fields": {"status": status}})
        self._cancel_deadline()
        self._refused = True
        self.flow.resume_reading()
        self._last_answer = self._answer(status, detail)
        if self._previous_answered():
            self._send_last_answer()
        else:
            # The last request before this one is answered last: the refusal follows it.
            self.cycle.on_response = self._on_owed_answers_sent
            # They get this long before the connection closes without them.
            self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _on_owed_answers_sent(self) -> None:
        self.on_response_complete()
        if not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self._send_last_answer()

    def _body_overdue(self) -> None:
        self._deadline = None
        seconds = self.limits.body_timeout_seconds
        detail = f"the request body did not arrive within {seconds:g} s"
        cycle = self.cycle
        if cycle.response_started or self.pipeline:
            # Answered already, or queued behind an earlier answer: nothing more to say.
            log.info("connection closed: %s", detail)
            self.transport.close()
            return
        log.info("request refused: %s", detail, extra={"fields": {"status": 408}})
        # Its app sees the client gone, and whatever it still sends goes nowhere.
        cycle.disconnected = True
        cycle.message_event.set()
        self._refused = True
        self.flow.resume_reading()
        self._last_answer = self._answer(408, detail)
        self._send_last_answer()

    def _previous_answered(self) -> bool:
        """Whether every request before the one whose head is being read has its answer."""
        return self.cycle is None or self.cycle.response_complete

    def _send_last_answer(self) -> None:
        """Send the refusal, then keep reading (and dropping) a while: closing with unread
        data resets the connection, which can discard the answer before the client reads it."""
        assert self._last_answer is not None
        self._cancel_deadline()
        self.transport.write(self._last_answer)
        self._last_answer = None
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _answer(self, status: int, detail: str) -> bytes:
        response = problem_response(status, detail, headers={"connection": "close"})
        content = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *response.raw_headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", bytes(response.body)])
        return b"".join(content)
