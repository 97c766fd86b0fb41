"""Webhook delivery by real `shortener serve` processes: what a killed process read is
delivered after a restart, and two workers deliver each event once."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis

from tests.support import service
from tests.support.receivers import Receiver
from tests.support.redis_servers import RedisServer

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile"


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def delivery_env(redis_server: RedisServer, data_dir: Path) -> dict[str, str]:
    with SyncRedis.from_url(redis_server.url) as redis:
        redis.flushall()
    return service.service_env(
        redis_server.url,
        data_dir,
        webhook_allow_private="1",
        webhook_backoff_seconds="0.2",
    )


def put_webhook(running: service.Service, url: str) -> dict[str, Any]:
    answer = httpx.put(
        f"{running.base_url}/v1/webhooks/crm", json={"url": url}, headers=service.AUTH, timeout=10
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def tracked_codes(running: service.Service, count: int) -> list[str]:
    recipient = {"contact_id": "c-1", "tracking_consent": True}
    body = " ".join(f"https://shop.example/{n}" for n in range(count))
    links = running.shorten(body, recipient=recipient)["links"]
    return [link["code"] for link in links]


def tap_each(base_url: str, codes: list[str]) -> None:
    for code in codes:
        # A new connection each time, so that the kernel hands taps to every worker.
        with httpx.Client(base_url=base_url, timeout=10) as client:
            answer = client.get(f"/{code}", headers={"user-agent": PHONE})
        assert answer.status_code == 302, answer.text


async def test_an_event_read_before_a_kill_is_delivered_after_the_restart(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = delivery_env(redis_server, tmp_path / "data")
    receiver = Receiver().start()
    try:
        with service.running_service(env) as running:
            webhook = put_webhook(running, receiver.url)
            codes = tracked_codes(running, 3)
            # The receiver takes the first attempt and never answers it: the service holds the
            # events, read and not yet delivered, when it is killed.
            hold = threading.Event()
            receiver.hold = hold
            tap_each(running.base_url, codes)
            await receiver.wait_for(lambda events: len(events) >= 1, "a first attempt")
            # The whole service at once, its delivery process with it, as a crash of the
            # machine would: nothing gets to finish or record what it was doing.
            for pid in children_of(running.process.pid):
                os.kill(pid, signal.SIGKILL)
            running.process.send_signal(signal.SIGKILL)
            running.process.wait(10)
        receiver.stop()
        hold.set()
        receiver.hold = None
        receiver.received.clear()
        receiver.start()
        with service.running_service(env):
            got = await receiver.wait_for(
                lambda events: len({e.webhook_id for e in events}) >= 3, "every event after"
            )
        ids = {e.webhook_id for e in got}
        assert len(ids) == 3
        for event in got:
            assert event.verified(webhook["secret"])["type"] == "interaction.click"
    finally:
        receiver.stop()


async def test_two_workers_deliver_each_event_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = delivery_env(redis_server, tmp_path / "data")
    receiver = Receiver().start()
    try:
        with service.running_service(env, workers=2) as running:
            put_webhook(running, receiver.url)
            # Both workers read their endpoints within a second of the change.
            await asyncio.sleep(1.5)
            codes = tracked_codes(running, 40)
            tap_each(running.base_url, codes)
            got = await receiver.wait_for(lambda events: len(events) >= 40, "every event")
            await asyncio.sleep(1.0)
            counts = Counter(e.webhook_id for e in receiver.events())
        assert len(counts) == 40
        assert set(counts.values()) == {1}, counts.most_common(3)
        assert len(got) >= 40
    finally:
        receiver.stop()


def metrics_text(base_url: str) -> str:
    return httpx.get(f"{base_url}/metrics", timeout=10).text


def delivered_metric(base_url: str) -> float:
    for line in metrics_text(base_url).splitlines():
        if line.startswith('shortener_webhook_attempts_total{result="delivered"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("workers", [1, 2])
async def test_deliveries_show_in_the_metrics_of_the_workers(
    redis_server: RedisServer, tmp_path: Path, workers: int
) -> None:
    env = delivery_env(redis_server, tmp_path / "data")
    receiver = Receiver().start()
    try:
        with service.running_service(env, workers=workers) as running:
            put_webhook(running, receiver.url)
            await asyncio.sleep(1.5)
            tap_each(running.base_url, tracked_codes(running, 3))
            await receiver.wait_for(lambda events: len(events) >= 3, "every event")
            # Any worker answers /metrics with the delivery process's figures in it.
            for _ in range(50):
                if delivered_metric(running.base_url) == 3.0:
                    break
                await asyncio.sleep(0.1)
            assert delivered_metric(running.base_url) == 3.0
            text = metrics_text(running.base_url)
            assert text.count("# TYPE shortener_webhook_attempts_total counter") == 1
            assert 'shortener_webhook_backlog{endpoint="crm",org="org-a"}' in text
    finally:
        receiver.stop()
