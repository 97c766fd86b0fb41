"""The small pages people see when a link does not lead anywhere, and when they get one.

Public routes (taps, tracked links, pixels, `/`) answer errors with a page to clients that
ask for HTML, as browsers do, and with problem+json to everything else.
"""

from __future__ import annotations

import functools
import re
from html import escape
from http import HTTPStatus

MEDIA_TYPE = "text/html; charset=utf-8"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font:1.1rem/1.5 system-ui,sans-serif;margin:0;padding:2rem 1.25rem;color:#222;
background:#fafafa}}main{{max-width:28rem;margin:auto}}h1{{font-size:1.4rem}}</style>
</head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>
"""


def _page(title: str, text: str) -> bytes:
    return _PAGE.format(title=escape(title), text=escape(text)).encode()


NOT_FOUND_PAGE = _page(
    "Link not found",
    "This short link does not exist. Check that it was copied completely from the message.",
)
EXPIRED_PAGE = _page(
    "Link expired",
    "This short link has expired and no longer leads anywhere. "
    "Please contact the sender if you still need it.",
)
DISABLED_PAGE = _page(
    "Link disabled",
    "This link was disabled and no longer leads anywhere. "
    "Please contact the sender if you were expecting it to work.",
)
HOME_PAGE = _page(
    "Short links only",
    "This address only forwards the short links sent in messages. "
    "Open the complete link from your message.",
)
_PAGES = {
    400: _page(
        "Link not valid",
        "This link is incomplete or was changed, so it cannot be opened. "
        "Open it again from the original message.",
    ),
    404: NOT_FOUND_PAGE,
    410: EXPIRED_PAGE,
    429: _page(
        "Too many tries",
        "Too many links that lead nowhere were opened from this connection. "
        "Please wait a minute, then try again.",
    ),
}
_TRY_AGAIN_PAGE = _page(
    "Please try again", "This link cannot be opened right now. Please try again in a moment."
)


@functools.cache
def page_for(status: int) -> bytes:
    """The page for an error status."""
    known = _PAGES.get(status)
    if known is not None:
        return known
    if status >= 500:
        return _TRY_AGAIN_PAGE
    return _page(
        HTTPStatus(status).phrase,
        "This link cannot be opened. Check that it was copied completely from the message.",
    )


# An RFC 9110 weight; anything else counts as 0, so a malformed one never picks HTML.
_WEIGHT = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_HTML_RANGES = ("text/html", "text/*")
_PROBLEM_RANGES = ("application/problem+json", "application/json", "application/*", "*/*")


def wants_html(accept: str | None) -> bool:
    """Whether a client prefers a page to problem+json: it names `text/html` (or `text/*`)
    and weighs it at least as much as JSON. A browser does; `*/*` alone, or no Accept header,
    is a program, which is better served by the problem's fields."""
    if not accept or "text/" not in accept.lower():
        return False
    weights: dict[str, float] = {}
    for item in accept.lower().split(","):
        media_range, *parameters = item.split(";")
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                value = value.strip()
                weight = float(value) if _WEIGHT.fullmatch(value) else 0.0
        media_range = media_range.strip()
        weights[media_range] = max(weight, weights.get(media_range, 0.0))
    html = next((weights[r] for r in _HTML_RANGES if r in weights), 0.0)
    problem = next((weights[r] for r in _PROBLEM_RANGES if r in weights), 0.0)
    return html > 0 and html >= problem
