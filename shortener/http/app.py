"""The ASGI app: routes from the endpoint table, taps past routing, and the handlers of
errors that no endpoint answers itself."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shortener.config import Settings, load_settings
from shortener.credentials import with_credentials
from shortener.http import errors
from shortener.http.dashboard.routes import ROUTES as DASHBOARD_ROUTES
from shortener.http.dashboard.routes import is_dashboard
from shortener.http.direct import DirectEndpoint, ErrorHandler
from shortener.http.endpoints import ENDPOINTS, PUBLIC_HANDLERS
from shortener.http.observability import (
    ObservabilityMiddleware,
    route_namer,
)
from shortener.http.problems import HTTPProblem
from shortener.http.requests import Gate
from shortener.http.responses import error_response
from shortener.http.routing import SegmentRoute
from shortener.http.tap import TapEndpoint, tap
from shortener.http.translation import CALLER_ERRORS, caller_problem
from shortener.model import StoreUnavailable
from shortener.runtime import open_runtime

log = logging.getLogger("shortener")
# nginx's status for a request its client abandoned: there is no one left to answer, and it
# tells the access log and the metrics what became of the request.
CLIENT_CLOSED_REQUEST = 499


def _is_public(scope: Scope) -> bool:
    """Whether people reach the route with a browser: its errors are pages for them."""
    endpoint = scope.get("endpoint")
    return (
        endpoint in PUBLIC_HANDLERS
        or isinstance(endpoint, TapEndpoint)
        or is_dashboard(scope.get("path", ""))
    )


def _problem_response(scope: Scope, problem: HTTPProblem) -> Response:
    return error_response(
        scope,
        problem.status,
        problem.detail,
        problem.headers,
        public=_is_public(scope),
        invalid_links=problem.invalid_links,
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPProblem)
    return _problem_response(request.scope, exc)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        problem = errors.NO_RESOURCE(path=path)
    elif exc.status_code == 405:
        problem = errors.METHOD_NOT_ALLOWED(method=request.method, path=path)
    else:
        problem = HTTPProblem(exc.status_code, str(exc.detail))
    problem.headers.update(exc.headers or {})
    return _problem_response(request.scope, problem)


async def _on_caller_error(request: Request, exc: Exception) -> Response:
    return _problem_response(request.scope, caller_problem(exc))


async def _on_store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", exc)
    return _problem_response(request.scope, errors.STORE_UNAVAILABLE())


async def _on_client_gone(request: Request, exc: Exception) -> Response:
    # The client closed the connection before its body was complete: nothing was stored,
    # and nothing is wrong with the service. (No path: logs name routes, never raw paths.)
    log.debug("client left before its request body was complete")
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def _unexpected_answer(scope: Scope) -> ASGIApp:
    return _problem_response(scope, errors.UNEXPECTED())


class ShortenerApp(Starlette):
    """Starlette, with taps sent straight to their endpoint, and every route matched as a
    `SegmentRoute`.

    A tap is a GET or HEAD whose first path segment names no other route: `/CODE`, and also
    `/CODE/…`, since phones take what follows a link into it.
    """

    def __init__(
        self,
        tap: TapEndpoint,
        routes: list[BaseRoute],
        direct: Mapping[tuple[str, str], DirectEndpoint],
        **kwargs: Any,
    ):
        super().__init__(routes=routes, **kwargs)
        self._tap = tap
        # (method, path) -> the endpoint that answers it past routing and middleware.
        self._direct = direct
        single_segment = set()
        first_segments = set()
        for route in routes:
            if not isinstance(route, Route):
                continue
            first, slash, _ = route.path[1:].partition("/")
            if "{" in first:
                continue
            if slash:
                first_segments.add(first.encode())
            else:
                single_segment.add(route.path.encode())
        self._single_segment_routes = frozenset(single_segment)
        self._route_first_segments = frozenset(first_segments)

    def _is_tap(self, scope: Scope) -> bool:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        end = raw.find(b"/", 1)
        if end == -1:
            return len(raw) > 1 and raw not in self._single_segment_routes
        return raw[1:end] not in self._route_first_segments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] in ("GET", "HEAD") and self._is_tap(scope):
                scope["app"] = self
                await self._tap(scope, receive, send)
                return
            direct = self._direct.get((scope["method"], scope["path"]))
            if direct is not None:
                scope["app"] = self
                await direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app; `settings` defaults to the configuration (file and environment)."""
    configured = with_credentials(settings or load_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(configured, follow_tenancy=True) as runtime:
            app.state.runtime = runtime
            # What exists now lives as long as the process: keep the collector off it, and
            # collect less often, so that no tap waits for a full pass over the heap.
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 50, 100)
            yield

    # The dashboard's first: `/{code}` would take `/dashboard` for a code.
    routes: list[BaseRoute] = [
        *DASHBOARD_ROUTES,
        *(
            SegmentRoute(endpoint.path, endpoint.handler, methods=[endpoint.method])
            for endpoint in ENDPOINTS
        ),
    ]
    error_handlers: dict[type[Exception], ErrorHandler] = {
        HTTPProblem: _on_problem,
        HTTPException: _on_http_exception,
        StoreUnavailable: _on_store_unavailable,
        ClientDisconnect: _on_client_gone,
        **dict.fromkeys(CALLER_ERRORS, _on_caller_error),
    }
    direct = {
        (endpoint.method, endpoint.path): DirectEndpoint(
            endpoint.path, endpoint.handler, error_handlers, _unexpected_answer
        )
        for endpoint in ENDPOINTS
        if endpoint.direct
    }
    app = ShortenerApp(
        tap,
        routes,
        direct,
        lifespan=lifespan,
        exception_handlers=dict(error_handlers),
    )
    app.state.gate = Gate.of(configured)
    # A trailing-slash redirect would send taps of mangled codes somewhere else than 404.
    app.router.redirect_slashes = False
    route_of = route_namer(
        {route.endpoint: route.path for route in routes if isinstance(route, Route)}
    )
    app.add_middleware(ObservabilityMiddleware, route_of=route_of, unexpected=_unexpected_answer)
    return app
