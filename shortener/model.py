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


class LinkKind(enum.Enum):
    SHORT = "short"  # an untracked short code
    TRACKED_SHORT = "tracked_short"  # a tracked short code (its tracked link shares the record)
    TRACKED = "tracked"  # a tracked link with no short code (e-mail)
    PIXEL = "pixel"  # an open-tracking pixel

    @property
    def tracked(self) -> bool:
        return self is not LinkKind.SHORT

    @property
    def has_code(self) -> bool:
        return self in CODE_KINDS


# What a tap on `/{code}` follows.
CODE_KINDS = frozenset({LinkKind.SHORT, LinkKind.TRACKED_SHORT})
# The records behind signed tracked links: tracked short codes and e-mail links.
SIGNED_KINDS = frozenset({LinkKind.TRACKED_SHORT, LinkKind.TRACKED})
PIXEL_KINDS = frozenset({LinkKind.PIXEL})
# An open pixel leads nowhere; its record says so in place of a target.
PIXEL_TARGET = "-"


class Visitor(enum.Enum):
    PERSON = "person"
    BOT = "bot"
    # A HEAD request: answered like a tap, counted and recorded as nothing.
    PROBE = "probe"


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


@dataclass(frozen=True, slots=True)
class StoredConsent:
    tracking: bool
    # Milliseconds since the epoch; None where it was set before the time was kept.
    updated_at_ms: int | None


class StoreUnavailable(Exception):
    """Redis did not answer in time or refused the connection."""
