"""`GET /v1/interactions`: the org's clicks and opens, a page at a time, narrowed by filters."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.interactions import InteractionFilter
from shortener.domain.limits import (
    DEFAULT_PAGE,
    MAX_CAMPAIGN_LENGTH,
    MAX_ID_LENGTH,
    MAX_PAGE,
    MIN_PAGE,
)
from shortener.http import errors, requests
from shortener.http.responses import json_response
from shortener.model import InteractionType
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
    only = _filter(request)
    services = await requests.services(request)
    return json_response(await services.recorder.page(org, after, limit, only))


def _filter(request: Request) -> InteractionFilter:
    query = request.query_params
    values: dict[str, str | None] = {}
    for name, longest in (
        ("campaign", MAX_CAMPAIGN_LENGTH),
        ("contact_id", MAX_ID_LENGTH),
        ("message_id", MAX_ID_LENGTH),
    ):
        value = query.get(name) or None
        if value is not None and len(value) > longest:
            raise errors.FILTER_INVALID(name=name, what=f"at most {longest} characters")
        values[name] = value
    kind = query.get("type")
    if kind is not None and kind not in INTERACTION_TYPES:
        raise errors.FILTER_INVALID(name="type", what="click or open")
    return InteractionFilter(**values, type=None if kind is None else InteractionType(kind))


INTERACTION_TYPES = frozenset(kind.value for kind in InteractionType)
