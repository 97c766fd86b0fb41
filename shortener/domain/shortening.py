"""Shortening messages: find the links, decide which are tracked, issue their records and
rewrite the body. No HTTP, and the store only through `Store`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from shortener.domain.codes import CodeCodec
from shortener.domain.destinations import DestinationPolicy
from shortener.domain.errors import (
    BatchTooLarge,
    InvalidLinks,
    MessageConflict,
    MessageRefused,
    ShortenLimitReached,
    TooManyLinks,
    link_limit,
)
from shortener.domain.limits import MAX_LINKS_PER_BATCH, SHORTEN_LIMIT_WINDOW_MS
from shortener.domain.messages import (
    SegmentInfo,
    Segments,
    ShortenRequest,
    ShortenResult,
    ShortLink,
    SkippedLink,
)
from shortener.domain.orgs import OrgDirectory
from shortener.domain.signing import LinkSigner
from shortener.domain.tenants import OrgSettings, Tenants
from shortener.metrics import CODES_ISSUED
from shortener.model import PIXEL_TARGET, LinkKind, StoredLink
from shortener.store.analytics import hour_of
from shortener.store.serials import SerialAllocator
from shortener.store.store import MessageClaim, MessageLinks, Store
from shortener.text import markup
from shortener.text.detection import FoundLink, find_links
from shortener.text.segments import count_segments
from shortener.text.targets import InvalidTarget, redirect_target

# Records stay this long past their expiry (at most as long as they lived) so that ops can
# still see where an expired code went and how often it was tapped.
MAX_GRACE_SECONDS = 30 * 86_400


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    ttl_seconds: int
    schemeless_scheme: str = "https"
    http_only_hosts: frozenset[str] = frozenset()
    # Messages an org may shorten per minute; 0: no limit.
    org_shorten_limit_per_minute: int = 0
    # How long the aggregate counts of links issued per campaign are kept.
    analytics_retention_days: int = 400

    def keep_ms(self) -> int:
        """How long the store keeps a record: its lifetime and the grace for ops."""
        return (self.ttl_seconds + min(self.ttl_seconds, MAX_GRACE_SECONDS)) * 1000


@dataclass(frozen=True, slots=True)
class _Need:
    """A link record a message needs; identical needs of one message share one record."""

    kind: LinkKind
    target: str


@dataclass(frozen=True, slots=True)
class _Span:
    """A link of a text body and the record it becomes."""

    start: int
    end: int
    url: str
    need: _Need


@dataclass(frozen=True, slots=True)
class _TextPlan:
    spans: list[_Span]
    skipped: list[SkippedLink]
    # The records to issue, each once, in order; worked out once, since issuing asks often.
    needs: list[_Need] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", list(dict.fromkeys(span.need for span in self.spans)))


@dataclass(frozen=True, slots=True)
class _HtmlPlan:
    # Each web link of the markup, with the record it becomes where it is tracked.
    anchors: list[tuple[markup.Anchor, _Need | None]]
    pixel: _Need | None
    # The hidden link for scanners, beside the pixel (see `domain.settling`).
    honeypot: _Need | None
    skipped: list[SkippedLink]
    # The records to issue, each once, in order; worked out once, since issuing asks often.
    needs: list[_Need] = field(init=False)

    def __post_init__(self) -> None:
        wanted = [need for _, need in self.anchors if need is not None]
        wanted += [need for need in (self.pixel, self.honeypot) if need is not None]
        object.__setattr__(self, "needs", list(dict.fromkeys(wanted)))


_Plan = _TextPlan | _HtmlPlan


@dataclass(slots=True)
class _Draft:
    """One message on its way: the links found in it, without I/O."""

    request: ShortenRequest
    fingerprint: str
    # The links found in a text body; the `<a href>` to http(s) of an html body.
    found: list[FoundLink] = field(default_factory=list)
    anchors: list[markup.Anchor] = field(default_factory=list)
    # Each link as written → its redirect target, or why it cannot be one.
    targets: dict[str, str | InvalidTarget] = field(default_factory=dict)


class Shortening:
    def __init__(
        self,
        store: Store,
        codec: CodeCodec,
        signer: LinkSigner,
        orgs: OrgDirectory,
        policy: LinkPolicy,
        clock: Callable[[], float],
        tenants: Tenants,
    ) -> None:
        self.store = store
        self.codec = codec
        self.signer = signer
        self.orgs = orgs
        self.policy = policy
        self.clock = clock
        # Each org's base URL and destination policy, from memory.
        self.tenants = tenants
        self._block_generation = tenants.generation
        self.allocator = SerialAllocator(store.reserve_blocks)

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
        drafts, later = self._drafts(requests, outcomes, self.tenants.settings(org).destinations)
        opted_out = await self._admit(org, drafts)
        plans = {
            index: self._plan(org, draft, self._consents(draft.request, opted_out))
            for index, draft in drafts.items()
        }
        messages, settings = await self._issue(org, drafts, plans, outcomes)
        if any(need.kind.tracked for plan in plans.values() for need in plan.needs):
            await self.orgs.remember([org])
        earlier = await self.store.save_links(
            messages,
            self.policy.keep_ms(),
            settings.base_url,
            branded_org=org if settings.branded else None,
            issued=hour_of(self.clock(), self.policy.analytics_retention_days),
        )
        kept = 0
        saved = zip(drafts.items(), messages, earlier, strict=True)
        for (index, draft), message, previous in saved:
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

    @staticmethod
    def _consents(request: ShortenRequest, opted_out: set[str]) -> bool:
        recipient = request.recipient
        return (
            recipient is not None
            and recipient.tracking_consent
            and recipient.contact_id not in opted_out
        )

    def _drafts(
        self,
        requests: Sequence[ShortenRequest],
        outcomes: list[ShortenResult | MessageRefused | None],
        destinations: DestinationPolicy,
    ) -> tuple[dict[int, _Draft], dict[int, str]]:
        """Drafts of the messages to shorten, by index, with the links found in each; and the
        fingerprints of the messages whose id an earlier message of the call has, by index:
        those issue nothing and are answered as the id's claim is. A message with more links
        than a message may have gets TooManyLinks in `outcomes`, and one with a link its org
        may not link to InvalidLinks; BatchTooLarge as soon as the others have more links
        together than one call may issue. No I/O."""
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
            if found > link_limit(request.content_type):
                outcomes[index] = TooManyLinks(request.content_type, found)
                continue
            refused = self._refused(draft, destinations)
            if refused:
                outcomes[index] = InvalidLinks(refused)
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
        limit = self.policy.org_shorten_limit_per_minute
        counted = limit > 0 and bool(requests)
        # The contacts of these messages who consent in the request: did they opt out here?
        asking = [
            request.recipient.contact_id
            for request in requests
            if request.recipient is not None
            and request.recipient.tracking_consent
            and request.recipient.contact_id is not None
        ]
        # Most calls need neither: then no task is made to wait for nothing.
        if not counted:
            return await self.store.opted_out(org, asking) if asking else set()
        if not asking:
            await self._take_quota(org, limit, len(requests))
            return set()
        replies = await asyncio.gather(
            self._take_quota(org, limit, len(requests)),
            self.store.opted_out(org, asking),
            return_exceptions=True,
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        opted_out = replies[1]
        assert isinstance(opted_out, set)
        return opted_out

    async def _take_quota(self, org: str, limit: int, count: int) -> None:
        retry_after_ms = await self.store.take_shorten_quota(
            org, count, limit, SHORTEN_LIMIT_WINDOW_MS
        )
        if retry_after_ms:
            raise ShortenLimitReached(limit, count, retry_after_ms)

    # Planning: which record each link needs. Consent is only known once the store has been
    # asked, after the links were counted.

    def _target(self, url: str) -> str:
        scheme = self.policy.schemeless_scheme
        if "://" not in url:
            host = url.split("/", 1)[0].split(":", 1)[0].lower()
            if host in self.policy.http_only_hosts:
                scheme = "http"
        return redirect_target(url, schemeless_scheme=scheme)

    def _refused(self, draft: _Draft, destinations: DestinationPolicy) -> list[tuple[str, str]]:
        """The links of a draft that lead where its org may not link, with the reasons; fills
        the draft's targets on the way.

        Every link that can be a redirect target counts, an html link left untracked as much as
        one that is tracked: carriers judge a message by every link in it, and the answer does
        not then hang on whether the recipient's consent allows tracking at the time."""
        urls = [found.url for found in draft.found] or [anchor.url for anchor in draft.anchors]
        refused: list[tuple[str, str]] = []
        for url in dict.fromkeys(urls):
            target = draft.targets.get(url)
            if target is None:
                try:
                    target = draft.targets[url] = self._target(url)
                except InvalidTarget as error:
                    draft.targets[url] = error
                    continue
            elif isinstance(target, InvalidTarget):
                continue
            reason = destinations.refusal(target)
            if reason is not None:
                refused.append((url, reason))
        return refused

    @staticmethod
    def _target_of(draft: _Draft, url: str) -> str:
        """The redirect target of a link of the draft; InvalidTarget if it cannot be one."""
        target = draft.targets[url]
        if isinstance(target, InvalidTarget):
            raise target
        return target

    def _excluded(self, entries: Iterable[str]) -> frozenset[str]:
        """The non-trackable list, as written and as redirect targets."""
        excluded = set()
        for entry in entries:
            excluded.add(entry)
            with contextlib.suppress(InvalidTarget):
                excluded.add(self._target(entry.strip()))
        return frozenset(excluded)

    def _plan(self, org: str, draft: _Draft, consent: bool) -> _Plan:
        excluded = self._excluded(draft.request.non_trackable)
        if draft.request.content_type == "html":
            return self._plan_html(draft, consent, excluded)
        return self._plan_text(draft, consent, excluded)

    def _plan_text(self, draft: _Draft, consent: bool, excluded: frozenset[str]) -> _TextPlan:
        spans: list[_Span] = []
        skipped: list[SkippedLink] = []
        for found in draft.found:
            try:
                target = self._target_of(draft, found.url)
            except InvalidTarget as error:
                # Not something a redirect may point at; it stays in the body as written.
                skipped.append(SkippedLink(url=found.url, reason=str(error)))
                continue
            tracked = consent and found.url not in excluded and target not in excluded
            need = _Need(LinkKind.TRACKED_SHORT if tracked else LinkKind.SHORT, target)
            spans.append(_Span(found.start, found.end, found.url, need))
        return _TextPlan(spans, skipped)

    def _plan_html(self, draft: _Draft, consent: bool, excluded: frozenset[str]) -> _HtmlPlan:
        anchors: list[tuple[markup.Anchor, _Need | None]] = []
        skipped: list[SkippedLink] = []
        for anchor in draft.anchors:
            try:
                target = self._target_of(draft, anchor.url)
            except InvalidTarget as error:
                skipped.append(SkippedLink(url=anchor.url, reason=str(error)))
                continue
            need = None
            trackable = not anchor.opted_out and anchor.url not in excluded
            if consent and trackable and target not in excluded:
                need = _Need(LinkKind.TRACKED, target)
            anchors.append((anchor, need))
        pixel = _Need(LinkKind.PIXEL, PIXEL_TARGET) if consent else None
        # A scanner that follows it is sent where the message's first tracked link leads, so
        # that it looks like any other.
        first = next((need for _, need in anchors if need is not None), None)
        honeypot = None if first is None else _Need(LinkKind.HONEYPOT, first.target)
        return _HtmlPlan(anchors, pixel, honeypot, skipped)

    # Issuing and rendering, once the needed records have their codes.

    async def _issue(
        self,
        org: str,
        drafts: dict[int, _Draft],
        plans: dict[int, _Plan],
        outcomes: list[ShortenResult | MessageRefused | None],
    ) -> tuple[list[MessageLinks], OrgSettings]:
        """Give the plans' links their serials and render the results into `outcomes`; the
        links of each draft, with the claim of its message id, and the org's settings they
        were issued under."""
        # The store keeps one base URL per org and block (see `Store.save_links`), so a block
        # is not carried over a change of orgs' settings.
        if self.tenants.generation != self._block_generation:
            self._block_generation = self.tenants.generation
            self.allocator.end_block()
        settings = self.tenants.settings(org)
        base_url = settings.base_url
        serials = iter(await self.allocator.allocate(sum(len(p.needs) for p in plans.values())))
        now = int(self.clock())
        expires_at = now + self.policy.ttl_seconds
        messages: list[MessageLinks] = []
        for index, draft in drafts.items():
            request = draft.request
            recipient = request.recipient
            plan = plans[index]
            codes: dict[_Need, str] = {}
            links = []
            for need in plan.needs:
                serial = next(serials)
                codes[need] = self.codec.encode(serial)
                link = StoredLink(
                    need.kind,
                    org,
                    need.target,
                    now,
                    expires_at,
                    recipient.contact_id if recipient and need.kind.tracked else None,
                    request.message_id if need.kind.tracked else None,
                    request.campaign,
                )
                links.append((serial, link))
            if isinstance(plan, _TextPlan):
                result = self._render_text(org, base_url, request.body, plan, codes)
            else:
                result = self._render_html(org, base_url, request.body, plan, codes)
            outcomes[index] = result
            claim = None
            if request.message_id is not None:
                payload = draft.fingerprint + "\n" + result.model_dump_json()
                claim = MessageClaim(org, request.message_id, payload)
            messages.append(MessageLinks(links, claim))
        return messages, settings

    def _render_text(
        self, org: str, base_url: str, body: str, plan: _TextPlan, codes: dict[_Need, str]
    ) -> ShortenResult:
        pieces: list[str] = []
        links: list[ShortLink] = []
        position = 0
        for span in plan.spans:
            need = span.need
            code = codes[need]
            short_url = f"{base_url}/{code}"
            pieces += (body[position : span.start], short_url)
            position = span.end
            tracking_url = (
                self.signer.tracking_url(base_url, org, code, need.target)
                if need.kind.tracked
                else None
            )
            links.append(
                ShortLink.model_construct(
                    url=span.url,
                    short_url=short_url,
                    code=code,
                    tracked=need.kind.tracked,
                    tracking_url=tracking_url,
                )
            )
        pieces.append(body[position:])
        new_body = "".join(pieces)
        # Built from checked parts: constructed, not validated again.
        return ShortenResult.model_construct(
            body=new_body,
            links=links,
            segments=Segments.model_construct(
                before=segment_info(body), after=segment_info(new_body)
            ),
            skipped=plan.skipped,
        )

    def _render_html(
        self, org: str, base_url: str, body: str, plan: _HtmlPlan, codes: dict[_Need, str]
    ) -> ShortenResult:
        links = []
        replacements = []
        for anchor, need in plan.anchors:
            tracking_url = None
            if need is not None:
                tracking_url = self.signer.tracking_url(base_url, org, codes[need], need.target)
                replacements.append((anchor, tracking_url))
            links.append(
                ShortLink.model_construct(
                    url=anchor.url,
                    short_url=None,
                    code=None,
                    tracked=need is not None,
                    tracking_url=tracking_url,
                )
            )
        new_body = body
        if plan.pixel is not None:
            hidden = markup.pixel_tag(self.signer.pixel_url(base_url, org, codes[plan.pixel]))
            if plan.honeypot is not None:
                url = self.signer.tracking_url(
                    base_url, org, codes[plan.honeypot], plan.honeypot.target
                )
                hidden = markup.honeypot_tag(url) + hidden
            new_body = markup.rewrite(body, replacements, hidden)
        return ShortenResult.model_construct(
            body=new_body, links=links, segments=None, skipped=plan.skipped
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


def segment_info(text: str) -> SegmentInfo:
    """How many SMS segments a body takes, in which encoding."""
    count = count_segments(text)
    return SegmentInfo.model_construct(
        encoding=count.encoding, characters=count.characters, segments=count.segments
    )
