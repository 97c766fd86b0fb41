"""Who a request comes from: the peer of the connection, or, when the peer is a trusted proxy,
the address that the proxies forwarded in `X-Forwarded-For`.

Anyone can send `X-Forwarded-For`, so it is believed only from `trusted_proxies`, and only as
far as it was written by them: each proxy appends the address it got the request from, so the
list is read from the right, past the trusted proxies, and the first address that is not one
of them is the client. What the client itself wrote further left counts for nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from shortener.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
FORWARDED_FOR = b"x-forwarded-for"


class ClientAddresses:
    __slots__ = ("_trusted",)

    def __init__(self, trusted_proxies: Iterable[IPNetwork]) -> None:
        self._trusted = tuple(trusted_proxies)

    def of(self, scope: Scope) -> str:
        """The client's address; "" when the connection has none (a unix socket)."""
        peer = scope.get("client")
        address: str = peer[0] if peer else ""
        # Taps call this for every request: with no proxy to believe, no header is read.
        if not self._trusted:
            return address
        return self._forwarded(scope, address)

    def _forwarded(self, scope: Scope, peer: str) -> str:
        nearest = _address(peer)
        if nearest is None or not self._is_trusted(nearest):
            return peer
        hops = [
            hop
            for name, value in scope["headers"]
            if name == FORWARDED_FOR
            for hop in value.decode("latin-1").split(",")
        ]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                # Not an address: nothing left of it can be vouched for, so the last hop
                # that a trusted proxy named stands for the client.
                break
            nearest = address
            if not self._is_trusted(address):
                break
        # Every hop trusted: the request began at a proxy, the left-most one.
        return str(nearest)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)


def _address(text: str) -> IPAddress | None:
    """An address as proxies write it (`192.0.2.1`, `2001:db8::1`, with or without a port:
    `192.0.2.1:443`, `[2001:db8::1]:443`); an IPv4 address mapped into IPv6 as IPv4."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
