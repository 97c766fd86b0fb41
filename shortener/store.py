"""The one module that knows Redis keys and how values are laid out in them.

Keys:
- `blocks`: counter of reserved serial blocks (see `codes.SerialAllocator`).
- `secret:codes`: the key of the code MAC, made once by whoever starts first.
- `l:{block}`: hash of the links of one serial block; field = slot in block (base 36),
  value = an encoded `StoredLink`. Hundreds of small fields in one listpack-encoded hash
  cost about half the memory of one key per link. The hash lives until its latest link
  expires; each link carries its own expiry, since its neighbours may outlive it.
- `m:{org}:{message_id}`: a shortened message's result, so that a retry returns it again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from shortener.codes import block_of, slot_in_block
from shortener.embedded import COMPACT_HASH_CONFIG

T = TypeVar("T")

CODE_MAC_KEY = "secret:codes"
BLOCKS_KEY = "blocks"

# HSET the fields, then stretch the hash's life to cover the longest-lived of them. Not
# shrinking it keeps links written earlier with a longer lifetime alive.
_SAVE_LINKS = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""


class StoreUnavailable(Exception):
    """Redis did not answer in time or refused the connection."""


@dataclass(frozen=True, slots=True)
class StoredLink:
    org: str
    target: str
    created_at: int
    expires_at: int
    tracked: bool = False

    def encode(self) -> str:
        # Space-separated: orgs are validated to contain none, targets are encoded URLs.
        flags = "t" if self.tracked else "u"
        return f"{flags} {self.created_at:x} {self.expires_at:x} {self.org} {self.target}"

    @classmethod
    def decode(cls, raw: str) -> StoredLink:
        flags, created, expires, org, target = raw.split(" ", 4)
        return cls(org, target, int(created, 16), int(expires, 16), flags == "t")


@dataclass(frozen=True, slots=True)
class MessageClaim:
    """Store a message's result under its id unless one is there already."""

    org: str
    message_id: str
    payload: str


def link_key(serial: int) -> str:
    return f"l:{block_of(serial)}"


def link_field(serial: int) -> str:
    return format(slot_in_block(serial), "x")


def message_key(org: str, message_id: str) -> str:
    return f"m:{org}:{message_id}"


class Store:
    """Typed operations over Redis; every call fails with StoreUnavailable within `timeout`."""

    def __init__(self, redis: aioredis.Redis | RedisCluster, timeout: float) -> None:
        self.redis = redis
        self.timeout = timeout
        self._save_links = redis.register_script(_SAVE_LINKS)

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except (TimeoutError, ConnectionError, OSError, RedisError) as error:
            if isinstance(error, ResponseError):
                raise
            raise StoreUnavailable(str(error) or type(error).__name__) from error

    async def _call(self, awaitable: Awaitable[T]) -> T:
        async with self._guard():
            return await awaitable

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self._call(self.redis.ping()))
        except StoreUnavailable:
            return False

    async def tune(self) -> list[str]:
        """Ask the server for compact small hashes; returns what could not be set."""
        refused = []
        for name, value in COMPACT_HASH_CONFIG.items():
            try:
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

    async def save_links(
        self, links: Sequence[tuple[int, StoredLink]], ttl_ms: int, claims: Sequence[MessageClaim]
    ) -> list[str | None]:
        """Write links, then claim message ids; for each claim the result already stored
        under its id, or None where this call's claim won. One round trip."""
        by_block: dict[str, list[str]] = {}
        for serial, link in links:
            by_block.setdefault(link_key(serial), []).extend((link_field(serial), link.encode()))
        async with self._guard():
            pipe = self.redis.pipeline(transaction=False)
            for key, fields in by_block.items():
                await self._save_links(keys=[key], args=[ttl_ms, *fields], client=pipe)  # type: ignore[arg-type]
            for claim in claims:
                key = message_key(claim.org, claim.message_id)
                pipe.set(key, claim.payload, nx=True, px=ttl_ms)
                pipe.get(key)
            replies: list[Any] = await pipe.execute()
        claim_replies = replies[len(by_block) :]
        results: list[str | None] = []
        for won, stored in zip(claim_replies[::2], claim_replies[1::2], strict=True):
            results.append(None if won else _text(stored))
        return results

    async def forget_links(self, serials: Sequence[int]) -> None:
        """Remove links that lost a race for a message id and were never handed out."""
        async with self._guard():
            pipe = self.redis.pipeline(transaction=False)
            for serial in serials:
                pipe.hdel(link_key(serial), link_field(serial))
            await pipe.execute()

    async def load_link(self, serial: int) -> StoredLink | None:
        raw = await self._call(self.redis.hget(link_key(serial), link_field(serial)))
        return None if raw is None else StoredLink.decode(_text(raw))

    async def load_message(self, org: str, message_id: str) -> str | None:
        raw = await self._call(self.redis.get(message_key(org, message_id)))
        return None if raw is None else _text(raw)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def connect(url: str, *, cluster: bool, timeout: float) -> Store:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry_on_timeout": False,
        "health_check_interval": 30,
    }
    client: aioredis.Redis | RedisCluster
    if cluster:
        client = RedisCluster.from_url(url, **options)
    else:
        client = aioredis.from_url(url, max_connections=256, **options)
    return Store(client, timeout)
