"""The click recorder: stores `click` and `open` interactions of tracked links.

It is handed taps by the redirect path and writes each interaction to Redis before the
redirect is answered, so no acknowledged tap loses its event. Consent is looked up when the
interaction happens, in the same round trip as the write.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shortener.http.schemas import Consent
from shortener.metrics import CLICKS
from shortener.store.store import Interaction, Store, StoredLink

INTERACTION_TYPES = {"c": "click", "o": "open"}


class Visitor(enum.Enum):
    PERSON = "person"
    BOT = "bot"
    # A HEAD request: answered like a tap, counted and recorded as nothing.
    PROBE = "probe"

    @property
    def counter(self) -> str:
        """Which tap count this visitor adds to: "c" people, "b" bots, "" none."""
        return _COUNTERS[self]


_COUNTERS = {Visitor.PERSON: "c", Visitor.BOT: "b", Visitor.PROBE: ""}


@dataclass(frozen=True, slots=True)
class InteractionPage:
    interactions: list[Interaction]
    next: str | None


class ClickRecorder:
    def __init__(
        self,
        store: Store,
        *,
        window_seconds: int,
        retain_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window_seconds = window_seconds
        self.retain_seconds = retain_seconds
        self.clock = clock

    def records(self, link: StoredLink, visitor: Visitor) -> bool:
        return (
            link.kind.tracked
            and visitor is not Visitor.PROBE
            and self.clock() < link.created_at + self.window_seconds
        )

    async def record(
        self, link: StoredLink, *, type_: str, link_id: str, visitor: Visitor
    ) -> str | None:
        """Store the interaction if the link is tracked and inside its window; its id."""
        if not self.records(link, visitor):
            return None
        interaction_id = await self.store.record_interaction(
            link,
            kind=type_[0],
            link_id=link_id,
            code=link_id if link.kind.has_code else None,
            bot=visitor is Visitor.BOT,
            retain_ms=self.retain_seconds * 1000,
            now_ms=int(self.clock() * 1000),
        )
        CLICKS.labels(type_, visitor.value).inc()
        return interaction_id

    async def page(self, org: str, after: str | None, limit: int) -> InteractionPage:
        interactions = await self.store.read_interactions(org, after, limit)
        last = interactions[-1].id if interactions else after
        return InteractionPage(interactions, last)

    async def set_consent(self, org: str, contact_id: str, tracking: bool) -> None:
        await self.store.set_consent(org, contact_id, tracking, int(self.clock() * 1000))

    async def consent(self, org: str, contact_id: str) -> Consent:
        stored = await self.store.consent(org, contact_id)
        if stored is None:
            return Consent(contact_id=contact_id, tracking=None, updated_at=None)
        updated_at = None
        if stored.updated_at_ms is not None:
            updated_at = datetime.fromtimestamp(stored.updated_at_ms / 1000, UTC)
        return Consent(contact_id=contact_id, tracking=stored.tracking, updated_at=updated_at)
