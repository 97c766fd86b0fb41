"""Per-request metrics and JSON access logs, as one thin ASGI middleware.

Logs name the route template (`/v1/contacts/{contact_id}/consent`), never the raw path or
query, so no contact id, phone number or key reaches the log; the Authorization header is
never read here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shortener.metrics import REDIRECT_SECONDS, REQUESTS

access_log = logging.getLogger("shortener.access")
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
REDIRECT_ROUTES = frozenset({"/{code}", "/api/orgs/{org_hash}/r/{link_id}"})


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
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


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


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

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
        finally:
            elapsed = time.perf_counter() - started
            route = self.route_of(scope)
            REQUESTS.labels(route, scope["method"], str(status)).inc()
            if route in REDIRECT_ROUTES:
                REDIRECT_SECONDS.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope["method"],
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 3),
                        }
                    },
                )


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is sane, so logs join up across services."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return str(value.decode())
    return os.urandom(8).hex()


def route_namer(paths: Mapping[Any, str]) -> Callable[[Scope], str]:
    """Names the matched route by its path template, from the endpoint the router chose."""

    def route_of(scope: Scope) -> str:
        return paths.get(scope.get("endpoint"), "unmatched")

    return route_of
