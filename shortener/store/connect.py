"""Connecting to Redis, a single server or a cluster, with the clients the store needs."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shortener.store.store import Store


def connect(url: str, *, cluster: bool, timeout: float) -> Store:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
    }
    if cluster:
        # The shared pipeline's client does not retry, as redis-py would by closing all its
        # connections: the auto-pipeline keeps a node that is down to its own commands and
        # fetches the slot map itself. Its batches keep their own deadline, as below.
        pipelined_cluster = RedisCluster.from_url(
            url,
            **{**options, "socket_timeout": None, "health_check_interval": 0},
            retry=Retry(NoBackoff(), 0),
        )
        return Store(RedisCluster.from_url(url, **options), timeout, pipelined_cluster)
    options["retry_on_timeout"] = False
    # Blocking: a burst of requests waits its turn for a connection (up to `timeout`) rather
    # than failing at once or opening thousands of sockets.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=timeout, **options
    )
    # The auto-pipeline holds a connection per batch in flight, a handful even under heavy
    # load, so it takes them from a plain pool: a blocking pool's lock and timer for each
    # batch cost more than the batch itself. Should Redis hang, batches pile up to the limit
    # and the rest fail at once, which answers 503 as the timeout would.
    # Its batches keep their own deadline, so its reads need no timer each.
    pipelined_options = {**options, "socket_timeout": None, "health_check_interval": 0}
    pipelined_pool = aioredis.ConnectionPool.from_url(url, max_connections=64, **pipelined_options)
    return Store(
        aioredis.Redis(connection_pool=pool),
        timeout,
        aioredis.Redis(connection_pool=pipelined_pool),
    )
