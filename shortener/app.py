"""The HTTP layer: parse requests, call the domain, shape responses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shortener import embedded
from shortener.auth import ApiKeys
from shortener.codes import CodeCodec
from shortener.config import Settings, load_settings
from shortener.credentials import with_credentials
from shortener.links import LinkPolicy, MessageConflict, Shortener, TapOutcome, UnsupportedContent
from shortener.pages import EXPIRED_PAGE, NOT_FOUND_PAGE
from shortener.problems import HTTPProblem, problem_response
from shortener.schemas import BatchRequest, BatchResult, ShortenRequest
from shortener.store import Store, StoreUnavailable, connect

log = logging.getLogger("shortener")
M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
_HTML_HEADERS = {"cache-control": "no-store"}


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


async def tap(request: Request) -> Response:
    services = _services(request)
    result = await services.shortener.tap(request.path_params["code"])
    if result.outcome is TapOutcome.REDIRECT and result.link is not None:
        return Response(
            status_code=302,
            headers={"location": result.link.target, "cache-control": "no-store"},
        )
    if result.outcome is TapOutcome.EXPIRED:
        return Response(EXPIRED_PAGE, 410, _HTML_HEADERS, "text/html; charset=utf-8")
    return Response(NOT_FOUND_PAGE, 404, _HTML_HEADERS, "text/html; charset=utf-8")


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
    if isinstance(exc, UnsupportedContent):
        return problem_response(422, str(exc))
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
            codec = CodeCodec(await store.code_secret())
            policy = LinkPolicy(
                base_url=configured.base_url,
                ttl_seconds=configured.link_ttl_seconds,
                schemeless_scheme=configured.schemeless_scheme,
                http_only_hosts=configured.http_only_hosts,
            )
            app.state.services = Services(
                configured, store, Shortener(store, codec, policy), ApiKeys(configured.api_keys)
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
        Route("/{code}", tap, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPProblem: _on_problem,
            HTTPException: _on_http_exception,
            MessageConflict: _on_domain_error,
            UnsupportedContent: _on_domain_error,
            StoreUnavailable: _on_domain_error,
            Exception: _on_unexpected,
        },
    )
    # A trailing-slash redirect would send taps of mangled codes somewhere else than 404.
    app.router.redirect_slashes = False
    return app
