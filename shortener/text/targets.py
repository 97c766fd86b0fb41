"""Redirect targets: a link as written in a message body, made fit for an HTTP `Location` header.

Only http and https links are accepted, because the redirect is followed by a phone's browser and
any other scheme (javascript:, data:, intent-like app schemes) would let a sender run or open
something the recipient never saw spelled out. Links without a scheme, as people type them in
messages, get one prepended.

The output is plain ASCII: the host in IDNA A-label form and every character that RFC 3986 does
not allow literally in the path, query or fragment percent-encoded as UTF-8. Everything that is
already allowed is left byte for byte as it was, so existing escapes are never decoded or
encoded twice, query parameter order survives, and the function is idempotent.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna

from shortener.text.parsing import whole_number

__all__ = ["MAX_TARGET_LENGTH", "InvalidTarget", "redirect_target"]

MAX_TARGET_LENGTH = 4096

_SCHEMES = frozenset({"http", "https"})
# What browsers themselves strip from both ends of a URL before parsing it.
_EDGE_JUNK = "".join(chr(code) for code in range(0x21))
_PERCENT = tuple(f"%{byte:02X}" for byte in range(256))

_ESCAPE = r"%[0-9A-Fa-f]{2}"
_PATH_CHARS = r"A-Za-z0-9\-._~!$&'()*+,;=:@/"
_QUERY_CHARS = _PATH_CHARS + "?"

# Possessive quantifiers keep a near-miss from backtracking exponentially over long inputs.
_VALID_ASCII_URL = re.compile(
    r"https?://"
    r"(?P<host>[a-z0-9_.\-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    rf"(?:/(?:[{_PATH_CHARS}]++|{_ESCAPE})*+)?"
    rf"(?:\?(?:[{_QUERY_CHARS}]++|{_ESCAPE})*+)?"
    rf"(?:#(?:[{_QUERY_CHARS}]++|{_ESCAPE})*+)?"
)
_PATH_UNSAFE = re.compile(rf"[^{_PATH_CHARS}%]+|%(?![0-9A-Fa-f]{{2}})")
# A second "#" inside the fragment is not allowed literally, so it gets encoded like the rest.
_QUERY_UNSAFE = re.compile(rf"[^{_QUERY_CHARS}%]+|%(?![0-9A-Fa-f]{{2}})")

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# "shop.com:8080/deal" also looks like a scheme followed by a colon; a dotted name followed by
# digits and the end of the authority is read as host and port, which no real scheme resembles.
_PORT_THEN_AUTHORITY_END = re.compile(r"[0-9]+(?:[/?#]|\Z)")
_AUTHORITY_END = re.compile(r"[/?#]")

# Underscores are not valid in IDNA labels but do occur in real ASCII host names, and browsers
# accept them, so plain ASCII hosts are checked here rather than by the idna package.
_ASCII_HOST = re.compile(r"[a-z0-9_\-]{1,63}(?:\.[a-z0-9_\-]{1,63})*")
# Browsers parse a host whose last label looks numeric as an IPv4 address in any of several
# legacy notations (octal, hex, fewer than four parts), which hides where a link really goes.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_MAX_HOST_LENGTH = 253
_JOINERS = frozenset("\u200c\u200d")


class InvalidTarget(ValueError):
    """The link cannot be a redirect target; str(error) says why, in words fit for an API error
    detail."""


def redirect_target(link: str, *, schemeless_scheme: str = "https") -> str:
    """Return `link` as an absolute http(s) URL that is valid ASCII for a `Location` header.

    `schemeless_scheme` ("https" or "http") is prepended to links written without a scheme.
    Raises InvalidTarget if the link cannot be used as a redirect target.
    """
    if schemeless_scheme not in _SCHEMES:
        raise ValueError(f"schemeless_scheme must be 'http' or 'https', not {schemeless_scheme!r}")
    match = _VALID_ASCII_URL.fullmatch(link)
    if match is not None and len(link) <= MAX_TARGET_LENGTH:
        host = match["host"]
        port = match["port"]
        if _normalise_host(host) == host and (port is None or _normalise_port(port) == port):
            return link
    return _convert(link, schemeless_scheme)


def _convert(link: str, schemeless_scheme: str) -> str:
    text = link.strip(_EDGE_JUNK)
    if not text:
        raise InvalidTarget("the link is empty")
    scheme, rest = _split_scheme(text, schemeless_scheme)

    authority_end = _AUTHORITY_END.search(rest)
    split_at = len(rest) if authority_end is None else authority_end.start()
    authority, tail = rest[:split_at], rest[split_at:]
    host_text, port_text = _split_authority(authority)
    host = _normalise_host(host_text)
    port = "" if port_text is None else _normalise_port(port_text)
    origin = f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"

    # Encoding never makes the rest shorter, so hopeless inputs are refused before any work.
    if len(origin) + len(tail) > MAX_TARGET_LENGTH:
        raise _too_long()

    tail, hash_sign, fragment = tail.partition("#")
    path, question_mark, query = tail.partition("?")
    try:
        target = "".join(
            (
                origin,
                _PATH_UNSAFE.sub(_percent_encode, path),
                question_mark,
                _QUERY_UNSAFE.sub(_percent_encode, query),
                hash_sign,
                _QUERY_UNSAFE.sub(_percent_encode, fragment),
            )
        )
    except UnicodeEncodeError as error:
        raise InvalidTarget("the link contains text that is not valid Unicode") from error
    if len(target) > MAX_TARGET_LENGTH:
        raise _too_long()
    return target


def _split_scheme(text: str, schemeless_scheme: str) -> tuple[str, str]:
    """Return the lowercased scheme and what follows its "//"."""
    match = _SCHEME.match(text)
    if match is None:
        return schemeless_scheme, text.removeprefix("//")
    scheme = match[1].lower()
    after = text[match.end() :]
    if scheme in _SCHEMES:
        if not after.startswith("//"):
            raise InvalidTarget(f"a {scheme} link must have '//' after '{scheme}:'")
        return scheme, after[2:]
    if "." in scheme and _PORT_THEN_AUTHORITY_END.match(after):
        return schemeless_scheme, text
    shown = scheme if len(scheme) <= 32 else scheme[:32] + "..."
    raise InvalidTarget(f"only http and https links can be shortened, not '{shown}:' links")


def _split_authority(authority: str) -> tuple[str, str | None]:
    """Return the host and the text after its port colon (None without a colon)."""
    if "@" in authority:
        raise InvalidTarget(
            "links with a user name or password before the host are not allowed, because they "
            "are used to disguise where a link leads"
        )
    if authority.startswith("["):
        close = authority.find("]") + 1
        if close == 0:
            raise InvalidTarget("the IPv6 address in the link is missing its closing ']'")
        host, after = authority[:close], authority[close:]
        if not after:
            return host, None
        if not after.startswith(":"):
            raise _bad_host()
        return host, after[1:]
    host, colon, port = authority.partition(":")
    return host, (port if colon else None)


def _normalise_host(host: str) -> str:
    if not host:
        raise InvalidTarget("the link has no host name")
    if host.startswith("["):
        return _check_ipv6(host)
    if host.isascii():
        host = host.lower()
        if not (host.startswith("xn--") or ".xn--" in host):
            return _check_ascii_host(host)
    # Existing A-labels go through the mapping as well so that broken Punycode is caught here.
    try:
        ascii_host = _domain_to_ascii(host)
    except (UnicodeError, idna.IDNAError) as error:
        raise InvalidTarget("the host name is not a valid internationalised domain name") from error
    return _check_ascii_host(ascii_host)


def _domain_to_ascii(host: str) -> str:
    """The host as browsers map it before looking it up: the WHATWG URL standard's "domain to
    ASCII", i.e. UTS #46 processing (non-transitional, UseSTD3ASCIIRules, CheckHyphens and
    VerifyDnsLength off; CheckBidi and CheckJoiners on). Unlike strict IDNA 2008 it accepts
    symbols and emoji, which phones open; the ASCII result is checked by the caller."""
    labels = idna.uts46_remap(host, std3_rules=False).split(".")
    unicode_labels = [
        _decoded_a_label(label) if label.startswith("xn--") else label for label in labels
    ]
    bidi_domain = any(_has_right_to_left(label) for label in unicode_labels)
    ascii_labels = []
    for label, unicode_label in zip(labels, unicode_labels, strict=True):
        if unicode_label:
            _check_label(unicode_label, bidi_domain)
        if label.isascii():
            ascii_labels.append(label)
        else:
            ascii_labels.append("xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(ascii_labels)


def _decoded_a_label(label: str) -> str:
    """The U-label an A-label stands for; UnicodeError unless it is its canonical Punycode
    form and names a valid label."""
    if not label.isascii():
        raise UnicodeError("an A-label is ASCII")
    decoded = label[4:].encode("ascii").decode("punycode")
    if not decoded or decoded.isascii():
        raise UnicodeError("an A-label stands for a label with non-ASCII characters")
    if "xn--" + decoded.encode("punycode").decode("ascii") != label:
        raise UnicodeError("an A-label must be the Punycode form of its label")
    if idna.uts46_remap(decoded, std3_rules=False) != decoded or decoded.startswith("xn--"):
        raise UnicodeError("an A-label must stand for a label that maps to itself")
    return decoded


def _check_label(label: str, bidi_domain: bool) -> None:
    """UTS #46 validity criteria that the mapping itself does not check."""
    idna.check_initial_combiner(label)
    for position, char in enumerate(label):
        if char in _JOINERS and not idna.valid_contextj(label, position):
            raise UnicodeError("a joiner out of its context")
    if bidi_domain:
        idna.check_bidi(label, check_ltr=True)


def _has_right_to_left(label: str) -> bool:
    return any(unicodedata.bidirectional(char) in ("R", "AL", "AN") for char in label)


def _check_ascii_host(host: str) -> str:
    name = host[:-1] if host.endswith(".") else host
    if len(name) > _MAX_HOST_LENGTH:
        raise InvalidTarget(f"the host name is longer than {_MAX_HOST_LENGTH} characters")
    if _ASCII_HOST.fullmatch(name) is None:
        raise _bad_host()
    if _NUMERIC_LABEL.fullmatch(name.rpartition(".")[2]) is not None:
        try:
            ipaddress.IPv4Address(name)
        except ValueError as error:
            raise InvalidTarget("the host is not a valid IPv4 address") from error
    return host


def _check_ipv6(host: str) -> str:
    address = host[1:-1]
    # A zone identifier only means something on the sender's own machine.
    if not host.endswith("]") or "%" in address:
        raise _bad_ipv6()
    try:
        ipaddress.IPv6Address(address)
    except ValueError as error:
        raise _bad_ipv6() from error
    return host.lower()


def _normalise_port(port: str) -> str:
    """Return the port to keep; an empty port is dropped, as browsers do."""
    if not port:
        return ""
    number = whole_number(port, max_digits=5)
    if number is None or not 0 < number < 65536:
        raise InvalidTarget("the port must be a number from 1 to 65535")
    return port


def _percent_encode(match: re.Match[str]) -> str:
    return "".join([_PERCENT[byte] for byte in match.group().encode("utf-8")])


def _bad_host() -> InvalidTarget:
    return InvalidTarget("the host name contains characters that are not allowed")


def _bad_ipv6() -> InvalidTarget:
    return InvalidTarget("the host is not a valid IPv6 address")


def _too_long() -> InvalidTarget:
    return InvalidTarget(f"the link is longer than {MAX_TARGET_LENGTH} characters once encoded")
