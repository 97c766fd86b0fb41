"""Host patterns: `contoso.com` stands for that host and every subdomain of it.

Patterns and hosts are compared as redirect targets carry hosts (`targets.py`): lowercase,
internationalised names in their IDNA A-label form, without a trailing dot; so `bücher.example`
and `xn--bcher-kva.example` are one pattern. A match looks up each suffix of the host in a set,
so it costs one lookup per label of the host, however many patterns there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shortener.text.targets import InvalidTarget, redirect_target

__all__ = ["HostPatterns", "InvalidPattern", "normalise_pattern", "target_host"]

# A pattern names a host, nothing around it.
_NOT_A_HOST = re.compile(r"[/?#@:\[\]\s\\]")


class InvalidPattern(ValueError):
    """Text that is not a host pattern; str(error) says why."""


def normalise_pattern(text: str) -> str:
    """The host `text` names, as redirect targets write it; InvalidPattern if it names none."""
    pattern = text.strip().rstrip(".")
    if not pattern or _NOT_A_HOST.search(pattern) or pattern.startswith("."):
        raise InvalidPattern(f"{text!r} is not a host name like contoso.com")
    try:
        host = target_host(redirect_target(f"http://{pattern}/"))
    except InvalidTarget as error:
        raise InvalidPattern(f"{text!r} is not a host name like contoso.com: {error}") from None
    return host


def target_host(target: str) -> str:
    """The host of a redirect target (already ASCII and lowercase), without a trailing dot."""
    return (urlsplit(target).hostname or "").rstrip(".")


@dataclass(frozen=True, slots=True)
class HostPatterns:
    """A set of host patterns, normalised once."""

    patterns: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> HostPatterns:
        """The patterns written in `texts`; InvalidPattern names the first that is not one."""
        return cls(frozenset(normalise_pattern(text) for text in texts))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __or__(self, other: HostPatterns) -> HostPatterns:
        return HostPatterns(self.patterns | other.patterns)

    def match(self, host: str) -> str | None:
        """The pattern that covers `host` (a normalised host), or None."""
        if not self.patterns:
            return None
        suffix = host
        while True:
            if suffix in self.patterns:
                return suffix
            _, dot, suffix = suffix.partition(".")
            if not dot:
                return None
