"""The corpus of people's and machines' taps, against `shortener serve`: every person is counted
as a person, and at least 95% of the machines' interactions are not."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import redis

from tests.support import service
from tests.support.corpus import KINDS, PEOPLE, run_corpus
from tests.support.redis_servers import RedisServer

PER_KIND = 6
MACHINES_CAUGHT = 0.95


def test_people_count_and_machines_do_not(redis_server: RedisServer, tmp_path: Path) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    env = service.service_env(redis_server.url, tmp_path / "data", trusted_proxies="127.0.0.1")
    with service.running_service(env) as running:
        found = asyncio.run(run_corpus(running.base_url, service.API_KEY, PER_KIND, seed=3))
    machines = Counter[str]()
    for kind, counts in found.items():
        assert counts["recorded"] >= PER_KIND, kind
        if KINDS[kind] == PEOPLE:
            assert counts["people"] == counts["recorded"], (kind, counts)
        else:
            machines.update(counts)
    caught = machines["recorded"] - machines["people"]
    assert caught >= MACHINES_CAUGHT * machines["recorded"], found
