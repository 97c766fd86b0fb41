"""Telling people's taps from link previews, crawlers and scanners, by User-Agent."""

from __future__ import annotations

import re
from functools import lru_cache

from crawlerdetect import CrawlerDetect

# Preview fetchers and mail/link scanners that pose as browsers and that the crawler list
# does not know: Microsoft's and Google's safe-link scanners, and messengers' previews. Names
# of in-app browsers (LINE, Snapchat, Viber) are left out: those are people tapping.
_PREVIEW_AGENTS = re.compile(
    r"MSOffice|Microsoft Office|BingPreview|Google-Safety|Google-Read-Aloud|GoogleImageProxy"
    r"|SkypeUriPreview|WhatsApp/|KakaoTalk-Scrap|Iframely|Embedly"
    r"|Mimecast|Barracuda|Proofpoint|SafeLinks|ZScaler|Forcepoint",
    re.IGNORECASE,
)

_detector = CrawlerDetect()


@lru_cache(maxsize=8192)
def is_bot(user_agent: str) -> bool:
    """Cached: matching the crawler list costs about 0.1 ms, and agents repeat endlessly."""
    if not user_agent.strip():
        # Every phone and browser sends one; a missing agent is a script.
        return True
    return bool(_PREVIEW_AGENTS.search(user_agent)) or bool(_detector.isCrawler(user_agent))
