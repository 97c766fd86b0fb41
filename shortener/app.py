"""The HTTP layer: parse requests, call the domain, shape responses."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from shortener.bots import is_bot
from shortener.config import Settings, load_settings
from shortener.credentials import with_credentials
from shortener.interactions import INTERACTION_TYPES, Visitor
from shortener.links import InvalidSignature, MessageConflict, Tap, TapOutcome, link_info
from shortener.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from shortener.metrics import exposition
from shortener.observability import (
    ObservabilityMiddleware,
    record_request,
    request_id_of,
    route_namer,
)
from shortener.openapi import openapi_document
from shortener.pages import EXPIRED_PAGE, NOT_FOUND_PAGE
from shortener.problems import HTTPProblem, problem_response
from shortener.runtime import Runtime, open_runtime
from shortener.schemas import (
    BatchRequest,
    BatchResult,
    ConsentRequest,
    InteractionOut,
    InteractionPage,
    ShortenRequest,
)
from shortener.store import StoreUnavailable

log = logging.getLogger("shortener")
M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
_HTML_HEADERS = {"cache-control": "no-store"}
_NO_STORE = {
    "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
    "pragma": "no-cache",
}
_CURSOR = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_MAX_ID_PART = 2**64 - 1
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
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
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
        details.append(f"{where}: {item['msg']}")
    return HTTPProblem(422, "; ".join(details))


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
    shortener = await runtime.shortener()
    results = await shortener.shorten_many(org, batch.messages)
    return _json(BatchResult(results=results))


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
    (two for a tracked link), prebuilt headers, one metrics update and one log line.
    """

    ROUTE = "/{code}"
    _PAGE_HEADERS = (
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
    )

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
            status, headers, body = _problem_parts(
                503, "the link store is not answering; try again shortly", {"retry-after": "1"}
            )
        except HTTPProblem as problem:
            status, headers, body = _problem_parts(problem.status, problem.detail, problem.headers)
        except Exception:
            log.exception("unexpected error on a tap")
            status, headers, body = _problem_parts(500, "an unexpected error occurred")
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
        code = scope["path"][1:]
        client = scope["client"][0] if scope.get("client") else ""
        if shortener.issued(code):
            visitor = _visitor_of(scope["method"], _user_agent(scope))
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
            return 410, list(self._PAGE_HEADERS), EXPIRED_PAGE
        return 404, list(self._PAGE_HEADERS), NOT_FOUND_PAGE


def _user_agent(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            return str(value.decode("latin-1"))
    return ""


def _problem_parts(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    response = problem_response(status, detail, headers)
    raw = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    return status, raw, bytes(response.body)


async def follow_tracked(request: Request) -> Response:
    runtime = _runtime(request)
    query = request.query_params
    target, digest, version = (query.get(k) for k in ("targetUrl", "digest", "secretVersion"))
    if not target or not digest or not version:
        raise HTTPProblem(400, "a tracked link needs targetUrl, digest and secretVersion")
    if not version.isdigit() or len(version) > 9:
        raise HTTPProblem(400, "secretVersion must be a whole number")
    shortener = await runtime.shortener()
    location = await shortener.follow(
        request.path_params["org_hash"],
        request.path_params["link_id"],
        target,
        digest,
        int(version),
        _visitor(request),
    )
    return _redirect(location)


async def open_pixel(request: Request) -> Response:
    runtime = _runtime(request)
    shortener = await runtime.shortener()
    await shortener.open(
        request.path_params["org_hash"], request.path_params["link_id"], _visitor(request)
    )
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


async def set_consent(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    contact_id = request.path_params["contact_id"]
    if not 1 <= len(contact_id) <= 256:
        raise HTTPProblem(400, "contact_id must have 1 to 256 characters")
    consent = await _parse(request, ConsentRequest, runtime)
    shortener = await runtime.shortener()
    await shortener.recorder.set_consent(org, contact_id, consent.tracking)
    return Response(status_code=204)


def _is_cursor(text: str) -> bool:
    """A stream id that something can still come after: two 64-bit numbers, not both max."""
    if not _CURSOR.match(text):
        return False
    parts = [int(part) for part in text.split("-")]
    return all(part <= _MAX_ID_PART for part in parts) and parts != [_MAX_ID_PART] * 2


async def list_interactions(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    after = request.query_params.get("after") or None
    if after is not None and not _is_cursor(after):
        raise HTTPProblem(400, "after must be a cursor returned as 'next' by an earlier call")
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise HTTPProblem(400, "limit must be a whole number from 1 to 1000")
    shortener = await runtime.shortener()
    page = await shortener.recorder.page(org, after, int(raw_limit))
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
                )
                for item in page.interactions
            ],
            next=page.next,
        )
    )


async def link_details(request: Request) -> Response:
    runtime = _runtime(request)
    org = _org(request, runtime)
    code = request.path_params["code"]
    shortener = await runtime.shortener()
    report = await shortener.describe(code)
    info = None
    if report is not None and report.link is not None and report.link.org == org:
        info = link_info(report, runtime.settings.base_url, time.time())
    if info is None:
        raise HTTPProblem(404, f"no short code {code!r} of yours is stored")
    return _json(info)


async def healthz(request: Request) -> Response:
    return Response('{"status":"ok"}', media_type=JSON)


async def readyz(request: Request) -> Response:
    if await _runtime(request).store.ping():
        return Response('{"status":"ready"}', media_type=JSON)
    return problem_response(503, "Redis does not answer", {"retry-after": "1"})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(_runtime(request).settings.base_url))


async def metrics(request: Request) -> Response:
    return Response(exposition(), media_type=METRICS_CONTENT_TYPE)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPProblem)
    return problem_response(exc.status, exc.detail, exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        detail = f"there is no resource at {request.url.path!r}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path!r}"
    else:
        detail = str(exc.detail)
    return problem_response(exc.status_code, detail, dict(exc.headers or {}))


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, MessageConflict):
        return problem_response(409, str(exc))
    if isinstance(exc, InvalidSignature):
        return problem_response(400, "this tracked link is not valid: " + str(exc))
    log.warning("store unavailable: %s", exc)
    return problem_response(
        503, "the link store is not answering; try again shortly", {"retry-after": "1"}
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(500, "an unexpected error occurred; it has been logged")


class ShortenerApp(Starlette):
    """Starlette, with taps sent straight to their endpoint: a tap is a GET or HEAD of a
    single path segment that names no other route."""

    def __init__(self, tap: TapEndpoint, single_segment_routes: frozenset[str], **kwargs: Any):
        super().__init__(**kwargs)
        self._tap = tap
        self._single_segment_routes = single_segment_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if (
                len(path) > 1
                and path.find("/", 1) == -1
                and path not in self._single_segment_routes
            ):
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
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/links/{code}", link_details, methods=["GET"]),
        Route("/v1/messages/shorten", shorten, methods=["POST"]),
        Route("/v1/messages/batch", shorten_batch, methods=["POST"]),
        Route("/v1/contacts/{contact_id}/consent", set_consent, methods=["PUT"]),
        Route("/v1/interactions", list_interactions, methods=["GET"]),
        Route("/api/orgs/{org_hash}/r/{link_id}", follow_tracked, methods=["GET", "HEAD"]),
        Route("/api/orgs/{org_hash}/o/{link_id}", open_pixel, methods=["GET", "HEAD"]),
        Route(TapEndpoint.ROUTE, tap, methods=["GET", "HEAD"]),
    ]
    fixed = frozenset(r.path for r in routes if r.path.count("/") == 1 and "{" not in r.path)
    app = ShortenerApp(
        tap,
        fixed,
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPProblem: _on_problem,
            HTTPException: _on_http_exception,
            MessageConflict: _on_domain_error,
            InvalidSignature: _on_domain_error,
            StoreUnavailable: _on_domain_error,
            Exception: _on_unexpected,
        },
    )
    # A trailing-slash redirect would send taps of mangled codes somewhere else than 404.
    app.router.redirect_slashes = False
    app.add_middleware(
        ObservabilityMiddleware,
        route_of=route_namer({route.endpoint: route.path for route in routes}),
    )
    return app
