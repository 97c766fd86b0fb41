"""Wiring: from settings to a connected store and the domain services over it.

The HTTP app and the ops commands of the CLI share this, so both see the store the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from shortener.config import Settings
from shortener.domain.analytics import Analytics
from shortener.domain.codes import CodeCodec
from shortener.domain.delivery import Deliverer
from shortener.domain.interactions import ClickRecorder
from shortener.domain.lookup import Lookup
from shortener.domain.org_keys import OrgKeys
from shortener.domain.orgs import OrgDirectory
from shortener.domain.redirects import Redirects
from shortener.domain.settling import Rules, Settler
from shortener.domain.shortening import LinkPolicy, Shortening
from shortener.domain.signing import LinkSigner
from shortener.domain.takedown import Takedown
from shortener.domain.tenancy import Tenancy
from shortener.domain.tenants import TenancyWatch, Tenants
from shortener.domain.webhooks import Webhooks
from shortener.model import StoreUnavailable
from shortener.outbound.webhooks import ATTEMPT_SECONDS, WebhookSender
from shortener.store import embedded
from shortener.store.connect import connect
from shortener.store.store import Store
from shortener.text.hosts import HostPatterns

log = logging.getLogger("shortener")


@dataclass(frozen=True, slots=True)
class Services:
    """The domain's services over one store."""

    shortening: Shortening
    redirects: Redirects
    recorder: ClickRecorder
    lookup: Lookup
    tenancy: Tenancy
    org_keys: OrgKeys
    tenants: Tenants
    takedown: Takedown
    webhooks: Webhooks
    analytics: Analytics
    codec: CodeCodec
    # Signs the dashboard's sessions: derived from the code key, which every worker and
    # instance on the store shares, so that a session is good on each of them.
    session_secret: bytes


class Runtime:
    """The settings, the connected store and the services over it.

    The services need a few values from Redis (the code key). They are fetched on first use
    rather than at start, so that the service starts, answers 503 and recovers by itself
    when Redis is down at start, just as when it goes down later.
    """

    def __init__(
        self, settings: Settings, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._services: Services | None = None
        self._lock = asyncio.Lock()
        # Known before the services are: requests check keys against them from the start.
        self.org_keys = OrgKeys(store, clock)
        self.tenants = Tenants(
            store, settings.base_url, HostPatterns(settings.blocked_destinations)
        )
        self.tenancy_watch = TenancyWatch(store, self.org_keys, self.tenants)

    async def services(self) -> Services:
        if self._services is not None:
            return self._services
        async with self._lock:
            if self._services is None:
                self._services = await self._build()
        return self._services

    async def ready(self) -> bool:
        """Whether the store answers soon."""
        return await self.store.ping()

    async def flush(self) -> None:
        """Write what the store still buffers."""
        await self.store.flush()

    async def _build(self) -> Services:
        settings = self.settings
        refused = await self.store.tune()
        if refused:
            log.warning(
                "Redis refused CONFIG SET %s; links will use more memory", ", ".join(refused)
            )
        secret = await self.store.code_secret()
        codec = CodeCodec(secret)
        signer = LinkSigner(settings.signing_keys, secret)
        orgs = OrgDirectory(self.store, signer)
        analytics = Analytics(
            self.store, retention_days=settings.analytics_retention_days, clock=self.clock
        )
        recorder = ClickRecorder(
            self.store,
            window_seconds=settings.tracking_window_seconds,
            retain_seconds=settings.interaction_retention_seconds,
            analytics=analytics,
            rules=self.settling_rules(),
            clock=self.clock,
        )
        policy = LinkPolicy(
            ttl_seconds=settings.link_ttl_seconds,
            schemeless_scheme=settings.schemeless_scheme,
            http_only_hosts=settings.http_only_hosts,
            org_shorten_limit_per_minute=settings.org_shorten_limit_per_minute,
            analytics_retention_days=settings.analytics_retention_days,
        )
        await orgs.remember(set(settings.api_keys.values()))
        await self.tenancy_watch.refresh(force=True)
        tenants = self.tenants
        return Services(
            shortening=Shortening(self.store, codec, signer, orgs, policy, self.clock, tenants),
            redirects=Redirects(self.store, codec, signer, orgs, recorder, tenants, self.clock),
            recorder=recorder,
            lookup=Lookup(self.store, codec, settings.base_url, self.clock),
            tenancy=Tenancy(
                self.store, set(settings.api_keys.values()), tenants.reload, self.clock
            ),
            org_keys=self.org_keys,
            tenants=tenants,
            takedown=Takedown(self.store, codec, self.clock),
            webhooks=Webhooks(
                self.store, allow_private=settings.webhook_allow_private, clock=self.clock
            ),
            analytics=analytics,
            codec=codec,
            session_secret=hmac.new(secret, b"dashboard sessions", hashlib.sha256).digest(),
        )

    def deliverer(self) -> Deliverer:
        """What delivers webhook events from this process, when it does."""
        settings = self.settings
        return Deliverer(
            self.store,
            WebhookSender(allow_private=settings.webhook_allow_private),
            backoff_seconds=settings.webhook_backoff_seconds,
            max_attempts=settings.webhook_max_attempts,
            settle_seconds=settings.settle_seconds,
            clock=self.clock,
        )

    def settling_rules(self) -> Rules:
        settings = self.settings
        return Rules(
            settle_ms=settings.settle_seconds * 1000,
            scanner_window_ms=settings.scanner_window_seconds * 1000,
            too_soon_ms=settings.too_soon_seconds * 1000,
            keep_ms=settings.interaction_retention_seconds * 1000,
            retention_days=settings.analytics_retention_days,
        )

    async def settle(self, stop: asyncio.Event) -> None:
        """Settle interactions (while this process holds the settler's lease) until `stop`;
        waits for the store first, as the services do."""
        while not stop.is_set():
            try:
                services = await self.services()
            except StoreUnavailable:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            settler = Settler(self.store, services.codec, self.settling_rules(), clock=self.clock)
            await settler.run(stop)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, follow_tenancy: bool = False
) -> AsyncIterator[Runtime]:
    """Connect to the configured Redis (attaching to, or starting, the embedded one). With
    `follow_tenancy` (a serving process), the org keys and settings in memory follow the store
    while it is open, and webhook events are delivered unless the settings turn that off."""
    server = None
    url = settings.redis_url
    cluster = settings.redis_cluster
    if url is None:
        server = await asyncio.to_thread(embedded.attach_or_start, settings.data_dir)
        url = server.url
        # With no URL there is no cluster to name a node of: the embedded server is one Redis.
        cluster = False
    store = connect(url, cluster=cluster, timeout=settings.redis_timeout_seconds)
    runtime = Runtime(settings, store)
    try:
        try:
            await runtime.services()
        except StoreUnavailable as error:
            log.warning("Redis does not answer yet (%s); serving 503 until it does", error)
        stop = asyncio.Event()
        background: list[asyncio.Task[None]] = []
        if follow_tenancy:
            background.append(asyncio.create_task(runtime.tenancy_watch.keep_current(stop)))
            # Every serving process offers; the one holding the lease settles.
            background.append(asyncio.create_task(runtime.settle(stop)))
            if settings.webhook_delivery:
                background.append(asyncio.create_task(runtime.deliverer().run(stop)))
        try:
            yield runtime
        finally:
            stop.set()
            if background:
                # Deliveries under way get their attempt's time to finish and be recorded.
                await asyncio.wait(background, timeout=ATTEMPT_SECONDS + 1)
                for task in background:
                    task.cancel()
    finally:
        await store.close()
        if server is not None:
            await asyncio.to_thread(server.stop)
