"""Which network addresses a webhook may reach. An org names the URL, so without this check it
could make the service call into the network it runs in: loopback, private ranges, link-local
(cloud metadata at 169.254.169.254) and the like."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

# Not in `is_private` on every Python version, and as internal as the ranges that are.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# How long a lookup waits for DNS; a name that does not answer in time resolves to nothing.
RESOLVE_SECONDS = 3.0
# Answers are kept this long (none: less long), so that a burst of calls to one endpoint, or of
# changes to endpoints, asks DNS once rather than flooding the resolver, which then drops
# queries and leaves lookups hanging.
ANSWER_SECONDS = 30.0
NO_ANSWER_SECONDS = 5.0
MAX_ANSWERS_KEPT = 10_000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)
    )


def literal_address(host: str) -> IPAddress | None:
    """The address a host names itself, as in `https://10.0.0.1/` or `https://[::1]/`."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


_answers: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (the host itself if it is one); [] if it resolves to
    none within RESOLVE_SECONDS."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    now = time.monotonic()
    kept = _answers.get((host, port))
    if kept is not None and kept[0] > now:
        return kept[1]
    addresses = await _lookup(host, port)
    if len(_answers) >= MAX_ANSWERS_KEPT:
        _answers.pop(next(iter(_answers)))
    _answers[(host, port)] = (now + (ANSWER_SECONDS if addresses else NO_ANSWER_SECONDS), addresses)
    return addresses


async def _lookup(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = literal_address(str(sockaddr[0]).split("%", 1)[0])
        if address is not None:
            addresses.append(address)
    return addresses


async def private_address_of(host: str, port: int) -> IPAddress | None:
    """An address of `host` that is not public, if it has one."""
    for address in await resolve(host, port):
        if not is_public(address):
            return address
    return None
