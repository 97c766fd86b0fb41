"""Forged and mutated codes are refused before the store is asked, even while it hangs."""

from __future__ import annotations

import random
import string
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.apps import AUTH


async def _hget_calls(redis: aioredis.Redis) -> int:
    stats: dict[str, Any] = await redis.info("commandstats")
    return int(stats.get("cmdstat_hget", {}).get("calls", 0))


@pytest.mark.usefixtures("quiet_settler")
async def test_forged_and_mutated_codes_are_refused_without_a_redis_lookup(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    response = await client.post(
        "/v1/messages/shorten", json={"body": "https://a.example/"}, headers=AUTH
    )
    code = response.json()["links"][0]["code"]
    assert (await client.get(f"/{code}")).status_code == 302
    await redis.config_resetstat()
    tries = [code[:i] + c + code[i + 1 :] for i in range(len(code)) for c in "aZ9" if c != code[i]]
    tries += ["".join(random.choices(string.ascii_letters, k=len(code))) for _ in range(50)]
    # `code + "x"` is no forgery: a path that starts with a code resolves it.
    tries += [code[:-1], "0" + code[1:], "%00", "a" * 300, "ab.cd", "..%2f"]
    for forged in tries:
        response = await client.get(f"/{forged}")
        assert response.status_code == 404, forged
    assert await _hget_calls(redis) == 0
    assert (await client.get(f"/{code}")).status_code == 302
    assert await _hget_calls(redis) == 1
