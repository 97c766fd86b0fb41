"""Where an org's links may lead: host patterns blocked for every org, and each org's own
allow and block lists (`text/hosts.py` says what a pattern covers)."""

from __future__ import annotations

from dataclasses import dataclass

from shortener.text.hosts import HostPatterns, target_host

NO_HOSTS = HostPatterns()


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """The destinations of one org's links. `blocked_everywhere` comes from the settings and
    no org's own lists can lift it; an empty `allowed` allows every host not blocked."""

    blocked_everywhere: HostPatterns = NO_HOSTS
    blocked: HostPatterns = NO_HOSTS
    allowed: HostPatterns = NO_HOSTS

    def for_org(self, *, blocked: HostPatterns, allowed: HostPatterns) -> DestinationPolicy:
        """This policy with an org's own lists in place of any it had."""
        return DestinationPolicy(self.blocked_everywhere, blocked, allowed)

    def refusal(self, target: str) -> str | None:
        """Why a link to `target` (a redirect target) is refused, or None if it may go there."""
        if not (self.blocked_everywhere or self.blocked or self.allowed):
            return None
        host = target_host(target)
        pattern = self.blocked_everywhere.match(host)
        if pattern is not None:
            return f"links to {pattern} are not allowed on this service"
        pattern = self.blocked.match(host)
        if pattern is not None:
            return f"links to {pattern} are blocked for this org"
        if self.allowed and self.allowed.match(host) is None:
            return f"{host} is not among this org's allowed destinations"
        return None
