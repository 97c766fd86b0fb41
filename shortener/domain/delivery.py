"""Webhook delivery: every org's events to each of its endpoints, at least once, never lost.

Events are the entries of the org's streams (`Store`: interactions, and other events such as a
contact's erasure), written before anything is answered. Each endpoint reads them through a
consumer group of its own, so every process of the service shares the work and an entry read
by a process that dies stays pending until another claims it. An attempt that fails is retried
after the backoff, doubling each time (with jitter), until it is given up as failed; a replay
schedules failed entries again. Each endpoint runs on its own, so a slow or dead one delays
no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from shortener.domain.settling import entry_ms, is_settled
from shortener.domain.webhooks import Event, Webhook, event_body, event_of, webhook_id
from shortener.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_BACKLOG, WEBHOOK_SECONDS
from shortener.model import StoreUnavailable
from shortener.outbound.webhooks import ATTEMPT_SECONDS, CONNECTIONS_PER_ENDPOINT, WebhookSender
from shortener.store.store import Store

log = logging.getLogger("shortener")

# How often the endpoints are checked for changes, and an idle endpoint for new events.
RELOAD_SECONDS = 1.0
# An idle endpoint is polled less and less often, down to once a second; any work resets it.
FIRST_IDLE_POLL_SECONDS = 0.05
LAST_IDLE_POLL_SECONDS = 1.0
# An attempt under way holds its entry this long; past it, another process may take it.
LEASE_MS = int((ATTEMPT_SECONDS + 5) * 1000)
# An entry read but neither settled nor scheduled for this long was read by a process that
# died: attempts take at most ATTEMPT_SECONDS, and each read batch is attempted at once.
ORPHAN_IDLE_MS = int((ATTEMPT_SECONDS + 2) * 1000)
ORPHAN_SCAN_SECONDS = 2.0
BACKLOG_SECONDS = 5.0
# An interaction read before it settled is tried again this long after it should have.
SETTLE_MARGIN_MS = 500
# Entries are attempted as many at a time as the endpoint has connections. While it answers
# quickly, the entries taken per round grow up to MAX_BATCH, so that a backlog costs a few
# Redis round trips per hundred events; any failure or slow round starts again from one
# connection's worth each.
FIRST_BATCH = CONNECTIONS_PER_ENDPOINT
MAX_BATCH = 8 * CONNECTIONS_PER_ENDPOINT
QUICK_ROUND_SECONDS = 1.0
# An entry read but not yet attempted this long after its round began is left to the orphan
# scan: an attempt started later could still be under way when another process takes it.
LATEST_START_SECONDS = ORPHAN_IDLE_MS / 1000 - ATTEMPT_SECONDS - 1


# Counted once per event: the child is looked up once.
_DELIVERED = WEBHOOK_ATTEMPTS.labels("delivered")


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    org: str
    webhook: Webhook


class EndpointDelivery:
    """Delivers one endpoint's events from this process."""

    def __init__(
        self,
        store: Store,
        sender: WebhookSender,
        endpoint: Endpoint,
        *,
        consumer: str,
        backoff_seconds: float,
        max_attempts: int,
        settle_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.sender = sender
        self.settle_ms = int(settle_seconds * 1000)
        self.org = endpoint.org
        self.webhook = endpoint.webhook
        self.consumer = consumer
        self.backoff_ms = int(backoff_seconds * 1000)
        self.max_attempts = max_attempts
        self.clock = clock
        self._orphans_scanned = 0.0
        self._backlog_measured = 0.0
        self.batch = FIRST_BATCH

    async def run(self, stop: asyncio.Event) -> None:
        idle_poll = FIRST_IDLE_POLL_SECONDS
        while not stop.is_set():
            try:
                busy = await self.round()
            except StoreUnavailable as error:
                log.debug("webhook delivery paused: %s", error)
                busy = False
            except Exception:
                log.exception("webhook delivery round failed")
                busy = False
            if busy:
                idle_poll = FIRST_IDLE_POLL_SECONDS
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), idle_poll)
            idle_poll = min(idle_poll * 2, LAST_IDLE_POLL_SECONDS)

    async def round(self) -> bool:
        """Attempt what is new, what is due again and what a dead process left; whether
        there was anything."""
        org, name = self.org, self.webhook.name
        work: list[tuple[str, dict[str, str] | None]] = list(
            await self.store.read_new(org, name, self.consumer, self.batch)
        )
        began = time.monotonic()
        now = self.clock()
        due = await self.store.lease_due(org, name, int(now * 1000), LEASE_MS, FIRST_BATCH)
        if now - self._orphans_scanned >= ORPHAN_SCAN_SECONDS:
            self._orphans_scanned = now
            due += await self.store.claim_orphans(
                org, name, self.consumer, ORPHAN_IDLE_MS, FIRST_BATCH
            )
        if due:
            work += zip(due, await self.store.entries(org, due), strict=True)
        if now - self._backlog_measured >= BACKLOG_SECONDS:
            self._backlog_measured = now
            backlog, _ = await self.store.webhook_counts(org, name)
            WEBHOOK_BACKLOG.labels(org, name).set(backlog)
        work = await self._settled(work)
        settled: list[str] = []
        all_delivered = True
        for start in range(0, len(work), CONNECTIONS_PER_ENDPOINT):
            if time.monotonic() - began > LATEST_START_SECONDS:
                all_delivered = False
                break
            chunk = work[start : start + CONNECTIONS_PER_ENDPOINT]
            outcomes = await asyncio.gather(
                *(self.attempt(entry, fields) for entry, fields in chunk)
            )
            settled += [entry for (entry, _), done in zip(chunk, outcomes, strict=True) if done]
            all_delivered = all_delivered and all(outcomes)
        # Settled together: one round trip for the whole round.
        await self.store.settle(org, name, settled)
        quick = all_delivered and time.monotonic() - began < QUICK_ROUND_SECONDS
        if not quick:
            self.batch = FIRST_BATCH
        elif len(work) >= self.batch:
            self.batch = min(self.batch * 2, MAX_BATCH)
        return bool(work)

    async def _settled(
        self, work: list[tuple[str, dict[str, str] | None]]
    ) -> list[tuple[str, dict[str, str] | None]]:
        """The entries that may go out now: interactions once settled, as judged then (the
        others are scheduled for when they settle); other events at once."""
        interactions = [entry[1:] for entry, fields in work if entry.startswith("i") and fields]
        if not interactions:
            return work
        settled_up_to, judged = await self.store.settlement(self.org, interactions)
        ready: list[tuple[str, dict[str, str] | None]] = []
        later: dict[str, int] = {}
        for entry, fields in work:
            if not entry.startswith("i") or fields is None:
                ready.append((entry, fields))
            elif not is_settled(entry[1:], settled_up_to):
                later[entry] = entry_ms(entry[1:]) + self.settle_ms + SETTLE_MARGIN_MS
            elif entry[1:] in judged:
                ready.append((entry, {**fields, "b": "1", "r": judged[entry[1:]]}))
            else:
                ready.append((entry, fields))
        await self.store.defer(self.org, self.webhook.name, later)
        return ready

    def wants(self, event: Event) -> bool:
        if event.type not in self.webhook.events:
            return False
        return self.webhook.include_bots or not event.by_bot

    async def attempt(self, entry: str, fields: dict[str, str] | None) -> bool:
        """Attempt one entry; whether it is settled (delivered, or nothing to deliver)."""
        org, name = self.org, self.webhook.name
        # Only settled interactions get this far (see `_settled`).
        event = None if fields is None else event_of(entry, fields, settled=True)
        if event is None or not self.wants(event):
            # Erased since it was read, or not an event this endpoint takes.
            return True
        body = event_body(event)
        outcome = await self.sender.send(
            self.webhook.url, self.webhook.secret, webhook_id(entry), body
        )
        WEBHOOK_SECONDS.observe(outcome.seconds)
        if outcome.delivered:
            _DELIVERED.inc()
            return True
        tries, gave_up = await self.store.attempt_failed(
            org,
            name,
            entry,
            now_ms=int(self.clock() * 1000),
            backoff_ms=self.backoff_ms,
            max_attempts=self.max_attempts,
            jitter=random.uniform(0.75, 1.25),
        )
        WEBHOOK_ATTEMPTS.labels("given_up" if gave_up else "failed").inc()
        # Names no person and holds no secret: the URL's host only, never its path or query.
        log.warning(
            "webhook delivery failed",
            extra={
                "fields": {
                    "org": org,
                    "endpoint": name,
                    "host": self.sender.host_of(self.webhook.url),
                    "webhook_id": webhook_id(entry),
                    "attempt": tries,
                    "given_up": gave_up,
                    "status": outcome.status,
                    "error": outcome.error,
                }
            },
        )
        return False


class Deliverer:
    """Runs an `EndpointDelivery` for every endpoint of every org, following their changes."""

    def __init__(
        self,
        store: Store,
        sender: WebhookSender,
        *,
        backoff_seconds: float,
        max_attempts: int,
        settle_seconds: float,
        consumer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sender = sender
        self.settle_seconds = settle_seconds
        self.backoff_seconds = backoff_seconds
        self.max_attempts = max_attempts
        self.consumer = consumer or consumer_name()
        self.clock = clock
        self._running: dict[tuple[str, str], _Running] = {}

    async def run(self, stop: asyncio.Event) -> None:
        version: int | None = None
        try:
            while not stop.is_set():
                try:
                    current = await self.store.webhooks_version()
                    if current != version:
                        await self._follow(await self.store.all_webhooks())
                        version = current
                except StoreUnavailable as error:
                    log.debug("webhook endpoints not read: %s", error)
                except Exception:
                    log.exception("webhook endpoints not read")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RELOAD_SECONDS)
        finally:
            await self._follow({})
            await self.sender.close()

    async def _follow(self, endpoints: dict[tuple[str, str], str]) -> None:
        """Run one delivery per endpoint as stored now: stop the others, restart changed ones."""
        gone = [
            self._running.pop(key)
            for key, running in list(self._running.items())
            if endpoints.get(key) != running.raw
        ]
        for running in gone:
            running.stopping.set()
        if gone:
            # Together: each gets its attempt under way's time to finish, not one after another.
            await asyncio.wait([running.task for running in gone], timeout=ATTEMPT_SECONDS + 1)
        for key, raw in endpoints.items():
            if key in self._running:
                continue
            webhook = Webhook.model_validate_json(raw)
            delivery = EndpointDelivery(
                self.store,
                self.sender,
                Endpoint(key[0], webhook),
                consumer=self.consumer,
                backoff_seconds=self.backoff_seconds,
                max_attempts=self.max_attempts,
                settle_seconds=self.settle_seconds,
                clock=self.clock,
            )
            stopping = asyncio.Event()
            task = asyncio.create_task(delivery.run(stopping))
            self._running[key] = _Running(raw, webhook.url, stopping, task)
        in_use = {running.url for running in self._running.values()}
        await self.sender.forget(running.url for running in gone if running.url not in in_use)


@dataclass(frozen=True, slots=True)
class _Running:
    """An endpoint's delivery under way, and the stored endpoint it was started for."""

    raw: str
    url: str
    stopping: asyncio.Event
    task: asyncio.Task[None]
