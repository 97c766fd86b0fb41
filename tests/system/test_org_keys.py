"""Keys made and revoked through the admin routes reach every worker of a service in time."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from redis import Redis as SyncRedis

from tests.support import service
from tests.support.redis_servers import RedisServer

WORKERS = 2
# The contract: a revoked key gets 401 on every worker within this.
REVOKED_WITHIN_SECONDS = 5
# Requests per check: enough that both workers answer some of them.
REQUESTS_PER_CHECK = 20


def statuses(base_url: str, key: str) -> set[int]:
    found = set()
    for _ in range(REQUESTS_PER_CHECK):
        # A new connection each time, so that the kernel hands requests to either worker.
        with httpx.Client(base_url=base_url, timeout=10) as client:
            answer = client.get("/v1/interactions", headers={"Authorization": f"Bearer {key}"})
        found.add(answer.status_code)
    return found


def test_a_revoked_key_is_refused_by_every_worker_within_5_seconds(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with SyncRedis.from_url(redis_server.url) as redis:
        redis.flushall()
    env = service.service_env(redis_server.url, tmp_path / "data")
    with service.running_service(env, workers=WORKERS) as running:
        made = httpx.post(
            f"{running.base_url}/v1/admin/orgs/org-a/keys", headers=service.ADMIN_AUTH, timeout=10
        )
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["key_id"]
        deadline = time.monotonic() + REVOKED_WITHIN_SECONDS
        while (found := statuses(running.base_url, key)) != {200}:
            assert time.monotonic() < deadline, f"a new key is still refused: {found}"
            time.sleep(0.2)
        revoked = httpx.delete(
            f"{running.base_url}/v1/admin/orgs/org-a/keys/{key_id}",
            headers=service.ADMIN_AUTH,
            timeout=10,
        )
        assert revoked.status_code == 204
        deadline = time.monotonic() + REVOKED_WITHIN_SECONDS
        while (found := statuses(running.base_url, key)) != {401}:
            assert time.monotonic() < deadline, f"a revoked key still works: {found}"
            time.sleep(0.2)
