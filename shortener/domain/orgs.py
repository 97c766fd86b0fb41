"""Orgs by the keyed hash that signed links carry: a signed link names its org by hash, and
the store keeps hash -> org for good, so that links outlive the org's API keys."""

from __future__ import annotations

from collections.abc import Iterable

from shortener.domain.signing import LinkSigner
from shortener.store.store import Store


class OrgDirectory:
    def __init__(self, store: Store, signer: LinkSigner) -> None:
        self.store = store
        self.signer = signer
        self._orgs: dict[str, str] = {}

    async def remember(self, orgs: Iterable[str]) -> None:
        """Keep these orgs findable by hash; a round trip only for orgs not known here yet."""
        known = {self.signer.org_hash(org): org for org in orgs}
        new = {org_hash: org for org_hash, org in known.items() if self._orgs.get(org_hash) != org}
        if new:
            await self.store.remember_orgs(new)
            self._orgs.update(new)

    async def org_of(self, org_hash: str) -> str | None:
        org = self._orgs.get(org_hash)
        if org is None:
            org = await self.store.org_of_hash(org_hash)
            if org is not None:
                self._orgs[org_hash] = org
        return org
