"""Finding and rewriting `<a href>` links in an e-mail's HTML without re-serialising it.

The markup is scanned, not parsed into a tree: every byte that is not a rewritten `href`
value (or the inserted pixel) comes back exactly as it was sent.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# Regions whose contents are not markup: an `<a` inside them is text, not a link.
_SKIP_OR_ANCHOR = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|textarea|title|xmp)\b[^>]*>.*?(?:</\1\s*>|\Z)"
    r"|<a(?=[\s/>])",
    re.IGNORECASE | re.DOTALL,
)
_ATTRIBUTE = re.compile(
    r"""[\s/]*(?P<name>[^\s"'>/=]+)(?:\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s>]+)))?"""
)
_TAG_END = re.compile(r"[\s/]*>")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTTP = re.compile(r"https?://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Anchor:
    """An `<a href>`: `markup[start:end]` is the raw attribute value."""

    start: int
    end: int
    raw: str
    url: str
    opted_out: bool

    @property
    def is_web_link(self) -> bool:
        return bool(_HTTP.match(self.url))


def _anchor_at(markup: str, position: int) -> tuple[Anchor | None, int]:
    href: tuple[int, int, str] | None = None
    opted_out = False
    while True:
        end = _TAG_END.match(markup, position)
        if end:
            position = end.end()
            break
        attribute = _ATTRIBUTE.match(markup, position)
        if attribute is None or attribute.end() == position:
            position += 1
            if position >= len(markup):
                break
            continue
        position = attribute.end()
        name = attribute.group("name").lower()
        group = next((g for g in ("dq", "sq", "uq") if attribute.group(g) is not None), None)
        if group is None:
            continue
        value = attribute.group(group)
        # The first of repeated attributes counts, as in browsers.
        if name == "href" and href is None:
            href = (attribute.start(group), attribute.end(group), value)
        elif name == "data-tracking":
            opted_out = html.unescape(value).strip().lower() == "false"
    if href is None:
        return None, position
    start, end_, raw = href
    return Anchor(start, end_, raw, html.unescape(raw).strip(), opted_out), position


def find_anchors(markup: str) -> list[Anchor]:
    anchors = []
    position = 0
    while match := _SKIP_OR_ANCHOR.search(markup, position):
        if match.group().lower() != "<a":
            position = match.end()
            continue
        anchor, position = _anchor_at(markup, match.end())
        if anchor is not None:
            anchors.append(anchor)
    return anchors


def rewrite(markup: str, replacements: list[tuple[Anchor, str]], pixel: str | None) -> str:
    """Replace the href values of the given anchors and insert `pixel` before the closing
    body tag, or at the end where there is none."""
    pieces: list[str] = []
    position = 0
    for anchor, url in sorted(replacements, key=lambda pair: pair[0].start):
        pieces += (markup[position : anchor.start], html.escape(url, quote=True))
        position = anchor.end
    pieces.append(markup[position:])
    result = "".join(pieces)
    if pixel is None:
        return result
    body_ends = list(_BODY_END.finditer(result))
    at = body_ends[-1].start() if body_ends else len(result)
    return result[:at] + pixel + result[at:]


def pixel_tag(url: str) -> str:
    return (
        f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;opacity:0" aria-hidden="true">'
    )
