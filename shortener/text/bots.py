"""Telling people's taps from link previews, crawlers and scanners, by User-Agent.

What a crawler is comes from crawlerdetect's lists, but they are matched here with RE2, whose
time grows linearly with the agent's length: crawlerdetect matches them with Python's
backtracking `re`, where its catch-all `[a-z0-9\\-_]*(bot|crawl|...)` takes time quadratic in
the length of a run of letters. An agent is also classified by its start only, so that a long
one costs no more than a real one, and the cache of answers stays small.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Protocol

import re2
from crawlerdetect.providers.crawlers import data as crawler_patterns
from crawlerdetect.providers.exclusions import data as excluded_patterns

# Real agents are well under this; a longer one is classified by this many characters.
MAX_AGENT_CHARS = 512

# Preview fetchers and mail/link scanners that pose as browsers and that the crawler list
# does not know: Microsoft's and Google's safe-link scanners, and messengers' previews. Names
# of in-app browsers (LINE, Snapchat, Viber) are left out: those are people tapping.
PREVIEW_AGENTS = (
    r"MSOffice|Microsoft Office|BingPreview|Google-Safety|Google-Read-Aloud|GoogleImageProxy"
    r"|SkypeUriPreview|WhatsApp/|KakaoTalk-Scrap|Iframely|Embedly"
    r"|Mimecast|Barracuda|Proofpoint|SafeLinks|ZScaler|Forcepoint"
)

# A negative lookahead of a literal, at the end of a pattern (`Yandex(?!Search)`).
_LITERAL_LOOKAHEAD = re.compile(r"\(\?!([0-9A-Za-z ]+)\)$")


def _without_lookahead(pattern: str) -> str:
    """`pattern` without a final negative lookahead of a literal, which RE2 lacks: spelled out
    as "the text ends there, or differs from the literal at one of its characters". That
    matches where the lookahead would, which is all a yes-or-no search needs."""
    found = _LITERAL_LOOKAHEAD.search(pattern)
    if found is None:
        return pattern
    rest = ""
    for char in reversed(found.group(1)):
        rest = f"(?:$|[^{char}]|{char}{rest})" if rest else f"(?:$|[^{char}])"
    return pattern[: found.start()] + rest


class _Pattern(Protocol):
    def search(self, text: bytes) -> object | None: ...

    def sub(self, replacement: bytes, text: bytes) -> bytes: ...


def _compile(patterns: str) -> _Pattern:
    options = re2.Options()
    options.case_sensitive = False
    # Only whether and where a pattern matches counts, which RE2 answers without backtracking
    # or submatch tracking.
    options.never_capture = True
    options.log_errors = False
    pattern: _Pattern = re2.compile(patterns, options)
    return pattern


_CRAWLERS = _compile("|".join(_without_lookahead(pattern) for pattern in crawler_patterns))
_EXCLUSIONS = _compile("|".join(excluded_patterns))
_PREVIEWS = _compile(PREVIEW_AGENTS)


def is_automated(user_agent: str) -> bool:
    """Whether the whole of `user_agent` names a preview, crawler or scanner, as
    crawlerdetect would say: its browser and platform tokens removed, whether a crawler pattern
    is left. Neither capped nor cached; taps use is_bot."""
    stripped = user_agent.strip()
    if not stripped:
        # Every phone and browser sends one; a missing agent is a script.
        return True
    # Matched as UTF-8 bytes, as RE2 reads them: str offsets would cost a conversion at every
    # match.
    agent = stripped.encode("utf-8", "replace")
    if _PREVIEWS.search(agent) is not None:
        return True
    rest = _EXCLUSIONS.sub(b"", agent)
    return bool(rest) and _CRAWLERS.search(rest) is not None


@lru_cache(maxsize=8192)
def _classify(agent: str) -> bool:
    """Cached: agents repeat endlessly, and each is at most MAX_AGENT_CHARS long."""
    return is_automated(agent)


def is_bot(user_agent: str) -> bool:
    """Whether a request comes from a preview, crawler or scanner rather than a person, by the
    first MAX_AGENT_CHARS characters of its User-Agent."""
    return _classify(user_agent[:MAX_AGENT_CHARS])


# Mail clients' image proxies that fetch an e-mail's images when the person opens it, and only
# then: Gmail's (web and apps) and Yahoo Mail's. Their fetch of the open pixel is that person's
# open, though their agent is no browser's.
MAIL_PROXY_AGENTS = _compile(r"GoogleImageProxy|YahooMailProxy")
# Apple Mail Privacy Protection fetches every image of an e-mail through Apple's relays when
# the mail reaches the device, whether or not anyone opens it. Its fetches give a bare
# "Mozilla/5.0" as their agent and come from Apple's own network, 17.0.0.0/8. Both must hold:
# the agent alone is also sent by other scripts, and Apple's network alone by people's Macs.
PRIVACY_PREFETCH_AGENT = "Mozilla/5.0"
PRIVACY_PREFETCH_NETWORK = ipaddress.ip_network("17.0.0.0/8")


def is_mail_proxy(user_agent: str) -> bool:
    """Whether a fetch of an open pixel comes from a mail client's image proxy."""
    return (
        MAIL_PROXY_AGENTS.search(user_agent[:MAX_AGENT_CHARS].encode("utf-8", "replace"))
        is not None
    )


def is_privacy_prefetch(user_agent: str, address: str) -> bool:
    """Whether a fetch of an open pixel is Apple Mail Privacy Protection's, ahead of any open."""
    if user_agent.strip() != PRIVACY_PREFETCH_AGENT:
        return False
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        found = found.ipv4_mapped
    return found in PRIVACY_PREFETCH_NETWORK
