"""API keys: which org a bearer key acts for."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from shortener.domain.org_keys import key_digest


class ApiKeys:
    """Looks keys up by their SHA-256, then compares in constant time, so response timing
    tells an attacker nothing about how much of a guessed key was right."""

    __slots__ = ("_by_digest",)

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._by_digest = {key_digest(key): (key.encode(), org) for key, org in keys.items()}

    def org_for(self, authorization: str | None) -> str | None:
        key = bearer_key(authorization)
        if key is None:
            return None
        entry = self._by_digest.get(key_digest(key))
        if entry is None or not hmac.compare_digest(entry[0], key.encode()):
            return None
        return entry[1]

    def org_for_digest(self, digest: bytes) -> str | None:
        """The org of the key with this SHA-256 (which only the service itself hands out: a
        signed session names its key so)."""
        entry = self._by_digest.get(digest)
        return None if entry is None else entry[1]


class AdminKeys:
    """The admin keys, looked up and compared as `ApiKeys` does."""

    __slots__ = ("_by_digest",)

    def __init__(self, keys: Iterable[str]) -> None:
        self._by_digest = {key_digest(key): key.encode() for key in keys}

    def holds(self, authorization: str | None) -> bool:
        key = bearer_key(authorization)
        if key is None:
            return False
        known = self._by_digest.get(key_digest(key))
        return known is not None and hmac.compare_digest(known, key.encode())

    def holds_digest(self, digest: bytes) -> bool:
        return digest in self._by_digest


def bearer_key(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer KEY` header; None for any other header."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return key


def holds_key(authorization: str | None, key: str) -> bool:
    """Whether the header is `Authorization: Bearer` this key. Digests of equal length are
    compared, in constant time, so timing tells neither the key's length nor its content."""
    sent = bearer_key(authorization)
    return sent is not None and hmac.compare_digest(key_digest(sent), key_digest(key))
