"""The one module that knows Redis keys and how values are laid out in them.

Keys:
- `blocks`: counter of reserved serial blocks (see `codes.SerialAllocator`).
- `secret:codes`: the key of the code MAC, made once by whoever starts first.
- `l:{BLOCK}`: hash of the links of one serial block; field = slot in block (hex),
  value = an encoded `StoredLink`. Hundreds of small fields in one listpack-encoded hash
  cost about half the memory of one key per link. The hash lives until its latest link
  expires; each link carries its own expiry, since its neighbours may outlive it. One more
  field, `base` (never a hex number), holds the base URL of the block's short links: a block
  is only ever issued by one process, with one base URL.
- `k:{BLOCK}`: the block's tap counts, fields `{slot}:c` (people) and `{slot}:b` (bots),
  living as long as the block's links. Apart from the links, because changing a field in a
  large listpack rewrites it; the shared hash tag keeps both in one cluster slot.
- `m:{org}:{message_id}`: a shortened message's result, so that a retry returns it again.
- `{o:ORG}:ix`: the org's stream of interactions (fields: t type, u url, b bot, g campaign,
  and l link id, k code, m message id, p contact id unless the contact had opted out);
  `{o:ORG}:consent`: hash contact id ->
  "1 MS"/"0 MS" (tracking allowed / opted out, set at MS milliseconds since the epoch; the
  flag alone in records written before the time was kept). The shared hash tag keeps both in
  one cluster slot, so the recorder reads consent and appends the interaction in one script.
- `orgs`: hash org hash -> org id, to find the org of a signed link whose record is gone.
- `x:{hour}`: hash `{org}:{minute}` -> number of the org's codes expiring in that minute of
  the hour (hours since the epoch, minutes 0-59), living until the hour is over: the index
  behind "what expires soon". At most 60 small fields per org and hour, a few bytes each,
  where each code costs about a hundred.
- `q:{org}`: how many messages the org shortened in its current window of the per-org shorten
  limit; the window starts with the first message after the last one ended, and the counter
  expires with it, so its TTL is the time until the org may shorten again. Counted by
  `_TAKE_QUOTA` on this one key, where every worker and instance sees it.

No command or script touches keys of two hash slots, so the same operations run on a Redis
Cluster, where each slot lives on one master.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from shortener.domain.codes import block_of, slot_in_block
from shortener.metrics import REDIS_ERRORS
from shortener.store.autopipeline import AutoPipeline, Command
from shortener.store.embedded import COMPACT_HASH_CONFIG

T = TypeVar("T")

CODE_MAC_KEY = "secret:codes"
EXPIRING_FLUSH_SECONDS = 1.0
# Hours of the expiry index read per round trip, each round trip with its own deadline.
EXPIRING_HOURS_PER_READ = 512
BLOCKS_KEY = "blocks"
# Commands in flight outside the shared pipeline on a cluster, below redis-py's 100
# connections per node so that the shared pipeline keeps some.
CLUSTER_CALLS_IN_FLIGHT = 64

# HSET the fields, then stretch the hash's life to cover the longest-lived of them. Not
# shrinking it keeps links written earlier with a longer lifetime alive. The block's tap counts
# (KEYS[2], once there are any) are stretched with it, so they live as long as their links.
_SAVE_LINKS = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local counts_ttl = redis.call('PTTL', KEYS[2])
if counts_ttl ~= -2 then
  local links_ttl = redis.call('PTTL', KEYS[1])
  if counts_ttl < links_ttl then
    redis.call('PEXPIRE', KEYS[2], links_ttl)
  end
end
return 1
"""


# Count ARGV[1] messages against the org's quota of ARGV[2] per window of ARGV[3] ms, or
# none of them where they do not all fit: a request is taken whole or refused whole. Returns 0
# when taken, else the milliseconds until the window ends. The window is set when the counter
# has none, so a counter never outlives its window.
_TAKE_QUOTA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) <= tonumber(ARGV[2]) then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left > 0 then
  return left
end
return tonumber(ARGV[3])
"""

# Read a link and, if it is live and of a kind the caller follows, count the tap: one round
# trip for the whole tap.
_TAP = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and ARGV[3] ~= '' and string.find(ARGV[4], string.sub(value, 1, 1), 1, true) then
  local expires = tonumber(string.match(value, '^%S+ %x+ (%x+) '), 16)
  if expires > tonumber(ARGV[2]) then
    redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':' .. ARGV[3], 1)
    if redis.call('PTTL', KEYS[2]) < 0 then
      redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
    end
  end
end
return value
"""

# Consent is read at the moment of the interaction: one who has opted out since the
# message was sent leaves an interaction with nothing that points back to them. The campaign
# stays either way: it names a journey, not a person.
_RECORD = """
local fields = {'t', ARGV[3], 'u', ARGV[4], 'b', ARGV[5]}
if ARGV[9] ~= '' then
  table.insert(fields, 'g'); table.insert(fields, ARGV[9])
end
local contact = ARGV[1]
local consent = false
if contact ~= '' then
  consent = redis.call('HGET', KEYS[1], contact)
end
if not consent or string.sub(consent, 1, 1) ~= '0' then
  table.insert(fields, 'l'); table.insert(fields, ARGV[6])
  table.insert(fields, 'k'); table.insert(fields, ARGV[7])
  table.insert(fields, 'm'); table.insert(fields, ARGV[8])
  table.insert(fields, 'p'); table.insert(fields, contact)
end
return redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*', unpack(fields))
"""


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


class StoreUnavailable(Exception):
    """Redis did not answer in time or refused the connection."""


# A cluster that has lost a master refuses commands until a replica takes over (CLUSTERDOWN,
# MASTERDOWN, TRYAGAIN), and one whose slots move redirects them (MOVED, ASK) where the client
# may not follow: error replies, but about the store, not the command. redis-py's cluster
# client raises RedisClusterException, no RedisError, when it finds no node to ask.
_TRANSIENT_REPLIES = (ClusterDownError, TryAgainError, AskError)
_FAILURES = (TimeoutError, ConnectionError, OSError, RedisError, RedisClusterException)


def _unavailable(error: BaseException) -> bool:
    if isinstance(error, ResponseError):
        return isinstance(error, _TRANSIENT_REPLIES)
    return isinstance(error, _FAILURES)


def _unavailable_error(error: BaseException) -> StoreUnavailable:
    REDIS_ERRORS.inc()
    return StoreUnavailable(failure_summary(error))


def failure_summary(error: BaseException) -> str:
    """What went wrong reaching the store, fit for a log line: the kind of error, and the
    system's reason where a socket failed (`ConnectionError: Connection refused`).

    Never the error's own text: redis-py writes the failed command into some of its messages,
    keys and arguments included (contact ids, targets), e.g. a pipeline's errors as
    `Command # 1 (EVALSHA …) of pipeline caused error: …`."""
    summary = type(error).__name__
    cause: BaseException | None = error
    # A few links down the chain at most: the socket's error is near, and a chain may loop.
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, OSError) and isinstance(cause.errno, int):
            return f"{summary}: {os.strerror(cause.errno)}"
        cause = cause.__cause__ or cause.__context__
    return summary


# An open pixel leads nowhere; its record says so in place of a target.
PIXEL_TARGET = "-"
# The field of a block's link hash that holds its base URL; slot fields are hex numbers.
BASE_URL_FIELD = "base"


class LinkKind(enum.Enum):
    SHORT = "u"  # an untracked short code
    TRACKED_SHORT = "t"  # a tracked short code (its tracked link shares the record)
    TRACKED = "h"  # a tracked link with no short code (e-mail)
    PIXEL = "o"  # an open-tracking pixel

    @property
    def tracked(self) -> bool:
        return self is not LinkKind.SHORT

    @property
    def has_code(self) -> bool:
        return self in (LinkKind.SHORT, LinkKind.TRACKED_SHORT)


_PLAIN_ID = re.compile(r"[A-Za-z0-9._~-]*")


def _quote_id(value: str | None) -> str:
    # Most ids need no escaping, and a regex check is far cheaper than quote.
    if value is None:
        return ""
    return value if _PLAIN_ID.fullmatch(value) else quote(value, safe="")


@dataclass(frozen=True, slots=True)
class StoredLink:
    kind: LinkKind
    org: str
    target: str
    created_at: int
    expires_at: int
    contact_id: str | None = None
    message_id: str | None = None
    campaign: str | None = None

    def encode(self) -> str:
        # Space-separated: orgs are validated to contain none, targets are encoded URLs,
        # and ids are percent-encoded. Trailing ids that are absent are left out, so an
        # untracked link without a campaign costs no byte more than its target.
        head = f"{self.kind.value} {self.created_at:x} {self.expires_at:x} {self.org} {self.target}"
        ids: list[str | None] = [self.contact_id, self.message_id] if self.kind.tracked else []
        if self.campaign is not None:
            ids += [None] * (2 - len(ids)) + [self.campaign]
        elif not ids:
            return head
        return " ".join((head, *(_quote_id(value) for value in ids)))

    @classmethod
    def decode(cls, raw: str) -> StoredLink:
        kind, created, expires, org, target, *ids = raw.split(" ")
        contact, message, campaign = (unquote(i) or None for i in [*ids, "", "", ""][:3])
        return cls(
            LinkKind(kind),
            org,
            target,
            int(created, 16),
            int(expires, 16),
            contact,
            message,
            campaign,
        )


@dataclass(frozen=True, slots=True)
class Interaction:
    id: str
    type: str
    url: str | None
    bot: bool
    link_id: str | None
    code: str | None
    message_id: str | None
    contact_id: str | None
    campaign: str | None = None


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
class StoredConsent:
    tracking: bool
    # Milliseconds since the epoch; None where it was set before the time was kept.
    updated_at_ms: int | None


def link_key(serial: int) -> str:
    return f"l:{{{block_of(serial)}}}"


def count_key(serial: int) -> str:
    return f"k:{{{block_of(serial)}}}"


def link_field(serial: int) -> str:
    return format(slot_in_block(serial), "x")


def message_key(org: str, message_id: str) -> str:
    return f"m:{org}:{message_id}"


def interactions_key(org: str) -> str:
    return f"{{o:{org}}}:ix"


def consent_key(org: str) -> str:
    return f"{{o:{org}}}:consent"


def shorten_quota_key(org: str) -> str:
    return f"q:{org}"


ORGS_KEY = "orgs"


def expiring_key(hour: int) -> str:
    return f"x:{hour}"


def expiring_field(org: str, minute_of_hour: int) -> str:
    return f"{org}:{minute_of_hour}"


def _org_and_minute(field: str) -> tuple[str, int]:
    """The org and minute of hour of an expiry index field (orgs hold no colon)."""
    org, colon, minute = field.rpartition(":")
    if not colon:
        # A field of the index as it was before it had minutes. Taken as the hour's first
        # minute, it counts only where the whole hour lies ahead, never for codes that may
        # have expired already.
        return field, 0
    return org, int(minute)


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
        self._save_links = redis.register_script(_SAVE_LINKS)
        self._tap = redis.register_script(_TAP)
        self._record = redis.register_script(_RECORD)
        self._take_quota = redis.register_script(_TAKE_QUOTA)
        # The hot paths (taps and their clicks) share pipelines with concurrent requests,
        # over a client of their own (see `connect`).
        scripts = (self._save_links, self._tap, self._record, self._take_quota)
        self._scripts = {s.sha: s.script for s in scripts}
        self._pipelined = pipelined or redis
        self._auto = AutoPipeline(self._pipelined, timeout)
        self._expiring = ExpiryTally()
        self._expiring_flush: asyncio.Task[None] | None = None
        # The cluster client fails a command at once when its node has no connection free,
        # where a single Redis' blocking pool (see `connect`) lets it wait: so a burst of
        # requests waits its turn here instead, within the same deadline.
        self._turns = (
            asyncio.Semaphore(CLUSTER_CALLS_IN_FLIGHT) if isinstance(redis, RedisCluster) else None
        )

    @asynccontextmanager
    async def _unavailable_on_failure(self) -> AsyncIterator[None]:
        """Failures to reach the store become StoreUnavailable; errors of a command do not."""
        try:
            yield
        except _FAILURES as error:
            if not _unavailable(error):
                raise
            raise _unavailable_error(error) from error

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        async with self._unavailable_on_failure(), asyncio.timeout(self.timeout):
            if self._turns is None:
                yield
            else:
                async with self._turns:
                    yield

    async def _call(self, awaitable: Awaitable[T]) -> T:
        async with self._guard():
            return await awaitable

    async def _eval(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        """Run a script in the shared pipeline, which keeps the deadline itself."""
        (reply,) = await self._pipelined_run([("EVALSHA", script.sha, len(keys), *keys, *args)])
        return reply

    async def _pipelined_run(self, commands: list[Command]) -> list[Any]:
        """Run commands in order in the shared pipeline; their replies. A script that Redis
        forgot (it restarted, or a replica took over) is sent again in full."""
        async with self._unavailable_on_failure():
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
        for reply in replies:
            if isinstance(reply, Exception):
                # A cluster client hands back a node's dropped connection or a refusal
                # mid-failover as the reply of each command that node was sent.
                if _unavailable(reply):
                    raise _unavailable_error(reply) from reply
                raise reply
        return replies

    def _schedule_expiring_flush(self) -> None:
        if self._expiring_flush is None or self._expiring_flush.done():
            self._expiring_flush = asyncio.get_running_loop().create_task(
                self._flush_expiring(delay=EXPIRING_FLUSH_SECONDS)
            )

    async def _flush_expiring(self, delay: float = 0.0) -> None:
        await asyncio.sleep(delay)
        counts = self._expiring.take()
        if not counts:
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
        try:
            await self._pipelined_run(commands)
        except StoreUnavailable:
            # Put them back for the next write: the index lags rather than loses them.
            for key, count in counts.items():
                self._expiring.counts[key] = self._expiring.counts.get(key, 0) + count

    async def flush(self) -> None:
        """Write what is still buffered (the expiry index)."""
        if self._expiring_flush is not None and not self._expiring_flush.done():
            self._expiring_flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiring_flush
        await self._flush_expiring()

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
        except _FAILURES:
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
        self, messages: Sequence[MessageLinks], keep_ms: int, base_url: str
    ) -> list[str | None]:
        """Write the links of messages, kept for `keep_ms`, and claim their message ids. For
        each message, None where it was saved, or the result already stored under its id where
        another claim came first: then none of its links is kept. One round trip, and one more
        to remove the links of messages whose claim lost."""
        by_block: dict[tuple[str, str], list[str]] = {}
        for message in messages:
            for serial, link in message.links:
                fields = by_block.setdefault((link_key(serial), count_key(serial)), [])
                fields.extend((link_field(serial), link.encode()))
        save = self._save_links.sha
        commands: list[Command] = [
            ("EVALSHA", save, 2, *keys, keep_ms, BASE_URL_FIELD, base_url, *fields)
            for keys, fields in by_block.items()
        ]
        claims = [message.claim for message in messages if message.claim is not None]
        for claim in claims:
            key = message_key(claim.org, claim.message_id)
            commands.append(("SET", key, claim.payload, "NX", "PX", keep_ms))
            commands.append(("GET", key))
        replies = await self._pipelined_run(commands)
        claim_replies = iter(replies[len(by_block) :])
        earlier: list[str | None] = []
        lost: list[int] = []
        for message in messages:
            previous = None
            if message.claim is not None:
                won, stored = next(claim_replies), next(claim_replies)
                previous = None if won else _text(stored)
            earlier.append(previous)
            if previous is not None:
                lost.extend(serial for serial, _ in message.links)
                continue
            for _, link in message.links:
                if link.kind.has_code:
                    self._expiring.add(link.expires_at, link.org)
        self._schedule_expiring_flush()
        if lost:
            # Never handed out: the earlier result names other links.
            await self._pipelined_run(
                [("HDEL", link_key(serial), link_field(serial)) for serial in lost]
            )
        return earlier

    async def inspect_link(self, serial: int) -> tuple[StoredLink | None, str | None, int, int]:
        """A link, the base URL of its block and its taps by people and by bots, counting
        nothing."""
        field = link_field(serial)
        (raw, base_url), (people, bots) = await self._pipelined_run(
            [
                ("HMGET", link_key(serial), field, BASE_URL_FIELD),
                ("HMGET", count_key(serial), f"{field}:c", f"{field}:b"),
            ]
        )
        link = None if raw is None else StoredLink.decode(_text(raw))
        base = None if base_url is None else _text(base_url)
        return link, base, int(people or 0), int(bots or 0)

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
                    org, minute_of_hour = _org_and_minute(_text(field))
                    if first_minute <= hour * 60 + minute_of_hour <= last_minute:
                        totals[org] = totals.get(org, 0) + int(count)
        return totals

    async def tap_link(self, serial: int, counter: str, now: int, kinds: str) -> StoredLink | None:
        """Read a link and count a tap on it while it lives and is of one of `kinds` (a
        string of LinkKind values): counter "c" for a person, "b" for a bot, "" for none."""
        args: list[str | int] = [link_field(serial), now, counter, kinds]
        raw = await self._eval(self._tap, [link_key(serial), count_key(serial)], args)
        return None if raw is None else StoredLink.decode(_text(raw))

    async def record_interaction(
        self,
        link: StoredLink,
        *,
        kind: str,
        link_id: str,
        code: str | None,
        bot: bool,
        retain_ms: int,
        now_ms: int,
    ) -> str:
        args: list[str | int] = [
            link.contact_id or "",
            now_ms - retain_ms,
            kind,
            link.target,
            "1" if bot else "0",
            link_id,
            code or "",
            link.message_id or "",
            link.campaign or "",
        ]
        keys = [consent_key(link.org), interactions_key(link.org)]
        return _text(await self._eval(self._record, keys, args))

    async def read_interactions(self, org: str, after: str | None, limit: int) -> list[Interaction]:
        start = f"({after}" if after else "-"
        entries = await self._call(self.redis.xrange(interactions_key(org), start, "+", limit))
        interactions = []
        for entry_id, raw_fields in entries or []:
            fields = {_text(k): _text(v) for k, v in (raw_fields or {}).items()}
            interactions.append(
                Interaction(
                    id=_text(entry_id),
                    type=fields["t"],
                    url=None if fields["u"] == PIXEL_TARGET else fields["u"],
                    bot=fields["b"] == "1",
                    link_id=fields.get("l") or None,
                    code=fields.get("k") or None,
                    message_id=fields.get("m") or None,
                    contact_id=fields.get("p") or None,
                    campaign=fields.get("g") or None,
                )
            )
        return interactions

    async def set_consent(self, org: str, contact_id: str, tracking: bool, at_ms: int) -> None:
        value = f"{'1' if tracking else '0'} {at_ms}"
        await self._call(self.redis.hset(consent_key(org), contact_id, value))

    async def consent(self, org: str, contact_id: str) -> StoredConsent | None:
        """A contact's stored consent; None if it was never set."""
        raw = await self._call(self.redis.hget(consent_key(org), contact_id))
        return None if raw is None else _consent(_text(raw))

    async def opted_out(self, org: str, contact_ids: Sequence[str]) -> set[str]:
        """Which of the contacts opted out of tracking; one command for all of them."""
        if not contact_ids:
            return set()
        ids = list(dict.fromkeys(contact_ids))
        (values,) = await self._pipelined_run([("HMGET", consent_key(org), *ids)])
        return {
            contact_id
            for contact_id, raw in zip(ids, values, strict=True)
            if raw is not None and not _consent(_text(raw)).tracking
        }

    async def remember_orgs(self, orgs: dict[str, str]) -> None:
        """Keep org hash -> org for good, so that links outlive the org's API keys."""
        if orgs:
            mapping: dict[str | bytes, str | bytes] = dict(orgs.items())
            await self._call(self.redis.hset(ORGS_KEY, mapping=mapping))  # type: ignore[arg-type]

    async def org_of_hash(self, org_hash: str) -> str | None:
        raw = await self._call(self.redis.hget(ORGS_KEY, org_hash))
        return None if raw is None else _text(raw)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _consent(value: str) -> StoredConsent:
    flag, _, at_ms = value.partition(" ")
    return StoredConsent(flag != "0", int(at_ms) if at_ms.isdigit() else None)


def connect(url: str, *, cluster: bool, timeout: float) -> Store:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
    }
    if cluster:
        # The shared pipeline's client does not retry, as redis-py would by closing all its
        # connections: the auto-pipeline keeps a node that is down to its own commands and
        # fetches the slot map itself. Its batches keep their own deadline, as below.
        pipelined_cluster = RedisCluster.from_url(
            url,
            **{**options, "socket_timeout": None, "health_check_interval": 0},
            retry=Retry(NoBackoff(), 0),
        )
        return Store(RedisCluster.from_url(url, **options), timeout, pipelined_cluster)
    options["retry_on_timeout"] = False
    # Blocking: a burst of requests waits its turn for a connection (up to `timeout`) rather
    # than failing at once or opening thousands of sockets.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=timeout, **options
    )
    # The auto-pipeline holds a connection per batch in flight, a handful even under heavy
    # load, so it takes them from a plain pool: a blocking pool's lock and timer for each
    # batch cost more than the batch itself. Should Redis hang, batches pile up to the limit
    # and the rest fail at once, which answers 503 as the timeout would.
    # Its batches keep their own deadline, so its reads need no timer each.
    pipelined_options = {**options, "socket_timeout": None, "health_check_interval": 0}
    pipelined_pool = aioredis.ConnectionPool.from_url(url, max_connections=64, **pipelined_options)
    return Store(
        aioredis.Redis(connection_pool=pool),
        timeout,
        aioredis.Redis(connection_pool=pipelined_pool),
    )
