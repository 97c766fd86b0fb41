from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shortener.config import Settings
from shortener.store.keys import SETTLER_KEY
from tests.support.apps import ADMIN_KEY, API_KEY, BASE_URL, OTHER_KEY, app_clients
from tests.support.redis_cluster import LocalCluster, binaries_missing, local_cluster
from tests.support.redis_servers import RedisServer, free_port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "data_dir": tmp_path / "data",
            "base_url": BASE_URL,
            "api_keys": {API_KEY: "org-a", OTHER_KEY: "org-b"},
            "admin_keys": frozenset({ADMIN_KEY}),
            "signing_keys": {1: "signing-secret-one-0123456789"},
            "redis_timeout_seconds": 1.0,
            # Interactions settle in a second, so that tests wait for little.
            "settle_seconds": 1,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def client_for(
    redis: aioredis.Redis,
) -> AsyncIterator[Callable[[Settings], Any]]:
    async with app_clients() as open_:
        yield open_


@pytest.fixture
async def client(
    client_for: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> httpx.AsyncClient:
    result: httpx.AsyncClient = await client_for(make_settings())
    return result


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three masters with a replica each; per module, since a test may fail a master over."""
    missing = binaries_missing()
    if missing is not None:
        pytest.skip(f"no Redis Cluster: {missing}")
    yield from local_cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture
async def quiet_settler(redis: aioredis.Redis) -> None:
    """Hold the settler's lease, so that the app's settler only bids for it (a `SET`, which
    `command_calls` leaves out): tests that count a request's commands see only its own."""
    await redis.set(SETTLER_KEY, "the test", px=600_000)
