"""The dashboard's pages: each reads what it shows from the domain's services and renders it.

Without a session a page sends the browser to the sign-in form; every form posts a CSRF token
that must be the session's, from a page of this origin. An admin picks the org a page shows
(`?org=`); an org's key sees its own org only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from shortener.domain.analytics import Interval
from shortener.domain.limits import MAX_ID_LENGTH, MAX_TAKEDOWN_REASON_LENGTH
from shortener.domain.org_keys import UnknownKey, key_digest
from shortener.domain.settling import BURST_MS
from shortener.domain.tenancy import DomainTaken, InvalidOrgId, OrgChanges
from shortener.http import requests
from shortener.http.dashboard import charts
from shortener.http.dashboard.rendering import (
    form,
    identify,
    problem_page,
    render,
    same_origin,
    see_other,
    session_of,
    sessions,
)
from shortener.http.dashboard.sessions import Session, Sessions
from shortener.model import BotReason
from shortener.runtime import Services
from shortener.store.analytics import DAY_SECONDS, HOUR_SECONDS

# The overview's ranges: name -> (what it covers, bucket, buckets).
SPANS = {
    "24h": ("the last 24 hours", Interval.HOUR, 24),
    "7d": ("the last 7 days", Interval.DAY, 7),
    "30d": ("the last 30 days", Interval.DAY, 30),
    "365d": ("the last 365 days", Interval.DAY, 365),
}
DEFAULT_SPAN = "7d"
EXPIRING_DAYS = 30
TOTALS = [
    ("clicks", "Clicks"),
    ("opens", "Opens"),
    ("bot_clicks", "Bot clicks"),
    ("anonymous_clicks", "Anonymous clicks"),
    ("taps", "Taps on untracked links"),
]
# What the overview says of each reason a machine's interaction was not counted.
REASONS: dict[BotReason, tuple[str, str]] = {
    "user_agent": ("Previews, crawlers and scripts", "known by their user agent"),
    "prefetch": ("Apple Mail prefetches", "Mail Privacy Protection fetching the pixel"),
    "honeypot": ("Mail scanners", "the message's hidden link was fetched"),
    "burst": (
        "Bursts",
        f"another link of the message clicked within {BURST_MS / 1000:g} seconds",
    ),
    "too_soon": ("Too soon", "clicked sooner after sending than a person could"),
}
# The overview chart's lines: field, legend, CSS class.
LINES = [
    ("clicks", "Clicks", "clicks"),
    ("opens", "Opens", "opens"),
    ("bot_clicks", "Bot clicks", "bots"),
]
# What a page says after a form did its work (`?done=`).
NOTICES = {
    "disabled": "The link is disabled: it now answers 410 and records nothing.",
    "replayed": "The failed events are scheduled to be sent again.",
    "revoked": "The key is revoked.",
    "saved": "The org is saved.",
}
STALE_FORM = (
    "The form had expired or did not come from this dashboard: reload the page and try again."
)
WRONG_KEY = "That key is neither an org's key nor an admin key of this service."
NO_SUCH_LINK = "No link of yours has this code."
UNKNOWN_RANGE = "The range is not one this page shows."
ADMINS_ONLY = "Only an admin key may see this page."
NO_SUCH_ENDPOINT = "There is no webhook endpoint of that name."
NO_SUCH_ORG = "There is no org of that name."
REASON_TOO_LONG = f"A reason has at most {MAX_TAKEDOWN_REASON_LENGTH} characters."
MAX_KEY_LENGTH = 512

Handler = Callable[[Request], Awaitable[Response]]


def signed_in(page: Callable[[Request, Session], Awaitable[Response]]) -> Handler:
    """A page for signed-in sessions only: others are sent to sign in."""

    async def handler(request: Request) -> Response:
        session = await session_of(request)
        if not session.signed_in:
            return see_other("overview")
        return await page(request, session)

    return handler


def posted(page: Callable[[Request, Session, dict[str, str]], Awaitable[Response]]) -> Handler:
    """A form of a signed-in session: refused (403) unless it carries the session's CSRF token,
    from a page of this origin."""

    async def handler(request: Request) -> Response:
        session = await session_of(request)
        fields = await form(request)
        if fields is None or not same_origin(request) or not session.holds(fields.get("csrf")):
            return await problem_page(request, session, 403, STALE_FORM)
        if not session.signed_in:
            return see_other("overview")
        return await page(request, session, fields)

    return handler


async def shown_org(
    session: Session, services: Services, asked: str | None
) -> tuple[str | None, list[str]]:
    """The org a page shows (an org key's own; for an admin the one asked for, else the first)
    and, for an admin, every org to pick from."""
    if not session.admin:
        return session.org, []
    names = await services.tenancy.names()
    if asked in names:
        return asked, names
    return (names[0] if names else None), names


def notice_of(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def admin_org(session: Session, fields: dict[str, str]) -> str | None:
    """The org a form names, for an admin; None (the session's own org) otherwise."""
    return fields.get("org") if session.admin else None


# Signing in and out


async def home(request: Request) -> Response:
    session = await session_of(request)
    if session.signed_in:
        return await overview(request, session)
    return await _sign_in_form(request, session)


async def _sign_in_form(
    request: Request, session: Session, problem: str | None = None, status: int = 200
) -> Response:
    context = {"title": "Sign in", "problem": problem, "max_key_length": MAX_KEY_LENGTH}
    return await render(request, session, "sign_in.html", context, status=status)


async def sign_in(request: Request) -> Response:
    session = await session_of(request)
    fields = await form(request)
    if fields is None or not same_origin(request) or not session.holds(fields.get("csrf")):
        return await problem_page(request, session, 403, STALE_FORM)
    key = fields.get("key", "")
    digest = key_digest(key) if 0 < len(key) <= MAX_KEY_LENGTH else None
    identity = None if digest is None else identify(request, digest)
    if digest is None or identity is None:
        return await _sign_in_form(request, session, WRONG_KEY, 401)
    # A new session, and with it a new CSRF token, for whoever signed in.
    response = see_other("overview")
    (await sessions(request)).send(request, response, Sessions.new(digest, identity))
    return response


async def sign_out(request: Request, session: Session, fields: dict[str, str]) -> Response:
    response = see_other("overview")
    (await sessions(request)).send(request, response, Sessions.new())
    return response


# Overview


def bucket_name(start: datetime, interval: Interval, *, short: bool = False) -> str:
    """A bucket's name in the tables; `short`, along a chart's time axis."""
    if interval is Interval.HOUR:
        return start.strftime("%m-%d %H:00" if short else "%Y-%m-%d %H:00")
    return start.strftime("%Y-%m-%d")


async def overview(request: Request, session: Session) -> Response:
    span = request.query_params.get("range", DEFAULT_SPAN)
    if span not in SPANS:
        return await problem_page(request, session, 400, UNKNOWN_RANGE)
    services = await requests.services(request)
    org, orgs = await shown_org(session, services, request.query_params.get("org"))
    covered, interval, buckets = SPANS[span]
    context: dict[str, Any] = {
        "title": "Overview",
        "current": "overview",
        "org": org,
        "orgs": orgs,
        "span": span,
        "spans": [(name, name) for name in SPANS],
        "span_label": covered,
        "totals_labels": TOTALS,
    }
    if org is not None:
        step = HOUR_SECONDS if interval is Interval.HOUR else DAY_SECONDS
        # The buckets up to and with the current one.
        end = (int(services.analytics.clock()) // step + 1) * step
        start_at = datetime.fromtimestamp(end - buckets * step, UTC)
        end_at = datetime.fromtimestamp(end, UTC)
        counted = await services.analytics.series(org, start_at, end_at, interval, None)
        series = counted.series
        names = [bucket_name(bucket.start, interval) for bucket in series]
        context |= {
            "reasons": [(*REASONS[row.reason], row) for row in counted.bot_reasons],
            "rows": list(zip(names, series, strict=True)),
            "bucket_label": "Hour (UTC)" if interval is Interval.HOUR else "Day (UTC)",
            "totals": {name: sum(getattr(b, name) for b in series) for name, _ in TOTALS},
            "campaigns": (await services.analytics.campaigns(org, start_at, end_at)).campaigns,
            "over_time": charts.line_chart(
                f"Clicks, opens and bot clicks per {interval.value}, {covered}",
                [bucket_name(bucket.start, interval, short=True) for bucket in series],
                [
                    charts.Line(legend, css, [getattr(bucket, name) for bucket in series])
                    for name, legend, css in LINES
                ],
            ),
        }
    return await render(request, session, "overview.html", context)


# A link by code


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


async def link(request: Request, session: Session) -> Response:
    services = await requests.services(request)
    code = request.query_params.get("code") or None
    context: dict[str, Any] = {
        "title": "Link",
        "current": "link",
        "code": code,
        "max_code_length": MAX_ID_LENGTH,
        "max_reason_length": MAX_TAKEDOWN_REASON_LENGTH,
        "notice": notice_of(request),
    }
    if code is None:
        return await render(request, session, "link.html", context)
    found = await services.lookup.link_info(code) if len(code) <= MAX_ID_LENGTH else None
    if found is None or not (session.admin or found[0] == session.org):
        context["problem"] = NO_SUCH_LINK
        return await render(request, session, "link.html", context, status=404)
    owner, info = found
    fields = [("org", owner)] if session.admin else []
    fields += [(name, _shown(value)) for name, value in info.model_dump(mode="json").items()]
    context |= {"link": info, "link_fields": fields}
    return await render(request, session, "link.html", context)


async def disable(request: Request, session: Session, fields: dict[str, str]) -> Response:
    code = fields.get("code", "")
    reason = fields.get("reason", "").strip() or None
    if reason is not None and len(reason) > MAX_TAKEDOWN_REASON_LENGTH:
        return await problem_page(request, session, 400, REASON_TOO_LONG)
    services = await requests.services(request)
    # An admin may take down any org's link; an org its own only.
    org = None if session.admin else session.org
    if not 0 < len(code) <= MAX_ID_LENGTH or not await services.takedown.disable(code, org, reason):
        return await problem_page(request, session, 404, NO_SUCH_LINK)
    return see_other("link", code=code, done="disabled")


# Expiring soon


async def expiring(request: Request, session: Session) -> Response:
    services = await requests.services(request)
    org, orgs = await shown_org(session, services, request.query_params.get("org"))
    context: dict[str, Any] = {"title": "Expiring soon", "current": "expiring", "org": org}
    context["orgs"] = orgs
    if org is not None:
        days = await services.lookup.expiring_by_day(org, EXPIRING_DAYS)
        names = [day.isoformat() for day, _ in days]
        context |= {
            "days": list(zip(names, (count for _, count in days), strict=True)),
            "total": sum(count for _, count in days),
            "by_day": charts.bar_chart(
                f"Codes expiring per day (UTC), the next {EXPIRING_DAYS} days",
                names,
                [count for _, count in days],
            ),
        }
    return await render(request, session, "expiring.html", context)


# Webhooks


async def webhooks(request: Request, session: Session) -> Response:
    services = await requests.services(request)
    org, orgs = await shown_org(session, services, request.query_params.get("org"))
    endpoints = [] if org is None else (await services.webhooks.all(org)).webhooks
    context = {
        "title": "Webhooks",
        "current": "webhooks",
        "org": org,
        "orgs": orgs,
        "endpoints": endpoints,
        "notice": notice_of(request),
    }
    return await render(request, session, "webhooks.html", context)


async def replay(request: Request, session: Session, fields: dict[str, str]) -> Response:
    services = await requests.services(request)
    org, _ = await shown_org(session, services, admin_org(session, fields))
    name = fields.get("name", "")
    if org is None or await services.webhooks.find(org, name) is None:
        return await problem_page(request, session, 404, NO_SUCH_ENDPOINT)
    await services.webhooks.replay(org, name)
    return see_other("webhooks", org=org if session.admin else None, done="replayed")


# Orgs, domains and keys (admin)


def admins_only(
    page: Callable[[Request, Session, dict[str, str]], Awaitable[Response]],
) -> Callable[[Request, Session, dict[str, str]], Awaitable[Response]]:
    async def checked(request: Request, session: Session, fields: dict[str, str]) -> Response:
        if not session.admin:
            return await problem_page(request, session, 403, ADMINS_ONLY)
        return await page(request, session, fields)

    return checked


async def orgs(request: Request, session: Session) -> Response:
    if not session.admin:
        return await problem_page(request, session, 403, ADMINS_ONLY)
    return await _orgs_page(request, session, {"notice": notice_of(request)})


async def _orgs_page(
    request: Request, session: Session, context: dict[str, Any], status: int = 200
) -> Response:
    services = await requests.services(request)
    every = await services.tenancy.all()
    keys = {org.org: (await services.org_keys.list(org.org)).keys for org in every}
    page = {"title": "Orgs", "current": "orgs", "orgs": every, "keys": keys, **context}
    return await render(request, session, "orgs.html", page, status=status)


@admins_only
async def create_key(request: Request, session: Session, fields: dict[str, str]) -> Response:
    services = await requests.services(request)
    org = fields.get("org", "")
    if org not in await services.tenancy.names():
        return await problem_page(request, session, 404, NO_SUCH_ORG)
    made = await services.org_keys.create(org)
    # Shown this once, on the page the form answers: never in a URL.
    return await _orgs_page(request, session, {"new_key": {"org": org, "key": made.key}})


@admins_only
async def revoke_key(request: Request, session: Session, fields: dict[str, str]) -> Response:
    services = await requests.services(request)
    try:
        await services.org_keys.revoke(fields.get("org", ""), fields.get("key_id", ""))
    except UnknownKey as error:
        return await problem_page(request, session, 404, str(error))
    return see_other("orgs", done="revoked")


@admins_only
async def save_org(request: Request, session: Session, fields: dict[str, str]) -> Response:
    services = await requests.services(request)
    domains = [name.strip() for name in fields.get("domains", "").split(",") if name.strip()]
    try:
        changes = OrgChanges(domains=domains)
        await services.tenancy.put(fields.get("org", ""), changes)
    except ValidationError as error:
        problem = "; ".join(item["msg"] for item in error.errors(include_url=False))
        return await _orgs_page(request, session, {"problem": problem}, status=400)
    except (DomainTaken, InvalidOrgId) as error:
        return await _orgs_page(request, session, {"problem": str(error)}, status=400)
    return see_other("orgs", done="saved")
