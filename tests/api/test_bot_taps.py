"""A tap's agent is classified only once its code checks out."""

from __future__ import annotations

import httpx

from shortener.text import bots


async def test_a_forged_code_is_refused_before_its_agent_is_classified(
    client: httpx.AsyncClient,
) -> None:
    before = bots._classify.cache_info()
    response = await client.get(
        "/AbCdEfGhIj", headers={"user-agent": "Mozilla/5.0 (a forged tap) " + "a" * 4_000}
    )
    assert response.status_code == 404
    after = bots._classify.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
