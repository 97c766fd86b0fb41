"""Host names as the service keeps them: lowercased, in IDNA A-label form, mapped as browsers
map them, so that `Bücher.example` and `xn--bcher-kva.example` are one name."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from shortener.text.targets import InvalidTarget, redirect_target

# Characters that would make the name more than a host: a port, a path, a user, a query.
_NOT_IN_A_NAME = frozenset("/\\:?#@[]% \t\r\n")


def host_name(text: str) -> str:
    """The A-label form of a host name; ValueError, saying why, unless it is one."""
    if not text or any(char in _NOT_IN_A_NAME or not char.isprintable() for char in text):
        raise ValueError(f"{text!r} is not a host name")
    try:
        host = urlsplit(redirect_target(f"https://{text}/")).hostname
    except InvalidTarget as error:
        raise ValueError(f"{text!r} is not a host name: {error}") from None
    if not host:
        raise ValueError(f"{text!r} is not a host name")
    host = host.rstrip(".")
    if not host:
        raise ValueError(f"{text!r} is not a host name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ValueError(f"{text!r} is an IP address, not a host name")
    return host
