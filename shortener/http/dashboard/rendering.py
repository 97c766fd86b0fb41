"""What every dashboard page shares: where each page lives, the templates, the headers that
keep a page to its own origin, the session, and reading a form."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from shortener.http import requests
from shortener.http.dashboard.sessions import Identity, Session, Sessions
from shortener.http.problems import HTTPProblem

PREFIX = "/dashboard"
STATIC = f"{PREFIX}/static"
# Each page's path, named once: routes and templates both take them from here.
PATHS = {
    "overview": PREFIX,
    "sign_in": f"{PREFIX}/sign-in",
    "sign_out": f"{PREFIX}/sign-out",
    "link": f"{PREFIX}/link",
    "disable": f"{PREFIX}/link/disable",
    "expiring": f"{PREFIX}/expiring",
    "webhooks": f"{PREFIX}/webhooks",
    "replay": f"{PREFIX}/webhooks/replay",
    "orgs": f"{PREFIX}/orgs",
    "save_org": f"{PREFIX}/orgs/save",
    "create_key": f"{PREFIX}/orgs/keys",
    "revoke_key": f"{PREFIX}/orgs/keys/revoke",
}
NAVIGATION = [
    ("overview", "Overview"),
    ("link", "Link"),
    ("expiring", "Expiring"),
    ("webhooks", "Webhooks"),
]
ADMIN_NAVIGATION = [*NAVIGATION, ("orgs", "Orgs")]
# Nothing from another origin, no script at all, and no framing: the pages need none of it.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
# A dashboard form holds a few short fields.
MAX_FORM_BYTES = 16_384
MAX_FORM_FIELDS = 16

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def page_url(name: str, **query: Any) -> str:
    """A page's path, with the query values that are not None."""
    given = {key: value for key, value in query.items() if value is not None}
    return PATHS[name] + (f"?{urlencode(given)}" if given else "")


templates.env.globals.update(page=page_url, static=lambda name: f"{STATIC}/{name}")


def identify(request: Request, digest: bytes) -> Identity | None:
    """Who the key with this SHA-256 is now: an admin, an org, or (revoked) no one."""
    gate = requests.gate(request)
    if gate.admin_keys.holds_digest(digest):
        return Identity(None, True)
    org = gate.api_keys.org_for_digest(digest) or requests.runtime(request).org_keys.org_for_digest(
        digest
    )
    return None if org is None else Identity(org, False)


async def sessions(request: Request) -> Sessions:
    services = await requests.services(request)
    base_url = requests.gate(request).settings.base_url
    return _sessions(services.session_secret, base_url.startswith("https://"))


@functools.lru_cache(maxsize=4)
def _sessions(secret: bytes, https: bool) -> Sessions:
    # One per secret: every request of the process reads and writes its cookie with it.
    return Sessions(secret, https=https)


async def session_of(request: Request) -> Session:
    return (await sessions(request)).read(request, lambda digest: identify(request, digest))


async def render(
    request: Request,
    session: Session,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> Response:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "navigation": ADMIN_NAVIGATION if session.admin else NAVIGATION,
            **context,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    (await sessions(request)).send(request, response, session)
    return response


async def problem_page(request: Request, session: Session, status: int, problem: str) -> Response:
    return await render(
        request, session, "problem.html", {"title": "Not done", "problem": problem}, status=status
    )


def see_other(name: str, **query: Any) -> Response:
    """After a form: on to a page, by GET."""
    return RedirectResponse(page_url(name, **query), status_code=303, headers=SECURITY_HEADERS)


async def form(request: Request) -> dict[str, str] | None:
    """A posted form's fields (the first of each name); None where the body is no such form:
    too long, not `application/x-www-form-urlencoded`, or not valid."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return None
    try:
        raw = await requests.read_body(request, MAX_FORM_BYTES)
        pairs = parse_qsl(
            raw.decode(),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (HTTPProblem, UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def same_origin(request: Request) -> bool:
    """Whether a posted form came from a page of this service, where the browser says so."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # SameSite=Strict keeps the session from cross-site posts; the token does the rest.
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")
