"""One message id raced across service processes gets one answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support import service
from tests.support.apps import link_fields
from tests.support.redis_servers import RedisServer

# Message ids raced across two processes, each with the same body and with another one.
RACE_ROUNDS = 5


@pytest.mark.timeout(120)
async def test_one_message_id_raced_across_processes_gets_one_answer(
    redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = service.service_env(redis_server.url, tmp_path / "data")
    with (
        service.running_service(env) as first,
        service.running_service(env) as second,
        httpx.Client(timeout=10) as http,
    ):
        processes = [first.base_url, second.base_url]

        def post(at: int, message: dict[str, Any]) -> httpx.Response:
            return http.post(
                f"{processes[at % 2]}/v1/messages/shorten", json=message, headers=service.AUTH
            )

        def race(messages: list[dict[str, Any]]) -> list[httpx.Response]:
            # Both processes at once, each sent every other request.
            with ThreadPoolExecutor(len(messages)) as pool:
                return list(pool.map(post, range(len(messages)), messages))

        for round_ in range(RACE_ROUNDS):
            same = {"message_id": f"same-{round_}", "body": f"https://t.example/{round_} and more"}
            answers = race([same] * 10)
            assert all(answer.status_code == 200 for answer in answers), answers[0].text
            assert all(answer.json() == answers[0].json() for answer in answers)

            bodies = [f"https://t.example/a/{round_}", f"https://t.example/b/{round_}"]
            messages = [{"message_id": f"other-{round_}", "body": bodies[i % 2]} for i in range(10)]
            answers = race(messages)
            won = {bodies[i % 2] for i, answer in enumerate(answers) if answer.status_code == 200}
            assert len(won) == 1, [answer.status_code for answer in answers]
            winners = [a.json() for a in answers if a.status_code == 200]
            assert all(winner == winners[0] for winner in winners)
            for message, answer in zip(messages, answers, strict=True):
                if message["body"] not in won:
                    assert answer.status_code == 409, answer.text
    # One set of links per message id, none of the losers'.
    assert len(await link_fields(redis)) == RACE_ROUNDS * 2
