"""Shortening messages and resolving taps: the domain, free of HTTP."""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shortener.codes import CodeCodec, SerialAllocator
from shortener.detection import find_links
from shortener.schemas import (
    SegmentInfo,
    Segments,
    ShortenRequest,
    ShortenResult,
    ShortLink,
)
from shortener.segments import count_segments
from shortener.store import MessageClaim, Store, StoredLink
from shortener.targets import InvalidTarget, redirect_target


class MessageConflict(Exception):
    """A message id was reused for a different message."""


class UnsupportedContent(Exception):
    """The message's content type cannot be shortened by this service."""


class TapOutcome(enum.Enum):
    REDIRECT = "redirect"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Tap:
    outcome: TapOutcome
    link: StoredLink | None = None


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    base_url: str
    ttl_seconds: int
    schemeless_scheme: str = "https"
    http_only_hosts: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Draft:
    """One message on its way: its links found, its serials still to be given."""

    org: str
    request: ShortenRequest
    spans: list[tuple[int, int, str, str]]  # start, end, url as written, redirect target
    fingerprint: str


class Shortener:
    def __init__(
        self,
        store: Store,
        codec: CodeCodec,
        policy: LinkPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.codec = codec
        self.policy = policy
        self.clock = clock
        self.allocator = SerialAllocator(store.reserve_blocks)

    def _target(self, url: str) -> str:
        scheme = self.policy.schemeless_scheme
        if "://" not in url:
            host = url.split("/", 1)[0].split(":", 1)[0].lower()
            if host in self.policy.http_only_hosts:
                scheme = "http"
        return redirect_target(url, schemeless_scheme=scheme)

    def _draft(self, org: str, request: ShortenRequest) -> _Draft:
        if request.content_type != "text":
            raise UnsupportedContent("only content_type 'text' can be shortened")
        spans = []
        for found in find_links(request.body):
            try:
                target = self._target(found.url)
            except InvalidTarget:
                # Not something a redirect may point at; it stays in the body as written.
                continue
            spans.append((found.start, found.end, found.url, target))
        fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()[:32]
        return _Draft(org, request, spans, fingerprint)

    async def shorten(self, org: str, request: ShortenRequest) -> ShortenResult:
        return (await self.shorten_many(org, [request]))[0]

    async def shorten_many(
        self, org: str, requests: Sequence[ShortenRequest]
    ) -> list[ShortenResult]:
        """Shorten messages in one store round trip; retried message ids get their first result."""
        drafts = [self._draft(org, request) for request in requests]
        targets_per_draft = [list(dict.fromkeys(span[3] for span in d.spans)) for d in drafts]
        serials = await self.allocator.allocate(sum(len(t) for t in targets_per_draft))
        now = int(self.clock())
        expires_at = now + self.policy.ttl_seconds
        stored: list[tuple[int, StoredLink]] = []
        results: list[ShortenResult] = []
        claims: list[MessageClaim] = []
        claimed_by: list[int] = []
        serial_iter = iter(serials)
        for index, (draft, targets) in enumerate(zip(drafts, targets_per_draft, strict=True)):
            codes: dict[str, str] = {}
            for target in targets:
                serial = next(serial_iter)
                codes[target] = self.codec.encode(serial)
                stored.append((serial, StoredLink(org, target, now, expires_at)))
            result = self._result(draft, codes)
            results.append(result)
            if draft.request.message_id is not None:
                payload = draft.fingerprint + "\n" + result.model_dump_json()
                claims.append(MessageClaim(org, draft.request.message_id, payload))
                claimed_by.append(index)
        earlier = await self.store.save_links(stored, self.policy.ttl_seconds * 1000, claims)
        lost: list[int] = []
        for index, previous in zip(claimed_by, earlier, strict=True):
            if previous is None:
                continue
            fingerprint, _, payload = previous.partition("\n")
            if fingerprint != drafts[index].fingerprint:
                raise MessageConflict(
                    f"message_id {drafts[index].request.message_id!r} was already used "
                    "for a different message"
                )
            lost.extend(
                self.codec.decode(link.code) or 0 for link in results[index].links if link.code
            )
            results[index] = ShortenResult.model_validate_json(payload)
        if lost:
            await self.store.forget_links([serial for serial in lost if serial])
        return results

    def _result(self, draft: _Draft, codes: dict[str, str]) -> ShortenResult:
        body = draft.request.body
        pieces: list[str] = []
        links: list[ShortLink] = []
        position = 0
        for start, end, url, target in draft.spans:
            code = codes[target]
            short_url = f"{self.policy.base_url}/{code}"
            pieces += (body[position:start], short_url)
            position = end
            links.append(
                ShortLink(url=url, short_url=short_url, code=code, tracked=False, tracking_url=None)
            )
        pieces.append(body[position:])
        new_body = "".join(pieces)
        return ShortenResult(
            body=new_body,
            links=links,
            segments=Segments(before=_segment_info(body), after=_segment_info(new_body)),
        )

    async def tap(self, code: str) -> Tap:
        serial = self.codec.decode(code)
        if serial is None:
            return Tap(TapOutcome.UNKNOWN)
        link = await self.store.load_link(serial)
        if link is None or link.expires_at <= self.clock():
            return Tap(TapOutcome.EXPIRED, link)
        return Tap(TapOutcome.REDIRECT, link)


def _segment_info(text: str) -> SegmentInfo:
    count = count_segments(text)
    return SegmentInfo(
        encoding=count.encoding, characters=count.characters, segments=count.segments
    )
