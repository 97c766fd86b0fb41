"""The HTTP layer: parse requests, call the domain, shape responses."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote_to_bytes

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shortener.config import Settings, load_settings
from shortener.credentials import with_credentials
from shortener.domain.interactions import INTERACTION_TYPES, Visitor
from shortener.domain.links import (
    BatchTooLarge,
    InvalidSignature,
    MessageConflict,
    ShortenLimitReached,
    Tap,
    TapOutcome,
    TooManyLinks,
    link_info,
)
from shortener.http.auth import holds_key
from shortener.http.observability import (
    ObservabilityMiddleware,
    record_request,
    request_id_of,
    route_namer,
)
from shortener.http.openapi import openapi_document
from shortener.http.pages import EXPIRED_PAGE, HOME_PAGE, NOT_FOUND_PAGE, page_for, wants_html
from shortener.http.pages import MEDIA_TYPE as PAGE_MEDIA_TYPE
from shortener.http.problems import HTTPProblem, problem, problem_response
from shortener.http.schemas import (
    BatchRequest,
    BatchResult,
    ConsentRequest,
    InteractionOut,
    InteractionPage,
    MessageError,
    Problem,
    ShortenRequest,
    ShortenResult,
)
from shortener.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from shortener.metrics import exposition
from shortener.runtime import Runtime, open_runtime
from shortener.store.store import StoreUnavailable
from shortener.text.bots import is_bot
from shortener.text.parsing import stream_cursor, whole_number

log = logging.getLogger("shortener")
M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
_NO_STORE = {
    "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
    "pragma": "no-cache",
}
_STORE_DOWN = "the link store is not answering; try again shortly"
_UNEXPECTED = "an unexpected error occurred; it has been logged"
# The smallest transparent GIF: 1x1, one transparent colour.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _org(request: Request, runtime: Runtime) -> str:
    org = runtime.api_keys.org_for(request.headers.get("authorization"))
    if org is None:
        raise HTTPProblem(
            401,
            "send a valid API key as 'Authorization: Bearer KEY'",
            headers={"www-authenticate": "Bearer"},
        )
    return org


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        size = whole_number(declared)
        if size is None:
            raise HTTPProblem(400, "Content-Length must be a whole number of bytes")
        if size > limit:
            raise HTTPProblem(413, f"the request body must not exceed {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPProblem(413, f"the request body must not exceed {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request, model: type[M], runtime: Runtime) -> M:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise HTTPProblem(415, "send the body as JSON with 'Content-Type: application/json'")
    body = await _body(request, runtime.settings.max_body_bytes)
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise _invalid(error) from None


def _invalid(error: ValidationError) -> HTTPProblem:
    errors = error.errors(include_url=False, include_input=False)
    if any(item["type"] == "json_invalid" for item in errors):
        return HTTPProblem(400, f"the body is not valid JSON: {errors[0]['msg']}")
    details = []
    for item in errors[:10]:
        where = ".".join(str(part) for part in item["loc"]) or "body"
        message = _UNKNOWN_FIELD if item["type"] == "extra_forbidden" else item["msg"]
        details.append(f"{where}: {message}")
    return HTTPProblem(422, "; ".join(details))


_UNKNOWN_FIELD = "not a field of this request (check its spelling)"


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type=JSON)


async def shorten(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    message = await _parse(request, ShortenRequest, runtime)
    shortener = await runtime.shortener()
    return _json(await shortener.shorten(org, message))


async def shorten_batch(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    batch = await _parse(request, BatchRequest, runtime)
    messages = [_message(raw) for raw in batch.messages]
    shortener = await runtime.shortener()
    valid = [message for message in messages if isinstance(message, ShortenRequest)]
    outcomes = iter(await shortener.shorten_many(org, valid))
    results: list[ShortenResult | MessageError] = []
    for message in messages:
        outcome = message if isinstance(message, Problem) else next(outcomes)
        if isinstance(outcome, ShortenResult):
            results.append(outcome)
        else:
            error = outcome if isinstance(outcome, Problem) else problem(*_domain_problem(outcome))
            results.append(MessageError(error=error))
    return _json(BatchResult(results=results))


def _message(raw: object) -> ShortenRequest | Problem:
    """One message of a batch, or the problem a single shorten of it would answer."""
    try:
        # Parsed from JSON as a single shorten's body is, so that its errors read the same.
        return ShortenRequest.model_validate_json(json.dumps(raw))
    except ValidationError as error:
        invalid = _invalid(error)
        return problem(invalid.status, invalid.detail)


def _visitor(request: Request) -> Visitor:
    return _visitor_of(request.method, request.headers.get("user-agent", ""))


def _visitor_of(method: str, user_agent: str) -> Visitor:
    if method == "HEAD":
        return Visitor.PROBE
    return Visitor.BOT if is_bot(user_agent) else Visitor.PERSON


def _redirect(location: str) -> Response:
    return Response(status_code=302, headers={"location": location, "cache-control": "no-store"})


class TapEndpoint:
    """`GET`/`HEAD /{code}`, the recipients' tap, as a bare ASGI app.

    Taps are most of the traffic and each must land fast, so `ShortenerApp` hands them here
    before routing and middleware; this does the little they need itself: one store call
    (two for a tracked link), prebuilt headers, one metrics update and one log line. The path
    may go on past the code (see `CodeCodec.decode_leading`).
    """

    ROUTE = "/{code}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status: int = 500
        headers: list[tuple[bytes, bytes]] = []
        body = b""
        try:
            status, headers, body = await self._answer(scope)
        except StoreUnavailable as error:
            log.warning("store unavailable: %s", error)
            status, headers, body = _error_parts(scope, 503, _STORE_DOWN, {"retry-after": "1"})
        except HTTPProblem as problem:
            status, headers, body = _error_parts(
                scope, problem.status, problem.detail, problem.headers
            )
        except Exception:
            _log_unexpected(scope["method"], self.ROUTE, request_id)
            status, headers, body = _error_parts(scope, 500, _UNEXPECTED)
        finally:
            headers.append((b"x-request-id", request_id.encode()))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            elapsed = time.perf_counter() - started
            record_request(self.ROUTE, scope["method"], status, elapsed, request_id)

    async def _answer(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        runtime: Runtime = scope["app"].state.runtime
        shortener = await runtime.shortener()
        path = scope["path"][1:]
        client = runtime.clients.of(scope)
        code = shortener.find_code(path)
        if code is not None:
            visitor = _visitor_of(scope["method"], _header(scope, b"user-agent"))
            result = await shortener.tap(code, visitor)
        elif runtime.throttle.blocked(client):
            raise HTTPProblem(
                429,
                "too many taps on unknown links from this address",
                headers={"retry-after": "60"},
            )
        else:
            # Answered without the store, and without classifying the agent either.
            result = Tap(TapOutcome.UNKNOWN)
        if result.outcome is TapOutcome.REDIRECT and result.link is not None:
            location = result.link.target.encode()
            return 302, [(b"location", location), (b"cache-control", b"no-store")], b""
        runtime.throttle.miss(client)
        if result.outcome is TapOutcome.EXPIRED:
            return _error_parts(scope, 410, "this short link has expired", page=EXPIRED_PAGE)
        return _error_parts(
            scope, 404, "no short link was issued under this code", page=NOT_FOUND_PAGE
        )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _error_parts(
    scope: Scope,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    page: bytes | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error on a public route, as status, headers and body for a bare ASGI answer."""
    response = _error_response(scope, status, detail, headers, page=page, public=True)
    raw = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    return status, raw, bytes(response.body)


def _error_response(
    scope: Scope,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    page: bytes | None = None,
    public: bool | None = None,
) -> Response:
    """problem+json; or, on a public route (by default: when the route's endpoint is one)
    and for a client that asks for HTML, a page for people."""
    if public is None:
        endpoint = scope.get("endpoint")
        public = endpoint in _PUBLIC_ENDPOINTS or isinstance(endpoint, TapEndpoint)
    if public and wants_html(_header(scope, b"accept")):
        return Response(
            page or page_for(status),
            status_code=status,
            headers={
                **(headers or {}),
                "cache-control": "no-store",
                "content-type": PAGE_MEDIA_TYPE,
            },
        )
    return problem_response(status, detail, headers)


def _log_unexpected(method: str, route: str, request_id: str) -> None:
    # The route template, never the path: a path may hold a contact's id.
    log.exception(
        "unexpected error on %s %s", method, route, extra={"fields": {"request_id": request_id}}
    )


async def follow_tracked(request: Request) -> Response:
    runtime = _runtime(request)
    query = request.query_params
    # An empty value is what a query cut right after its '=' leaves: as good as none.
    target, digest, written_version = (
        query.get(name) or None for name in ("targetUrl", "digest", "secretVersion")
    )
    version = None
    if written_version is not None:
        version = whole_number(written_version)
        if version is None:
            raise HTTPProblem(400, "secretVersion must be a whole number")
    shortener = await runtime.shortener()
    org_hash = request.path_params["org_hash"]
    link_id = request.path_params["link_id"]
    if target is None or digest is None or version is None:
        location = await shortener.follow_cut(
            org_hash, link_id, _visitor(request), target=target, digest=digest, version=version
        )
    else:
        location = await shortener.follow(
            org_hash, link_id, target, digest, version, _visitor(request)
        )
    return _redirect(location)


async def open_pixel(request: Request) -> Response:
    runtime = _runtime(request)
    shortener = await runtime.shortener()
    await shortener.open(
        request.path_params["org_hash"], request.path_params["link_id"], _visitor(request)
    )
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


async def consent(request: Request) -> Response:
    if request.method == "PUT":
        return await set_consent(request)
    return await get_consent(request)


async def set_consent(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    contact_id = request.path_params["contact_id"]
    _check_contact_id(contact_id)
    consent = await _parse(request, ConsentRequest, runtime)
    shortener = await runtime.shortener()
    await shortener.recorder.set_consent(org, contact_id, consent.tracking)
    return Response(status_code=204)


async def get_consent(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    contact_id = request.path_params["contact_id"]
    _check_contact_id(contact_id)
    shortener = await runtime.shortener()
    return _json(await shortener.recorder.consent(org, contact_id))


def _check_contact_id(contact_id: str) -> None:
    if not 1 <= len(contact_id) <= 256:
        raise HTTPProblem(400, "contact_id must have 1 to 256 characters")


async def list_interactions(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    after = request.query_params.get("after") or None
    if after is not None:
        after = stream_cursor(after)
        if after is None:
            raise HTTPProblem(400, "after must be a cursor returned as 'next' by an earlier call")
    limit = whole_number(request.query_params.get("limit", "100"))
    if limit is None or not 1 <= limit <= 1000:
        raise HTTPProblem(400, "limit must be a whole number from 1 to 1000")
    shortener = await runtime.shortener()
    page = await shortener.recorder.page(org, after, limit)
    return _json(
        InteractionPage(
            interactions=[
                InteractionOut(
                    id=item.id,
                    type=INTERACTION_TYPES[item.type],  # type: ignore[arg-type]
                    at=datetime.fromtimestamp(int(item.id.split("-")[0]) / 1000, UTC),
                    link_id=item.link_id,
                    code=item.code,
                    message_id=item.message_id,
                    contact_id=item.contact_id,
                    url=item.url,
                    bot=item.bot,
                    campaign=item.campaign,
                )
                for item in page.interactions
            ],
            next=page.next,
        )
    )


async def link_details(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    link_id = request.path_params["code"]
    shortener = await runtime.shortener()
    report = await shortener.describe(link_id)
    info = None
    if report is not None and report.link is not None and report.link.org == org:
        info = link_info(report, runtime.settings.base_url, time.time())
    if info is None:
        raise HTTPProblem(404, f"no link {link_id!r} of yours is stored")
    return _json(info)


async def home(request: Request) -> Response:
    return _error_response(
        request.scope,
        404,
        "this service only forwards short links; open the complete link from the message",
        page=HOME_PAGE,
    )


async def healthz(request: Request) -> Response:
    return Response('{"status":"ok"}', media_type=JSON)


async def readyz(request: Request) -> Response:
    if await _runtime(request).store.ping():
        return Response('{"status":"ready"}', media_type=JSON)
    return problem_response(503, "Redis does not answer", {"retry-after": "1"})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(_runtime(request).settings.base_url))


async def metrics(request: Request) -> Response:
    key = _runtime(request).settings.metrics_key
    if key is not None and not holds_key(request.headers.get("authorization"), key):
        raise HTTPProblem(
            401,
            "send the metrics key as 'Authorization: Bearer KEY'",
            headers={"www-authenticate": "Bearer"},
        )
    return Response(exposition(), media_type=METRICS_CONTENT_TYPE)


# The routes people reach from a message; TapEndpoint is one too.
_PUBLIC_ENDPOINTS: frozenset[Callable[..., Any]] = frozenset({follow_tracked, open_pixel, home})


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPProblem)
    return _error_response(request.scope, exc.status, exc.detail, exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        detail = f"there is no resource at {request.url.path!r}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path!r}"
    else:
        detail = str(exc.detail)
    return _error_response(request.scope, exc.status_code, detail, dict(exc.headers or {}))


_CallerError = MessageConflict | TooManyLinks | BatchTooLarge | InvalidSignature


def _domain_problem(exc: _CallerError) -> tuple[int, str]:
    """The status and detail of an error of the domain that the caller made."""
    if isinstance(exc, MessageConflict):
        return 409, str(exc)
    if isinstance(exc, TooManyLinks):
        return 422, str(exc)
    if isinstance(exc, BatchTooLarge):
        return 413, str(exc)
    return 400, "this tracked link is not valid: " + str(exc)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, _CallerError):
        return _error_response(request.scope, *_domain_problem(exc))
    if isinstance(exc, ShortenLimitReached):
        retry_after = {"retry-after": str(exc.retry_after_seconds)}
        return _error_response(request.scope, 429, str(exc), retry_after)
    log.warning("store unavailable: %s", exc)
    return _error_response(request.scope, 503, _STORE_DOWN, {"retry-after": "1"})


class UnexpectedErrors:
    """Answers an exception that no handler took with a 500, and logs it once, with the
    request id its answer carries. Left to Starlette, the error would be logged by its
    handler, raised again to the server and logged there a second time."""

    def __init__(self, app: ASGIApp, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            _log_unexpected(scope["method"], self.route_of(scope), request_id_of(scope))
            # Once an answer has begun, the server can only cut the connection.
            if not started:
                await _error_response(scope, 500, _UNEXPECTED)(scope, receive, send)


def _raw_path(scope: Scope) -> str:
    """The path as the client sent it, still percent-encoded, without the root path."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        # The server kept only the decoded path: encoded again, it decodes to itself.
        return quote(scope["path"], safe="/")
    path = raw.decode("latin-1")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _segment(raw: str) -> str:
    """One path segment, percent-decoded once."""
    if raw.isascii() and "%" not in raw:
        return raw
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPProblem(400, "a path segment is not UTF-8 once percent-decoded") from None


class SegmentRoute(Route):
    """A route matched on the path as sent, so that an encoded '/' (`%2F`) stays inside its
    path parameter; each parameter is then percent-decoded once (`%252F` names `%2F`)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        match = self.path_regex.match(_raw_path(scope))
        if match is None:
            return Match.NONE, {}
        path_params = dict(scope.get("path_params", {}))
        for name, raw in match.groupdict().items():
            path_params[name] = self.param_convertors[name].convert(_segment(raw))
        child_scope = {"endpoint": self.endpoint, "path_params": path_params}
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope


def _on_raw_path(route: BaseRoute) -> BaseRoute:
    if type(route) is not Route:
        return route
    return SegmentRoute(
        route.path,
        route.endpoint,
        methods=route.methods,
        name=route.name,
        include_in_schema=route.include_in_schema,
    )


# nginx's status for a request its client abandoned: there is no one left to answer, and it
# tells the access log and the metrics what became of the request.
CLIENT_CLOSED_REQUEST = 499


async def _on_client_gone(request: Request, exc: Exception) -> Response:
    # The client closed the connection before its body was complete: nothing was stored,
    # and nothing is wrong with the service. (No path: logs name routes, never raw paths.)
    log.debug("client left before its request body was complete")
    return Response(status_code=CLIENT_CLOSED_REQUEST)


class ShortenerApp(Starlette):
    """Starlette, with taps sent straight to their endpoint, and every route matched as a
    `SegmentRoute`.

    A tap is a GET or HEAD whose first path segment names no other route: `/CODE`, and also
    `/CODE/…`, since phones take what follows a link into it.
    """

    def __init__(self, tap: TapEndpoint, routes: Sequence[BaseRoute], **kwargs: Any):
        routes = [_on_raw_path(route) for route in routes]
        super().__init__(routes=routes, **kwargs)
        self._tap = tap
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
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and self._is_tap(scope):
            scope["app"] = self
            await self._tap(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app; `settings` defaults to the configuration (file and environment)."""
    configured = with_credentials(settings or load_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(configured) as runtime:
            app.state.runtime = runtime
            # What exists now lives as long as the process: keep the collector off it, and
            # collect less often, so that no tap waits for a full pass over the heap.
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 50, 100)
            yield

    tap = TapEndpoint()
    routes = [
        Route("/", home, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/links/{code}", link_details, methods=["GET"]),
        Route("/v1/messages/shorten", shorten, methods=["POST"]),
        Route("/v1/messages/batch", shorten_batch, methods=["POST"]),
        Route("/v1/contacts/{contact_id}/consent", consent, methods=["GET", "PUT"]),
        Route("/v1/interactions", list_interactions, methods=["GET"]),
        Route("/api/orgs/{org_hash}/r/{link_id}", follow_tracked, methods=["GET", "HEAD"]),
        Route("/api/orgs/{org_hash}/o/{link_id}", open_pixel, methods=["GET", "HEAD"]),
        Route(TapEndpoint.ROUTE, tap, methods=["GET", "HEAD"]),
    ]
    app = ShortenerApp(
        tap,
        routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPProblem: _on_problem,
            HTTPException: _on_http_exception,
            MessageConflict: _on_domain_error,
            TooManyLinks: _on_domain_error,
            BatchTooLarge: _on_domain_error,
            ShortenLimitReached: _on_domain_error,
            InvalidSignature: _on_domain_error,
            StoreUnavailable: _on_domain_error,
            ClientDisconnect: _on_client_gone,
        },
    )
    # A trailing-slash redirect would send taps of mangled codes somewhere else than 404.
    app.router.redirect_slashes = False
    route_of = route_namer({route.endpoint: route.path for route in routes})
    # Added first, so that it runs inside the observability middleware: the 500 it answers
    # is counted and logged as a request, with the request id.
    app.add_middleware(UnexpectedErrors, route_of=route_of)
    app.add_middleware(ObservabilityMiddleware, route_of=route_of)
    return app
