"""The values that every layer speaks of: a stored link and its kind, who taps, an interaction,
a contact's consent, and the one failure of the store.

They sit below the store and the domain alike, so that the store can hand them up and the
domain hand them down without either importing the other the wrong way (see
docs/architecture.md). How they are written into Redis is the store's business alone
(`store/records.py`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class LinkKind(enum.Enum):
    SHORT = "short"  # an untracked short code
    TRACKED_SHORT = "tracked_short"  # a tracked short code (its tracked link shares the record)
    TRACKED = "tracked"  # a tracked link with no short code (e-mail)
    PIXEL = "pixel"  # an open-tracking pixel
    # An e-mail's hidden link, which no person sees: whoever fetches it scans the mail.
    HONEYPOT = "honeypot"

    @property
    def tracked(self) -> bool:
        return self is not LinkKind.SHORT

    @property
    def has_code(self) -> bool:
        return self in CODE_KINDS


# What a tap on `/{code}` follows.
CODE_KINDS = frozenset({LinkKind.SHORT, LinkKind.TRACKED_SHORT})
# The records behind signed tracked links: tracked short codes and e-mail links.
SIGNED_KINDS = frozenset({LinkKind.TRACKED_SHORT, LinkKind.TRACKED, LinkKind.HONEYPOT})
PIXEL_KINDS = frozenset({LinkKind.PIXEL})
# An open pixel leads nowhere; its record says so in place of a target.
PIXEL_TARGET = "-"


class Visitor(enum.Enum):
    PERSON = "person"
    # A preview, crawler, scanner or script, known by its user agent.
    BOT = "bot"
    # A mail client's image proxy fetching the open pixel for the person who opened the mail
    # (Gmail's): that person's open.
    PROXY = "proxy"
    # A mail privacy service fetching the open pixel ahead of anyone opening the mail (Apple
    # Mail Privacy Protection): no one's open.
    PREFETCH = "prefetch"
    # A HEAD request: answered like a tap, counted and recorded as nothing.
    PROBE = "probe"

    @property
    def machine(self) -> bool:
        return self in (Visitor.BOT, Visitor.PREFETCH)

    @property
    def bot_reason(self) -> BotReason | None:
        """Why a machine's interaction was not a person's."""
        return _BOT_REASONS.get(self)


# Why an interaction is a bot's, as `/v1/interactions` and webhooks say. The last three are
# judged when it settles, from its message's other interactions.
BotReason = Literal["user_agent", "prefetch", "honeypot", "burst", "too_soon"]
USER_AGENT: BotReason = "user_agent"
PREFETCH_REASON: BotReason = "prefetch"
HONEYPOT: BotReason = "honeypot"
BURST: BotReason = "burst"
TOO_SOON: BotReason = "too_soon"
_BOT_REASONS: dict[Visitor, BotReason] = {
    Visitor.BOT: USER_AGENT,
    Visitor.PREFETCH: PREFETCH_REASON,
}


class InteractionType(enum.Enum):
    CLICK = "click"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class StoredLink:
    kind: LinkKind
    org: str
    target: str
    created_at: int
    expires_at: int
    contact_id: str | None = None
    message_id: str | None = None
    campaign: str | None = None
    # Taken down by its org or the abuse desk: it leads nowhere and records nothing.
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Interaction:
    id: str
    type: InteractionType
    url: str | None
    bot: bool
    link_id: str | None
    code: str | None
    message_id: str | None
    contact_id: str | None
    campaign: str | None = None
    # Why it is a bot's (see `Visitor.bot_reason`); None for a person.
    bot_reason: BotReason | None = None
    # A person's open fetched through their mail client's image proxy.
    proxied: bool = False
    # Whether `bot` and `bot_reason` are final (see `domain.settling`).
    settled: bool = False


@dataclass(frozen=True, slots=True)
class StoredConsent:
    tracking: bool
    # Milliseconds since the epoch; None where it was set before the time was kept.
    updated_at_ms: int | None


class StoreUnavailable(Exception):
    """Redis did not answer in time or refused the connection."""
