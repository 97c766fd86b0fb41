"""Following what recipients tap: short codes, signed tracked links and the open pixel. Each
is resolved, then answered, then tracked, in that order.

Each is tapped on a host: on an org's own domain only that org's links resolve, and another
org's are answered as if never issued (and counted nowhere); on any other host, every org's do.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from shortener.domain.codes import CodeCodec
from shortener.domain.errors import InvalidSignature, LinkDisabled
from shortener.domain.interactions import ClickRecorder
from shortener.domain.orgs import OrgDirectory
from shortener.domain.signing import LinkSigner
from shortener.domain.tenants import Tenants
from shortener.model import (
    CODE_KINDS,
    PIXEL_KINDS,
    SIGNED_KINDS,
    InteractionType,
    LinkKind,
    StoredLink,
    Visitor,
)
from shortener.store.store import Store

# A cut target may end inside a percent escape, which the query parser leaves as it was.
_PARTIAL_ESCAPE = re.compile(r"%[0-9A-Fa-f]?\Z")


class TapOutcome(enum.Enum):
    REDIRECT = "redirect"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Tap:
    outcome: TapOutcome
    link: StoredLink | None = None
    # Where the org sends a code that does not redirect, instead of the page saying why.
    fallback_url: str | None = None


class Redirects:
    def __init__(
        self,
        store: Store,
        codec: CodeCodec,
        signer: LinkSigner,
        orgs: OrgDirectory,
        recorder: ClickRecorder,
        tenants: Tenants,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.codec = codec
        self.signer = signer
        self.orgs = orgs
        self.recorder = recorder
        self.tenants = tenants
        self.clock = clock

    def find_code(self, path: str) -> tuple[str, int] | None:
        """The code this service made (it may have expired since) that a tapped path is or
        starts with (see `CodeCodec.decode_leading`), with its serial; no I/O."""
        return self.codec.decode_leading(path)

    def owner(self, host: Callable[[], str]) -> str | None:
        """The org whose domain the request's host is (`host()`: lowercase, without port);
        None for any other. The host is only worked out once some org owns a domain."""
        return self.tenants.org_of_host(host()) if self.tenants.has_domains else None

    def unknown(self, owner: str | None) -> Tap:
        """The answer to a path that is no code of the host's org."""
        return self._dead(TapOutcome.UNKNOWN, owner)

    def _dead(self, outcome: TapOutcome, org: str | None, link: StoredLink | None = None) -> Tap:
        fallback = None if org is None else self.tenants.settings(org).fallback_url
        return Tap(outcome, link, fallback)

    async def tap(self, found: tuple[str, int], visitor: Visitor, owner: str | None) -> Tap:
        """A tap on a code that `find_code` found, on a host of `owner` (see `owner`): where
        it leads, its click recorded if it is tracked."""
        code, serial = found
        link = await self.store.tap_link(serial, visitor, int(self.clock()), CODE_KINDS, owner)
        if link is None:
            # Its record is gone, and with it its org: only the host may name one.
            return self._dead(TapOutcome.EXPIRED, owner)
        if not link.kind.has_code or (owner is not None and link.org != owner):
            return self.unknown(owner)
        if link.disabled:
            return self._dead(TapOutcome.DISABLED, link.org, link)
        if link.expires_at <= self.clock():
            return self._dead(TapOutcome.EXPIRED, link.org, link)
        await self.recorder.record(link, InteractionType.CLICK, code, visitor)
        return Tap(TapOutcome.REDIRECT, link)

    async def _live(
        self, link_id: str, kinds: frozenset[LinkKind], visitor: Visitor, owner: str | None
    ) -> StoredLink | None:
        """The live record behind an id, its tap counted; None if unknown, expired, or not
        `owner`'s where that names an org. A disabled one is live here: callers refuse it."""
        serial = self.codec.decode(link_id)
        if serial is None:
            return None
        link = await self.store.tap_link(serial, visitor, int(self.clock()), kinds, owner)
        if (
            link is None
            or (owner is not None and link.org != owner)
            or link.expires_at <= self.clock()
        ):
            return None
        return link

    async def follow(
        self,
        org_hash: str,
        link_id: str,
        target: str,
        digest: str,
        version: int,
        visitor: Visitor,
        owner: str | None,
    ) -> str:
        """A tap on a signed tracked link, on a host of `owner`: its target, or
        InvalidSignature, or LinkDisabled once its link was taken down. The click is recorded
        while the link is inside its tracking window; after it, it only redirects."""
        org = await self.orgs.org_of(org_hash)
        if (
            org is None
            or (owner is not None and org != owner)
            or not self.signer.verify(org, link_id, target, digest, version)
        ):
            raise InvalidSignature("the link's digest does not match its target")
        serial = self.codec.decode(link_id)
        if serial is None:
            return target
        now = int(self.clock())
        link = await self.store.tap_link(serial, visitor, now, SIGNED_KINDS, org)
        if link is None or link.org != org:
            return target
        if link.disabled:
            raise LinkDisabled()
        if link.expires_at > self.clock() and link.target == target:
            await self._clicked(link, serial, link_id, visitor)
        return target

    async def follow_cut(
        self,
        org_hash: str,
        link_id: str,
        visitor: Visitor,
        owner: str | None,
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
        link = await self.store.tap_link(serial, visitor, now, SIGNED_KINDS, owner)
        if (
            link is None
            or link.kind not in SIGNED_KINDS
            or self.signer.org_hash(link.org) != org_hash
            or (owner is not None and link.org != owner)
        ):
            raise InvalidSignature("the link is incomplete and no record of it is kept")
        if link.disabled:
            raise LinkDisabled()
        if target is not None and not link.target.startswith(_PARTIAL_ESCAPE.sub("", target)):
            raise InvalidSignature("the link's target does not match its record")
        if (
            digest is not None
            and version is not None
            and not self.signer.verify(link.org, link_id, link.target, digest, version)
        ):
            raise InvalidSignature("the link's digest does not match its target")
        if link.expires_at > now:
            await self._clicked(link, serial, link_id, visitor)
        return link.target

    async def _clicked(self, link: StoredLink, serial: int, link_id: str, visitor: Visitor) -> None:
        """A click on a tracked link; on an e-mail's hidden link, a scanner's."""
        if link.kind is LinkKind.HONEYPOT:
            await self.recorder.scanned(link, link_id, visitor)
            if visitor is Visitor.PERSON:
                # Its tap was counted before its kind was known: no person reaches it.
                await self.store.move_to_bots([serial])
        else:
            await self.recorder.record(link, InteractionType.CLICK, link_id, visitor)

    async def open(self, org_hash: str, link_id: str, visitor: Visitor, owner: str | None) -> None:
        """The open-tracking pixel was fetched, on a host of `owner`. The route names any id
        the service issued, but only an HTML message's pixel records an open (and is
        counted): a short code or tracked link fetched as a pixel says nothing of anyone
        opening a message."""
        link = await self._live(link_id, PIXEL_KINDS, visitor, owner)
        if (
            link is not None
            and link.kind is LinkKind.PIXEL
            and not link.disabled
            and self.signer.org_hash(link.org) == org_hash
        ):
            await self.recorder.record(link, InteractionType.OPEN, link_id, visitor)
