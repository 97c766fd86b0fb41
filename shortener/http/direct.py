"""Hot API routes answered past routing and middleware, as they would be answered through them.

Gateways call `POST /v1/messages/shorten` once per message they send, so its cost is paid per
message; the routing table and four layers of middleware were a third of it. `ShortenerApp`
hands such a route's requests here by method and exact path: the same handler runs, its
errors go to the same exception handlers, and the answer gets the same request id, metrics
and access log line as the middleware gives every other route.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shortener.http.observability import log_unexpected, record_request, request_id_of

Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class DirectEndpoint:
    def __init__(
        self,
        route: str,
        handler: Handler,
        error_handlers: Mapping[type[Exception], ErrorHandler],
        unexpected: Callable[[Scope], ASGIApp],
    ) -> None:
        self.route = route
        self.handler = handler
        self.error_handlers = error_handlers
        self.unexpected = unexpected

    def _error_handler(self, error: Exception) -> ErrorHandler | None:
        for kind in type(error).__mro__:
            found = self.error_handlers.get(kind)
            if found is not None:
                return found
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_of(scope)
        # As the router would: errors and logs find the route by its endpoint.
        scope["endpoint"] = self.handler
        request = Request(scope, receive, send)
        try:
            try:
                response = await self.handler(request)
            except Exception as error:
                on_error = self._error_handler(error)
                if on_error is None:
                    raise
                response = await on_error(request, error)
        except Exception:
            log_unexpected(scope["method"], self.route, request_id)
            answer = self.unexpected(scope)
            assert isinstance(answer, Response)
            response = answer
        status = response.status_code
        headers = [*response.raw_headers, (b"x-request-id", request_id.encode())]
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": response.body})
        finally:
            record_request(
                self.route, scope["method"], status, time.perf_counter() - started, request_id
            )
