"""Taking links down: one id the org was issued, or every link of one of its messages, and
what a message's links are now. A disabled link stays disabled: its code answers that it was,
its tracked link no longer redirects, and neither records anything."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shortener.domain.codes import CodeCodec
from shortener.domain.limits import MAX_TAKEDOWN_REASON_LENGTH
from shortener.domain.lookup import LinkStatus, link_status
from shortener.domain.messages import ShortenResult, ShortLink
from shortener.domain.paths import OPEN_PIXEL
from shortener.store.store import Store

Reason = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAKEDOWN_REASON_LENGTH)]


# The pixel an html body carries: it is no link of the result, but goes with the message.
_PIXEL = re.compile(
    re.escape(OPEN_PIXEL)
    .replace(re.escape("{org_hash}"), r"[^/\"'&<>\s]+")
    .replace(re.escape("{link_id}"), r"([0-9A-Za-z]+)")
)


class TakedownRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "phishing reported by a recipient"}]},
    )

    reason: Reason | None = Field(
        default=None, description="Why, for ops: shown as `disabled_reason`."
    )


class MessageLink(ShortLink):
    status: LinkStatus | None = Field(
        description="`active`, `expired` or `disabled`; null for a link left as it was (an "
        "untracked link of an html body), which has nothing to disable."
    )


class StoredMessage(ShortenResult):
    """A message's result as it was answered when it was shortened, with each link's status."""

    links: list[MessageLink]  # type: ignore[assignment]


def issued_id(link: ShortLink) -> str | None:
    """The id a link of a result was issued under: its code, or the last segment of its
    tracked link's path (an e-mail's link has no code); None where nothing was issued."""
    if link.code is not None:
        return link.code
    if link.tracking_url is not None:
        return urlsplit(link.tracking_url).path.rsplit("/", 1)[-1]
    return None


class Takedown:
    def __init__(self, store: Store, codec: CodeCodec, clock: Callable[[], float]) -> None:
        self.store = store
        self.codec = codec
        self.clock = clock

    async def disable(self, link_id: str, org: str | None, reason: str | None) -> bool:
        """Disable an id the org was issued (any org's where None), once: a second takedown
        keeps the first one's time and reason. False where no link of the org is stored."""
        serial = self.codec.decode(link_id)
        if serial is None:
            return False
        found = await self.store.disable_link(serial, org, int(self.clock()), reason)
        return found is not None

    async def _result(self, org: str, message_id: str) -> ShortenResult | None:
        stored = await self.store.message_result(org, message_id)
        if stored is None:
            return None
        # The claim keeps the request's fingerprint before the result (see `Shortening`).
        _, _, payload = stored.partition("\n")
        return ShortenResult.model_validate_json(payload)

    async def message(self, org: str, message_id: str) -> StoredMessage | None:
        """The stored result of the org's message with each link's status; None if the
        message is unknown or its result is no longer kept."""
        result = await self._result(org, message_id)
        if result is None:
            return None
        statuses = await asyncio.gather(*(self._status(org, link) for link in result.links))
        links = [
            MessageLink(**link.model_dump(), status=status)
            for link, status in zip(result.links, statuses, strict=True)
        ]
        return StoredMessage(**result.model_dump(exclude={"links"}), links=links)

    async def _status(self, org: str, link: ShortLink) -> LinkStatus | None:
        link_id = issued_id(link)
        serial = None if link_id is None else self.codec.decode(link_id)
        if serial is None:
            return None
        record = await self.store.link_record(serial)
        if record.link is None or record.link.org != org:
            # Its record is gone: it lived out its lifetime.
            return "expired"
        return link_status(record.link, self.clock())

    async def disable_message(self, org: str, message_id: str, reason: str | None) -> bool:
        """Disable every link of the org's message, and the open pixel of an html one; False
        if the message is unknown."""
        result = await self._result(org, message_id)
        if result is None:
            return False
        ids = [link_id for link_id in map(issued_id, result.links) if link_id is not None]
        if result.segments is None:
            ids += _PIXEL.findall(result.body)
        await asyncio.gather(*(self.disable(link_id, org, reason) for link_id in ids))
        return True
