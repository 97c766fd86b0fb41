"""Orgs as data: their branded domains, destination patterns and fallback URL, kept in the
store and changed through the admin routes and the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shortener.config import is_org_id
from shortener.domain.limits import MAX_FALLBACK_URL_LENGTH, MAX_ORG_DOMAINS, MAX_ORG_PATTERNS
from shortener.store.store import Store
from shortener.text.hostnames import host_name


class InvalidOrgId(Exception):
    """A name that cannot be an org's."""

    def __init__(self, org: str) -> None:
        super().__init__(f"org {org!r} must be 1 to 64 of A-Z a-z 0-9 . _ -")


class DomainTaken(Exception):
    """A domain that another org owns already."""

    def __init__(self, domain: str) -> None:
        super().__init__(f"the domain {domain!r} belongs to another org")


def _host_names(values: list[str]) -> list[str]:
    # Each name once, in the order given: the first domain is the one links are issued on.
    return list(dict.fromkeys(host_name(value) for value in values))


def _fallback_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not value.isascii()
        or any(not char.isprintable() or char.isspace() for char in value)
    ):
        raise ValueError("must be an absolute http(s) URL in ASCII, without spaces")
    try:
        host_name(parts.hostname or "")
    except ValueError as error:
        raise ValueError(f"must name a host: {error}") from None
    return value


HostNames = Annotated[list[str], AfterValidator(_host_names)]


class OrgChanges(BaseModel):
    """What `PUT /v1/admin/orgs/{org}` sets; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    domains: HostNames | None = Field(
        default=None,
        max_length=MAX_ORG_DOMAINS,
        description="Host names the org's links are issued on (the first one) and resolve on.",
    )
    allowed_destinations: HostNames | None = Field(
        default=None,
        max_length=MAX_ORG_PATTERNS,
        description="When not empty, the only hosts (and their subdomains) links may lead to.",
    )
    blocked_destinations: HostNames | None = Field(
        default=None,
        max_length=MAX_ORG_PATTERNS,
        description="Hosts (and their subdomains) links may not lead to.",
    )
    fallback_url: Annotated[str | None, AfterValidator(_fallback_url)] = Field(
        default=None,
        max_length=MAX_FALLBACK_URL_LENGTH,
        description="Where expired codes, and unknown codes on the org's domains, redirect.",
    )


class Org(BaseModel):
    """An org as the admin routes show it. Host names are in their IDNA A-label form."""

    org: str
    domains: list[str] = Field(default_factory=list)
    allowed_destinations: list[str] = Field(default_factory=list)
    blocked_destinations: list[str] = Field(default_factory=list)
    fallback_url: str | None = None
    # Null for an org that exists only through SHORTENER_API_KEYS.
    created_at: datetime | None = None
    updated_at: datetime | None = None


class OrgList(BaseModel):
    orgs: list[Org]


class Tenancy:
    """Reads and changes orgs in the store. Orgs of SHORTENER_API_KEYS exist with empty
    settings until changed."""

    def __init__(
        self,
        store: Store,
        configured: Collection[str],
        changed: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._configured = frozenset(configured)
        # Called once a change is stored, so that this worker follows it at once.
        self._changed = changed
        self._clock = clock

    async def get(self, org: str) -> Org | None:
        if not is_org_id(org):
            return None
        stored = await self._store.read_org(org)
        if stored is not None:
            return Org.model_validate_json(stored)
        return Org(org=org) if org in self._configured else None

    async def names(self) -> list[str]:
        """Every org's name, sorted: one read, where `all` reads each org too."""
        return sorted(set(await self._store.org_ids()) | self._configured)

    async def all(self) -> list[Org]:
        found = [await self.get(name) for name in await self.names()]
        return [org for org in found if org is not None]

    async def put(self, org: str, changes: OrgChanges) -> Org:
        """Set the fields given; DomainTaken, and nothing changed, when a domain is another
        org's."""
        if not is_org_id(org):
            raise InvalidOrgId(org)
        current = await self.get(org) or Org(org=org)
        now = datetime.fromtimestamp(self._clock(), UTC)
        updated = current.model_copy(
            update={
                **changes.model_dump(exclude_unset=True),
                "created_at": current.created_at or now,
                "updated_at": now,
            }
        )
        # Null where a list was: the same as an empty list.
        for field in ("domains", "allowed_destinations", "blocked_destinations"):
            if getattr(updated, field) is None:
                updated = updated.model_copy(update={field: []})
        claimed: list[str] = []
        for domain in updated.domains:
            if domain in current.domains:
                continue
            owner = await self._store.claim_domain(domain, org)
            if owner != org:
                for mine in claimed:
                    await self._store.release_domain(mine, org)
                raise DomainTaken(domain)
            claimed.append(domain)
        await self._store.save_org(org, json.dumps(updated.model_dump(mode="json")))
        for domain in current.domains:
            if domain not in updated.domains:
                await self._store.release_domain(domain, org)
        await self._changed()
        return updated
