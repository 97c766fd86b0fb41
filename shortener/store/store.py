"""The store: typed operations over Redis, each within a deadline.

`keys.py` names every key, `records.py` lays out the values, `scripts.py` holds the Lua that
does in one round trip what must happen at once. No command or script touches keys of two hash
slots, so the same operations run on a Redis Cluster, where each slot lives on one master.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from shortener.model import (
    BotReason,
    Interaction,
    InteractionType,
    LinkKind,
    StoredConsent,
    StoredLink,
    StoreUnavailable,
    Visitor,
)
from shortener.store import scripts
from shortener.store.analytics import AnalyticsTally, Hour, campaign_keys
from shortener.store.autopipeline import AutoPipeline, Command
from shortener.store.embedded import COMPACT_HASH_CONFIG
from shortener.store.failures import FAILURES, unavailable, unavailable_error
from shortener.store.keys import (
    API_KEYS_KEY,
    BASE_URL_FIELD,
    BLOCKS_KEY,
    BOTS_COUNTER,
    CODE_MAC_KEY,
    COUNTER_TYPE,
    KEYS_USED_KEY,
    ORG_BASE_URL_PREFIX,
    ORG_IDS_KEY,
    ORGS_KEY,
    PEOPLE_COUNTER,
    TAP_COUNTERS,
    TENANCY_VERSION_KEY,
    WEBHOOK_ORGS_KEY,
    WEBHOOKS_VERSION_KEY,
    activity_key,
    added_key,
    analytics_hours_key,
    block_count_key,
    block_counter_offset,
    block_link_key,
    consent_key,
    contact_bucket_key,
    contact_index_key,
    count_key,
    counter_offset,
    domain_key,
    events_key,
    expiring_field,
    expiring_key,
    group_of,
    interactions_key,
    judged_key,
    legacy_count_field,
    legacy_count_key,
    link_field,
    link_key,
    message_key,
    org_and_minute,
    org_key,
    scan_key,
    settled_key,
    shorten_quota_key,
    takedown_key,
    webhook_group,
    webhook_key,
    webhooks_key,
)
from shortener.store.records import (
    Unsettled,
    bot_reason_code,
    decode_consent,
    decode_interaction,
    decode_link,
    decode_takedown,
    decode_unsettled,
    encode_consent,
    encode_link,
    encode_takedown,
    encoded_id,
    interaction_code,
    kind_codes,
    text,
)

T = TypeVar("T")
# Interactions deleted, or link records changed, per round trip of an erasure.
ERASE_CHUNK = 500

# How often counts summed in memory (the expiry index, aggregate counts) are written.
TALLY_FLUSH_SECONDS = 1.0
# Hours of the expiry index read per round trip, each round trip with its own deadline.
EXPIRING_HOURS_PER_READ = 512
# Commands in flight outside the shared pipeline on a cluster, below redis-py's 100
# connections per node so that the shared pipeline keeps some.
CLUSTER_CALLS_IN_FLIGHT = 64


class ExpiryTally:
    """Codes issued per (expiry minute since the epoch, org) since the last write to the
    expiry index.

    The index is an estimate for ops ("what expires soon"), so it is written once a second
    for everything shortened meanwhile rather than with every request; a crash loses at most
    that second's counts.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str], int] = {}

    def add(self, expires_at: int, org: str) -> None:
        minute = expires_at // 60
        self.counts[minute, org] = self.counts.get((minute, org), 0) + 1

    def take(self) -> dict[tuple[int, str], int]:
        counts, self.counts = self.counts, {}
        return counts


@dataclass(frozen=True, slots=True)
class MessageClaim:
    """Store a message's result under its id unless one is there already."""

    org: str
    message_id: str
    payload: str


@dataclass(frozen=True, slots=True)
class MessageLinks:
    """The links of one message, kept only if the message's claim (if any) wins."""

    links: Sequence[tuple[int, StoredLink]]
    claim: MessageClaim | None = None


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """What the store keeps of one issued id, read without counting a tap."""

    link: StoredLink | None
    # The base URL the id's block was issued with; None for blocks stored before it was kept.
    base_url: str | None
    clicks: int
    bot_clicks: int
    # When (seconds since the epoch) and why it was disabled; None while it is not.
    disabled_at: int | None = None
    disabled_reason: str | None = None


def _raise_as_unavailable(error: Exception) -> NoReturn:
    """A failure to reach the store is raised as StoreUnavailable; an error of a command as
    it is."""
    if unavailable(error):
        raise unavailable_error(error) from error
    raise error


class Store:
    """Typed operations over Redis; every call fails with StoreUnavailable within `timeout`."""

    def __init__(
        self,
        redis: aioredis.Redis | RedisCluster,
        timeout: float,
        pipelined: aioredis.Redis | RedisCluster | None = None,
    ) -> None:
        self.redis = redis
        self.timeout = timeout
        # Each script's source by its SHA, to send it again where Redis forgot it.
        self._scripts: dict[str, str] = {}
        self._save_links = self._register(redis, scripts.SAVE_LINKS)
        self._tap = self._register(redis, scripts.TAP)
        self._record = self._register(redis, scripts.RECORD)
        self._take_quota = self._register(redis, scripts.TAKE_QUOTA)
        self._claim_domain = self._register(redis, scripts.CLAIM_DOMAIN)
        self._release_domain = self._register(redis, scripts.RELEASE_DOMAIN)
        self._disable = self._register(redis, scripts.DISABLE)
        self._read_link = self._register(redis, scripts.READ_LINK)
        self._index = self._register(redis, scripts.INDEX)
        self._erase_link_contact = self._register(redis, scripts.ERASE_LINK_CONTACT)
        self._lease_due = self._register(redis, scripts.LEASE_DUE)
        self._attempt_failed = self._register(redis, scripts.ATTEMPT_FAILED)
        self._settle = self._register(redis, scripts.SETTLE)
        self._renew_lease = self._register(redis, scripts.RENEW_LEASE)
        self._move_to_bots = self._register(redis, scripts.MOVE_TO_BOTS)
        # The hot paths (taps and their clicks) share pipelines with concurrent requests,
        # over a client of their own (see `connect`).
        self._pipelined = pipelined or redis
        self._auto = AutoPipeline(self._pipelined, timeout)
        self._expiring = ExpiryTally()
        self._analytics = AnalyticsTally()
        self._tally_flush: asyncio.Task[None] | None = None
        # The cluster client fails a command at once when its node has no connection free,
        # where a single Redis' blocking pool (see `connect`) lets it wait: so a burst of
        # requests waits its turn here instead, within the same deadline.
        self._turns = (
            asyncio.Semaphore(CLUSTER_CALLS_IN_FLIGHT) if isinstance(redis, RedisCluster) else None
        )

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout):
                if self._turns is None:
                    yield
                else:
                    async with self._turns:
                        yield
        except FAILURES as error:
            _raise_as_unavailable(error)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        async with self._guard():
            return await awaitable

    def _register(self, redis: aioredis.Redis | RedisCluster, source: str) -> AsyncScript:
        script = redis.register_script(source)
        self._scripts[script.sha] = source
        return script

    async def _eval(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        """Run a script in the shared pipeline, which keeps the deadline itself."""
        (reply,) = await self._pipelined_run([("EVALSHA", script.sha, len(keys), *keys, *args)])
        return reply

    async def _pipelined_run(self, commands: list[Command]) -> list[Any]:
        """Run commands in order in the shared pipeline; their replies. A script that Redis
        forgot (it restarted, or a replica took over) is sent again in full."""
        # Not through `_guard`: its generator would cost every tap more than the rest of this.
        try:
            replies = await self._auto.execute_many(commands)
            forgotten = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if forgotten:
                # EVAL rather than SCRIPT LOAD: it goes where the keys live, on a cluster the
                # one node that answered NOSCRIPT whatever the client thinks of the topology,
                # and leaves the script cached there.
                again = await self._auto.execute_many(
                    [("EVAL", self._scripts[commands[i][1]], *commands[i][2:]) for i in forgotten]
                )
                for i, reply in zip(forgotten, again, strict=True):
                    replies[i] = reply
        except FAILURES as error:
            _raise_as_unavailable(error)
        for reply in replies:
            if isinstance(reply, Exception):
                # A cluster client hands back a node's dropped connection or a refusal
                # mid-failover as the reply of each command that node was sent.
                if unavailable(reply):
                    raise unavailable_error(reply) from reply
                raise reply
        return replies

    def _schedule_flush(self) -> None:
        if self._tally_flush is None or self._tally_flush.done():
            self._tally_flush = asyncio.get_running_loop().create_task(
                self._flush_tallies(delay=TALLY_FLUSH_SECONDS)
            )

    async def _flush_tallies(self, delay: float = 0.0) -> None:
        """Write the tallies: the expiry index, and the aggregate counts summed in memory."""
        await asyncio.sleep(delay)
        counts = self._expiring.take()
        tallied = self._analytics.take()
        if not counts and not tallied:
            return
        commands: list[Command] = []
        hours = set()
        for (minute, org), count in counts.items():
            hour, minute_of_hour = divmod(minute, 60)
            hours.add(hour)
            field = expiring_field(org, minute_of_hour)
            commands.append(("HINCRBY", expiring_key(hour), field, count))
        for hour in sorted(hours):
            commands.append(("EXPIREAT", expiring_key(hour), (hour + 1) * 3600 + 60))
        until: dict[str, int] = {}
        for (hash_key, field), (count, until_ms) in tallied.items():
            commands.append(("HINCRBY", hash_key, field, count))
            until[hash_key] = until_ms
        commands += [("PEXPIREAT", hash_key, until_ms) for hash_key, until_ms in until.items()]
        try:
            await self._pipelined_run(commands)
        except StoreUnavailable:
            # Put them back for the next write: the counts lag rather than lose them.
            for key, count in counts.items():
                self._expiring.counts[key] = self._expiring.counts.get(key, 0) + count
            self._analytics.put_back(tallied)

    async def flush(self) -> None:
        """Write what is still buffered (the expiry index, aggregate counts)."""
        if self._tally_flush is not None and not self._tally_flush.done():
            self._tally_flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tally_flush
        await self._flush_tallies()

    async def close(self) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.flush()
        await self._auto.aclose()
        await self.redis.aclose()
        if self._pipelined is not self.redis:
            await self._pipelined.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers soon: readiness must not hang as long as a request may.

        On a cluster, whether every master answers: each holds a share of the links. A master
        that is gone is replaced in the client's view once the cluster has promoted its
        replica, since a refused connection makes the client fetch the slot map again."""
        try:
            async with asyncio.timeout(min(1.0, self.timeout)):
                if isinstance(self.redis, RedisCluster):
                    return bool(await self.redis.ping(target_nodes=RedisCluster.PRIMARIES))
                return bool(await self.redis.ping())
        except FAILURES:
            return False

    async def tune(self) -> list[str]:
        """Ask the server for compact small hashes; returns what could not be set.

        On a cluster, every node the client knows, replicas included: a replica's copy is
        encoded by its own settings, and it becomes a master in a failover. Settings made so
        are lost when a node restarts and never reach a node added later, so a cluster's
        nodes should carry them in their own configuration too."""
        refused = []
        for name, value in COMPACT_HASH_CONFIG.items():
            try:
                if isinstance(self.redis, RedisCluster):
                    nodes = RedisCluster.ALL_NODES
                    await self._call(self.redis.config_set(name, value, target_nodes=nodes))
                else:
                    await self._call(self.redis.config_set(name, value))
            except (ResponseError, StoreUnavailable):
                refused.append(name)
        return refused

    async def code_secret(self) -> bytes:
        async with self._guard():
            await self.redis.set(CODE_MAC_KEY, secrets.token_hex(32), nx=True)
            value = await self.redis.get(CODE_MAC_KEY)
        if value is None:
            raise StoreUnavailable("the code secret vanished right after it was written")
        return value if isinstance(value, bytes) else str(value).encode()

    async def reserve_blocks(self, count: int) -> int:
        last = int(await self._call(self.redis.incrby(BLOCKS_KEY, count)))
        return last - count + 1

    async def take_shorten_quota(self, org: str, count: int, limit: int, window_ms: int) -> int:
        """Count `count` messages against the org's `limit` per window of `window_ms`, all of
        them or, where they do not fit, none: 0 when counted, else the milliseconds until the
        window ends."""
        args: list[str | int] = [count, limit, window_ms]
        return int(await self._eval(self._take_quota, [shorten_quota_key(org)], args))

    async def save_links(
        self,
        messages: Sequence[MessageLinks],
        keep_ms: int,
        base_url: str,
        *,
        branded_org: str | None = None,
        issued: Hour | None = None,
    ) -> list[str | None]:
        """Write the links of messages, kept for `keep_ms`, and claim their message ids. For
        each message, None where it was saved, or the result already stored under its id where
        another claim came first: then none of its links is kept. One round trip, and one more
        to remove the links of messages whose claim lost. `base_url` is what the links were
        issued on: the service's, or `branded_org`'s own domain. Links of a campaign are
        counted in the aggregates of the hour `issued`, where given."""
        base_field = BASE_URL_FIELD if branded_org is None else ORG_BASE_URL_PREFIX + branded_org
        # block -> (links key, counts key) of each of its parts -> their fields and values
        by_block: dict[str, dict[tuple[str, str], list[str]]] = {}
        for message in messages:
            for serial, link in message.links:
                parts = by_block.setdefault(block_link_key(serial), {})
                fields = parts.setdefault((link_key(serial), count_key(serial)), [])
                fields.extend((link_field(serial), encode_link(link)))
        save = self._save_links.sha
        commands: list[Command] = []
        for parts in by_block.values():
            keys = [key for pair in parts for key in pair]
            args: list[str | int] = [keep_ms, base_field, base_url]
            for fields in parts.values():
                args += [len(fields), *fields]
            commands.append(("EVALSHA", save, len(keys), *keys, *args))
        named: dict[tuple[str, str], list[str]] = {}
        for message in messages:
            for serial, link in message.links:
                if link.contact_id is not None:
                    named.setdefault((link.org, link.contact_id), []).append(f"l{serial:x}")
        index = self._index.sha
        commands += [
            (
                "EVALSHA",
                index,
                2,
                contact_bucket_key(org, contact),
                contact_index_key(org, contact),
                keep_ms,
                contact,
                *entries,
            )
            for (org, contact), entries in named.items()
        ]
        claims = [message.claim for message in messages if message.claim is not None]
        for claim in claims:
            key = message_key(claim.org, claim.message_id)
            commands.append(("SET", key, claim.payload, "NX", "PX", keep_ms))
            commands.append(("GET", key))
        replies = await self._pipelined_run(commands)
        claim_replies = iter(replies[len(by_block) + len(named) :])
        earlier: list[str | None] = []
        lost: list[int] = []
        for message in messages:
            previous = None
            if message.claim is not None:
                won, stored = next(claim_replies), next(claim_replies)
                previous = None if won else text(stored)
            earlier.append(previous)
            if previous is not None:
                lost.extend(serial for serial, _ in message.links)
                continue
            for _, link in message.links:
                if link.kind.has_code:
                    self._expiring.add(link.expires_at, link.org)
                if (
                    issued is not None
                    and link.campaign is not None
                    and link.kind not in (LinkKind.PIXEL, LinkKind.HONEYPOT)
                ):
                    self._analytics.add_links(link.org, issued, link.campaign, 1)
        self._schedule_flush()
        if lost:
            # Never handed out: the earlier result names other links.
            await self._pipelined_run(
                [("HDEL", link_key(serial), link_field(serial)) for serial in lost]
            )
        return earlier

    async def link_record(self, serial: int) -> LinkRecord:
        """A link, the base URL of its block and its taps by people and by bots, counting
        nothing."""
        link_field_ = link_field(serial)
        read_link = self._read_link.sha
        counters: list[Command] = [
            (
                "BITFIELD",
                key,
                *("GET", COUNTER_TYPE, offset(serial, PEOPLE_COUNTER)),
                *("GET", COUNTER_TYPE, offset(serial, BOTS_COUNTER)),
            )
            for key, offset in (
                (count_key(serial), counter_offset),
                (block_count_key(serial), block_counter_offset),
            )
        ]
        link_and_base, counted, block_counted, legacy, takedown = await self._pipelined_run(
            [
                (
                    "EVALSHA",
                    read_link,
                    2,
                    link_key(serial),
                    block_link_key(serial),
                    link_field_,
                    BASE_URL_FIELD,
                    ORG_BASE_URL_PREFIX,
                ),
                *counters,
                (
                    "HMGET",
                    legacy_count_key(serial),
                    legacy_count_field(serial, PEOPLE_COUNTER),
                    legacy_count_field(serial, BOTS_COUNTER),
                ),
                ("HGET", takedown_key(serial), link_field_),
            ]
        )
        # A link's counts are in one of these, by where it is kept; the others hold none of it.
        people, bots = (
            sum(int(count or 0) for count in counts)
            for counts in zip(counted, block_counted, legacy, strict=True)
        )
        raw, base_url = link_and_base or (None, None)
        link = None if raw is None else decode_link(text(raw))
        base = text(base_url) or None if base_url is not None else None
        record = LinkRecord(link, base, people, bots)
        if link is None or not link.disabled or takedown is None:
            return record
        at, reason = decode_takedown(text(takedown))
        return dataclasses.replace(record, disabled_at=at, disabled_reason=reason)

    async def disable_link(
        self, serial: int, org: str | None, now: int, reason: str | None
    ) -> StoredLink | None:
        """Disable a link of `org` (of any org where None) for good, noting when and why
        unless it was disabled before; the link as it was, or None where no link of the org
        is stored."""
        raw = await self._eval(
            self._disable,
            [link_key(serial), block_link_key(serial), takedown_key(serial)],
            [link_field(serial), encode_takedown(now, reason), org or ""],
        )
        return None if raw is None else decode_link(text(raw))

    async def message_result(self, org: str, message_id: str) -> str | None:
        """What was stored under a message's id when it was shortened; None if nothing is."""
        raw = await self._call(self.redis.get(message_key(org, message_id)))
        return None if raw is None else text(raw)

    async def expiring(self, first_minute: int, last_minute: int) -> dict[str, int]:
        """Codes per org whose expiry falls in the minutes (since the epoch) from
        `first_minute` to `last_minute`, both included."""
        hours = range(first_minute // 60, last_minute // 60 + 1)
        totals: dict[str, int] = {}
        for start in range(0, len(hours), EXPIRING_HOURS_PER_READ):
            some_hours = hours[start : start + EXPIRING_HOURS_PER_READ]
            replies = await self._pipelined_run(
                [("HGETALL", expiring_key(hour)) for hour in some_hours]
            )
            for hour, reply in zip(some_hours, replies, strict=True):
                for field, count in reply.items():
                    org, minute_of_hour = org_and_minute(text(field))
                    if first_minute <= hour * 60 + minute_of_hour <= last_minute:
                        totals[org] = totals.get(org, 0) + int(count)
        return totals

    async def expiring_by_hour(self, org: str, first_minute: int, end_hour: int) -> list[int]:
        """The org's codes expiring in each hour (since the epoch) from `first_minute`'s up to
        `end_hour`, that hour's from `first_minute` on: only the org's fields are read."""
        fields = [expiring_field(org, minute) for minute in range(60)]
        first_hour = first_minute // 60
        counts: list[int] = []
        for start in range(first_hour, end_hour, EXPIRING_HOURS_PER_READ):
            some_hours = range(start, min(start + EXPIRING_HOURS_PER_READ, end_hour))
            replies = await self._pipelined_run(
                [("HMGET", expiring_key(hour), *fields) for hour in some_hours]
            )
            for hour, reply in zip(some_hours, replies, strict=True):
                skipped = first_minute % 60 if hour == first_hour else 0
                counts.append(sum(int(value or 0) for value in reply[skipped:]))
        return counts

    async def tap_link(
        self,
        serial: int,
        visitor: Visitor,
        now: int,
        kinds: frozenset[LinkKind],
        org: str | None = None,
    ) -> StoredLink | None:
        """Read a link and, while it lives, is of one of `kinds` and (where `org` is given) is
        that org's, count the visitor's tap on it (a probe's counts nowhere)."""
        counter = TAP_COUNTERS[visitor]
        offset = "" if counter is None else counter_offset(serial, counter)
        # Each argument costs the script time: the org is left out where any org's will do.
        args: list[str | int] = [link_field(serial), offset, now, kind_codes(kinds)]
        if org is not None:
            args.append(org)
        raw = await self._eval(self._tap, [link_key(serial), count_key(serial)], args)
        if raw is None:
            # Perhaps kept before blocks were split in parts: a second call only for those
            # links, and for codes that lead nowhere.
            args[1] = "" if counter is None else block_counter_offset(serial, counter)
            keys = [block_link_key(serial), block_count_key(serial)]
            raw = await self._eval(self._tap, keys, args)
        return None if raw is None else decode_link(text(raw))

    async def record_interaction(
        self,
        link: StoredLink,
        *,
        kind: InteractionType,
        link_id: str,
        code: str | None,
        visitor: Visitor,
        retain_ms: int,
        now_ms: int,
        remember_ms: int,
        reason: BotReason | None = None,
    ) -> str:
        """Append an interaction by `visitor` (anonymous if its contact opted out), index it
        under its contact, and note it for judging its message's interactions, for
        `remember_ms`, when they settle. A `reason` makes it a bot's for that reason."""
        group = group_of(link.message_id)
        activity = "" if group is None else f"{link_id} {interaction_code(kind)} {link.created_at}"
        args: list[str | int] = [
            link.contact_id or "",
            now_ms - retain_ms,
            interaction_code(kind),
            link.target,
            "1" if visitor.machine or reason is not None else "0",
            link_id,
            code or "",
            link.message_id or "",
            link.campaign or "",
            retain_ms,
            activity,
            remember_ms,
            bot_reason_code(reason or visitor.bot_reason),
            "1" if visitor is Visitor.PROXY else "",
        ]
        keys = [
            consent_key(link.org),
            interactions_key(link.org),
            added_key(link.org),
            contact_bucket_key(link.org, link.contact_id or ""),
            contact_index_key(link.org, link.contact_id or ""),
            activity_key(link.org, group or ""),
        ]
        return text(await self._eval(self._record, keys, args))

    async def mark_scanned(
        self, org: str, message_id: str | None, at_ms: int, keep_ms: int
    ) -> None:
        """A message's honeypot link was fetched at `at_ms`."""
        group = group_of(message_id)
        if group is not None:
            await self._call(self.redis.set(scan_key(org, group), at_ms, px=keep_ms))

    # Settling (see `domain.settling`)

    async def tracking_orgs(self) -> list[str]:
        """Every org that ever issued a tracked link, and so may have interactions."""
        return sorted({text(org) for org in await self._call(self.redis.hvals(ORGS_KEY))})

    async def take_lease(self, key: str, owner: str, lease_ms: int) -> bool:
        """Take the lease `key` for `lease_ms` if no one holds it."""
        return bool(await self._call(self.redis.set(key, owner, nx=True, px=lease_ms)))

    async def renew_lease(self, key: str, owner: str, lease_ms: int) -> bool:
        """Extend a lease this process took, if it still holds it: an operator may have
        taken it over (`SET` without `NX`), or a failover lost it."""
        return bool(await self._eval(self._renew_lease, [key], [owner, lease_ms]))

    async def unsettled(
        self, org: str, after: str | None, until_ms: int, count: int
    ) -> list[Unsettled]:
        """Interactions after `after`, up to those of `until_ms`, oldest first."""
        start = f"({after}" if after else "-"
        # In the shared pipeline: on a busy process it leaves with the taps' commands.
        (entries,) = await self._pipelined_run(
            [("XRANGE", interactions_key(org), start, str(until_ms), "COUNT", count)]
        )
        # Replies are bytes: the client does not decode them.
        return [decode_unsettled(entry_id, fields or {}) for entry_id, fields in entries or []]

    async def judging_context(
        self, org: str, groups: Sequence[str]
    ) -> dict[str, tuple[list[str], int | None]]:
        """For each group: what happened to it lately, and when its honeypot was fetched."""
        commands: list[Command] = []
        for group in groups:
            commands += [("LRANGE", activity_key(org, group), 0, -1), ("GET", scan_key(org, group))]
        replies = await self._pipelined_run(commands) if commands else []
        return {
            group: (
                [text(item) for item in replies[2 * n] or []],
                None if replies[2 * n + 1] is None else int(replies[2 * n + 1]),
            )
            for n, group in enumerate(groups)
        }

    async def write_settled(
        self,
        org: str,
        *,
        expected: str | None,
        cursor: str,
        judged: Mapping[str, str],
        keep_judged_ms: int,
        counts: Sequence[tuple[str, str, int, int]],
    ) -> bool:
        """Write what settled up to `cursor` in one step: the judgements, the aggregate counts
        (key, field, amount, expiry ms); False if another settler moved the cursor first."""
        keys = [settled_key(org), judged_key(org)]
        index: dict[str, int] = {}
        args: list[str | int] = [expected or "", cursor, keep_judged_ms, len(judged)]
        for entry, code in judged.items():
            args += [entry, code]
        for key, field, amount, until_ms in counts:
            if key not in index:
                keys.append(key)
                index[key] = len(keys)
            args += [index[key], field, amount, until_ms]
        return bool(await self._eval(self._settle, keys, args))

    async def settlement(
        self, org: str, entries: Sequence[str]
    ) -> tuple[str | None, dict[str, str]]:
        """How far the org's interactions are settled, and the judgements of these."""
        commands: list[Command] = [("GET", settled_key(org))]
        if entries:
            commands.append(("HMGET", judged_key(org), *entries))
        replies = await self._pipelined_run(commands)
        cursor = None if replies[0] is None else text(replies[0])
        judged = (
            {entry: text(code) for entry, code in zip(entries, replies[1], strict=True) if code}
            if entries
            else {}
        )
        return cursor, judged

    async def move_to_bots(self, serials: Sequence[int]) -> None:
        """Count a person's tap on each link as a bot's instead: judged so when it settled."""
        commands: list[Command] = []
        move = self._move_to_bots.sha
        for serial in serials:
            commands.append(
                (
                    "EVALSHA",
                    move,
                    4,
                    count_key(serial),
                    link_key(serial),
                    block_count_key(serial),
                    block_link_key(serial),
                    counter_offset(serial, PEOPLE_COUNTER),
                    counter_offset(serial, BOTS_COUNTER),
                    block_counter_offset(serial, PEOPLE_COUNTER),
                    block_counter_offset(serial, BOTS_COUNTER),
                )
            )
        if commands:
            await self._pipelined_run(commands)

    def count_tap(self, org: str, at: Hour, campaign: str | None) -> None:
        """A person's tap on an untracked code, for the aggregates: added within a second."""
        self._analytics.add_tap(org, at, campaign)
        self._schedule_flush()

    async def hour_counts(
        self, org: str, days: Sequence[int], fields: Sequence[str]
    ) -> list[list[int]]:
        """The given fields of each day's hourly aggregates (0 where none), in one round trip."""
        if not days:
            return []
        replies = await self._pipelined_run(
            [("HMGET", analytics_hours_key(org, day), *fields) for day in days]
        )
        return [[int(value or 0) for value in reply] for reply in replies]

    async def campaign_totals(self, org: str, first_day: int, end_day: int) -> dict[str, int]:
        """Each campaign field (`keys.campaign_field`) summed over the days from `first_day`
        up to `end_day`: one round trip, of small reads that let other clients' commands in
        between (a script summing a month would hold Redis for tens of milliseconds)."""
        keys = campaign_keys(org, first_day, end_day)
        if not keys:
            return {}
        totals: dict[bytes, int] = {}
        for reply in await self._pipelined_run([("HGETALL", key) for key in keys]):
            for field, count in reply.items():
                totals[field] = totals.get(field, 0) + int(count)
        return {text(field): count for field, count in totals.items()}

    async def read_interactions(self, org: str, after: str | None, limit: int) -> list[Interaction]:
        start = f"({after}" if after else "-"
        entries = await self._call(self.redis.xrange(interactions_key(org), start, "+", limit))
        return [
            decode_interaction(
                text(entry_id), {text(k): text(v) for k, v in (fields or {}).items()}
            )
            for entry_id, fields in entries or []
        ]

    async def set_consent(self, org: str, contact_id: str, tracking: bool, at_ms: int) -> None:
        value = encode_consent(tracking, at_ms)
        await self._call(self.redis.hset(consent_key(org), contact_id, value))

    async def consent(self, org: str, contact_id: str) -> StoredConsent | None:
        """A contact's stored consent; None if it was never set."""
        raw = await self._call(self.redis.hget(consent_key(org), contact_id))
        return None if raw is None else decode_consent(text(raw))

    async def opted_out(self, org: str, contact_ids: Sequence[str]) -> set[str]:
        """Which of the contacts opted out of tracking; one command for all of them."""
        if not contact_ids:
            return set()
        ids = list(dict.fromkeys(contact_ids))
        (values,) = await self._pipelined_run([("HMGET", consent_key(org), *ids)])
        return {
            contact_id
            for contact_id, raw in zip(ids, values, strict=True)
            if raw is not None and not decode_consent(text(raw)).tracking
        }

    async def remember_orgs(self, orgs: dict[str, str]) -> None:
        """Keep org hash -> org for good, so that links outlive the org's API keys."""
        if orgs:
            mapping: dict[str | bytes, str | bytes] = dict(orgs.items())
            await self._call(self.redis.hset(ORGS_KEY, mapping=mapping))  # type: ignore[arg-type]

    async def org_of_hash(self, org_hash: str) -> str | None:
        raw = await self._call(self.redis.hget(ORGS_KEY, org_hash))
        return None if raw is None else text(raw)

    async def read_org(self, org: str) -> str | None:
        raw = await self._call(self.redis.get(org_key(org)))
        return None if raw is None else text(raw)

    async def org_ids(self) -> set[str]:
        members = await self._call(self.redis.smembers(ORG_IDS_KEY))
        return {text(member) for member in members}

    async def orgs(self) -> dict[str, str]:
        """Every stored org's settings, by org; one read per org, pipelined."""
        names = sorted(await self.org_ids())
        if not names:
            return {}
        payloads = await self._pipelined_run([("GET", org_key(name)) for name in names])
        return {
            name: text(payload)
            for name, payload in zip(names, payloads, strict=True)
            if payload is not None
        }

    async def save_org(self, org: str, payload: str) -> None:
        """Store an org's settings, and let every worker know that orgs changed."""
        await self._call(self.redis.set(org_key(org), payload))
        await self._call(self.redis.sadd(ORG_IDS_KEY, org))
        await self.raise_tenancy_version()

    async def raise_tenancy_version(self) -> None:
        await self._call(self.redis.incr(TENANCY_VERSION_KEY))

    async def claim_domain(self, host: str, org: str) -> str:
        """The domain's owner: `org` if it had none."""
        owner = await self._call(self._claim_domain(keys=[domain_key(host)], args=[org]))
        return text(owner)

    async def release_domain(self, host: str, org: str) -> None:
        await self._call(self._release_domain(keys=[domain_key(host)], args=[org]))

    async def tenancy_version(self) -> int:
        raw = await self._call(self.redis.get(TENANCY_VERSION_KEY))
        return 0 if raw is None else int(raw)

    async def api_keys(self) -> dict[str, str]:
        """Every stored org API key, by key id."""
        found = await self._call(self.redis.hgetall(API_KEYS_KEY))
        return {text(key_id): text(raw) for key_id, raw in found.items()}

    async def save_api_key(self, key_id: str, record: str) -> None:
        await self._call(self.redis.hset(API_KEYS_KEY, key_id, record))
        await self.raise_tenancy_version()

    async def delete_api_key(self, key_id: str) -> None:
        await self._call(self.redis.hdel(API_KEYS_KEY, key_id))
        await self.raise_tenancy_version()
        await self._call(self.redis.hdel(KEYS_USED_KEY, key_id))

    async def keys_used(self) -> dict[str, int]:
        found = await self._call(self.redis.hgetall(KEYS_USED_KEY))
        return {text(key_id): int(raw) for key_id, raw in found.items()}

    async def mark_keys_used(self, used_ms: dict[str, int]) -> None:
        mapping: dict[str | bytes, str | bytes | int] = dict(used_ms.items())
        await self._call(self.redis.hset(KEYS_USED_KEY, mapping=mapping))  # type: ignore[arg-type]

    # A contact's erasure

    async def erase_contact(self, org: str, contact_id: str) -> tuple[list[str], int]:
        """Delete every interaction that names the contact, take the contact out of its
        link records and forget its consent, by the contact's index: in proportion to the
        contact's own data. The ids of the interactions deleted, and the links changed."""
        index, bucket = contact_index_key(org, contact_id), contact_bucket_key(org, contact_id)
        field = await self._call(self.redis.hget(bucket, contact_id))
        more = await self._call(self.redis.lrange(index, 0, -1))
        entries = (text(field).split(" ") if field else []) + [text(entry) for entry in more]
        interaction_ids = list(dict.fromkeys(e[1:] for e in entries if e.startswith("i")))
        serials = list(dict.fromkeys(int(e[1:], 16) for e in entries if e.startswith("l")))
        erased: list[str] = []
        for start in range(0, len(interaction_ids), ERASE_CHUNK):
            chunk = interaction_ids[start : start + ERASE_CHUNK]
            # XDEL says how many it found, not which: ask which are there first.
            found = await self._pipelined_run(
                [("XRANGE", interactions_key(org), entry, entry) for entry in chunk]
            )
            present = [entry for entry, reply in zip(chunk, found, strict=True) if reply]
            if present:
                await self._call(self.redis.xdel(interactions_key(org), *present))
            erased += present
        script = self._erase_link_contact.sha
        contact = encoded_id(contact_id)
        changed = 0
        for start in range(0, len(serials), ERASE_CHUNK):
            replies = await self._pipelined_run(
                [
                    (
                        "EVALSHA",
                        *(script, 2, link_key(serial), block_link_key(serial)),
                        *(link_field(serial), org, contact),
                    )
                    for serial in serials[start : start + ERASE_CHUNK]
                ]
            )
            changed += sum(int(reply) for reply in replies)
        await self._call(self.redis.hdel(consent_key(org), contact_id))
        await self._call(self.redis.hdel(bucket, contact_id))
        await self._call(self.redis.delete(index))
        return erased, changed

    async def add_event(self, org: str, fields: dict[str, str]) -> str:
        """Append an event for the org's webhooks to its events stream; its id."""
        mapping: dict[Any, Any] = dict(fields)
        entry = await self._call(self.redis.xadd(events_key(org), mapping))
        await self._call(self.redis.incr(added_key(org)))
        return text(entry)

    # Webhook endpoints

    async def webhooks(self, org: str) -> dict[str, str]:
        found = await self._call(self.redis.hgetall(webhooks_key(org)))
        return {text(name): text(raw) for name, raw in found.items()}

    async def webhook(self, org: str, name: str) -> str | None:
        raw = await self._call(self.redis.hget(webhooks_key(org), name))
        return None if raw is None else text(raw)

    async def save_webhook(self, org: str, name: str, payload: str, *, new: bool) -> None:
        """Store an endpoint; a new one gets its consumer groups, reading from now on."""
        if new:
            group = webhook_group(name)
            for stream in (interactions_key(org), events_key(org)):
                try:
                    await self._call(self.redis.xgroup_create(stream, group, "$", mkstream=True))
                except ResponseError as error:
                    if "BUSYGROUP" not in str(error):
                        raise
            added = await self._call(self.redis.get(added_key(org)))
            await self._call(self.redis.set(webhook_key(org, name, "read"), int(added or 0)))
        await self._call(self.redis.hset(webhooks_key(org), name, payload))
        await self._call(self.redis.sadd(WEBHOOK_ORGS_KEY, org))
        await self._call(self.redis.incr(WEBHOOKS_VERSION_KEY))

    async def delete_webhook(self, org: str, name: str) -> bool:
        """Remove an endpoint with its groups and schedules; False if there was none."""
        removed = await self._call(self.redis.hdel(webhooks_key(org), name))
        if not removed:
            return False
        for stream in (interactions_key(org), events_key(org)):
            with contextlib.suppress(ResponseError):
                await self._call(self.redis.xgroup_destroy(stream, webhook_group(name)))
        parts = ("read", "retry", "tries", "failed")
        await self._call(self.redis.delete(*(webhook_key(org, name, part) for part in parts)))
        if not await self._call(self.redis.hlen(webhooks_key(org))):
            await self._call(self.redis.srem(WEBHOOK_ORGS_KEY, org))
        await self._call(self.redis.incr(WEBHOOKS_VERSION_KEY))
        return True

    async def all_webhooks(self) -> dict[tuple[str, str], str]:
        """Every org's endpoints, by (org, name)."""
        orgs = sorted(text(org) for org in await self._call(self.redis.smembers(WEBHOOK_ORGS_KEY)))
        found: dict[tuple[str, str], str] = {}
        for org in orgs:
            for name, raw in (await self.webhooks(org)).items():
                found[(org, name)] = raw
        return found

    async def webhooks_version(self) -> int:
        raw = await self._call(self.redis.get(WEBHOOKS_VERSION_KEY))
        return 0 if raw is None else int(raw)

    async def webhook_counts(self, org: str, name: str) -> tuple[int, int]:
        """An endpoint's backlog (events not yet delivered nor given up) and failed events."""
        group = webhook_group(name)
        added, read = await self._call(
            self.redis.mget(added_key(org), webhook_key(org, name, "read"))
        )
        pending = 0
        for stream in (interactions_key(org), events_key(org)):
            with contextlib.suppress(ResponseError):
                summary = await self._call(self.redis.xpending(stream, group))
                pending += int(summary["pending"])
        failed = int(await self._call(self.redis.zcard(webhook_key(org, name, "failed"))))
        unread = max(0, int(added or 0) - int(read or 0))
        return unread + max(0, pending - failed), failed

    # Webhook deliveries. An entry is named by its stream's letter and its id ("i…" for an
    # interaction, "e…" for another event), in schedules and in the webhook-id.

    def _stream(self, org: str, member: str) -> str:
        return interactions_key(org) if member.startswith("i") else events_key(org)

    async def read_new(
        self, org: str, name: str, consumer: str, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries no process of the endpoint has read yet, now pending for `consumer`."""
        streams = {interactions_key(org): ">", events_key(org): ">"}
        try:
            replies: Any = await self._call(
                self.redis.xreadgroup(webhook_group(name), consumer, streams, count=count)  # type: ignore[arg-type]
            )
        except ResponseError as error:
            if "NOGROUP" in str(error):
                # The endpoint was deleted a moment ago; its delivery stops on the next reload.
                return []
            raise
        found: list[tuple[str, dict[str, str]]] = []
        for stream, entries in replies or []:
            letter = "i" if text(stream) == interactions_key(org) else "e"
            for entry, fields in entries:
                decoded = {text(k): text(v) for k, v in (fields or {}).items()}
                found.append((letter + text(entry), decoded))
        if found:
            await self._call(self.redis.incrby(webhook_key(org, name, "read"), len(found)))
        return found

    async def entries(self, org: str, members: Sequence[str]) -> list[dict[str, str] | None]:
        """The fields of each entry; None where it is gone (erased or trimmed)."""
        replies = await self._pipelined_run(
            [("XRANGE", self._stream(org, m), m[1:], m[1:]) for m in members]
        )
        found: list[dict[str, str] | None] = []
        for reply in replies:
            if not reply:
                found.append(None)
                continue
            _, fields = reply[0]
            found.append({text(k): text(v) for k, v in (fields or {}).items()})
        return found

    async def lease_due(
        self, org: str, name: str, now_ms: int, lease_ms: int, count: int
    ) -> list[str]:
        """Retries due by now, each leased for `lease_ms` to this process."""
        due = await self._eval(
            self._lease_due, [webhook_key(org, name, "retry")], [now_ms, now_ms + lease_ms, count]
        )
        return [text(member) for member in due or []]

    async def settle(self, org: str, name: str, members: Sequence[str]) -> None:
        """Entries delivered (or not to be delivered): nothing of them is left to do."""
        if not members:
            return
        group = webhook_group(name)
        by_stream: dict[str, list[str]] = {}
        for member in members:
            by_stream.setdefault(self._stream(org, member), []).append(member[1:])
        commands: list[Command] = [
            ("XACK", stream, group, *ids) for stream, ids in by_stream.items()
        ]
        commands += [
            ("ZREM", webhook_key(org, name, "retry"), *members),
            ("ZREM", webhook_key(org, name, "failed"), *members),
            ("HDEL", webhook_key(org, name, "tries"), *members),
        ]
        await self._pipelined_run(commands)

    async def attempt_failed(
        self,
        org: str,
        name: str,
        member: str,
        *,
        now_ms: int,
        backoff_ms: int,
        max_attempts: int,
        jitter: float,
    ) -> tuple[int, bool]:
        """Count a failed attempt and schedule the next one; the attempts made, and whether
        the entry was given up."""
        keys = [webhook_key(org, name, part) for part in ("retry", "tries", "failed")]
        tries, gave_up = await self._eval(
            self._attempt_failed, keys, [member, max_attempts, now_ms, backoff_ms, f"{jitter:.4f}"]
        )
        return int(tries), bool(int(gave_up))

    async def defer(self, org: str, name: str, due_ms: Mapping[str, int]) -> None:
        """Schedule entries read before they could be sent (interactions not settled yet) for
        when they can, counting no attempt."""
        if due_ms:
            mapping: dict[str, int] = dict(due_ms.items())
            await self._call(self.redis.zadd(webhook_key(org, name, "retry"), mapping))

    async def claim_orphans(
        self, org: str, name: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[str]:
        """Entries read by a process that never settled nor scheduled them (it died in the
        middle), idle for `min_idle_ms`: now this consumer's."""
        group = webhook_group(name)
        claimed: list[str] = []
        for letter, stream in (("i", interactions_key(org)), ("e", events_key(org))):
            try:
                pending = await self._call(
                    self.redis.xpending_range(
                        stream, group, min="-", max="+", count=count, idle=min_idle_ms
                    )
                )
            except ResponseError:
                continue
            ids = [text(item["message_id"]) for item in pending]
            if not ids:
                continue
            scheduled = await self._pipelined_run(
                [
                    command
                    for entry in ids
                    for command in (
                        ("ZSCORE", webhook_key(org, name, "retry"), letter + entry),
                        ("ZSCORE", webhook_key(org, name, "failed"), letter + entry),
                    )
                ]
            )
            orphans = [
                entry
                for index, entry in enumerate(ids)
                if scheduled[2 * index] is None and scheduled[2 * index + 1] is None
            ]
            if orphans:
                try:
                    taken = await self._call(
                        self.redis.xclaim(
                            stream, group, consumer, min_idle_ms, list[Any](orphans), justid=True
                        )
                    )
                except ResponseError:
                    # The endpoint, and its group, was deleted meanwhile.
                    continue
                claimed += [letter + text(entry) for entry in taken]
        return claimed

    async def failed_entries(self, org: str, name: str, limit: int) -> list[tuple[str, int, int]]:
        """Given-up entries, oldest first: (entry, when given up in ms, attempts)."""
        found: list[Any] = await self._call(
            self.redis.zrange(webhook_key(org, name, "failed"), 0, limit - 1, withscores=True)
        )
        if not found:
            return []
        members = [text(pair[0]) for pair in found]
        tries = await self._call(self.redis.hmget(webhook_key(org, name, "tries"), members))
        return [
            (member, int(pair[1]), int(attempts or 0))
            for member, pair, attempts in zip(members, found, tries, strict=True)
        ]

    async def replay(self, org: str, name: str, now_ms: int) -> int:
        """Schedule every given-up entry for a new round of attempts, due now."""
        failed_key = webhook_key(org, name, "failed")
        members = [text(m) for m in await self._call(self.redis.zrange(failed_key, 0, -1))]
        if not members:
            return 0
        await self._pipelined_run(
            [
                (
                    "ZADD",
                    webhook_key(org, name, "retry"),
                    *(x for m in members for x in (now_ms, m)),
                ),
                ("HDEL", webhook_key(org, name, "tries"), *members),
                ("ZREM", failed_key, *members),
            ]
        )
        return len(members)
