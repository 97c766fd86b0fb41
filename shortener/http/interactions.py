"""`GET /v1/interactions`: the org's clicks and opens, a page at a time."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.limits import DEFAULT_PAGE, MAX_PAGE, MIN_PAGE
from shortener.http import errors, requests
from shortener.http.responses import json_response
from shortener.text.parsing import stream_cursor, whole_number


async def list_interactions(request: Request) -> Response:
    org = requests.org(request)
    after = request.query_params.get("after") or None
    if after is not None:
        after = stream_cursor(after)
        if after is None:
            raise errors.CURSOR()
    limit = whole_number(request.query_params.get("limit", str(DEFAULT_PAGE)))
    if limit is None or not MIN_PAGE <= limit <= MAX_PAGE:
        raise errors.PAGE_LIMIT()
    services = await requests.services(request)
    return json_response(await services.recorder.page(org, after, limit))
