"""Shortening messages and following links: the domain, free of HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shortener.domain.codes import CodeCodec, SerialAllocator
from shortener.domain.interactions import ClickRecorder, Visitor
from shortener.domain.signing import LinkSigner
from shortener.http.schemas import (
    MAX_LINKS_PER_BATCH,
    MAX_LINKS_PER_HTML,
    MAX_LINKS_PER_TEXT,
    LinkInfo,
    LinkKindName,
    SegmentInfo,
    Segments,
    ShortenRequest,
    ShortenResult,
    ShortLink,
    SkippedLink,
)
from shortener.metrics import CODES_ISSUED
from shortener.store.store import (
    PIXEL_TARGET,
    LinkKind,
    MessageClaim,
    MessageLinks,
    Store,
    StoredLink,
)
from shortener.text import markup
from shortener.text.detection import FoundLink, find_links
from shortener.text.segments import count_segments
from shortener.text.targets import InvalidTarget, redirect_target

# Records stay this long past their expiry (at most as long as they lived) so that ops can
# still see where an expired code went and how often it was tapped.
MAX_GRACE_SECONDS = 30 * 86_400
# The records behind signed tracked links: tracked short codes and e-mail links.
_CUT_KINDS = LinkKind.TRACKED_SHORT.value + LinkKind.TRACKED.value
# A cut target may end inside a percent escape, which the query parser leaves as it was.
_PARTIAL_ESCAPE = re.compile(r"%[0-9A-Fa-f]?\Z")
_LINK_LIMITS = {"text": MAX_LINKS_PER_TEXT, "html": MAX_LINKS_PER_HTML}
# The window of the per-org shorten limit: it starts with the first message an org shortens
# after the previous window ended.
SHORTEN_LIMIT_WINDOW_MS = 60_000


class MessageConflict(Exception):
    """A message id was reused for a different message."""

    def __init__(self, message_id: str, *, in_this_batch: bool = False) -> None:
        if in_this_batch:
            super().__init__(
                f"message_id {message_id!r} is used by an earlier message of this batch"
            )
        else:
            super().__init__(f"message_id {message_id!r} was already used for a different message")


class TooManyLinks(Exception):
    """A message with more links than one message may have."""

    def __init__(self, content_type: str, found: int) -> None:
        super().__init__(
            f"a message of content_type {content_type!r} can have at most "
            f"{_LINK_LIMITS[content_type]} links; this one has {found}"
        )


# A message that is not shortened, while the others of its call are.
MessageRefused = MessageConflict | TooManyLinks


class BatchTooLarge(Exception):
    """The messages of one call have more links together than one call may issue."""

    def __init__(self) -> None:
        super().__init__(
            f"the messages of a batch can have at most {MAX_LINKS_PER_BATCH} links in all, and "
            "these have more: send them in smaller batches"
        )


class ShortenLimitReached(Exception):
    """The org has shortened as many messages as it may in this minute."""

    def __init__(self, limit: int, count: int, retry_after_ms: int) -> None:
        allowed = f"this org may shorten at most {limit} messages per minute"
        if count > limit:
            super().__init__(
                f"{allowed}: send the {count} messages of this request in smaller batches"
            )
        else:
            super().__init__(
                f"{allowed}; this request's messages ({count}) do not fit in what is left of "
                "the current minute"
            )
        # Whole seconds, rounded up: a client that waits that long finds a new window.
        self.retry_after_seconds = max(1, -(-retry_after_ms // 1000))


class InvalidSignature(Exception):
    """A tracked link whose digest, version or org does not check out."""


class TapOutcome(enum.Enum):
    REDIRECT = "redirect"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Tap:
    outcome: TapOutcome
    link: StoredLink | None = None


@dataclass(frozen=True, slots=True)
class LinkReport:
    """What the store knows of an issued id, for ops."""

    link_id: str
    link: StoredLink | None
    # The base URL the id's block was issued with; None for blocks stored before it was kept.
    base_url: str | None
    clicks: int
    bot_clicks: int


_KIND_NAMES: dict[LinkKind, LinkKindName] = {
    LinkKind.SHORT: "short",
    LinkKind.TRACKED_SHORT: "short",
    LinkKind.TRACKED: "tracked_link",
    LinkKind.PIXEL: "pixel",
}


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    base_url: str
    ttl_seconds: int
    schemeless_scheme: str = "https"
    http_only_hosts: frozenset[str] = frozenset()
    # Messages an org may shorten per minute; 0: no limit.
    org_shorten_limit_per_minute: int = 0


@dataclass(frozen=True, slots=True)
class _Need:
    """A link record a message needs; identical needs of one message share one record."""

    kind: LinkKind
    target: str


@dataclass(slots=True)
class _Draft:
    """One message on its way: the links found in it, what it needs stored, and how to render
    it once the needed records have their ids."""

    request: ShortenRequest
    fingerprint: str
    # The links found in a text body; the `<a href>` to http(s) of an html body.
    found: list[FoundLink] = field(default_factory=list)
    anchors: list[markup.Anchor] = field(default_factory=list)
    needs: list[_Need] = field(default_factory=list)
    skipped: list[SkippedLink] = field(default_factory=list)
    render: Callable[[dict[_Need, str]], ShortenResult] | None = None


class Shortener:
    def __init__(
        self,
        store: Store,
        codec: CodeCodec,
        signer: LinkSigner,
        recorder: ClickRecorder,
        policy: LinkPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.codec = codec
        self.signer = signer
        self.recorder = recorder
        self.policy = policy
        self.clock = clock
        self.allocator = SerialAllocator(store.reserve_blocks)
        self._orgs: dict[str, str] = {}

    # Shortening

    def _target(self, url: str) -> str:
        scheme = self.policy.schemeless_scheme
        if "://" not in url:
            host = url.split("/", 1)[0].split(":", 1)[0].lower()
            if host in self.policy.http_only_hosts:
                scheme = "http"
        return redirect_target(url, schemeless_scheme=scheme)

    def _excluded(self, entries: Iterable[str]) -> frozenset[str]:
        """The non-trackable list, as written and as redirect targets."""
        excluded = set()
        for entry in entries:
            excluded.add(entry)
            with contextlib.suppress(InvalidTarget):
                excluded.add(self._target(entry.strip()))
        return frozenset(excluded)

    def _plan(self, org: str, draft: _Draft, consent: bool) -> None:
        """What the draft needs stored and how it renders; consent is only known once the
        store has been asked, after the links were counted."""
        excluded = self._excluded(draft.request.non_trackable)
        if draft.request.content_type == "html":
            self._draft_html(org, draft, consent, excluded)
        else:
            self._draft_text(org, draft, consent, excluded)

    def _draft_text(self, org: str, draft: _Draft, consent: bool, excluded: frozenset[str]) -> None:
        body = draft.request.body
        spans: list[tuple[int, int, str, _Need]] = []
        for found in draft.found:
            try:
                target = self._target(found.url)
            except InvalidTarget as error:
                # Not something a redirect may point at; it stays in the body as written.
                draft.skipped.append(SkippedLink(url=found.url, reason=str(error)))
                continue
            tracked = consent and found.url not in excluded and target not in excluded
            need = _Need(LinkKind.TRACKED_SHORT if tracked else LinkKind.SHORT, target)
            spans.append((found.start, found.end, found.url, need))
        draft.needs = list(dict.fromkeys(span[3] for span in spans))

        def render(ids: dict[_Need, str]) -> ShortenResult:
            pieces: list[str] = []
            links: list[ShortLink] = []
            position = 0
            for start, end, url, need in spans:
                code = ids[need]
                short_url = f"{self.policy.base_url}/{code}"
                pieces += (body[position:start], short_url)
                position = end
                tracking_url = (
                    self.signer.tracking_url(org, code, need.target) if need.kind.tracked else None
                )
                links.append(
                    ShortLink(
                        url=url,
                        short_url=short_url,
                        code=code,
                        tracked=need.kind.tracked,
                        tracking_url=tracking_url,
                    )
                )
            pieces.append(body[position:])
            new_body = "".join(pieces)
            return ShortenResult(
                body=new_body,
                links=links,
                segments=Segments(before=_segment_info(body), after=_segment_info(new_body)),
                skipped=draft.skipped,
            )

        draft.render = render

    def _draft_html(self, org: str, draft: _Draft, consent: bool, excluded: frozenset[str]) -> None:
        body = draft.request.body
        anchors: list[tuple[markup.Anchor, _Need | None]] = []
        for anchor in draft.anchors:
            try:
                target = self._target(anchor.url)
            except InvalidTarget as error:
                draft.skipped.append(SkippedLink(url=anchor.url, reason=str(error)))
                continue
            need = None
            trackable = not anchor.opted_out and anchor.url not in excluded
            if consent and trackable and target not in excluded:
                need = _Need(LinkKind.TRACKED, target)
            anchors.append((anchor, need))
        pixel = _Need(LinkKind.PIXEL, PIXEL_TARGET) if consent else None
        wanted = [need for _, need in anchors if need is not None]
        draft.needs = list(dict.fromkeys([*wanted, *([pixel] if pixel else [])]))

        def render(ids: dict[_Need, str]) -> ShortenResult:
            links = []
            replacements = []
            for anchor, need in anchors:
                tracking_url = None
                if need is not None:
                    tracking_url = self.signer.tracking_url(org, ids[need], need.target)
                    replacements.append((anchor, tracking_url))
                links.append(
                    ShortLink(
                        url=anchor.url,
                        short_url=None,
                        code=None,
                        tracked=need is not None,
                        tracking_url=tracking_url,
                    )
                )
            pixel_tag = None
            if pixel is not None:
                pixel_tag = markup.pixel_tag(self.signer.pixel_url(org, ids[pixel]))
            new_body = markup.rewrite(body, replacements, pixel_tag) if consent else body
            return ShortenResult(body=new_body, links=links, segments=None, skipped=draft.skipped)

        draft.render = render

    async def shorten(self, org: str, request: ShortenRequest) -> ShortenResult:
        """Shorten one message; MessageConflict if its id was used for another message,
        TooManyLinks if it has more links than a message may have."""
        (outcome,) = await self.shorten_many(org, [request])
        if isinstance(outcome, MessageRefused):
            raise outcome
        return outcome

    async def shorten_many(
        self, org: str, requests: Sequence[ShortenRequest]
    ) -> list[ShortenResult | MessageRefused]:
        """Shorten messages in one store round trip (two when a retry lost a race), each on its
        own: a message whose id was used for another message gets a MessageConflict in its
        place and keeps nothing stored. Retried message ids get their first result. A message
        whose id an earlier message of the same call has is a MessageConflict too: one batch
        names each message once. A message with more links than a message may have gets
        TooManyLinks.

        Before anything is issued or written, the whole call is refused with BatchTooLarge
        when its messages have more links together than one call may issue, and with
        ShortenLimitReached when the org may not shorten that many more messages this minute.
        """
        outcomes: list[ShortenResult | MessageRefused | None] = [None] * len(requests)
        drafts, later = self._drafts(requests, outcomes)
        opted_out = await self._admit(org, drafts)
        for draft in drafts.values():
            recipient = draft.request.recipient
            consent = (
                recipient is not None
                and recipient.tracking_consent
                and recipient.contact_id not in opted_out
            )
            self._plan(org, draft, consent)
        messages = await self._issue(org, drafts, outcomes)
        if any(need.kind.tracked for draft in drafts.values() for need in draft.needs):
            await self._remember_org(org)
        ttl = self.policy.ttl_seconds
        keep_ms = (ttl + min(ttl, MAX_GRACE_SECONDS)) * 1000
        earlier = await self.store.save_links(messages, keep_ms, self.policy.base_url)
        kept = 0
        saved = zip(drafts.items(), messages, earlier, strict=True)
        for (index, draft), message, previous in saved:
            result = outcomes[index]
            assert isinstance(result, ShortenResult)
            if previous is None:
                kept += len(message.links)
            elif draft.request.message_id is not None:
                fingerprint, _, payload = previous.partition("\n")
                holder = (fingerprint, ShortenResult.model_validate_json(payload))
                outcomes[index] = _answer(draft.request.message_id, draft.fingerprint, holder)
        CODES_ISSUED.inc(kept)
        for index in later:
            message_id = requests[index].message_id
            assert message_id is not None
            outcomes[index] = MessageConflict(message_id, in_this_batch=True)
        answered = [outcome for outcome in outcomes if outcome is not None]
        assert len(answered) == len(requests)
        return answered

    def _drafts(
        self,
        requests: Sequence[ShortenRequest],
        outcomes: list[ShortenResult | MessageRefused | None],
    ) -> tuple[dict[int, _Draft], dict[int, str]]:
        """Drafts of the messages to shorten, by index, with the links found in each; and the
        fingerprints of the messages whose id an earlier message of the call has, by index:
        those issue nothing and are answered as the id's claim is. A message with more links
        than a message may have gets TooManyLinks in `outcomes`; BatchTooLarge as soon as the
        others have more links together than one call may issue. No I/O."""
        drafts: dict[int, _Draft] = {}
        later: dict[int, str] = {}
        first_with_id: dict[str, int] = {}
        total = 0
        for index, request in enumerate(requests):
            fingerprint = _fingerprint(request)
            message_id = request.message_id
            if message_id is not None and first_with_id.setdefault(message_id, index) != index:
                later[index] = fingerprint
                continue
            draft = _Draft(request, fingerprint)
            if request.content_type == "html":
                anchors = markup.find_anchors(request.body)
                draft.anchors = [anchor for anchor in anchors if anchor.is_web_link]
                found = len(draft.anchors)
            else:
                draft.found = find_links(request.body)
                found = len(draft.found)
            if found > _LINK_LIMITS[request.content_type]:
                outcomes[index] = TooManyLinks(request.content_type, found)
                continue
            total += found
            if total > MAX_LINKS_PER_BATCH:
                raise BatchTooLarge
            drafts[index] = draft
        return drafts, later

    async def _admit(self, org: str, drafts: dict[int, _Draft]) -> set[str]:
        """Take the messages from the org's quota for this minute (ShortenLimitReached when
        they do not fit), and read which of their contacts opted out: in one round trip, since
        commands of one event-loop turn leave together."""
        requests = [draft.request for draft in drafts.values()]
        replies = await asyncio.gather(
            self._take_quota(org, len(requests)),
            self._opted_out(org, requests),
            return_exceptions=True,
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        opted_out = replies[1]
        assert isinstance(opted_out, set)
        return opted_out

    async def _take_quota(self, org: str, count: int) -> None:
        limit = self.policy.org_shorten_limit_per_minute
        if limit <= 0 or count == 0:
            return
        retry_after_ms = await self.store.take_shorten_quota(
            org, count, limit, SHORTEN_LIMIT_WINDOW_MS
        )
        if retry_after_ms:
            raise ShortenLimitReached(limit, count, retry_after_ms)

    async def _issue(
        self,
        org: str,
        drafts: dict[int, _Draft],
        outcomes: list[ShortenResult | MessageRefused | None],
    ) -> list[MessageLinks]:
        """Give the drafts' links their serials and render the results into `outcomes`; the
        links of each draft, with the claim of its message id."""
        serials = iter(await self.allocator.allocate(sum(len(d.needs) for d in drafts.values())))
        now = int(self.clock())
        expires_at = now + self.policy.ttl_seconds
        messages: list[MessageLinks] = []
        for index, draft in drafts.items():
            recipient = draft.request.recipient
            ids: dict[_Need, str] = {}
            links = []
            for need in draft.needs:
                serial = next(serials)
                ids[need] = self.codec.encode(serial)
                link = StoredLink(
                    need.kind,
                    org,
                    need.target,
                    now,
                    expires_at,
                    recipient.contact_id if recipient and need.kind.tracked else None,
                    draft.request.message_id if need.kind.tracked else None,
                    draft.request.campaign,
                )
                links.append((serial, link))
            assert draft.render is not None
            result = draft.render(ids)
            outcomes[index] = result
            claim = None
            if draft.request.message_id is not None:
                payload = draft.fingerprint + "\n" + result.model_dump_json()
                claim = MessageClaim(org, draft.request.message_id, payload)
            messages.append(MessageLinks(links, claim))
        return messages

    async def _opted_out(self, org: str, requests: Sequence[ShortenRequest]) -> set[str]:
        """The contacts of these messages who consent in the request but opted out here."""
        asking = [
            request.recipient.contact_id
            for request in requests
            if request.recipient is not None
            and request.recipient.tracking_consent
            and request.recipient.contact_id is not None
        ]
        return await self.store.opted_out(org, asking)

    async def _remember_org(self, org: str) -> None:
        org_hash = self.signer.org_hash(org)
        if self._orgs.get(org_hash) != org:
            await self.store.remember_orgs({org_hash: org})
            self._orgs[org_hash] = org

    async def _org_of(self, org_hash: str) -> str | None:
        org = self._orgs.get(org_hash)
        if org is None:
            org = await self.store.org_of_hash(org_hash)
            if org is not None:
                self._orgs[org_hash] = org
        return org

    async def remember_orgs(self, orgs: Iterable[str]) -> None:
        known = {self.signer.org_hash(org): org for org in orgs}
        await self.store.remember_orgs(known)
        self._orgs.update(known)

    # Looking links up

    async def describe(self, link_id: str) -> LinkReport | None:
        """The record and tap counts of any id this service issued (a short code, a tracked
        link or a pixel); None for an id it never issued."""
        serial = self.codec.decode(link_id)
        if serial is None:
            return None
        link, base_url, clicks, bot_clicks = await self.store.inspect_link(serial)
        return LinkReport(link_id, link, base_url, clicks, bot_clicks)

    async def expiring(self, within_seconds: int) -> dict[str, int]:
        """Codes per org that are still active and expire within `within_seconds`, counted
        in whole minutes from the next one on (the window rounded up to whole minutes).

        The index knows the minute of each expiry, not the second: a code expiring within
        the current minute may have expired already, so that minute is left out."""
        await self.store.flush()
        first_minute = int(self.clock()) // 60 + 1
        minutes = -(-within_seconds // 60)
        return await self.store.expiring(first_minute, first_minute + minutes - 1)

    # Following links

    async def _live(self, link_id: str, kinds: str, visitor: Visitor) -> StoredLink | None:
        """The live record behind an id, its tap counted; None if unknown or expired."""
        serial = self.codec.decode(link_id)
        if serial is None:
            return None
        link = await self.store.tap_link(serial, visitor.counter, int(self.clock()), kinds)
        if link is None or link.expires_at <= self.clock():
            return None
        return link

    def find_code(self, path: str) -> tuple[str, int] | None:
        """The code this service made (it may have expired since) that a tapped path is or
        starts with (see `CodeCodec.decode_leading`), with its serial; no I/O."""
        return self.codec.decode_leading(path)

    async def tap(self, found: tuple[str, int], visitor: Visitor) -> Tap:
        """A tap on a code that `find_code` found: where it leads, its click recorded if it
        is tracked."""
        code, serial = found
        link = await self.store.tap_link(serial, visitor.counter, int(self.clock()), "ut")
        if link is None:
            return Tap(TapOutcome.EXPIRED)
        if not link.kind.has_code:
            return Tap(TapOutcome.UNKNOWN)
        if link.expires_at <= self.clock():
            return Tap(TapOutcome.EXPIRED, link)
        await self.recorder.record(link, type_="click", link_id=code, visitor=visitor)
        return Tap(TapOutcome.REDIRECT, link)

    async def follow(
        self,
        org_hash: str,
        link_id: str,
        target: str,
        digest: str,
        version: int,
        visitor: Visitor,
    ) -> str:
        """A tap on a signed tracked link: its target, or InvalidSignature. The click is
        recorded while the link is inside its tracking window; after it, it only redirects."""
        org = await self._org_of(org_hash)
        if org is None or not self.signer.verify(org, link_id, target, digest, version):
            raise InvalidSignature("the link's digest does not match its target")
        link = await self._live(link_id, "th", visitor)
        if link is not None and link.org == org and link.target == target:
            await self.recorder.record(link, type_="click", link_id=link_id, visitor=visitor)
        return target

    async def follow_cut(
        self,
        org_hash: str,
        link_id: str,
        visitor: Visitor,
        *,
        target: str | None = None,
        digest: str | None = None,
        version: int | None = None,
    ) -> str:
        """A tracked link whose query lost `digest`, `secretVersion` or `targetUrl` on the way
        (mail and SMS clients cut long URLs): the target stored for the link, never the
        query's, with the click recorded as usual; InvalidSignature when no record of the org
        is stored. What the query still holds must agree with the record: its target may be
        cut, but not changed, and a digest with its version must sign the stored target."""
        serial = self.codec.decode(link_id)
        if serial is None:
            raise InvalidSignature("the link is incomplete and names no link of this service")
        now = int(self.clock())
        link = await self.store.tap_link(serial, visitor.counter, now, _CUT_KINDS)
        if (
            link is None
            or link.kind.value not in _CUT_KINDS
            or self.signer.org_hash(link.org) != org_hash
        ):
            raise InvalidSignature("the link is incomplete and no record of it is kept")
        if target is not None and not link.target.startswith(_PARTIAL_ESCAPE.sub("", target)):
            raise InvalidSignature("the link's target does not match its record")
        if (
            digest is not None
            and version is not None
            and not self.signer.verify(link.org, link_id, link.target, digest, version)
        ):
            raise InvalidSignature("the link's digest does not match its target")
        if link.expires_at > now:
            await self.recorder.record(link, type_="click", link_id=link_id, visitor=visitor)
        return link.target

    async def open(self, org_hash: str, link_id: str, visitor: Visitor) -> None:
        """The open-tracking pixel was fetched. The route names any id the service issued,
        but only an HTML message's pixel records an open (and is counted): a short code or
        tracked link fetched as a pixel says nothing of anyone opening a message."""
        link = await self._live(link_id, LinkKind.PIXEL.value, visitor)
        if (
            link is not None
            and link.kind is LinkKind.PIXEL
            and self.signer.org_hash(link.org) == org_hash
        ):
            await self.recorder.record(link, type_="open", link_id=link_id, visitor=visitor)


def link_info(report: LinkReport, base_url: str, now: float) -> LinkInfo | None:
    """The ops view of an id whose record is still stored; `base_url` stands in for the one
    it was issued with where the store does not know that."""
    link = report.link
    if link is None:
        return None
    code = report.link_id if link.kind.has_code else None
    return LinkInfo(
        link_id=report.link_id,
        kind=_KIND_NAMES[link.kind],
        code=code,
        short_url=None if code is None else f"{report.base_url or base_url}/{code}",
        url=None if link.kind is LinkKind.PIXEL else link.target,
        tracked=link.kind.tracked,
        created_at=datetime.fromtimestamp(link.created_at, UTC),
        expires_at=datetime.fromtimestamp(link.expires_at, UTC),
        ttl_seconds=max(0, int(link.expires_at - now)),
        status="active" if link.expires_at > now else "expired",
        clicks=report.clicks,
        bot_clicks=report.bot_clicks,
        campaign=link.campaign,
        message_id=link.message_id,
    )


def _answer(
    message_id: str, fingerprint: str, holder: tuple[str, ShortenResult]
) -> ShortenResult | MessageConflict:
    """The answer to a message given what holds its id: a retry gets the holder's result."""
    if fingerprint == holder[0]:
        return holder[1]
    return MessageConflict(message_id)


def _fingerprint(request: ShortenRequest) -> str:
    """What tells a retry of a message from another message under the same id."""
    # Only a message id can be retried, so only then is the request worth a fingerprint.
    if request.message_id is None:
        return ""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:32]


def _segment_info(text: str) -> SegmentInfo:
    count = count_segments(text)
    return SegmentInfo(
        encoding=count.encoding, characters=count.characters, segments=count.segments
    )
