"""The HTTP layer: parse requests, call the domain, shape responses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shortener import embedded
from shortener.auth import ApiKeys
from shortener.bots import is_bot
from shortener.codes import CodeCodec
from shortener.config import Settings, load_settings
from shortener.credentials import with_credentials
from shortener.interactions import INTERACTION_TYPES, ClickRecorder, Visitor
from shortener.links import InvalidSignature, LinkPolicy, MessageConflict, Shortener, TapOutcome
from shortener.pages import EXPIRED_PAGE, NOT_FOUND_PAGE
from shortener.problems import HTTPProblem, problem_response
from shortener.schemas import (
    BatchRequest,
    BatchResult,
    ConsentRequest,
    InteractionOut,
    InteractionPage,
    ShortenRequest,
)
from shortener.signing import LinkSigner
from shortener.store import Store, StoreUnavailable, connect

log = logging.getLogger("shortener")
M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
_HTML_HEADERS = {"cache-control": "no-store"}
_NO_STORE = {
    "cache-control": "no-store, no-cache, must-revalidate, max-age=0",
    "pragma": "no-cache",
}
_CURSOR = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
# The smallest transparent GIF: 1x1, one transparent colour.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    shortener: Shortener
    api_keys: ApiKeys


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _org(request: Request, services: Services) -> str:
    org = services.api_keys.org_for(request.headers.get("authorization"))
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


async def _parse(request: Request, model: type[M], services: Services) -> M:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise HTTPProblem(415, "send the body as JSON with 'Content-Type: application/json'")
    body = await _body(request, services.settings.max_body_bytes)
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
    services = _services(request)
    org = _org(request, services)
    message = await _parse(request, ShortenRequest, services)
    return _json(await services.shortener.shorten(org, message))


async def shorten_batch(request: Request) -> Response:
    services = _services(request)
    org = _org(request, services)
    batch = await _parse(request, BatchRequest, services)
    results = await services.shortener.shorten_many(org, batch.messages)
    return _json(BatchResult(results=results))


def _visitor(request: Request) -> Visitor:
    if request.method == "HEAD":
        return Visitor.PROBE
    return Visitor.BOT if is_bot(request.headers.get("user-agent", "")) else Visitor.PERSON


def _redirect(location: str) -> Response:
    return Response(status_code=302, headers={"location": location, "cache-control": "no-store"})


async def tap(request: Request) -> Response:
    services = _services(request)
    result = await services.shortener.tap(request.path_params["code"], _visitor(request))
    if result.outcome is TapOutcome.REDIRECT and result.link is not None:
        return _redirect(result.link.target)
    if result.outcome is TapOutcome.EXPIRED:
        return Response(EXPIRED_PAGE, 410, _HTML_HEADERS, "text/html; charset=utf-8")
    return Response(NOT_FOUND_PAGE, 404, _HTML_HEADERS, "text/html; charset=utf-8")


async def follow_tracked(request: Request) -> Response:
    services = _services(request)
    query = request.query_params
    target, digest, version = (query.get(k) for k in ("targetUrl", "digest", "secretVersion"))
    if not target or not digest or not version:
        raise HTTPProblem(400, "a tracked link needs targetUrl, digest and secretVersion")
    if not version.isdigit() or len(version) > 9:
        raise HTTPProblem(400, "secretVersion must be a whole number")
    location = await services.shortener.follow(
        request.path_params["org_hash"],
        request.path_params["link_id"],
        target,
        digest,
        int(version),
        _visitor(request),
    )
    return _redirect(location)


async def open_pixel(request: Request) -> Response:
    services = _services(request)
    await services.shortener.open(
        request.path_params["org_hash"], request.path_params["link_id"], _visitor(request)
    )
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


async def set_consent(request: Request) -> Response:
    services = _services(request)
    org = _org(request, services)
    contact_id = request.path_params["contact_id"]
    if not 1 <= len(contact_id) <= 256:
        raise HTTPProblem(400, "contact_id must have 1 to 256 characters")
    consent = await _parse(request, ConsentRequest, services)
    await services.shortener.recorder.set_consent(org, contact_id, consent.tracking)
    return Response(status_code=204)


async def list_interactions(request: Request) -> Response:
    services = _services(request)
    org = _org(request, services)
    after = request.query_params.get("after") or None
    if after is not None and not _CURSOR.match(after):
        raise HTTPProblem(400, "after must be a cursor returned as 'next' by an earlier call")
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise HTTPProblem(400, "limit must be a whole number from 1 to 1000")
    page = await services.shortener.recorder.page(org, after, int(raw_limit))
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


async def healthz(request: Request) -> Response:
    return Response('{"status":"ok"}', media_type=JSON)


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


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app; `settings` defaults to the configuration (file and environment)."""
    configured = with_credentials(settings or load_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server = None
        url = configured.redis_url
        if url is None:
            server = await asyncio.to_thread(embedded.attach_or_start, configured.data_dir)
            url = server.url
        store = connect(
            url, cluster=configured.redis_cluster, timeout=configured.redis_timeout_seconds
        )
        try:
            refused = await store.tune()
            if refused:
                log.warning(
                    "Redis refused CONFIG SET %s; links will use more memory", ", ".join(refused)
                )
            policy = LinkPolicy(
                base_url=configured.base_url,
                ttl_seconds=configured.link_ttl_seconds,
                schemeless_scheme=configured.schemeless_scheme,
                http_only_hosts=configured.http_only_hosts,
            )
            secret = await store.code_secret()
            signer = LinkSigner(configured.signing_keys, secret, configured.base_url)
            recorder = ClickRecorder(
                store,
                window_seconds=configured.tracking_window_seconds,
                retain_seconds=max(configured.link_ttl_seconds, configured.tracking_window_seconds),
            )
            shortener = Shortener(store, CodeCodec(secret), signer, recorder, policy)
            await shortener.remember_orgs(set(configured.api_keys.values()))
            app.state.services = Services(
                configured, store, shortener, ApiKeys(configured.api_keys)
            )
            yield
        finally:
            await store.close()
            if server is not None:
                await asyncio.to_thread(server.stop)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/messages/shorten", shorten, methods=["POST"]),
        Route("/v1/messages/batch", shorten_batch, methods=["POST"]),
        Route("/v1/contacts/{contact_id}/consent", set_consent, methods=["PUT"]),
        Route("/v1/interactions", list_interactions, methods=["GET"]),
        Route("/api/orgs/{org_hash}/r/{link_id}", follow_tracked, methods=["GET", "HEAD"]),
        Route("/api/orgs/{org_hash}/o/{link_id}", open_pixel, methods=["GET", "HEAD"]),
        Route("/{code}", tap, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
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
    return app
