"""`GET /v1/analytics` and `GET /v1/analytics/campaigns`: the org's aggregate counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.analytics import Analytics, Interval
from shortener.domain.limits import MAX_CAMPAIGN_LENGTH, MAX_TIME_LENGTH
from shortener.http import errors, requests
from shortener.http.responses import json_response

# ASCII only: `fromisoformat` alone would take other scripts' digits.
_ISO_TIME = re.compile(r"[0-9][0-9:.+TZtz -]*")
INTERVALS = frozenset(interval.value for interval in Interval)


def _time(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name) or None
    if value is None:
        return None
    try:
        if len(value) > MAX_TIME_LENGTH or _ISO_TIME.fullmatch(value) is None:
            raise ValueError(value)
        at = datetime.fromisoformat(value)
        # A time without an offset is UTC, as every bucket is.
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        at.timestamp()
    except (ValueError, OverflowError, OSError):
        raise errors.ANALYTICS_QUERY(name=name, what="an ISO 8601 date or time") from None
    return at


def _range(request: Request, analytics: Analytics, interval: Interval) -> tuple[datetime, datetime]:
    start, end = analytics.default_range(interval, _time(request, "from"), _time(request, "to"))
    if start >= end:
        raise errors.ANALYTICS_QUERY(name="from", what="before to")
    return start, end


async def series(request: Request) -> Response:
    org = requests.org(request)
    name = request.query_params.get("interval", Interval.DAY.value)
    if name not in INTERVALS:
        raise errors.ANALYTICS_QUERY(name="interval", what="hour or day")
    interval = Interval(name)
    campaign = request.query_params.get("campaign") or None
    if campaign is not None and len(campaign) > MAX_CAMPAIGN_LENGTH:
        raise errors.ANALYTICS_QUERY(
            name="campaign", what=f"at most {MAX_CAMPAIGN_LENGTH} characters"
        )
    analytics = (await requests.services(request)).analytics
    start, end = _range(request, analytics, interval)
    return json_response(await analytics.series(org, start, end, interval, campaign))


async def campaigns(request: Request) -> Response:
    org = requests.org(request)
    analytics = (await requests.services(request)).analytics
    start, end = _range(request, analytics, Interval.DAY)
    return json_response(await analytics.campaigns(org, start, end))
