"""Every worker's copy of the orgs' settings, in memory: which org a host belongs to, the base
URL an org's links are issued on, where they may lead and where its dead codes go. The tap path
reads it without I/O; `TenancyWatch` keeps it, and the keys, following the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from shortener.domain.destinations import DestinationPolicy
from shortener.domain.org_keys import OrgKeys
from shortener.domain.tenancy import Org
from shortener.model import StoreUnavailable
from shortener.store.store import Store
from shortener.text.hosts import HostPatterns

log = logging.getLogger("shortener")

# How often a worker asks the store whether orgs or keys changed.
REFRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class OrgSettings:
    """What issuing and answering an org's links needs to know of the org."""

    base_url: str
    destinations: DestinationPolicy
    fallback_url: str | None = None
    # Whether `base_url` is the org's own domain rather than the service's.
    branded: bool = False


class Tenants:
    def __init__(self, store: Store, base_url: str, blocked_everywhere: HostPatterns) -> None:
        self._store = store
        self._base_url = base_url
        self._everywhere = DestinationPolicy(blocked_everywhere)
        self._default = OrgSettings(base_url, self._everywhere)
        self._by_org: dict[str, OrgSettings] = {}
        self._org_by_host: dict[str, str] = {}
        # Raised by every change taken in, so that users can tell settings apart in time.
        self.generation = 0

    @property
    def has_domains(self) -> bool:
        """Whether any org owns a domain: until one does, no host scopes anything."""
        return bool(self._org_by_host)

    def org_of_host(self, host: str) -> str | None:
        """The org that owns a host (lowercase, without port or trailing dot); None for a host
        no org owns, where every org's codes resolve."""
        return self._org_by_host.get(host)

    def settings(self, org: str) -> OrgSettings:
        return self._by_org.get(org, self._default)

    def keep(self, orgs: Iterable[Org]) -> None:
        """Take these orgs' settings as they now are, in place of all that were known."""
        by_org: dict[str, OrgSettings] = {}
        by_host: dict[str, str] = {}
        for org in orgs:
            first = org.domains[0] if org.domains else None
            by_org[org.org] = OrgSettings(
                base_url=self._base_url if first is None else f"https://{first}",
                destinations=self._everywhere.for_org(
                    blocked=HostPatterns(frozenset(org.blocked_destinations)),
                    allowed=HostPatterns(frozenset(org.allowed_destinations)),
                ),
                fallback_url=org.fallback_url,
                branded=first is not None,
            )
            by_host.update(dict.fromkeys(org.domains, org.org))
        # Swapped whole, so that a request never sees half of a reload.
        self._by_org, self._org_by_host = by_org, by_host
        self.generation += 1

    async def reload(self) -> None:
        stored = await self._store.orgs()
        self.keep(Org.model_validate_json(payload) for payload in stored.values())


class TenancyWatch:
    """Keeps a worker's copies of keys and orgs following the store: it asks the store's
    tenancy version (raised by every change) at most every REFRESH_SECONDS, and reads both
    again when it moved."""

    def __init__(self, store: Store, keys: OrgKeys, tenants: Tenants) -> None:
        self._store = store
        self._keys = keys
        self._tenants = tenants
        self._version: int | None = None

    async def refresh(self, *, force: bool = False) -> None:
        await self._keys.write_uses()
        # Read before what it covers: a change made meanwhile is read again next time.
        version = await self._store.tenancy_version()
        if version == self._version and not force:
            return
        await self._keys.reload()
        await self._tenants.reload()
        self._version = version

    async def keep_current(self, stop: asyncio.Event) -> None:
        """Refresh every REFRESH_SECONDS until `stop` is set, through outages of the store.
        Stopped by an event rather than by cancelling alone: the Redis client may swallow a
        cancellation that arrives mid-command."""
        while not stop.is_set():
            try:
                await self.refresh()
            except StoreUnavailable as error:
                log.debug("orgs and keys not refreshed: %s", error)
            except Exception:
                log.exception("orgs and keys not refreshed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)
