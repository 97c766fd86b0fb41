"""Health, readiness, metrics and the API description."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.http import errors, requests
from shortener.http.auth import holds_key
from shortener.http.responses import JSON
from shortener.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from shortener.metrics import exposition


async def healthz(request: Request) -> Response:
    return Response('{"status":"ok"}', media_type=JSON)


async def readyz(request: Request) -> Response:
    if await requests.runtime(request).ready():
        return Response('{"status":"ready"}', media_type=JSON)
    raise errors.NOT_READY()


async def metrics(request: Request) -> Response:
    key = requests.gate(request).settings.metrics_key
    if key is not None and not holds_key(request.headers.get("authorization"), key):
        raise errors.METRICS_KEY()
    return Response(exposition(), media_type=METRICS_CONTENT_TYPE)
