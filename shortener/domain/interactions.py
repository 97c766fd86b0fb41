"""The click recorder: stores `click` and `open` interactions of tracked links, and reads them
back with the contacts' consent.

It is handed taps by the redirects and writes each interaction to Redis before the redirect is
answered, so no acknowledged tap loses its event. Consent is looked up when the interaction
happens, in the same round trip as the write.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from shortener.domain.analytics import Analytics
from shortener.domain.limits import MAX_PAGE, MAX_SCANNED_PER_PAGE
from shortener.domain.settling import Rules, is_settled
from shortener.metrics import CLICKS
from shortener.model import (
    HONEYPOT,
    BotReason,
    Interaction,
    InteractionType,
    LinkKind,
    StoredLink,
    Visitor,
)
from shortener.store.records import bot_reason_of
from shortener.store.store import Store


class Consent(BaseModel):
    """A contact's tracking consent as stored here."""

    contact_id: str
    tracking: bool | None = Field(
        description="false: opted out, which wins over `tracking_consent` in requests; "
        "null: never set."
    )
    updated_at: datetime | None = Field(description="When it was last set; null: never set.")


class InteractionOut(BaseModel):
    id: str
    type: Literal["click", "open"]
    at: datetime
    link_id: str | None
    code: str | None
    message_id: str | None
    contact_id: str | None
    url: str | None = Field(description="Where the click went; null for an open.")
    bot: bool
    bot_reason: BotReason | None = Field(
        default=None,
        description="Why it is a bot's: `user_agent` (a known preview, crawler, scanner or "
        "script), `prefetch` (a mail privacy service fetching an e-mail's pixel ahead of "
        "anyone opening it), `honeypot` (its message's hidden link was fetched around it), "
        "`burst` (another link of its message was clicked within 2 s), `too_soon` (sooner "
        "after the link was issued than `SHORTENER_TOO_SOON_SECONDS`); null for a person.",
    )
    proxied: bool = Field(
        default=False,
        description="An open fetched through the reader's mail client's image proxy (Gmail's): "
        "a person's open, counted as one.",
    )
    settled: bool = Field(
        default=False,
        description="Whether `bot` and `bot_reason` are final. An interaction settles "
        "`SHORTENER_SETTLE_SECONDS` after it happened, once its message's other interactions "
        "are known: a scanner shows by fetching the hidden honeypot link (`honeypot`), or "
        "several links within a moment (`burst`). Webhooks and the aggregates take settled "
        "interactions only.",
    )
    campaign: str | None = Field(description="The campaign of the message; null if none.")


@dataclass(frozen=True, slots=True)
class InteractionFilter:
    """What `GET /v1/interactions` may be narrowed to; a field left None narrows nothing."""

    campaign: str | None = None
    contact_id: str | None = None
    message_id: str | None = None
    type: InteractionType | None = None

    def __bool__(self) -> bool:
        values = (self.campaign, self.contact_id, self.message_id, self.type)
        return any(value is not None for value in values)

    def passes(self, item: Interaction) -> bool:
        return (
            (self.campaign is None or item.campaign == self.campaign)
            and (self.contact_id is None or item.contact_id == self.contact_id)
            and (self.message_id is None or item.message_id == self.message_id)
            and (self.type is None or item.type is self.type)
        )


NO_FILTER = InteractionFilter()


class Erasure(BaseModel):
    interactions_erased: int = Field(description="Stored interactions that named the contact.")
    links_erased: int = Field(
        description="Link records that named the contact; they keep redirecting."
    )


class InteractionPage(BaseModel):
    interactions: list[InteractionOut]
    next: str | None = Field(description="Pass as `after` to read on from here.")


def _at(interaction_id: str) -> datetime:
    """When an interaction happened: the milliseconds of its stream id."""
    return datetime.fromtimestamp(int(interaction_id.split("-")[0]) / 1000, UTC)


def interaction_out(item: Interaction) -> InteractionOut:
    return InteractionOut(
        id=item.id,
        type=item.type.value,
        at=_at(item.id),
        link_id=item.link_id,
        code=item.code,
        message_id=item.message_id,
        contact_id=item.contact_id,
        url=item.url,
        bot=item.bot,
        bot_reason=item.bot_reason,
        proxied=item.proxied,
        settled=item.settled,
        campaign=item.campaign,
    )


# Kept beyond what settling needs, for a settler that lags behind.
REMEMBER_SPARE_MS = 60_000


class ClickRecorder:
    def __init__(
        self,
        store: Store,
        *,
        window_seconds: int,
        retain_seconds: int,
        analytics: Analytics,
        rules: Rules,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window_seconds = window_seconds
        self.retain_seconds = retain_seconds
        self.analytics = analytics
        self.rules = rules
        self.clock = clock
        # What happened to a message is kept until its interactions, and those of the
        # scanner window after a honeypot fetch, have settled, with time to spare for a
        # settler that lags.
        self.remember_ms = rules.settle_ms + rules.scanner_window_ms + REMEMBER_SPARE_MS

    def records(self, link: StoredLink, visitor: Visitor) -> bool:
        return (
            link.kind.tracked
            and visitor is not Visitor.PROBE
            and self.clock() < link.created_at + self.window_seconds
        )

    async def record(
        self,
        link: StoredLink,
        kind: InteractionType,
        link_id: str,
        visitor: Visitor,
        reason: BotReason | None = None,
    ) -> str | None:
        """Store the interaction if the link is tracked and inside its window; its id. A
        person's tap on an untracked code is counted in the aggregates alone (a tracked one
        when it settles). A `reason` records it as a bot's for that reason."""
        if not self.records(link, visitor):
            if link.kind is LinkKind.SHORT and visitor is Visitor.PERSON:
                self.store.count_tap(link.org, self.analytics.now(), link.campaign)
            return None
        interaction_id = await self.store.record_interaction(
            link,
            kind=kind,
            link_id=link_id,
            code=link_id if link.kind.has_code else None,
            visitor=visitor,
            retain_ms=self.retain_seconds * 1000,
            now_ms=int(self.clock() * 1000),
            remember_ms=self.remember_ms,
            reason=reason,
        )
        CLICKS.labels(kind.value, visitor.value).inc()
        return interaction_id

    async def scanned(self, link: StoredLink, link_id: str, visitor: Visitor) -> None:
        """The hidden honeypot link of a message was fetched: no person sees it, so its
        message's interactions around now are a scanner's (see `domain.settling`)."""
        now_ms = int(self.clock() * 1000)
        keep_ms = 2 * self.rules.scanner_window_ms + self.rules.settle_ms + REMEMBER_SPARE_MS
        await self.store.mark_scanned(link.org, link.message_id, now_ms, keep_ms)
        await self.record(link, InteractionType.CLICK, link_id, visitor, HONEYPOT)

    async def page(
        self,
        org: str,
        after: str | None,
        limit: int,
        only: InteractionFilter = NO_FILTER,
    ) -> InteractionPage:
        """Up to `limit` interactions after the cursor that pass the filter, oldest first. A
        filtered read looks through at most MAX_SCANNED_PER_PAGE interactions: its `next`
        then says where to read on, however few it found."""
        if not only:
            found = await self.store.read_interactions(org, after, limit)
            cursor = found[-1].id if found else after
        else:
            found, cursor, scanned = [], after, 0
            while len(found) < limit and scanned < MAX_SCANNED_PER_PAGE:
                chunk = await self.store.read_interactions(
                    org, cursor, min(MAX_PAGE, MAX_SCANNED_PER_PAGE - scanned)
                )
                if not chunk:
                    break
                scanned += len(chunk)
                for item in chunk:
                    cursor = item.id
                    if only.passes(item):
                        found.append(item)
                        if len(found) == limit:
                            break
        found = await self._judged(org, found)
        return InteractionPage(interactions=[interaction_out(item) for item in found], next=cursor)

    async def _judged(self, org: str, found: list[Interaction]) -> list[Interaction]:
        """The interactions as judged so far: settled or not, and bots' where settling found
        them to be."""
        settled_up_to, judged = await self.store.settlement(org, [item.id for item in found])
        return [
            dataclasses.replace(
                item,
                settled=is_settled(item.id, settled_up_to),
                bot=item.bot or item.id in judged,
                bot_reason=bot_reason_of(judged[item.id]) if item.id in judged else item.bot_reason,
            )
            for item in found
        ]

    async def erase(self, org: str, contact_id: str) -> Erasure:
        """Erase the contact: its consent, every interaction that names it (with what is still
        to be delivered of them), and its name in its link records, which keep redirecting.
        Each webhook endpoint of the org is then sent a `contact.erased` event."""
        erased, links = await self.store.erase_contact(org, contact_id)
        endpoints = await self.store.webhooks(org)
        entries = ["i" + entry for entry in erased]
        for name in endpoints:
            await self.store.settle(org, name, entries)
        if endpoints:
            await self.store.add_event(
                org, {"t": "e", "p": contact_id, "ni": str(len(erased)), "nl": str(links)}
            )
        return Erasure(interactions_erased=len(erased), links_erased=links)

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
