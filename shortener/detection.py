"""Finding the links in an SMS body."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Up to the first whitespace; closing punctuation that ends a sentence is trimmed below.
_LINK = re.compile(r"(?i)\bhttps?://[^\s<>\"]+")
_TRAILING = ".,;:!?'\")]}>"


@dataclass(frozen=True, slots=True)
class FoundLink:
    """A link in a text: `text[start:end] == url`, offsets in code points."""

    start: int
    end: int
    url: str


def find_links(text: str) -> list[FoundLink]:
    found = []
    for match in _LINK.finditer(text):
        url = match.group()
        while url and url[-1] in _TRAILING:
            # A closing bracket that closes one opened inside the link belongs to it.
            closer = url[-1]
            opener = {")": "(", "]": "[", "}": "{"}.get(closer)
            if opener and url.count(opener) >= url.count(closer):
                break
            url = url[:-1]
        if "://" in url and len(url) > url.index("://") + 3:
            found.append(FoundLink(match.start(), match.start() + len(url), url))
    return found
