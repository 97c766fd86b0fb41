"""Org API keys kept in the store: made and revoked through the admin routes and the CLI, shown
once, kept only as their SHA-256, and known to every worker from a copy in memory that follows
the store within a second or two (see `TenancyWatch`)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel

from shortener.store.store import Store

# A key's last use is written at most this often; a day's precision is what people need of it.
USE_RECORD_SECONDS = 60.0


class UnknownKey(Exception):
    """No key of this id belongs to the org."""

    def __init__(self, org: str, key_id: str) -> None:
        super().__init__(f"org {org!r} has no key {key_id!r}")


class NewKey(BaseModel):
    key_id: str
    key: str
    created_at: datetime


class KeyInfo(BaseModel):
    key_id: str
    created_at: datetime
    last_used_at: datetime | None


class KeyList(BaseModel):
    keys: list[KeyInfo]


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    org: str
    digest: bytes
    created_at: float

    def encode(self) -> str:
        return f"{self.org} {self.digest.hex()} {int(self.created_at * 1000)}"

    @classmethod
    def decode(cls, key_id: str, raw: str) -> StoredKey:
        org, digest, created_ms = raw.split(" ")
        return cls(key_id, org, bytes.fromhex(digest), int(created_ms) / 1000)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class OrgKeys:
    """The stored keys, and a copy of them in memory that requests are checked against."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._by_digest: dict[bytes, StoredKey] = {}
        # When each key's use was last written, and uses not written yet.
        self._use_written: dict[str, float] = {}
        self._unwritten_uses: dict[str, float] = {}

    def org_for(self, key: str) -> str | None:
        """The org of a stored key, from memory; its use is noted, to be written later."""
        digest = key_digest(key)
        found = self._by_digest.get(digest)
        if found is None or not hmac.compare_digest(found.digest, digest):
            return None
        now = self._clock()
        if now - self._use_written.get(found.key_id, 0.0) >= USE_RECORD_SECONDS:
            self._use_written[found.key_id] = now
            self._unwritten_uses[found.key_id] = now
        return found.org

    def org_for_digest(self, digest: bytes) -> str | None:
        """The org of the stored key with this SHA-256, noting no use."""
        found = self._by_digest.get(digest)
        return None if found is None else found.org

    async def write_uses(self) -> None:
        """Write the uses noted since the last write."""
        uses, self._unwritten_uses = self._unwritten_uses, {}
        # A key revoked since its use is not brought back into the record of uses.
        live = {key.key_id for key in self._by_digest.values()}
        uses = {key_id: at for key_id, at in uses.items() if key_id in live}
        if uses:
            await self._store.mark_keys_used({k: int(t * 1000) for k, t in uses.items()})

    async def reload(self) -> None:
        stored = await self._store.api_keys()
        self._by_digest = {
            key.digest: key
            for key in (StoredKey.decode(key_id, raw) for key_id, raw in stored.items())
        }

    async def create(self, org: str) -> NewKey:
        key = secrets.token_urlsafe(32)
        # To the millisecond, as stored, so that the list shows the time this answer shows.
        created = int(self._clock() * 1000) / 1000
        stored = StoredKey("k_" + secrets.token_hex(8), org, key_digest(key), created)
        await self._store.save_api_key(stored.key_id, stored.encode())
        await self.reload()
        return NewKey(key_id=stored.key_id, key=key, created_at=_time(stored.created_at))

    async def list(self, org: str) -> KeyList:
        stored = await self._store.api_keys()
        used = await self._store.keys_used()
        keys = [StoredKey.decode(key_id, raw) for key_id, raw in stored.items()]
        return KeyList(
            keys=[
                KeyInfo(
                    key_id=key.key_id,
                    created_at=_time(key.created_at),
                    last_used_at=_time(used[key.key_id] / 1000) if key.key_id in used else None,
                )
                for key in sorted(keys, key=lambda key: (key.created_at, key.key_id))
                if key.org == org
            ]
        )

    async def revoke(self, org: str, key_id: str) -> None:
        raw = (await self._store.api_keys()).get(key_id)
        if raw is None or StoredKey.decode(key_id, raw).org != org:
            raise UnknownKey(org, key_id)
        await self._store.delete_api_key(key_id)
        await self.reload()
