"""The corpus of people's and machines' taps, against `shortener serve`: every person is counted
as a person, and the machines it can tell by agent and address are not.

Mail scanners posing as desktop browsers are still counted as people: the corpus measures them
(`make bots` prints the share), and this test holds the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis

from tests.support import service
from tests.support.corpus import KINDS, PEOPLE, run_corpus
from tests.support.redis_servers import RedisServer

PER_KIND = 6
# Told by agent or address today; the others wait for judging a message's clicks together.
TOLD_APART = ("preview", "apple-prefetch")


def test_people_count_and_the_machines_told_by_agent_do_not(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    env = service.service_env(redis_server.url, tmp_path / "data", trusted_proxies="127.0.0.1")
    with service.running_service(env) as running:
        found = asyncio.run(run_corpus(running.base_url, service.API_KEY, PER_KIND, seed=3))
    for kind, counts in found.items():
        assert counts["recorded"] >= PER_KIND, kind
        if KINDS[kind] == PEOPLE:
            assert counts["people"] == counts["recorded"], kind
        elif kind in TOLD_APART:
            assert counts["people"] == 0, kind
