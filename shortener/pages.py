"""The small pages a recipient sees when a short link does not lead anywhere."""

from __future__ import annotations

from html import escape

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
