"""Settling: an interaction's final judgement, once the interactions around it have come in.

Every interaction is stored before its redirect, judged by what its request alone tells (its
agent, its address). A machine that poses as a browser shows only in company: a mail scanner
fetches the message's hidden honeypot link, or several of its links within a moment. So an
interaction settles SETTLE_SECONDS after it happened, when what came after it is known too:

- `honeypot`: its message's honeypot link was fetched within the scanner window of it;
- `burst`: another link of its message was clicked within BURST_MS of it (a click);
- `too_soon`: it came sooner after its link was issued than the operator allows.

Settling writes, in one step per batch, the judgements that changed, the aggregate counts of
the batch (which count settled interactions only), and how far the org is settled; then moves
the link counts of clicks found to be a machine's. One process settles at a time (a lease);
a settler that lost the lease mid-batch writes nothing, as the cursor tells it.

Only a message shortened with a `message_id` is known as one: the links of a message without
one, and anonymous interactions (which name no message), are judged by their requests alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from shortener.domain.codes import CodeCodec
from shortener.model import BURST, HONEYPOT, TOO_SOON, BotReason, StoreUnavailable
from shortener.store.analytics import (
    CLICK_TYPE,
    HOUR_SECONDS,
    OPEN_TYPE,
    hour_of,
    interaction_counts,
)
from shortener.store.keys import (
    ANONYMOUS_CLICKS_METRIC,
    BOT_CLICKS_METRIC,
    CLICKS_METRIC,
    OPENS_METRIC,
    SETTLER_KEY,
    bot_reason_metric,
    group_of,
)
from shortener.store.records import USER_AGENT_CODE, bot_reason_code
from shortener.store.store import Store

log = logging.getLogger("shortener")

# Clicks on two links of one message closer than this are no person's.
BURST_MS = 2_000
# Interactions settled per step. The settler shares its process's event loop with taps: a step
# of 100 holds it for about half a millisecond, one of 500 held it long enough to show in the
# taps' 99th percentile.
BATCH = 100
ROUND_SECONDS = 0.5
LEASE_MS = 5_000
# A lease this close to running out is not trusted: it is taken again.
LEASE_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Rules:
    settle_ms: int
    scanner_window_ms: int
    too_soon_ms: int
    # How long judgements are kept: as long as the interactions.
    keep_ms: int
    retention_days: int


@dataclass(frozen=True, slots=True)
class Activity:
    """Something that happened to a message: when, to which link, what, and when the link was
    issued."""

    at_ms: int
    link_id: str
    type: str
    created_s: int

    @classmethod
    def parse(cls, item: str) -> Activity | None:
        parts = item.split(" ")
        if len(parts) != 4:
            return None
        at_ms, link_id, kind, created = parts
        return cls(int(at_ms), link_id, kind, int(created))


def entry_ms(entry: str) -> int:
    return int(entry.partition("-")[0])


def judge(
    at_ms: int,
    kind: str,
    link_id: str,
    activity: list[Activity],
    scanned_ms: int | None,
    rules: Rules,
) -> BotReason | None:
    """Why a person's interaction is a machine's after all, or None."""
    if scanned_ms is not None and abs(at_ms - scanned_ms) <= rules.scanner_window_ms:
        return HONEYPOT
    if kind == CLICK_TYPE and any(
        other.type == CLICK_TYPE
        and other.link_id != link_id
        and abs(other.at_ms - at_ms) <= BURST_MS
        for other in activity
    ):
        return BURST
    if rules.too_soon_ms:
        own = next((a for a in activity if a.link_id == link_id and a.at_ms == at_ms), None)
        if own is not None and at_ms - own.created_s * 1000 < rules.too_soon_ms:
            return TOO_SOON
    return None


def _counted(kind: str, bot: bool, anonymous: bool) -> list[str]:
    """What a settled interaction adds to the aggregates: a bot's open adds nothing."""
    if kind == OPEN_TYPE:
        return [] if bot else [OPENS_METRIC]
    if bot:
        return [BOT_CLICKS_METRIC]
    return [CLICKS_METRIC, ANONYMOUS_CLICKS_METRIC] if anonymous else [CLICKS_METRIC]


class Settler:
    def __init__(
        self,
        store: Store,
        codec: CodeCodec,
        rules: Rules,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.rules = rules
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}"
        # How far each org is settled, as this process last wrote or read it: good while it
        # holds the lease, since no one else moves the cursor then.
        self._cursors: dict[str, str | None] = {}

    async def run(self, stop: asyncio.Event) -> None:
        # Until when (monotonic) this process holds the lease, as far as it knows: taken
        # with NX, so no one else can have it before it runs out.
        held_until = 0.0
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now < held_until - LEASE_MARGIN_SECONDS:
                    renewed = await self.store.renew_lease(SETTLER_KEY, self.owner, LEASE_MS)
                    held_until = now + LEASE_MS / 1000 if renewed else 0.0
                elif await self.store.take_lease(SETTLER_KEY, self.owner, LEASE_MS):
                    held_until = now + LEASE_MS / 1000
                    # Another process may have settled meanwhile: read the cursors again.
                    self._cursors.clear()
                else:
                    held_until = 0.0
                if held_until:
                    for org in await self.store.tracking_orgs():
                        while await self.settle(org) == BATCH and not stop.is_set():
                            pass
            except StoreUnavailable as error:
                log.debug("settling paused: %s", error)
            except Exception:
                log.exception("settling round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ROUND_SECONDS)

    async def settle(self, org: str) -> int:
        """Settle what of the org is old enough; how many interactions settled."""
        store, rules = self.store, self.rules
        if org in self._cursors:
            cursor = self._cursors[org]
        else:
            cursor, _ = await store.settlement(org, [])
            self._cursors[org] = cursor
        # Taken a round early, so that each settles at most `settle_ms` after it happened.
        horizon = int(self.clock() * 1000) - rules.settle_ms + int(ROUND_SECONDS * 1000)
        entries = await store.unsettled(org, cursor, horizon, BATCH)
        if not entries:
            return 0
        groups = {entry.id: group_of(entry.message_id) for entry in entries}
        context = await store.judging_context(org, sorted({g for g in groups.values() if g}))
        judged: dict[str, str] = {}
        to_bots: list[int] = []
        # How many interactions of each kind settled, by hour: counted out once per kind.
        tally: Counter[tuple[int, str, bool, bool, str | None, str | None]] = Counter()
        for entry in entries:
            bot, reason_code = entry.bot, (entry.reason or USER_AGENT_CODE) if entry.bot else None
            group = groups[entry.id]
            if not bot and group is not None:
                activity, scanned = context.get(group, ([], None))
                parsed = [found for item in activity if (found := Activity.parse(item))]
                reason = judge(entry.at_ms, entry.type, entry.link_id, parsed, scanned, rules)
                if reason is not None:
                    bot = True
                    judged[entry.id] = reason_code = bot_reason_code(reason)
                    serial = self.codec.decode(entry.link_id)
                    if serial is not None:
                        to_bots.append(serial)
            hour = entry.at_ms // (HOUR_SECONDS * 1000)
            tally[hour, entry.type, bot, entry.anonymous, entry.campaign, reason_code] += 1
        counts: Counter[tuple[str, str, int]] = Counter()
        for (hour, kind, bot, anonymous, campaign, reason_code), settled in tally.items():
            at = hour_of(hour * HOUR_SECONDS, rules.retention_days)
            metrics = _counted(kind, bot, anonymous)
            why = None if reason_code is None else bot_reason_metric(kind, reason_code)
            for where in interaction_counts(org, at, metrics, campaign, why):
                counts[where] += settled
        written = await store.write_settled(
            org,
            expected=cursor,
            cursor=entries[-1].id,
            judged=judged,
            keep_judged_ms=rules.keep_ms,
            counts=[(key, field, amount, until) for (key, field, until), amount in counts.items()],
        )
        if not written:
            # Another settler moved the cursor: read it again next time.
            self._cursors.pop(org, None)
            return 0
        self._cursors[org] = entries[-1].id
        await store.move_to_bots(to_bots)
        return len(entries)


def is_settled(entry: str, cursor: str | None) -> bool:
    """Whether an interaction (its stream id) is settled, given how far its org is."""
    if cursor is None:
        return False
    return _id_key(entry) <= _id_key(cursor)


def _id_key(entry: str) -> tuple[int, int]:
    ms, _, sequence = entry.partition("-")
    return int(ms), int(sequence or 0)
