"""Per-request metrics and JSON access logs.

Logs name the route template (`/v1/contacts/{contact_id}/consent`), never the raw path or
query, so no contact id, phone number or key reaches the log; the Authorization header is
never read here.

Access-log lines are JSON in the same shape as every other log line, but are written by
`AccessLog` rather than through `logging`: a log record costs as much as the rest of a tap,
so lines are formatted directly and written together once per event-loop turn. The
`shortener.access` logger's level still switches them on and off.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shortener.domain.paths import SHORT_LINK, TRACKED_LINK
from shortener.metrics import REDIRECT_SECONDS, REQUESTS

log = logging.getLogger("shortener")
access_log = logging.getLogger("shortener.access")
_ID_PREFIX = os.urandom(4).hex()
_id_counter = itertools.count(1)
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_SCOPE_KEY = "shortener.request_id"
# Taps are timed on their own: how long a recipient waits for the redirect.
REDIRECT_ROUTES = frozenset({SHORT_LINK, TRACKED_LINK})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: what log shippers read without parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = traceback_without_messages(record.exc_info[1])
        return json.dumps(entry, ensure_ascii=False)


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def traceback_without_messages(error: BaseException) -> str:
    """A traceback as Python prints it, chained exceptions included, with each exception's
    type and every frame, but not its message: messages quote data (pydantic quotes its
    input, redis-py the failed command, a KeyError its key), and data holds contact ids,
    target URLs and keys. The request id on the line leads to the request."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None:
        seen.add(id(current))
        kind = type(current)
        name = kind.__qualname__
        if kind.__module__ != "builtins":
            name = f"{kind.__module__}.{name}"
        frames = "".join(traceback.format_tb(current.__traceback__))
        header = "Traceback (most recent call last):\n" if frames else ""
        parts.append(f"{header}{frames}{name} (message not logged)\n")
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            break
        if id(current) in seen:
            break
        parts.append(link)
    return "".join(reversed(parts)).rstrip("\n")


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A logging dictConfig for the service and uvicorn: JSON lines on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        # Everything else (asyncio, warnings, libraries) reaches the root: JSON lines too.
        "root": {"handlers": ["json"], "level": "WARNING"},
        "loggers": {
            "shortener": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


class AccessLog:
    """Buffers access-log lines and writes them to stderr once per event-loop turn."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._scheduled = False
        self._second = -1
        self._second_text = ""

    def write(self, request_id: str, method: str, route: str, status: int, elapsed: float) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        millis = int((now - second) * 1000)
        # No value needs JSON escaping: request ids are checked on the way in, methods and
        # routes are the server's own.
        # Laid out as json.dumps lays out every other log line.
        self._pending.append(
            f'{{"time": "{self._second_text}.{millis:03d}+00:00", "level": "info", '
            f'"logger": "shortener.access", "message": "request", "request_id": "{request_id}", '
            f'"method": "{method}", "route": "{route}", "status": {status}, '
            f'"duration_ms": {elapsed * 1000:.3f}}}\n'
        )
        if self._scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
            self._scheduled = True
        except RuntimeError:
            self.flush()

    def flush(self) -> None:
        self._scheduled = False
        lines, self._pending = self._pending, []
        if lines:
            sys.stderr.write("".join(lines))
            sys.stderr.flush()


_access_lines = AccessLog()


def record_request(route: str, method: str, status: int, elapsed: float, request_id: str) -> None:
    """Count a request and write its access-log line."""
    _requests_counter(route, method, status).inc()
    if route in REDIRECT_ROUTES:
        REDIRECT_SECONDS.observe(elapsed)
    if access_log.isEnabledFor(logging.INFO):
        _access_lines.write(request_id, method, route, status, elapsed)


@functools.cache
def _requests_counter(route: str, method: str, status: int) -> Any:
    # Looking a labelled child up costs more than counting with it; the label sets are few.
    return REQUESTS.labels(route, method, str(status))


class ObservabilityMiddleware:
    """Counts and logs every request routed through the app, with its request id.

    It also answers an exception that no handler took: with a 500 from `unexpected` when no
    answer has begun, logged once, with the request id that answer carries. Left to
    Starlette, the error would be logged by its handler, raised again to the server and
    logged there a second time. One wrapper of `send` does both jobs, since every request
    that is not a tap passes it.
    """

    def __init__(
        self,
        app: ASGIApp,
        route_of: Callable[[Scope], str],
        unexpected: Callable[[Scope], ASGIApp],
    ) -> None:
        self.app = app
        self.route_of = route_of
        self.unexpected = unexpected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log_unexpected(scope["method"], self.route_of(scope), request_id)
            # Once an answer has begun, the server can only cut the connection.
            if status is None:
                await self.unexpected(scope)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            record_request(
                self.route_of(scope), scope["method"], status or 500, elapsed, request_id
            )


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID when it is sane, so logs join up across services; else a
    new one, unique per process by a random prefix and a counter (no system call). Kept in
    the scope, so that everything that names the request names it alike."""
    known: str | None = scope.get(_SCOPE_KEY)
    if known is not None:
        return known
    request_id = ""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
            request_id = str(value.decode())
            break
    if not request_id:
        request_id = f"{_ID_PREFIX}{next(_id_counter):x}"
    scope[_SCOPE_KEY] = request_id
    return request_id


def route_namer(paths: Mapping[Any, str]) -> Callable[[Scope], str]:
    """Names the matched route by its path template, from the endpoint the router chose."""

    def route_of(scope: Scope) -> str:
        return paths.get(scope.get("endpoint"), "unmatched")

    return route_of


def log_unexpected(method: str, route: str, request_id: str) -> None:
    """Log the error being handled, once, with the request id its answer carries."""
    # The route template, never the path: a path may hold a contact's id.
    log.exception(
        "unexpected error on %s %s", method, route, extra={"fields": {"request_id": request_id}}
    )
