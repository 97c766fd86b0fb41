"""Wiring: from settings to a connected store and the domain services over it.

The HTTP app and the ops commands of the CLI share this, so both see the store the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from shortener import embedded
from shortener.auth import ApiKeys
from shortener.codes import CodeCodec
from shortener.config import Settings
from shortener.interactions import ClickRecorder
from shortener.links import LinkPolicy, Shortener
from shortener.signing import LinkSigner
from shortener.store import Store, connect

log = logging.getLogger("shortener")


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    shortener: Shortener
    api_keys: ApiKeys


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Connect to the configured Redis (attaching to, or starting, the embedded one)."""
    server = None
    url = settings.redis_url
    if url is None:
        server = await asyncio.to_thread(embedded.attach_or_start, settings.data_dir)
        url = server.url
    store = connect(url, cluster=settings.redis_cluster, timeout=settings.redis_timeout_seconds)
    try:
        refused = await store.tune()
        if refused:
            log.warning(
                "Redis refused CONFIG SET %s; links will use more memory", ", ".join(refused)
            )
        secret = await store.code_secret()
        signer = LinkSigner(settings.signing_keys, secret, settings.base_url)
        recorder = ClickRecorder(
            store,
            window_seconds=settings.tracking_window_seconds,
            retain_seconds=max(settings.link_ttl_seconds, settings.tracking_window_seconds),
        )
        policy = LinkPolicy(
            base_url=settings.base_url,
            ttl_seconds=settings.link_ttl_seconds,
            schemeless_scheme=settings.schemeless_scheme,
            http_only_hosts=settings.http_only_hosts,
        )
        shortener = Shortener(store, CodeCodec(secret), signer, recorder, policy)
        await shortener.remember_orgs(set(settings.api_keys.values()))
        yield Runtime(settings, store, shortener, ApiKeys(settings.api_keys))
    finally:
        await store.close()
        if server is not None:
            await asyncio.to_thread(server.stop)
