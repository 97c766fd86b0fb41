"""Looking up what was issued, for ops: one id's link info, and what expires soon. The HTTP
API (`GET /v1/links/{code}`) and the CLI (`inspect`, `expiring`) both answer from here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from shortener.domain.codes import CodeCodec
from shortener.model import LinkKind, StoredLink
from shortener.store.analytics import DAY_SECONDS
from shortener.store.store import Store

LinkKindName = Literal["short", "tracked_link", "pixel", "honeypot"]
LinkStatus = Literal["active", "expired", "disabled"]
_KIND_NAMES: dict[LinkKind, LinkKindName] = {
    LinkKind.SHORT: "short",
    LinkKind.TRACKED_SHORT: "short",
    LinkKind.TRACKED: "tracked_link",
    LinkKind.PIXEL: "pixel",
    LinkKind.HONEYPOT: "honeypot",
}


class LinkInfo(BaseModel):
    """What ops need to know about one id the service issued: a short code, an e-mail's tracked
    link or its open pixel."""

    link_id: str = Field(description="The id looked up.")
    kind: LinkKindName = Field(
        description="`short`: a short code (tracked or not); `tracked_link`: a tracked link "
        "of an e-mail, which has no short code; `pixel`: an e-mail's open pixel; `honeypot`: "
        "an e-mail's hidden link, which no person sees."
    )
    code: str | None = Field(description="The short code; null where the id has none.")
    short_url: str | None = Field(
        description="The short link as issued; null where the id has no short code."
    )
    url: str | None = Field(description="Where the id redirects (ASCII form); null for a pixel.")
    tracked: bool
    created_at: datetime
    expires_at: datetime
    ttl_seconds: int = Field(description="Seconds left until expires_at; 0 once expired.")
    status: LinkStatus = Field(
        description="`disabled` once taken down (whatever its expiry), else `active` or `expired`."
    )
    clicks: int = Field(description="Taps by people (for a pixel: opens).")
    bot_clicks: int = Field(description="Taps by link previews, crawlers and scanners.")
    campaign: str | None = Field(description="The campaign of its message; null if none.")
    message_id: str | None = Field(
        description="The message it was issued for, where it is tracked and the message had an "
        "id; null otherwise."
    )
    disabled_at: datetime | None = Field(description="When it was disabled; null while it is not.")
    disabled_reason: str | None = Field(
        description="Why it was disabled, as given then; null if no reason was."
    )


def link_status(link: StoredLink, now: float) -> LinkStatus:
    if link.disabled:
        return "disabled"
    return "active" if link.expires_at > now else "expired"


class Lookup:
    def __init__(
        self, store: Store, codec: CodeCodec, base_url: str, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.codec = codec
        self.base_url = base_url
        self.clock = clock

    def issued(self, link_id: str) -> bool:
        """Whether this service issued the id (it may have expired since); no I/O."""
        return self.codec.decode(link_id) is not None

    async def link_info(self, link_id: str) -> tuple[str, LinkInfo] | None:
        """The org and the link info of any id this service issued (a short code, a tracked
        link or a pixel) whose record is still stored; None otherwise. The short URL uses the
        base URL the id was issued with, or today's where the store does not know that."""
        serial = self.codec.decode(link_id)
        if serial is None:
            return None
        record = await self.store.link_record(serial)
        link = record.link
        if link is None:
            return None
        now = self.clock()
        code = link_id if link.kind.has_code else None
        return link.org, LinkInfo(
            link_id=link_id,
            kind=_KIND_NAMES[link.kind],
            code=code,
            short_url=None if code is None else f"{record.base_url or self.base_url}/{code}",
            url=None if link.kind is LinkKind.PIXEL else link.target,
            tracked=link.kind.tracked,
            created_at=datetime.fromtimestamp(link.created_at, UTC),
            expires_at=datetime.fromtimestamp(link.expires_at, UTC),
            ttl_seconds=max(0, int(link.expires_at - now)),
            status=link_status(link, now),
            clicks=record.clicks,
            bot_clicks=record.bot_clicks,
            campaign=link.campaign,
            message_id=link.message_id,
            disabled_at=(
                None
                if record.disabled_at is None
                else datetime.fromtimestamp(record.disabled_at, UTC)
            ),
            disabled_reason=record.disabled_reason,
        )

    async def expiring_by_day(self, org: str, days: int) -> list[tuple[date, int]]:
        """The org's codes expiring on each of the next `days` UTC days, today first (from
        the next minute on, as `expiring` counts)."""
        await self.store.flush()
        now = int(self.clock())
        today = now // DAY_SECONDS
        first_minute = now // 60 + 1
        counts = await self.store.expiring_by_hour(org, first_minute, (today + days) * 24)
        per_day = [0] * days
        for offset, count in enumerate(counts):
            per_day[(first_minute // 60 + offset) // 24 - today] += count
        first = datetime.fromtimestamp(today * DAY_SECONDS, UTC).date()
        return [(first + timedelta(days=n), count) for n, count in enumerate(per_day)]

    async def expiring(self, within_seconds: int) -> dict[str, int]:
        """Codes per org that are still active and expire within `within_seconds`, counted
        in whole minutes from the next one on (the window rounded up to whole minutes).

        The index knows the minute of each expiry, not the second: a code expiring within
        the current minute may have expired already, so that minute is left out."""
        await self.store.flush()
        first_minute = int(self.clock()) // 60 + 1
        minutes = -(-within_seconds // 60)
        return await self.store.expiring(first_minute, first_minute + minutes - 1)
