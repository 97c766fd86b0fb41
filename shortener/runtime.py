"""Wiring: from settings to a connected store and the domain services over it.

The HTTP app and the ops commands of the CLI share this, so both see the store the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from shortener.config import Settings
from shortener.domain.codes import CodeCodec
from shortener.domain.interactions import ClickRecorder
from shortener.domain.links import LinkPolicy, Shortener
from shortener.domain.signing import LinkSigner
from shortener.http.auth import ApiKeys
from shortener.http.clients import ClientAddresses
from shortener.http.throttle import MissThrottle
from shortener.store import embedded
from shortener.store.store import Store, StoreUnavailable, connect

log = logging.getLogger("shortener")


class Runtime:
    """The connected store and the services over it.

    The services need a few values from Redis (the code key). They are fetched on first use
    rather than at start, so that the service starts, answers 503 and recovers by itself
    when Redis is down at start, just as when it goes down later.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.api_keys = ApiKeys(settings.api_keys)
        self.throttle = MissThrottle(settings.miss_limit_per_minute)
        self.clients = ClientAddresses(settings.trusted_proxies)
        self._shortener: Shortener | None = None
        self._lock = asyncio.Lock()

    async def shortener(self) -> Shortener:
        if self._shortener is not None:
            return self._shortener
        async with self._lock:
            if self._shortener is None:
                self._shortener = await self._build()
        return self._shortener

    async def _build(self) -> Shortener:
        settings = self.settings
        refused = await self.store.tune()
        if refused:
            log.warning(
                "Redis refused CONFIG SET %s; links will use more memory", ", ".join(refused)
            )
        secret = await self.store.code_secret()
        signer = LinkSigner(settings.signing_keys, secret, settings.base_url)
        recorder = ClickRecorder(
            self.store,
            window_seconds=settings.tracking_window_seconds,
            retain_seconds=settings.interaction_retention_seconds,
        )
        policy = LinkPolicy(
            base_url=settings.base_url,
            ttl_seconds=settings.link_ttl_seconds,
            schemeless_scheme=settings.schemeless_scheme,
            http_only_hosts=settings.http_only_hosts,
            org_shorten_limit_per_minute=settings.org_shorten_limit_per_minute,
        )
        shortener = Shortener(self.store, CodeCodec(secret), signer, recorder, policy)
        await shortener.remember_orgs(set(settings.api_keys.values()))
        return shortener


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Connect to the configured Redis (attaching to, or starting, the embedded one)."""
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
            await runtime.shortener()
        except StoreUnavailable as error:
            log.warning("Redis does not answer yet (%s); serving 503 until it does", error)
        yield runtime
    finally:
        await store.close()
        if server is not None:
            await asyncio.to_thread(server.stop)
